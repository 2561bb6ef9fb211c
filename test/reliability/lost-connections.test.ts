import http from 'node:http';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../src/db/client.js';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { cloneTemplateDatabase } from '../support/database.js';
import type { ServiceProcess } from '../support/process.js';
import { createCluster, type Cluster } from './harness.js';
import { brokenPromises, CRASH_SIGNS, prepareWorkload, startLoad, summarize, type Outcome, type Workload } from './load.js';

let cluster: Cluster | undefined;
let killer: pg.Client | undefined;
afterAll(async () => {
  await killer?.end().catch(() => undefined);
  await cluster?.stopAll();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a failover or an operator does to every session of the service: pooled, checked out, streaming. */
const TERMINATE_SERVICE_BACKENDS = `
  select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity
  where datname = current_database() and application_name = 'exosome-records' and pid <> pg_backend_pid()`;

/**
 * A CSV download whose client reads the first chunk and stops reading: the server's cursor waits, suspended,
 * on a checked-out connection. Its backend is terminated there; then the client reads on.
 */
async function pausedDownload(svc: ServiceProcess, w: Workload, terminate: () => Promise<number>) {
  return new Promise<{ status: number; complete: boolean; terminated: number; msAfterTerminate: number }>((resolve, reject) => {
    const limit = setTimeout(() => reject(new Error('the cut download never ended: the response hangs')), 10_000);
    const req = http.get(
      { host: '127.0.0.1', port: svc.port, path: `/v1/reports/lot-traceability/${w.lotId}`, headers: { authorization: `Bearer ${w.tokens.inspector}`, accept: 'text/csv' } },
      (res) => {
        res.once('data', () => {
          res.pause();
          void (async () => {
            await sleep(300); // the socket buffers fill, the cursor stops fetching
            const terminated = await terminate();
            const t0 = Date.now();
            res.on('data', () => undefined);
            res.on('error', () => undefined); // "aborted": the expected end of a cut transfer
            res.once('close', () => {
              clearTimeout(limit);
              resolve({ status: res.statusCode ?? 0, complete: res.complete, terminated, msAfterTerminate: Date.now() - t0 });
            });
            res.resume();
          })().catch(reject);
        });
      },
    );
    req.on('error', () => undefined);
  });
}

describe('connections to PostgreSQL terminated under load (pg_terminate_backend), two service processes', () => {
  it('keeps both processes up: each request on a lost connection answers 503 or, mid-stream, cuts its CSV; no 500, no leak', async () => {
    cluster = await createCluster();
    // A small pool: a connection leaked by a cut stream would soon leave nothing to serve with.
    const env = { DB_POOL_SIZE: '4', DB_CONNECT_TIMEOUT_MS: '3000' };
    const [a, b] = await Promise.all([cluster.start(env), cluster.start(env)]);
    const w = await prepareWorkload(cluster, a, 20_000);
    killer = new pg.Client({ connectionString: cluster.databaseUrl });
    killer.on('error', () => undefined);
    await killer.connect();
    const terminate = async () => (await killer!.query<{ n: number }>(TERMINATE_SERVICE_BACKENDS)).rows[0]!.n;

    // A download already under way cannot become a 503: its transfer ends incomplete, at once.
    const cut = await pausedDownload(a, w, terminate);
    expect(cut).toMatchObject({ status: 200, complete: false });
    expect(cut.terminated).toBeGreaterThan(0);
    expect(cut.msAfterTerminate).toBeLessThan(3000);
    await sleep(200);
    expect(a.child.exitCode, a.output()).toBeNull(); // cut by the service, not by its death

    // Reads, writes, verifies (which seal), full CSV downloads and each process's sealer, while every backend
    // of the service is terminated again and again.
    const load = startLoad([a, b], w);
    let rounds = 0;
    let terminated = 0;
    for (const until = Date.now() + 3000; Date.now() < until; rounds++) {
      await sleep(80 + Math.random() * 120);
      terminated += await terminate();
    }
    const outcomes = await load.stop();
    const summary = summarize(outcomes);
    expect(brokenPromises(outcomes).slice(0, 5), summary).toEqual([]);
    expect(outcomes.filter((o) => o.status === 503).length, summary).toBeGreaterThan(0);
    expect(a.child.exitCode, a.output()).toBeNull();
    expect(b.child.exitCode, b.output()).toBeNull();

    // Afterwards both serve fully: every pool slot and report stream slot came back. Four loops per process on
    // pools of 4: a download beyond the process's one report stream is told to come back (503
    // report-downloads-busy); everything else answers, and each process completes downloads.
    const after = startLoad([a, b], w, 4);
    await sleep(1000);
    const recovered = await after.stop();
    const recoveredSummary = summarize(recovered);
    const busy = (o: Outcome) => o.kind === 'csv' && o.status === 503 && o.code === 'report-downloads-busy';
    expect(recovered.filter((o) => o.status !== 200 && o.status !== 201 && !busy(o)).slice(0, 5), recoveredSummary).toEqual([]);
    expect(recovered.filter((o) => o.kind === 'csv' && o.status === 200 && o.body !== 'complete').slice(0, 5), recoveredSummary).toEqual([]);
    for (const svc of [a, b]) expect(recovered.filter((o) => o.origin === svc.url && o.kind === 'csv' && o.body === 'complete').length, recoveredSummary).toBeGreaterThan(0);
    const verify = await cluster.client(b).http.get('/v1/audit-events/verify').set('authorization', `Bearer ${w.tokens.auditor}`);
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null, notInChain: 0 });
    for (const svc of [a, b]) {
      expect(svc.child.exitCode, svc.output()).toBeNull();
      expect(svc.output()).not.toMatch(CRASH_SIGNS);
    }
    process.stdout.write(
      `lost connections: a paused CSV download cut ${cut.msAfterTerminate} ms after its backend was terminated; ` +
        `${rounds} rounds terminated ${terminated} backends under load (${summary}); afterwards ${recoveredSummary}\n`,
    );
  });
});

describe('a pooled transaction whose BEGIN meets a terminated connection', () => {
  it('fails as unavailable and gives its pool slot back (drizzle would keep it checked out for good)', async () => {
    const { url } = await cloneTemplateDatabase();
    const pool = createPool(url, { max: 1, connectTimeoutMs: 1000, statementTimeoutMs: 5000 });
    const db = createDb(pool);
    const admin = new pg.Client({ connectionString: url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      let failed = 0;
      for (let i = 0; i < 10; i++) {
        await pool.query('select 1'); // a connection, idle in the pool
        await admin.query(TERMINATE_SERVICE_BACKENDS);
        // The pool has not read the termination yet: it hands the dead connection out, and BEGIN fails on it.
        await db.transaction((tx) => tx.execute(sql`select 1`)).catch((err: unknown) => {
          expect(isDatabaseUnavailable(err)).toBe(true);
          failed++;
        });
      }
      expect(failed).toBeGreaterThan(0);
      // With one slot leaked, this would wait for a connection and time out.
      await db.transaction((tx) => tx.execute(sql`select 1`));
      expect(pool.totalCount - pool.idleCount).toBe(0);
    } finally {
      await admin.end();
      await pool.end();
    }
  }, 10_000);
});
