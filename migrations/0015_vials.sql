CREATE TABLE "vial_custody" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "vial_custody_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"vial_id" uuid NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"action" text NOT NULL,
	"clinic_id" text,
	"by" text NOT NULL,
	"procedure_id" uuid,
	"shipment_id" uuid,
	"discard_id" uuid,
	"return_id" uuid,
	"reason" text,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "vial_custody_action_ck" CHECK ("vial_custody"."action" in ('released','shipped','received','administered','discarded','returned','recalled'))
);
--> statement-breakpoint
CREATE TABLE "vial_returns" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"clinic_id" text NOT NULL,
	"vials" integer NOT NULL,
	"vial_ids" uuid[] NOT NULL,
	"reason" text NOT NULL,
	"returned_at" timestamp with time zone NOT NULL,
	"recorded_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "vial_returns_vials_ck" CHECK ("vial_returns"."vials" > 0)
);
--> statement-breakpoint
CREATE TABLE "vials" (
	"id" uuid PRIMARY KEY NOT NULL,
	"lot_id" uuid NOT NULL,
	"manufacturer" text NOT NULL,
	"sequence" integer NOT NULL,
	"barcode" text NOT NULL,
	"status" text DEFAULT 'in-stock' NOT NULL,
	"clinic_id" text,
	"procedure_id" uuid,
	"received_at" timestamp with time zone,
	"moved_action" text,
	"moved_at" timestamp with time zone,
	"moved_by" text,
	"moved_reason" text,
	"movement_id" uuid,
	CONSTRAINT "vials_status_ck" CHECK ("vials"."status" in ('in-stock','at-clinic','administered','discarded','returned','recalled')),
	CONSTRAINT "vials_sequence_ck" CHECK ("vials"."sequence" >= 1),
	CONSTRAINT "vials_used_ck" CHECK (("vials"."status" = 'administered') = ("vials"."procedure_id" is not null)),
	CONSTRAINT "vials_barcode_nfc_ck" CHECK ("vials"."barcode" is nfc normalized)
);
--> statement-breakpoint
ALTER TABLE "discards" ADD COLUMN "vial_ids" uuid[];
--> statement-breakpoint
ALTER TABLE "recall_notices" ADD COLUMN "barcodes" text[] DEFAULT '{}'::text[] NOT NULL;
--> statement-breakpoint
ALTER TABLE "shipments" ADD COLUMN "vial_ids" uuid[];
--> statement-breakpoint
-- Existing lots get their vials, written once in their final state (bulk loads: the indexes, foreign keys and
-- triggers come after). The plan: every vial of every lot, default barcode {lotNumber}-{sequence, at least 4
-- digits}; shipments take sequences oldest shipment first; at each clinic, procedures (their vials not stated
-- returned) and discards take the lowest sequences the clinic holds, in the order they happened; the unused
-- vials of a recalled lot are recalled.
CREATE TEMP TABLE vial_plan AS
WITH shipped AS (
  SELECT s.id AS shipment_id, s.lot_id, s.clinic_id, s.shipped_at, s.recorded_by AS shipped_by,
         row_number() OVER (PARTITION BY s.lot_id ORDER BY s.shipped_at, s.recorded_at, s.id, g) AS sequence
  FROM shipments s CROSS JOIN LATERAL generate_series(1, s.vials) g
), held AS (
  SELECT shipped.*, row_number() OVER (PARTITION BY lot_id, clinic_id ORDER BY sequence) AS n FROM shipped
), used AS (
  SELECT x.*, row_number() OVER (PARTITION BY x.lot_id, x.clinic_id ORDER BY x.at, x.kind, x.ref_id, x.g) AS n
  FROM (SELECT p.lot_id, p.clinic_id, 'administered' AS kind, p.id AS ref_id, p.performed_at AS at, p.created_by AS by, NULL::text AS reason, g
        FROM procedures p CROSS JOIN LATERAL generate_series(1, p.vials_used - CASE WHEN p.status = 'entered-in-error' THEN p.vials_returned ELSE 0 END) g
        UNION ALL
        SELECT d.lot_id, d.clinic_id, 'discarded', d.id, d.discarded_at, d.recorded_by, d.reason, g
        FROM discards d CROSS JOIN LATERAL generate_series(1, d.vials) g) x
), lot_base AS (
  -- a vial's id: its lot's base uuid with the sequence in its last 20 bits (a lot's vials are index neighbours)
  SELECT id, gen_random_uuid()::text AS base FROM lots
), released AS (
  SELECT DISTINCT ON (lot_id) lot_id, effective_at, changed_by FROM lot_status_changes WHERE status = 'released' ORDER BY lot_id, effective_at, id
), recalled AS (
  SELECT DISTINCT ON (c.lot_id) c.lot_id, c.effective_at, c.changed_by, c.reason
  FROM lot_status_changes c JOIN lots l ON l.id = c.lot_id AND l.status = 'recalled'
  WHERE c.status = 'recalled' ORDER BY c.lot_id, c.effective_at DESC, c.id DESC
)
SELECT overlay(b.base placing lpad(to_hex(s.sequence), 5, '0') from 32 for 5)::uuid AS id, l.id AS lot_id, l.manufacturer, s.sequence::int AS sequence,
       normalize(l.lot_number, NFC) || '-' || lpad(s.sequence::text, greatest(4, length(s.sequence::text)), '0') AS barcode,
       CASE WHEN u.kind IS NOT NULL THEN u.kind WHEN rc.lot_id IS NOT NULL THEN 'recalled' WHEN h.clinic_id IS NOT NULL THEN 'at-clinic' ELSE 'in-stock' END AS status,
       r.effective_at AS released_at, r.changed_by AS released_by,
       h.shipment_id, h.clinic_id, h.shipped_at, h.shipped_by,
       u.kind, u.ref_id, u.at AS used_at, u.by AS used_by, u.reason AS used_reason,
       rc.effective_at AS recalled_at, rc.changed_by AS recalled_by, rc.reason AS recalled_reason
FROM lots l
JOIN lot_base b ON b.id = l.id
CROSS JOIN LATERAL generate_series(1, l.vial_count) AS s(sequence)
LEFT JOIN released r ON r.lot_id = l.id
LEFT JOIN held h ON h.lot_id = l.id AND h.sequence = s.sequence
LEFT JOIN used u ON u.lot_id = h.lot_id AND u.clinic_id = h.clinic_id AND u.n = h.n
LEFT JOIN recalled rc ON rc.lot_id = l.id
--> statement-breakpoint
-- The counts every inventory showed must come out the same, or the migration stops here.
DO $$
DECLARE bad record;
BEGIN
  SELECT coalesce(s.lot_id, v.lot_id) AS lot_id, coalesce(s.clinic_id, v.clinic_id) AS clinic_id INTO bad
  FROM lot_stock s
  FULL JOIN (SELECT lot_id, clinic_id, count(*) AS shipped, count(*) FILTER (WHERE status = 'administered') AS administered,
                    count(*) FILTER (WHERE status = 'discarded') AS discarded FROM vial_plan WHERE clinic_id IS NOT NULL GROUP BY 1, 2) v
    ON v.lot_id = s.lot_id AND v.clinic_id = s.clinic_id
  WHERE (coalesce(s.shipped, 0), coalesce(s.administered, 0), coalesce(s.discarded, 0))
        IS DISTINCT FROM (coalesce(v.shipped, 0), coalesce(v.administered, 0), coalesce(v.discarded, 0))
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'vials do not account for lot % at clinic % as lot_stock does', bad.lot_id, bad.clinic_id;
  END IF;
  SELECT l.id AS lot_id INTO bad FROM lots l
  WHERE l.vials_shipped <> (SELECT count(*) FROM vial_plan v WHERE v.lot_id = l.id AND v.clinic_id IS NOT NULL) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'vials do not account for the vials shipped of lot %', bad.lot_id;
  END IF;
END $$;
--> statement-breakpoint
INSERT INTO vials (id, lot_id, manufacturer, sequence, barcode, status, clinic_id, procedure_id, moved_action, moved_at, moved_by, moved_reason, movement_id)
  SELECT id, lot_id, manufacturer, sequence, barcode, status, clinic_id, CASE WHEN kind = 'administered' THEN ref_id END,
         CASE WHEN kind IS NOT NULL THEN kind WHEN status = 'recalled' THEN 'recalled' WHEN shipment_id IS NOT NULL THEN 'shipped' WHEN released_at IS NOT NULL THEN 'released' END,
         CASE WHEN kind IS NOT NULL THEN used_at WHEN status = 'recalled' THEN recalled_at WHEN shipment_id IS NOT NULL THEN shipped_at ELSE released_at END,
         CASE WHEN kind IS NOT NULL THEN used_by WHEN status = 'recalled' THEN recalled_by WHEN shipment_id IS NOT NULL THEN shipped_by ELSE released_by END,
         CASE WHEN kind IS NOT NULL THEN used_reason WHEN status = 'recalled' THEN recalled_reason END,
         CASE WHEN kind IS NOT NULL THEN ref_id WHEN status = 'recalled' THEN NULL ELSE shipment_id END
  FROM vial_plan ORDER BY lot_id, sequence
--> statement-breakpoint
-- Their custody, in the order it happened (entry ids ascend with it): released, shipped, used, recalled.
INSERT INTO vial_custody (vial_id, at, action, clinic_id, by, procedure_id, shipment_id, discard_id, reason)
  SELECT id, released_at, 'released', NULL, released_by, NULL::uuid, NULL::uuid, NULL::uuid, NULL::text FROM vial_plan WHERE released_at IS NOT NULL
  UNION ALL
  SELECT id, shipped_at, 'shipped', clinic_id, shipped_by, NULL, shipment_id, NULL, NULL FROM vial_plan WHERE shipment_id IS NOT NULL
  UNION ALL
  SELECT id, used_at, kind, clinic_id, used_by, CASE WHEN kind = 'administered' THEN ref_id END, NULL, CASE WHEN kind = 'discarded' THEN ref_id END, used_reason
  FROM vial_plan WHERE kind IS NOT NULL
  UNION ALL
  SELECT id, recalled_at, 'recalled', clinic_id, recalled_by, NULL, NULL, NULL, recalled_reason FROM vial_plan WHERE status = 'recalled'
--> statement-breakpoint
UPDATE recall_notices n SET barcodes = a.barcodes
  FROM (SELECT lot_id, clinic_id, array_agg(barcode ORDER BY sequence) AS barcodes FROM vial_plan WHERE status = 'recalled' AND clinic_id IS NOT NULL GROUP BY 1, 2) a
  WHERE a.lot_id = n.lot_id AND a.clinic_id = n.clinic_id
--> statement-breakpoint
ALTER TABLE shipments DISABLE TRIGGER shipments_append_only
--> statement-breakpoint
UPDATE shipments s SET vial_ids = a.ids
  FROM (SELECT shipment_id, array_agg(id ORDER BY sequence) AS ids FROM vial_plan WHERE shipment_id IS NOT NULL GROUP BY 1) a
  WHERE a.shipment_id = s.id
--> statement-breakpoint
ALTER TABLE shipments ENABLE TRIGGER shipments_append_only
--> statement-breakpoint
ALTER TABLE discards DISABLE TRIGGER discards_append_only
--> statement-breakpoint
UPDATE discards d SET vial_ids = a.ids
  FROM (SELECT ref_id, array_agg(id ORDER BY sequence) AS ids FROM vial_plan WHERE kind = 'discarded' GROUP BY 1) a
  WHERE a.ref_id = d.id
--> statement-breakpoint
ALTER TABLE discards ENABLE TRIGGER discards_append_only
--> statement-breakpoint
DROP TABLE vial_plan
--> statement-breakpoint
ALTER TABLE shipments ALTER COLUMN vial_ids SET NOT NULL
--> statement-breakpoint
ALTER TABLE discards ALTER COLUMN vial_ids SET NOT NULL
--> statement-breakpoint
ALTER TABLE "vial_custody" ADD CONSTRAINT "vial_custody_vial_id_vials_id_fk" FOREIGN KEY ("vial_id") REFERENCES "public"."vials"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
ALTER TABLE "vial_returns" ADD CONSTRAINT "vial_returns_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
ALTER TABLE "vials" ADD CONSTRAINT "vials_lot_id_lots_id_fk" FOREIGN KEY ("lot_id") REFERENCES "public"."lots"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
-- Declared here only (not in vials.table.ts), so the vials module does not import the procedures module.
ALTER TABLE "vials" ADD CONSTRAINT "vials_procedure_id_procedures_id_fk" FOREIGN KEY ("procedure_id") REFERENCES "public"."procedures"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
CREATE INDEX "vial_custody_vial_idx" ON "vial_custody" USING btree ("vial_id","id");
--> statement-breakpoint
CREATE INDEX "vial_returns_lot_idx" ON "vial_returns" USING btree ("lot_id","id");
--> statement-breakpoint
CREATE UNIQUE INDEX "vials_lot_sequence_uq" ON "vials" USING btree ("lot_id","sequence");
--> statement-breakpoint
CREATE UNIQUE INDEX "vials_barcode_uq" ON "vials" USING btree ("barcode","manufacturer");
--> statement-breakpoint
CREATE INDEX "vials_on_hand_idx" ON "vials" USING btree ("lot_id","clinic_id","sequence") WHERE "vials"."status" in ('at-clinic', 'recalled');
--> statement-breakpoint
CREATE INDEX "vials_in_stock_idx" ON "vials" USING btree ("lot_id","sequence") WHERE "vials"."status" = 'in-stock';
--> statement-breakpoint
CREATE INDEX "vials_procedure_idx" ON "vials" USING btree ("procedure_id") WHERE "vials"."procedure_id" is not null;
--> statement-breakpoint
CREATE INDEX "vials_clinic_idx" ON "vials" USING btree ("lot_id","clinic_id","status");
--> statement-breakpoint
-- Every UPDATE of a vial is a movement: one custody row per changed vial, from its moved_* columns, written in
-- the same statement. movement_id names the record the movement belongs to, by action; a vial that stops being
-- used (a procedure entered in error) keeps that procedure on its custody row.
CREATE FUNCTION vials_custody() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO vial_custody (vial_id, at, action, clinic_id, by, procedure_id, shipment_id, discard_id, return_id, reason)
  SELECT n.id, n.moved_at, n.moved_action, n.clinic_id, n.moved_by,
         CASE WHEN n.moved_action = 'administered' THEN n.procedure_id WHEN n.procedure_id IS NULL THEN o.procedure_id END,
         CASE WHEN n.moved_action IN ('shipped', 'received') THEN n.movement_id END,
         CASE WHEN n.moved_action = 'discarded' THEN n.movement_id END,
         CASE WHEN n.moved_action = 'returned' THEN n.movement_id END,
         n.moved_reason
  FROM moved_new n JOIN moved_old o ON o.id = n.id
  ORDER BY n.lot_id, n.sequence;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER vials_custody AFTER UPDATE ON vials REFERENCING OLD TABLE AS moved_old NEW TABLE AS moved_new
  FOR EACH STATEMENT EXECUTE FUNCTION vials_custody();
--> statement-breakpoint
CREATE TRIGGER vials_no_delete BEFORE DELETE ON vials FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER vial_custody_append_only BEFORE UPDATE OR DELETE ON vial_custody FOR EACH ROW EXECUTE FUNCTION refuse_change();
--> statement-breakpoint
CREATE TRIGGER vial_returns_append_only BEFORE UPDATE OR DELETE ON vial_returns FOR EACH ROW EXECUTE FUNCTION refuse_change();--> statement-breakpoint
-- Plans for the new tables from the start, not after autovacuum gets to them.
ANALYZE vials;--> statement-breakpoint
ANALYZE vial_custody;
