CREATE TABLE "donor_eligibility" (
	"id" uuid PRIMARY KEY NOT NULL,
	"donor_id" uuid NOT NULL,
	"status" text NOT NULL,
	"determined_by" text NOT NULL,
	"determined_at" timestamp with time zone NOT NULL,
	"reason" text,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"recorded_by" text NOT NULL,
	CONSTRAINT "donor_eligibility_reason_ck" CHECK ("donor_eligibility"."status" <> 'ineligible' or "donor_eligibility"."reason" is not null)
);
--> statement-breakpoint
CREATE TABLE "donor_tests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"donor_id" uuid NOT NULL,
	"marker" text NOT NULL,
	"method" text NOT NULL,
	"result" text NOT NULL,
	"tested_on" date NOT NULL,
	"laboratory" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"recorded_by" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "donors" (
	"id" uuid PRIMARY KEY NOT NULL,
	"din" text NOT NULL,
	"din_check_character" text NOT NULL,
	"source_tissue" text NOT NULL,
	"sex" text NOT NULL,
	"age_at_donation_years" integer NOT NULL,
	"collected_on" date NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "donors_age_ck" CHECK ("donors"."age_at_donation_years" between 0 and 120)
);
--> statement-breakpoint
CREATE TABLE "discards" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"vials" integer NOT NULL,
	"reason" text NOT NULL,
	"discarded_at" timestamp with time zone NOT NULL,
	"recorded_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "discards_vials_ck" CHECK ("discards"."vials" > 0)
);
--> statement-breakpoint
CREATE TABLE "lot_donors" (
	"lot_id" uuid NOT NULL,
	"donor_id" uuid NOT NULL,
	CONSTRAINT "lot_donors_lot_id_donor_id_pk" PRIMARY KEY("lot_id","donor_id")
);
--> statement-breakpoint
CREATE TABLE "lot_status_changes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"status" text NOT NULL,
	"effective_at" timestamp with time zone NOT NULL,
	"reason" text,
	"cause" text NOT NULL,
	"changed_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "lot_stock" (
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"shipped" integer DEFAULT 0 NOT NULL,
	"administered" integer DEFAULT 0 NOT NULL,
	"discarded" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "lot_stock_lot_id_clinic_id_pk" PRIMARY KEY("lot_id","clinic_id"),
	CONSTRAINT "lot_stock_ck" CHECK ("lot_stock"."administered" >= 0 and "lot_stock"."discarded" >= 0 and "lot_stock"."administered" + "lot_stock"."discarded" <= "lot_stock"."shipped")
);
--> statement-breakpoint
CREATE TABLE "lots" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_number" text NOT NULL,
	"manufacturer" text NOT NULL,
	"product_name" text NOT NULL,
	"isolation_method" text NOT NULL,
	"pooling_justification" text,
	"characterization" jsonb,
	"release_tests" jsonb NOT NULL,
	"manufactured_on" date NOT NULL,
	"expires_on" date NOT NULL,
	"storage_temp_c" numeric NOT NULL,
	"vial_volume_ml" numeric NOT NULL,
	"vial_count" integer NOT NULL,
	"vials_shipped" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'quarantine' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text NOT NULL,
	CONSTRAINT "lots_status_ck" CHECK ("lots"."status" in ('quarantine','released','recalled')),
	CONSTRAINT "lots_vials_ck" CHECK ("lots"."vial_count" > 0 and "lots"."vials_shipped" >= 0 and "lots"."vials_shipped" <= "lots"."vial_count"),
	CONSTRAINT "lots_dates_ck" CHECK ("lots"."expires_on" > "lots"."manufactured_on")
);
--> statement-breakpoint
CREATE TABLE "shipments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"vials" integer NOT NULL,
	"shipped_at" timestamp with time zone NOT NULL,
	"recorded_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "shipments_vials_ck" CHECK ("shipments"."vials" > 0)
);
--> statement-breakpoint
ALTER TABLE "donor_eligibility" ADD CONSTRAINT "donor_eligibility_donor_id_donors_id_fk" FOREIGN KEY ("donor_id") REFERENCES "public"."donors"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "donor_tests" ADD CONSTRAINT "donor_tests_donor_id_donors_id_fk" FOREIGN KEY ("donor_id") REFERENCES "public"."donors"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "discards" ADD CONSTRAINT "discards_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_donors" ADD CONSTRAINT "lot_donors_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_donors" ADD CONSTRAINT "lot_donors_donor_id_donors_id_fk" FOREIGN KEY ("donor_id") REFERENCES "public"."donors"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_status_changes" ADD CONSTRAINT "lot_status_changes_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_stock" ADD CONSTRAINT "lot_stock_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "shipments" ADD CONSTRAINT "shipments_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "donor_eligibility_donor_idx" ON "donor_eligibility" USING btree ("donor_id","determined_at","id");--> statement-breakpoint
CREATE INDEX "donor_tests_donor_idx" ON "donor_tests" USING btree ("donor_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "donors_din_uq" ON "donors" USING btree ("din");--> statement-breakpoint
CREATE INDEX "discards_lot_idx" ON "discards" USING btree ("lot_id","id");--> statement-breakpoint
CREATE INDEX "lot_donors_donor_idx" ON "lot_donors" USING btree ("donor_id");--> statement-breakpoint
CREATE INDEX "lot_status_changes_lot_idx" ON "lot_status_changes" USING btree ("lot_id","effective_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "lots_manufacturer_number_uq" ON "lots" USING btree ("manufacturer","lot_number");--> statement-breakpoint
CREATE INDEX "lots_status_idx" ON "lots" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "shipments_lot_idx" ON "shipments" USING btree ("lot_id","id");