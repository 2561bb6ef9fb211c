import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrateDatabase, migrationsFolder } from '../../src/db/migrate.js';
import { reportDueAt } from '../../src/modules/adverse-events/rules.js';
import { databaseUrl } from '../support/database.js';

/**
 * Migration 0021 gives adverse events expectedness and the IND safety report clock. Events recorded before it are
 * backfilled: no term, so `unexpected`; aware when recorded (or at the onset, if a follow-up moved it later); the
 * due time by the same rule as src/modules/adverse-events/rules.ts reportDueAt.
 */

const LAST_BEFORE_SAFETY = 20;

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

let name: string;
let url: string;

beforeAll(async () => {
  name = `${inject('templateDatabase')}_safety_${randomBytes(4).toString('hex')}`;
  await withClient(inject('adminDatabaseUrl'), async (admin) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name}`);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  });
  url = databaseUrl(name);
  // Migrations 0000..0020 only, into the same migrations table, so migrateDatabase then applies 0021 onwards.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'safety-migration-'));
  try {
    await fs.cp(migrationsFolder, dir, { recursive: true });
    const journalPath = path.join(dir, 'meta', '_journal.json');
    const journal = JSON.parse(await fs.readFile(journalPath, 'utf8')) as { entries: { idx: number; tag: string }[] };
    const later = journal.entries.filter((e) => e.idx > LAST_BEFORE_SAFETY);
    expect(later.map((e) => e.tag)).toContain('0021_safety');
    for (const e of later) await fs.rm(path.join(dir, `${e.tag}.sql`));
    journal.entries = journal.entries.filter((e) => e.idx <= LAST_BEFORE_SAFETY);
    await fs.writeFile(journalPath, JSON.stringify(journal, null, 2));
    await withClient(url, async (client) => {
      await client.query('SET client_min_messages = warning');
      await migrate(drizzle({ client }), { migrationsFolder: dir });
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

afterAll(async () => {
  await withClient(inject('adminDatabaseUrl'), (admin) => admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`));
});

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
