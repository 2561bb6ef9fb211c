-- Natural keys are unique after Unicode normalization: the service writes NFC only (src/http/input.ts), and the
-- database holds to it for every new or changed row. NOT VALID: rows written before are not rechecked here.
ALTER TABLE "patients" ADD CONSTRAINT "patients_mrn_nfc_ck" CHECK ("patients"."mrn" is nfc normalized) NOT VALID;--> statement-breakpoint
ALTER TABLE "patients" ADD CONSTRAINT "patients_identifiers_nfc_ck" CHECK ("patients"."identifiers"::text is nfc normalized) NOT VALID;--> statement-breakpoint
ALTER TABLE "lots" ADD CONSTRAINT "lots_number_nfc_ck" CHECK ("lots"."lot_number" is nfc normalized and "lots"."manufacturer" is nfc normalized) NOT VALID;