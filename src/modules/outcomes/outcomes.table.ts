import { sql } from 'drizzle-orm';
import { index, numeric, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { patients } from '../patients/patients.table.js';
import { procedures } from '../procedures/procedures.table.js';

/** Follow-up scores; append-only. Derived fields (change from baseline, window, responder) are computed on read. */
export const outcomes = pgTable(
  'outcomes',
  {
    id: uuid('id').primaryKey(),
    clinicId: text('clinic_id').notNull(),
    procedureId: uuid('procedure_id')
      .notNull()
      .references(() => procedures.id),
    patientId: uuid('patient_id')
      .notNull()
      .references(() => patients.id),
    instrument: text('instrument').notNull(),
    score: numeric('score', { mode: 'number' }).notNull(),
    assessedAt: instant('assessed_at').notNull(),
    timepoint: text('timepoint').notNull(),
    recordedAt: instant('recorded_at').notNull().default(sql`now()`),
    recordedBy: text('recorded_by').notNull(),
  },
  (t) => [
    index('outcomes_procedure_idx').on(t.procedureId, t.instrument, t.timepoint),
    index('outcomes_patient_idx').on(t.clinicId, t.patientId, t.id),
  ],
);
