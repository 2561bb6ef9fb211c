import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import { createDb, createPool } from '../../src/db/client.js';
import { cloneTemplateDatabase } from '../support/database.js';

describe('database client', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    const { url } = await cloneTemplateDatabase();
    pool = createPool(url, { max: 1, connectTimeoutMs: 5000, statementTimeoutMs: 5000 });
  });
  afterAll(() => pool.end());

  it('runs parameterized drizzle queries as prepared statements, planned once per connection', async () => {
    const db = createDb(pool);
    const probe = (n: number) => db.execute(sql`select count(*)::int as n from patients where clinic_id = ${`clinic-${n}`}`);
    for (let i = 0; i < 3; i++) await probe(i);
    // One connection: the statement prepared for the first call is the one the next two reused.
    const { rows } = await pool.query<{ name: string; calls: number }>(
      "select name, generic_plans + custom_plans as calls from pg_prepared_statements where statement like '%from patients where clinic_id%'",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.name).toMatch(/^s_/);
    expect(rows[0]!.calls).toBe(3);
  });
});
