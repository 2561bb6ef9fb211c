-- FHIR string search (R4 §3.1.1.4.3): case-, accent- and Unicode-form-insensitive. search_fold() is the one
-- definition of "the same letters": NFC, accents and ligatures removed by unaccent (ß→ss, Ø→O, ﬁ→fi, combining
-- marks), lower case by the database's collation. Both sides of a comparison are folded in SQL (db/search.ts), so
-- the folding is defined here only. unaccent and pg_trgm are trusted extensions (PostgreSQL 13+): a database
-- owner may create them. The function names the schema unaccent lives in, so it is immutable and indexable
-- whatever the search_path.
CREATE EXTENSION IF NOT EXISTS unaccent;--> statement-breakpoint
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
DO $$
DECLARE
  s text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent');
BEGIN
  EXECUTE format(
    'CREATE FUNCTION search_fold(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN lower(%I.unaccent(%L::regdictionary, normalize($1, NFC)))',
    s, format('%I.unaccent', s));
END $$;--> statement-breakpoint
CREATE INDEX "patients_clinic_family_fold_idx" ON "patients" USING btree ("clinic_id",search_fold("family_name") text_pattern_ops);--> statement-breakpoint
CREATE INDEX "patients_clinic_given_fold_idx" ON "patients" USING btree ("clinic_id",search_fold("given_name") text_pattern_ops);--> statement-breakpoint
CREATE INDEX "patients_name_fold_trgm" ON "patients" USING gin (search_fold("family_name") gin_trgm_ops,search_fold("given_name") gin_trgm_ops);