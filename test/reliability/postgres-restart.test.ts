import fs from 'node:fs/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';
import { freePort, tempDataDir, type ServiceProcess } from '../support/process.js';
import { createCluster, type Cluster } from './harness.js';
import { brokenPromises, CRASH_SIGNS, prepareWorkload, startLoad, summarize, type Workload } from './load.js';

let dir: string | undefined;
let server: EmbeddedPostgres | undefined;
let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.stopAll();
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const settings = { fsync: 'off', synchronous_commit: 'off' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function read(svc: ServiceProcess, w: Workload) {
  const t0 = Date.now();
  const res = await fetch(`${svc.url}/v1/patients/${w.patientId}`, {
    headers: { authorization: `Bearer ${w.tokens.clinician}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { code?: string };
  return { status: res.status, type: res.headers.get('content-type'), code: body.code, ms: Date.now() - t0 };
}

describe('the external PostgreSQL stopped (fast shutdown) and started again under load, two service processes', () => {
  it('keeps both processes up, answers 503 problem+json while it is down (no 500, no hang), and serves again once it is back', async () => {
    dir = await tempDataDir();
    const port = await freePort();
    server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('create database records');
    await admin.end();
    cluster = await createCluster({ databaseUrl: server.urlFor('records') });
    const [a, b] = await Promise.all([cluster.start(), cluster.start()]);
    const w = await prepareWorkload(cluster, a, 3000);

    const load = startLoad([a, b], w, 2);
    const notes: string[] = [];
    for (let cycle = 1; cycle <= 2; cycle++) {
      await sleep(300);
      // EmbeddedPostgres.stop() sends SIGINT to the postmaster: PostgreSQL's fast shutdown, as in a failover
      // or `pg_ctl stop -m fast` (sessions terminated mid-query, then the server is gone).
      await server.stop();
      server = undefined;
      await sleep(300);
      for (const svc of [a, b]) {
        const down = await read(svc, w);
        expect(down).toMatchObject({ status: 503, code: 'database-unavailable' });
        expect(down.type).toMatch(/^application\/problem\+json/);
        expect(down.ms).toBeLessThan(5000);
      }
      await sleep(300);
      server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
      const t0 = Date.now();
      for (const svc of [a, b]) {
        while ((await read(svc, w)).status !== 200) {
          expect(Date.now() - t0, `process on ${svc.url} not serving again`).toBeLessThan(15_000);
          await sleep(100);
        }
      }
      notes.push(`cycle ${cycle}: both serving ${Date.now() - t0} ms after PostgreSQL was back`);
    }
    await sleep(300);
    const outcomes = await load.stop();
    const summary = summarize(outcomes);
    expect(brokenPromises(outcomes).slice(0, 5), summary).toEqual([]);
    expect(outcomes.filter((o) => o.status === 503).length, summary).toBeGreaterThan(0);

    const after = startLoad([a, b], w, 2);
    await sleep(700);
    const recovered = await after.stop();
    expect(recovered.filter((o) => (o.status !== 200 && o.status !== 201) || (o.kind === 'csv' && o.body !== 'complete')).slice(0, 5), summarize(recovered)).toEqual([]);
    const verify = await cluster.client(a).http.get('/v1/audit-events/verify').set('authorization', `Bearer ${w.tokens.auditor}`);
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null, notInChain: 0 });
    for (const svc of [a, b]) {
      expect(svc.child.exitCode, svc.output()).toBeNull();
      expect(svc.output()).not.toMatch(CRASH_SIGNS);
    }
    process.stdout.write(`PostgreSQL restarted twice under load: ${notes.join('; ')}; during it ${summary}\n`);
  });
});
