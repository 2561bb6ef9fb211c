import { and, asc, eq, gt, inArray, sql } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { pgCode, pgConstraint } from '../../db/errors.js';
import type { PageRequest } from '../../shared/paging.js';
import { Conflict } from '../../shared/errors.js';
import { donorEligibility, donorTests, donors } from './donors.table.js';

export type DonorRow = typeof donors.$inferSelect;
export type TestRow = typeof donorTests.$inferSelect;
export type DeterminationRow = typeof donorEligibility.$inferSelect;

export async function insertDonor(tx: Tx, row: typeof donors.$inferInsert): Promise<DonorRow> {
  try {
    const [created] = await tx.insert(donors).values(row).returning();
    return created!;
  } catch (err) {
    if (pgCode(err) === '23505' && pgConstraint(err) === 'donors_din_uq') {
      throw new Conflict('A donor with this DIN is already recorded.', 'duplicate-din');
    }
    throw err;
  }
}

export async function findDonor(exec: Executor, id: string): Promise<DonorRow | undefined> {
  const [row] = await exec.select().from(donors).where(eq(donors.id, id)).limit(1);
  return row;
}

export async function findDonors(exec: Executor, ids: string[]): Promise<DonorRow[]> {
  return exec.select().from(donors).where(inArray(donors.id, ids)).orderBy(asc(donors.id));
}

export async function lockDonor(tx: Tx, id: string): Promise<DonorRow | undefined> {
  const [row] = await tx.select().from(donors).where(eq(donors.id, id)).for('update').limit(1);
  return row;
}

export async function listDonors(exec: Executor, din: string | undefined, page: PageRequest): Promise<DonorRow[]> {
  return exec
    .select()
    .from(donors)
    .where(and(din ? eq(donors.din, din) : undefined, page.after ? gt(donors.id, page.after) : undefined))
    .orderBy(asc(donors.id))
    .limit(page.limit + 1);
}

export async function existingDonorIds(exec: Executor, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await exec.select({ id: donors.id }).from(donors).where(inArray(donors.id, ids));
  return new Set(rows.map((r) => r.id));
}

export async function testsOf(exec: Executor, donorIds: string[]): Promise<TestRow[]> {
  if (donorIds.length === 0) return [];
  return exec.select().from(donorTests).where(inArray(donorTests.donorId, donorIds)).orderBy(asc(donorTests.id));
}

export async function determinationsOf(exec: Executor, donorIds: string[]): Promise<DeterminationRow[]> {
  if (donorIds.length === 0) return [];
  return exec
    .select()
    .from(donorEligibility)
    .where(inArray(donorEligibility.donorId, donorIds))
    .orderBy(asc(donorEligibility.determinedAt), asc(donorEligibility.id));
}

export async function insertTest(tx: Tx, row: typeof donorTests.$inferInsert): Promise<TestRow> {
  const [created] = await tx.insert(donorTests).values(row).returning();
  return created!;
}

export async function insertDetermination(tx: Tx, row: typeof donorEligibility.$inferInsert): Promise<DeterminationRow> {
  const [created] = await tx.insert(donorEligibility).values(row).returning();
  return created!;
}

export async function bumpDonorVersion(tx: Tx, id: string, at: Date): Promise<DonorRow> {
  const [row] = await tx
    .update(donors)
    .set({ version: sql`${donors.version} + 1`, updatedAt: at })
    .where(eq(donors.id, id))
    .returning();
  return row!;
}

/** Each donor's status in force at `at`: its latest determination effective by then (absent: none yet). */
export async function statusesAt(exec: Executor, donorIds: string[], at: Date): Promise<Map<string, string>> {
  if (donorIds.length === 0) return new Map();
  const rows = await exec
    .selectDistinctOn([donorEligibility.donorId], { donorId: donorEligibility.donorId, status: donorEligibility.status })
    .from(donorEligibility)
    .where(and(inArray(donorEligibility.donorId, donorIds), sql`${donorEligibility.determinedAt} <= ${at.toISOString()}`))
    .orderBy(donorEligibility.donorId, sql`${donorEligibility.determinedAt} desc`, sql`${donorEligibility.id} desc`);
  return new Map(rows.map((r) => [r.donorId, r.status]));
}
