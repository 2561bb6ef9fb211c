CREATE TABLE "procedures" (
	"id" uuid PRIMARY KEY NOT NULL,
	"clinic_id" text NOT NULL,
	"patient_id" uuid NOT NULL,
	"lot_id" uuid NOT NULL,
	"performed_at" timestamp with time zone NOT NULL,
	"performer" text NOT NULL,
	"indication" jsonb NOT NULL,
	"route" text NOT NULL,
	"body_site" text,
	"laterality" text,
	"imaging_guidance" text NOT NULL,
	"dose_particles" bigint NOT NULL,
	"dose_volume_ml" numeric NOT NULL,
	"vials_used" integer NOT NULL,
	"dose_deviation_reason" text,
	"notes" text,
	"status" text DEFAULT 'completed' NOT NULL,
	"entered_in_error_reason" text,
	"entered_in_error_at" timestamp with time zone,
	"entered_in_error_by" text,
	"vials_returned" integer DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "procedures_status_ck" CHECK ("procedures"."status" in ('completed','entered-in-error')),
	CONSTRAINT "procedures_dose_ck" CHECK ("procedures"."dose_particles" between 1 and 9007199254740991 and "procedures"."dose_volume_ml" > 0),
	CONSTRAINT "procedures_vials_ck" CHECK ("procedures"."vials_used" >= 1 and "procedures"."vials_returned" between 0 and "procedures"."vials_used")
);
--> statement-breakpoint
CREATE TABLE "outcomes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"clinic_id" text NOT NULL,
	"procedure_id" uuid NOT NULL,
	"patient_id" uuid NOT NULL,
	"instrument" text NOT NULL,
	"score" numeric NOT NULL,
	"assessed_at" timestamp with time zone NOT NULL,
	"timepoint" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"recorded_by" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "adverse_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"clinic_id" text NOT NULL,
	"procedure_id" uuid NOT NULL,
	"patient_id" uuid NOT NULL,
	"lot_id" uuid NOT NULL,
	"onset_at" timestamp with time zone NOT NULL,
	"description" text NOT NULL,
	"severity_grade" integer NOT NULL,
	"serious" boolean NOT NULL,
	"seriousness_criteria" jsonb NOT NULL,
	"relatedness" text NOT NULL,
	"outcome" text NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text NOT NULL,
	CONSTRAINT "adverse_events_grade_ck" CHECK ("adverse_events"."severity_grade" between 1 and 5),
	CONSTRAINT "adverse_events_fatal_ck" CHECK ("adverse_events"."severity_grade" < 5 or "adverse_events"."outcome" = 'fatal')
);
--> statement-breakpoint
ALTER TABLE "procedures" ADD CONSTRAINT "procedures_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "procedures" ADD CONSTRAINT "procedures_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_procedure_id_procedures_id_fk" FOREIGN KEY ("procedure_id") REFERENCES "public"."procedures"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "outcomes" ADD CONSTRAINT "outcomes_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD CONSTRAINT "adverse_events_procedure_id_procedures_id_fk" FOREIGN KEY ("procedure_id") REFERENCES "public"."procedures"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD CONSTRAINT "adverse_events_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD CONSTRAINT "adverse_events_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "procedures_clinic_patient_idx" ON "procedures" USING btree ("clinic_id","patient_id","id");--> statement-breakpoint
CREATE INDEX "procedures_lot_idx" ON "procedures" USING btree ("lot_id","id");--> statement-breakpoint
CREATE INDEX "procedures_clinic_idx" ON "procedures" USING btree ("clinic_id","id");--> statement-breakpoint
CREATE INDEX "procedures_clinic_performed_idx" ON "procedures" USING btree ("clinic_id","performed_at");--> statement-breakpoint
CREATE INDEX "outcomes_procedure_idx" ON "outcomes" USING btree ("procedure_id","instrument","timepoint");--> statement-breakpoint
CREATE INDEX "outcomes_patient_idx" ON "outcomes" USING btree ("clinic_id","patient_id","id");--> statement-breakpoint
CREATE INDEX "adverse_events_clinic_idx" ON "adverse_events" USING btree ("clinic_id","id");--> statement-breakpoint
CREATE INDEX "adverse_events_procedure_idx" ON "adverse_events" USING btree ("procedure_id");--> statement-breakpoint
CREATE INDEX "adverse_events_lot_idx" ON "adverse_events" USING btree ("lot_id","id");--> statement-breakpoint
CREATE INDEX "adverse_events_patient_idx" ON "adverse_events" USING btree ("clinic_id","patient_id");