import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../src/db/migrate.js';
import { reportDueAt } from '../../src/modules/adverse-events/rules.js';
import { createEmptyDatabase, dropDatabase, migrateThrough, withClient } from '../support/migrations.js';

/**
 * Migration 0021 gives adverse events expectedness and the IND safety report clock. Events recorded before it are
 * backfilled: no term, so `unexpected`; aware when recorded (or at the onset, if a follow-up moved it later); the
 * due time by the same rule as src/modules/adverse-events/rules.ts reportDueAt.
 */

const LAST_BEFORE_SAFETY = 20;

let name: string;
let url: string;

beforeAll(async () => {
  ({ name, url } = await createEmptyDatabase('safety'));
  // Migrations 0000..0020 only, into the same migrations table, so migrateDatabase then applies 0021 onwards.
  await migrateThrough(url, LAST_BEFORE_SAFETY, ['0021_safety']);
});

afterAll(() => dropDatabase(name));

describe('migration 0021 (safety)', () => {
  it('backfills expectedness, awareness and the due time of events recorded before it', async () => {
    type Old = { serious: boolean; criteria: string[]; relatedness: string; grade: number; outcome: string; onsetAt: string; createdAt: string };
    const olds: Old[] = [
      { serious: true, criteria: ['hospitalization'], relatedness: 'possible', grade: 3, outcome: 'recovering', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      { serious: true, criteria: ['death'], relatedness: 'probable', grade: 5, outcome: 'fatal', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      { serious: true, criteria: ['life-threatening'], relatedness: 'certain', grade: 3, outcome: 'ongoing', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      { serious: true, criteria: ['hospitalization'], relatedness: 'possible', grade: 4, outcome: 'recovering', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      { serious: true, criteria: ['hospitalization'], relatedness: 'unlikely', grade: 3, outcome: 'recovering', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      { serious: false, criteria: [], relatedness: 'probable', grade: 2, outcome: 'resolved', onsetAt: '2026-03-11T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
      // A follow-up moved the onset after the recording: awareness is taken at the onset.
      { serious: true, criteria: ['disability'], relatedness: 'conditional', grade: 3, outcome: 'ongoing', onsetAt: '2026-03-14T08:00:00Z', createdAt: '2026-03-12T09:00:00Z' },
    ];
    const ids = olds.map(() => randomUUID());
    await withClient(url, async (c) => {
      // The rows alone: foreign keys and triggers are beside the point here (replica mode skips them).
      await c.query('SET session_replication_role = replica');
      for (const [i, o] of olds.entries()) {
        await c.query(
          `insert into adverse_events (id, clinic_id, procedure_id, patient_id, lot_id, onset_at, description, severity_grade, serious, seriousness_criteria,
             relatedness, outcome, version, created_at, created_by, updated_at, updated_by)
           values ($1, 'clinic-a', $2, $3, $4, $5, 'd', $6, $7, $8, $9, $10, 1, $11, 'dr', $11, 'dr')`,
          [ids[i], randomUUID(), randomUUID(), randomUUID(), o.onsetAt, o.grade, o.serious, JSON.stringify(o.criteria), o.relatedness, o.outcome, o.createdAt],
        );
      }
    });
    await migrateDatabase(url);
    const rows = await withClient(url, async (c) => (await c.query('select id, term, expectedness, aware_at, report_due_at, reported_at, report_reference from adverse_events')).rows);
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    for (const [i, o] of olds.entries()) {
      const r = byId.get(ids[i]!)!;
      const awareAt = new Date(Math.max(Date.parse(o.createdAt), Date.parse(o.onsetAt)));
      const due = reportDueAt({ serious: o.serious, expectedness: 'unexpected', relatedness: o.relatedness, severityGrade: o.grade, outcome: o.outcome, seriousnessCriteria: o.criteria, awareAt });
      expect({ term: r.term, expectedness: r.expectedness, awareAt: (r.aware_at as Date).toISOString(), due: (r.report_due_at as Date | null)?.toISOString() ?? null, reported: r.reported_at, ref: r.report_reference }, `row ${i}`).toEqual({
        term: null,
        expectedness: 'unexpected',
        awareAt: awareAt.toISOString(),
        due: due?.toISOString() ?? null,
        reported: null,
        ref: null,
      });
    }
    // The cases the rule distinguishes, spelled out: 15 days, 7 (fatal, criterion, grade 4), none, none, 15 from the onset.
    expect(olds.map((_, i) => (byId.get(ids[i]!)!.report_due_at as Date | null)?.toISOString() ?? null)).toEqual([
      '2026-03-27T09:00:00.000Z',
      '2026-03-19T09:00:00.000Z',
      '2026-03-19T09:00:00.000Z',
      '2026-03-19T09:00:00.000Z',
      null,
      null,
      '2026-03-29T08:00:00.000Z',
    ]);
  });
});
