import { sql } from 'drizzle-orm';
import { check, date, index, integer, jsonb, pgTable, primaryKey, text, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

export interface Identifier {
  system: string;
  value: string;
}

export const patients = pgTable(
  'patients',
  {
    id: uuid('id').primaryKey(),
    clinicId: text('clinic_id').notNull(),
    mrn: text('mrn').notNull(),
    identifiers: jsonb('identifiers').$type<Identifier[]>().notNull().default(sql`'[]'::jsonb`),
    givenName: text('given_name').notNull(),
    familyName: text('family_name').notNull(),
    birthDate: date('birth_date', { mode: 'string' }).notNull(),
    sex: text('sex').notNull(),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    uniqueIndex('patients_clinic_mrn_uq').on(t.clinicId, t.mrn),
    index('patients_clinic_id_idx').on(t.clinicId, t.id),
    index('patients_identifiers_gin').using('gin', sql`${t.identifiers} jsonb_path_ops`),
    index('patients_clinic_family_idx').on(t.clinicId, sql`lower(${t.familyName}) text_pattern_ops`),
    index('patients_clinic_birth_idx').on(t.clinicId, t.birthDate),
    // FHIR string search (db/search.ts): prefix on search_fold() (migration 0014) per clinic, contains by trigram.
    index('patients_clinic_family_fold_idx').on(t.clinicId, sql`search_fold(${t.familyName}) text_pattern_ops`),
    index('patients_clinic_given_fold_idx').on(t.clinicId, sql`search_fold(${t.givenName}) text_pattern_ops`),
    index('patients_name_fold_trgm').using('gin', sql`search_fold(${t.familyName}) gin_trgm_ops`, sql`search_fold(${t.givenName}) gin_trgm_ops`),
    check('patients_sex_ck', sql`${t.sex} in ('female','male','other','unknown')`),
    check('patients_version_ck', sql`${t.version} >= 1`),
    // Natural keys are unique after normalization: every string is NFC on the way in (http/input.ts), and the
    // database holds to it (NOT VALID in the migration: rows from before are left as they were written).
    check('patients_mrn_nfc_ck', sql`${t.mrn} is nfc normalized`),
    check('patients_identifiers_nfc_ck', sql`${t.identifiers}::text is nfc normalized`),
  ],
);

/**
 * Each EHR identifier (system|value) names one patient of a clinic: a key kept by a trigger on patients
 * (migration 0013) from the `identifiers` list, so a second patient with the same identifier, or one list
 * naming it twice, is a unique violation (409 duplicate-identifier). A derived index, not a record: it follows
 * the patient's current version.
 */
export const patientIdentifiers = pgTable(
  'patient_identifiers',
  {
    clinicId: text('clinic_id').notNull(),
    system: text('system').notNull(),
    value: text('value').notNull(),
    patientId: uuid('patient_id')
      .notNull()
      .references(() => patients.id),
  },
  (t) => [primaryKey({ name: 'patient_identifiers_pk', columns: [t.clinicId, t.system, t.value] }), index('patient_identifiers_patient_idx').on(t.patientId)],
);

export const consents = pgTable(
  'consents',
  {
    id: uuid('id').primaryKey(),
    patientId: uuid('patient_id')
      .notNull()
      .references(() => patients.id),
    clinicId: text('clinic_id').notNull(),
    kind: text('kind').notNull(),
    signedAt: instant('signed_at').notNull(),
    documentVersion: text('document_version').notNull(),
    indNumber: text('ind_number'),
    irbProtocol: text('irb_protocol'),
    status: text('status').notNull().default('active'),
    withdrawnAt: instant('withdrawn_at'),
    withdrawnBy: text('withdrawn_by'),
    withdrawalReason: text('withdrawal_reason'),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
  },
  (t) => [
    index('consents_patient_idx').on(t.patientId, t.id),
    check('consents_status_ck', sql`${t.status} in ('active','withdrawn')`),
    check('consents_withdrawn_ck', sql`(${t.status} = 'withdrawn') = (${t.withdrawnAt} is not null)`),
  ],
);
