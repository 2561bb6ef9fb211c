CREATE TABLE "lot_responder_counts" (
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"instrument" text NOT NULL,
	"timepoint" text NOT NULL,
	"n" integer DEFAULT 0 NOT NULL,
	"responders" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "lot_responder_counts_lot_id_clinic_id_instrument_timepoint_pk" PRIMARY KEY("lot_id","clinic_id","instrument","timepoint")
);
--> statement-breakpoint
CREATE TABLE "lot_safety_counts" (
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"procedures" integer DEFAULT 0 NOT NULL,
	"procedures_with_event" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "lot_safety_counts_lot_id_clinic_id_pk" PRIMARY KEY("lot_id","clinic_id")
);
--> statement-breakpoint
CREATE TABLE "lot_safety_recount" (
	"lot_id" uuid PRIMARY KEY NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "lot_safety_signals" (
	"lot_id" uuid PRIMARY KEY NOT NULL,
	"flagged" boolean NOT NULL,
	"p_value" double precision NOT NULL,
	"first_flagged_at" timestamp with time zone NOT NULL,
	"changed_at" timestamp with time zone NOT NULL,
	"event_id" uuid NOT NULL
);
--> statement-breakpoint
CREATE TABLE "safety_monitor" (
	"id" integer PRIMARY KEY NOT NULL,
	"cursor_tx" "xid8" NOT NULL,
	"cursor_seq" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "safety_monitor_one_row_ck" CHECK ("safety_monitor"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "safety_procedures_with_event" (
	"procedure_id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "lot_responder_counts" ADD CONSTRAINT "lot_responder_counts_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_safety_counts" ADD CONSTRAINT "lot_safety_counts_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_safety_recount" ADD CONSTRAINT "lot_safety_recount_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lot_safety_signals" ADD CONSTRAINT "lot_safety_signals_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "safety_procedures_with_event_lot_idx" ON "safety_procedures_with_event" USING btree ("lot_id","clinic_id");--> statement-breakpoint
-- Hand-written: the safety monitor starts at the oldest transaction still running (events committed from there on
-- are counted as they settle), and every existing lot waits for a rebuild of its counts from the records, which the
-- monitor does a few lots at a time (the rebuild leaves out what the feed will still count).
INSERT INTO "safety_monitor" ("id", "cursor_tx", "cursor_seq") VALUES (1, pg_snapshot_xmin(pg_current_snapshot()), 0);--> statement-breakpoint
INSERT INTO "lot_safety_recount" ("lot_id") SELECT "id" FROM "lots";
