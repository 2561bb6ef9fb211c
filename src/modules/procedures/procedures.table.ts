import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, numeric, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { patients } from '../patients/patients.table.js';
import { lots } from '../lots/lots.table.js';

export interface Coding {
  system: string;
  code: string;
  display?: string;
}

export const procedures = pgTable(
  'procedures',
  {
    id: uuid('id').primaryKey(),
    clinicId: text('clinic_id').notNull(),
    patientId: uuid('patient_id')
      .notNull()
      .references(() => patients.id),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    performedAt: instant('performed_at').notNull(),
    performer: text('performer').notNull(),
    indication: jsonb('indication').$type<Coding>().notNull(),
    route: text('route').notNull(),
    bodySite: text('body_site'),
    laterality: text('laterality'),
    imagingGuidance: text('imaging_guidance').notNull(),
    // Particle counts exceed 2^31; they stay below 2^53, so JSON numbers carry them exactly.
    doseParticles: bigint('dose_particles', { mode: 'number' }).notNull(),
    doseVolumeMl: numeric('dose_volume_ml', { mode: 'number' }).notNull(),
    vialsUsed: integer('vials_used').notNull(),
    doseDeviationReason: text('dose_deviation_reason'),
    notes: text('notes'),
    status: text('status').notNull().default('completed'),
    enteredInErrorReason: text('entered_in_error_reason'),
    enteredInErrorAt: instant('entered_in_error_at'),
    enteredInErrorBy: text('entered_in_error_by'),
    vialsReturned: integer('vials_returned').notNull().default(0),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
  },
  (t) => [
    index('procedures_clinic_patient_idx').on(t.clinicId, t.patientId, t.id),
    index('procedures_lot_idx').on(t.lotId, t.id),
    index('procedures_clinic_idx').on(t.clinicId, t.id),
    index('procedures_clinic_performed_idx').on(t.clinicId, t.performedAt),
    check('procedures_status_ck', sql`${t.status} in ('completed','entered-in-error')`),
    check('procedures_dose_ck', sql`${t.doseParticles} between 1 and 9007199254740991 and ${t.doseVolumeMl} > 0`),
    check('procedures_vials_ck', sql`${t.vialsUsed} >= 1 and ${t.vialsReturned} between 0 and ${t.vialsUsed}`),
  ],
);
