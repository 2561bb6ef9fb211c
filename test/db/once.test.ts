import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type pg from 'pg';
import { createDb, createPool, type Db } from '../../src/db/client.js';
import { builder, columnKeys, part, shapedPart, statement } from '../../src/db/statement.js';
import { createUnitOfWork, onceStatement } from '../../src/db/unit-of-work.js';
import { recordVersions } from '../../src/modules/history/history.table.js';
import { RuleViolation } from '../../src/shared/errors.js';
import { cloneTemplateDatabase } from '../support/database.js';

describe('statements built once and writes at once', () => {
  let pool: pg.Pool;
  let db: Db;
  beforeAll(async () => {
    const { url } = await cloneTemplateDatabase();
    pool = createPool(url, { max: 2, connectTimeoutMs: 5000, statementTimeoutMs: 5000 });
    db = createDb(pool);
  });
  afterAll(() => pool.end());

  const versionsOf = async (resourceId: string) =>
    (await pool.query<{ version: number; body: unknown }>('select version, body from record_versions where resource_id = $1 order by version', [resourceId])).rows;

  const [r1, r2, r3] = [randomUUID(), randomUUID(), randomUUID()];

  it('builds once and runs with each call\'s values: nested row placeholders, jsonb, and null', async () => {
    const insert = statement(
      part<{ row: typeof recordVersions.$inferSelect }>({ row: columnKeys(recordVersions) }, (p) =>
        builder.insert(recordVersions).values(p.row).returning({ version: recordVersions.version }),
      ),
    );
    const text = insert.text();
    for (const version of [1, 2]) {
      const rows = await insert.run(db, {
        row: { resourceType: 'probe', resourceId: r1, version, clinicId: version === 2 ? null : 'clinic-a', body: { n: version }, recordedBy: 't', recordedAt: new Date() },
      });
      expect(rows).toEqual([{ version }]);
    }
    expect(insert.text()).toBe(text);
    expect(await versionsOf(r1)).toEqual([{ version: 1, body: { n: 1 } }, { version: 2, body: { n: 2 } }]);
  });

  it('a shaped statement is built once per set of present values, and its conditions follow the values given', async () => {
    const byType = statement(
      shapedPart<{ resourceId: string; version?: number }>({ resourceId: true, version: true }, (p, present) =>
        builder
          .select({ version: recordVersions.version })
          .from(recordVersions)
          .where(sql`${recordVersions.resourceId} = ${p.resourceId}${present.has('version') ? sql` and ${recordVersions.version} = ${p.version}` : sql``}`)
          .orderBy(recordVersions.version),
      ),
    );
    expect(await byType.run(db, { resourceId: r1 })).toEqual([{ version: 1 }, { version: 2 }]);
    expect(await byType.run(db, { resourceId: r1, version: 2 })).toEqual([{ version: 2 }]);
    expect(await byType.run(db, { resourceId: r1, version: 1 })).toEqual([{ version: 1 }]);
    expect(byType.text({ resourceId: r1 })).not.toBe(byType.text({ resourceId: r1, version: 1 }));
    expect(byType.text({ resourceId: r1, version: 1 })).toBe(byType.text({ resourceId: r2, version: 7 }));
  });

  it('refuses SQL text with a literal $<digits>, which its parameters could not be told apart from', () => {
    const literal = statement(part<{ id: string }>({ id: true }, (p) => sql`select '$1' as x, ${p.id} as id`));
    expect(() => literal.text({ id: 'a' })).toThrow(/literal/);
  });

  const write = onceStatement(
    {
      version: part<{ id: string; version: number }>({ id: true, version: true }, (p) =>
        builder.insert(recordVersions).values({ resourceType: 'probe', resourceId: p.id, version: p.version, clinicId: null, body: {}, recordedBy: 't' }),
      ),
    },
    { allowed: part<{ allow: boolean }>({ allow: true }, (p) => sql`${p.allow}::boolean`) },
  );
  const probe = (id: string, version: number, allow: boolean) => ({ version: { id, version }, allowed: { allow } });

  it('writes nothing when a guard does not hold: a refused guard answers, another prepares the change again, then 409', async () => {
    const uow = createUnitOfWork(db);
    let prepared = 0;
    await expect(
      uow.once(async () => {
        prepared++;
        return { statement: write, values: probe(r2, 1, false), refused: { allowed: async () => new RuleViolation('not-allowed', 'no') }, result: 1 };
      }),
    ).rejects.toMatchObject({ status: 422, code: 'not-allowed' });
    expect(prepared).toBe(1);

    prepared = 0;
    await expect(
      uow.once(async () => {
        prepared++;
        return { statement: write, values: probe(r2, 1, false), result: 1 };
      }),
    ).rejects.toMatchObject({ status: 409, code: 'concurrent-change' });
    expect(prepared).toBe(3);
    expect(await versionsOf(r2)).toEqual([]);

    await expect(uow.once(async () => ({ statement: write, values: probe(r2, 1, true), result: 'ok' }))).resolves.toBe('ok');
    expect(await versionsOf(r2)).toHaveLength(1);
  });

  it('with an idempotency key, twenty parallel twins write once and all answer the first result', async () => {
    const uow = createUnitOfWork(db);
    const idem = { owner: 'tester', key: 'k-1', fingerprint: 'f' };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => uow.once(async () => ({ statement: write, values: probe(r3, i + 1, true), result: { attempt: i } }), idem)),
    );
    expect(await versionsOf(r3)).toHaveLength(1);
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    await expect(uow.once(async () => ({ statement: write, values: probe(r3, 99, true), result: {} }), { ...idem, fingerprint: 'other' })).rejects.toMatchObject({
      code: 'idempotency-key-reused',
    });
  });
});
