import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/client.js';
import { streamRows } from '../../src/modules/traceability/traceability.queries.js';
import { ServiceUnavailable } from '../../src/shared/errors.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { checkedOutAfter } from '../support/downloads.js';

let t: TestApp;
let pool: Pool;
beforeAll(async () => {
  t = await createTestApp();
  // Queries time out after 1.2 s (statement timeout 200 ms + 1 s), as the service's do after 16 s.
  pool = createPool(t.databaseUrl, { max: 2, connectTimeoutMs: 3000, statementTimeoutMs: 200 });
});
afterAll(async () => {
  await pool?.end();
  await t?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const series = (n: number) => ({ text: 'select g from generate_series(1, $1::int) g', values: [n] });

describe('a report stream (reports in CSV and JSON, the dossier\'s recipients)', () => {
  it('reads to its last row for a slow client: the pool\'s per-query timeout does not cut the download', async () => {
    const { rows } = await streamRows(pool, series(3000), { limits: { totalMs: 60_000, idleMs: 5_000 } });
    const started = Date.now();
    let n = 0;
    for await (const row of rows) {
      expect((row as { g: number }).g).toBe(++n);
      if (n % 500 === 0) await sleep(500); // the client's link takes a while for each batch's text
    }
    expect(Date.now() - started).toBeGreaterThan(2500);
    expect(n).toBe(3000);
    expect(await checkedOutAfter(pool)).toBe(0);
  });

  it('ends, and gives its connection back, when the client stops reading', async () => {
    const { rows } = await streamRows(pool, series(100000), { limits: { totalMs: 60_000, idleMs: 300 } });
    const failed = new Promise<Error>((resolve) => rows.once('error', resolve));
    const first = await rows[Symbol.asyncIterator]().next();
    expect(first.value).toEqual({ g: 1 });
    // Nothing more is read: the stream's buffer fills and no more rows are asked for.
    expect((await failed).message).toMatch(/waited 300 ms for the reader/);
    expect(await checkedOutAfter(pool)).toBe(0);
  });

  it('gives its connection back out of its transaction when the reader leaves early', async () => {
    // Left with an error (for await ... break destroys with AbortError, as a response cut off does): discarded.
    const { rows } = await streamRows(pool, series(100000));
    let n = 0;
    for await (const _ of rows) if (++n === 10) break;
    expect(await checkedOutAfter(pool)).toBe(0);
    // Left without one (destroy()): rolled back, and back in the pool.
    const { rows: other } = await streamRows(pool, series(100000));
    await new Promise<void>((resolve) => {
      other.once('data', () => other.destroy());
      other.once('close', () => resolve());
    });
    expect(await checkedOutAfter(pool)).toBe(0);
    expect(pool.idleCount).toBeGreaterThan(0);
    const states = await t.pool.query<{ state: string }>('select state from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
    expect(states.rows.filter((r) => r.state !== 'idle')).toEqual([]);
    // The connection serves the next query with the pool's own statement timeout again.
    expect((await pool.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]!.statement_timeout).toBe('200ms');
  });

  it('is cut when it runs past its total limit, however fast it is read', async () => {
    const { rows } = await streamRows(pool, { text: 'select g, pg_sleep(0.001) from generate_series(1, 100000) g', values: [] }, { limits: { totalMs: 700, idleMs: 5_000 } });
    let n = 0;
    await expect(
      (async () => {
        for await (const _ of rows) n++;
      })(),
    ).rejects.toThrow(/timeout/i);
    expect(n).toBeLessThan(100000);
    expect(await checkedOutAfter(pool)).toBe(0);
  });

  it('waits for a slow database: only rows left unread count as idle', async () => {
    await t.pool.query('create table if not exists stream_probe (g int)');
    const locker = await t.pool.connect();
    try {
      await locker.query('begin; lock table stream_probe in access exclusive mode');
      const opening = streamRows(pool, { text: 'select * from stream_probe', values: [] }, { limits: { totalMs: 60_000, idleMs: 300 } });
      setTimeout(() => void locker.query('commit'), 1200); // the cursor's first fetch waits 1.2 s on the lock
      const { rows } = await opening;
      const read: unknown[] = [];
      for await (const row of rows) read.push(row);
      expect(read).toEqual([]);
    } finally {
      locker.release();
    }
    expect(await checkedOutAfter(pool)).toBe(0);
  });

  it('counts in the same snapshot as it reads: rows written after it opened are in neither', async () => {
    await t.pool.query('create table if not exists stream_snapshot (g int)');
    await t.pool.query('insert into stream_snapshot select generate_series(1, 2000)');
    const { rows, first } = await streamRows(pool, { text: 'select g from stream_snapshot', values: [] }, { first: { text: 'select count(*)::int as n from stream_snapshot', values: [] } });
    await t.pool.query('insert into stream_snapshot select generate_series(2001, 2500)');
    let n = 0;
    for await (const _ of rows) n++;
    expect(first).toEqual([{ n: 2000 }]);
    expect(n).toBe(2000);
  });

  it('keeps most of the pool for the rest of the API: past its share of streams, one more is a 503 before any row', async () => {
    // Two connections: one stream at a time (a quarter of the pool, at least one).
    const { rows } = await streamRows(pool, series(100000));
    const refused = await streamRows(pool, series(10)).then(
      () => null,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ServiceUnavailable);
    expect(refused).toMatchObject({ status: 503, code: 'report-downloads-busy' });
    // The rest of the pool still answers.
    expect((await pool.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    rows.destroy();
    expect(await checkedOutAfter(pool)).toBe(0);
    const again = await streamRows(pool, series(3));
    let n = 0;
    for await (const _ of again.rows) n++;
    expect(n).toBe(3);
  });
});
