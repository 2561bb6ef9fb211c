import { sql } from 'drizzle-orm';
import { boolean, check, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';
import { patients } from '../patients/patients.table.js';
import { procedures } from '../procedures/procedures.table.js';
import { lots } from '../lots/lots.table.js';

export const adverseEvents = pgTable(
  'adverse_events',
  {
    id: uuid('id').primaryKey(),
    clinicId: text('clinic_id').notNull(),
    procedureId: uuid('procedure_id')
      .notNull()
      .references(() => procedures.id),
    patientId: uuid('patient_id')
      .notNull()
      .references(() => patients.id),
    lotId: uuid('lot_id')
      .notNull()
      .references(() => lots.id),
    onsetAt: instant('onset_at').notNull(),
    description: text('description').notNull(),
    severityGrade: integer('severity_grade').notNull(),
    serious: boolean('serious').notNull(),
    seriousnessCriteria: jsonb('seriousness_criteria').$type<string[]>().notNull(),
    relatedness: text('relatedness').notNull(),
    outcome: text('outcome').notNull(),
    /** CTCAE v5 term (domain.md), null when the reporter gave none (v1 clients). */
    term: text('term'),
    /** Judged against the lot's product's expected-reaction list in force when the event (or its term) was recorded. */
    expectedness: text('expectedness').notNull(),
    /** When the sponsor became aware: the 21 CFR 312.32 clock starts here. */
    awareAt: instant('aware_at').notNull(),
    /** The IND safety report's due time, null when no clock applies (rules.ts reportDueAt). */
    reportDueAt: instant('report_due_at'),
    reportedAt: instant('reported_at'),
    reportReference: text('report_reference'),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull().default(sql`now()`),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull().default(sql`now()`),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    index('adverse_events_clinic_idx').on(t.clinicId, t.id),
    index('adverse_events_procedure_idx').on(t.procedureId),
    index('adverse_events_lot_idx').on(t.lotId, t.id),
    index('adverse_events_patient_idx').on(t.clinicId, t.patientId),
    check('adverse_events_grade_ck', sql`${t.severityGrade} between 1 and 5`),
    check('adverse_events_fatal_ck', sql`${t.severityGrade} < 5 or ${t.outcome} = 'fatal'`),
    check('adverse_events_expectedness_ck', sql`${t.expectedness} in ('expected','unexpected')`),
    check('adverse_events_reported_ck', sql`(${t.reportedAt} is null) = (${t.reportReference} is null)`),
    // What is due and not yet reported, per clinic, by due time (GET /adverse-events?reportDueBefore=).
    index('adverse_events_report_due_idx').on(t.clinicId, t.reportDueAt, t.id).where(sql`${t.reportDueAt} is not null and ${t.reportedAt} is null`),
  ],
);
