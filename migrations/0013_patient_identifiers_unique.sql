CREATE TABLE "patient_identifiers" (
	"clinic_id" text NOT NULL,
	"system" text NOT NULL,
	"value" text NOT NULL,
	"patient_id" uuid NOT NULL,
	CONSTRAINT "patient_identifiers_pk" PRIMARY KEY("clinic_id","system","value")
);
--> statement-breakpoint
ALTER TABLE "patient_identifiers" ADD CONSTRAINT "patient_identifiers_patient_id_patients_id_fk" FOREIGN KEY ("patient_id") REFERENCES "public"."patients"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "patient_identifiers_patient_idx" ON "patient_identifiers" USING btree ("patient_id");--> statement-breakpoint
-- Keeps patient_identifiers equal to each patient's current identifiers list, in the same statement: a
-- second patient of the clinic with the same system|value, or a list naming one twice, fails with 23505 on
-- patient_identifiers_pk (answered 409 duplicate-identifier).
CREATE FUNCTION patient_identifiers_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.identifiers IS NOT DISTINCT FROM OLD.identifiers THEN RETURN NULL; END IF;
    DELETE FROM patient_identifiers WHERE patient_id = NEW.id;
  END IF;
  INSERT INTO patient_identifiers (clinic_id, system, value, patient_id)
    SELECT NEW.clinic_id, e->>'system', e->>'value', NEW.id FROM jsonb_array_elements(NEW.identifiers) e;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER patient_identifiers_sync AFTER INSERT OR UPDATE OF identifiers ON patients
  FOR EACH ROW EXECUTE FUNCTION patient_identifiers_sync();
--> statement-breakpoint
-- Patients recorded before: the first patient to hold an identifier keeps it; later duplicates stay as they were written.
INSERT INTO patient_identifiers (clinic_id, system, value, patient_id)
  SELECT p.clinic_id, e->>'system', e->>'value', p.id
  FROM patients p, jsonb_array_elements(p.identifiers) e
  ORDER BY p.id
  ON CONFLICT DO NOTHING;
