-- Issue 18: expectedness and the 21 CFR 312.32 reporting clock of adverse events; products' expected-reaction lists.
CREATE TABLE "product_expected_reactions" (
	"product_name" text PRIMARY KEY NOT NULL,
	"id" uuid NOT NULL,
	"reactions" jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text NOT NULL,
	CONSTRAINT "product_expected_reactions_name_nfc_ck" CHECK ("product_expected_reactions"."product_name" is nfc normalized),
	CONSTRAINT "product_expected_reactions_array_ck" CHECK (jsonb_typeof("product_expected_reactions"."reactions") = 'array')
);
--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "term" text;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "expectedness" text;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "aware_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "report_due_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "reported_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD COLUMN "report_reference" text;--> statement-breakpoint
-- Backfill (hand-written): events recorded before terms existed have none, so they are unexpected; the sponsor is
-- taken to have been aware when the event was recorded (or at its onset, if a follow-up moved the onset later);
-- the due time follows src/modules/adverse-events/rules.ts reportDueAt: a serious, unexpected event whose
-- relatedness is not unlikely or not-related is due 15 x 24 h after awareness, 7 x 24 h if fatal or life-threatening
-- (grade >= 4, outcome fatal, or criterion death / life-threatening).
UPDATE "adverse_events" SET
	"expectedness" = 'unexpected',
	"aware_at" = greatest("created_at", "onset_at"),
	"report_due_at" = CASE
		WHEN "serious" AND "relatedness" NOT IN ('unlikely', 'not-related') THEN
			greatest("created_at", "onset_at") + make_interval(hours => 24 * CASE
				WHEN "severity_grade" >= 4 OR "outcome" = 'fatal' OR "seriousness_criteria" ?| array['death', 'life-threatening'] THEN 7
				ELSE 15 END)
		END;--> statement-breakpoint
ALTER TABLE "adverse_events" ALTER COLUMN "expectedness" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "adverse_events" ALTER COLUMN "aware_at" SET NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "product_expected_reactions_id_uq" ON "product_expected_reactions" USING btree ("id");--> statement-breakpoint
CREATE INDEX "adverse_events_report_due_idx" ON "adverse_events" USING btree ("clinic_id","report_due_at","id") WHERE "adverse_events"."report_due_at" is not null and "adverse_events"."reported_at" is null;--> statement-breakpoint
ALTER TABLE "adverse_events" ADD CONSTRAINT "adverse_events_expectedness_ck" CHECK ("adverse_events"."expectedness" in ('expected','unexpected'));--> statement-breakpoint
ALTER TABLE "adverse_events" ADD CONSTRAINT "adverse_events_reported_ck" CHECK (("adverse_events"."reported_at" is null) = ("adverse_events"."report_reference" is null));--> statement-breakpoint
-- A reference list is corrected by a new version, never removed.
CREATE TRIGGER product_expected_reactions_no_delete BEFORE DELETE ON product_expected_reactions FOR EACH ROW EXECUTE FUNCTION refuse_change();
