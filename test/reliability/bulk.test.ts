import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServiceProcess } from '../support/process.js';
import { waitFor } from '../support/receiver.js';
import { createCluster, type Cluster } from './harness.js';
import { prepareWorkload } from './load.js';

const clusters: Cluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stopAll()));
});

// A short lease, so a killed runner's job is taken over within seconds; a short poll.
const BULK_ENV = { BULK_POLL_INTERVAL_MS: '100', BULK_LEASE_MS: '4000', BULK_MAX_CONCURRENT_JOBS: '2' };
const ROWS = 120_000;

async function status(svc: ServiceProcess, path: string, token: string) {
  const res = await fetch(`${svc.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, progress: res.headers.get('x-progress'), body: res.status === 200 ? ((await res.json()) as { output: { type: string; url: string; count: number }[] }) : undefined };
}

describe('bulk export jobs survive kill -9', () => {
  it('kill -9 of the process running an export: another process restarts the job, and the output holds every row exactly once', async () => {
    const cluster = await createCluster();
    clusters.push(cluster);
    const first = await cluster.start(BULK_ENV);
    await prepareWorkload(cluster, first, ROWS);
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    db.on('error', () => undefined);
    await db.connect();
    const expected = (await db.query<{ id: string }>('select id from procedures order by id')).rows.map((r) => r.id);

    const token = await cluster.signer.token({ scope: 'clinical:read', clinic: null, sub: 'bulk-exporter' });
    const kick = await fetch(`${first.url}/fhir/R4/$export?_type=Procedure`, { headers: { authorization: `Bearer ${token}`, prefer: 'respond-async' } });
    expect(kick.status).toBe(202);
    const path = new URL(kick.headers.get('content-location')!).pathname;

    // Killed once it has written part of the file.
    await waitFor(async () => {
      const s = await status(first, path, token);
      return s.status === 202 && /^([1-9]\d?)% /.test(s.progress ?? '');
    }, 'the export under way', 60_000);
    const before = (await status(first, path, token)).progress;
    first.child.kill('SIGKILL');
    await first.exited;
    const firstAttempt = (await db.query<{ attempt: number; status: string }>('select attempt, status from bulk_export_jobs')).rows[0]!;
    expect(firstAttempt).toEqual({ attempt: 1, status: 'running' });

    const second = await cluster.start(BULK_ENV);
    let manifest: Awaited<ReturnType<typeof status>>['body'];
    await waitFor(async () => {
      const s = await status(second, path, token);
      manifest = s.body;
      return s.status === 200;
    }, 'the export completed by the second process', 120_000);
    const job = (await db.query<{ attempt: number; status: string }>('select attempt, status from bulk_export_jobs')).rows[0]!;
    // Restarted from scratch by the second process (a later attempt if a lease lapsed again on this busy machine).
    expect(job.status).toBe('completed');
    expect(job.attempt).toBeGreaterThanOrEqual(2);
    // Only the completed attempt's file is left.
    expect((await db.query<{ n: number }>('select count(*)::int as n from bulk_export_files')).rows[0]!.n).toBe(1);

    expect(manifest!.output).toHaveLength(1);
    expect(manifest!.output[0]!.count).toBe(expected.length);
    const res = await fetch(manifest!.output[0]!.url.replace(/^http:\/\/[^/]+/, second.url), { headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+ndjson' } });
    expect(res.status).toBe(200);
    const lines = (await res.text()).split('\n');
    expect(lines.pop()).toBe('');
    const ids = lines.map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(expected.length);
    await db.end();
    process.stdout.write(`bulk kill -9: killed at "${before}"; attempt ${job.attempt} exported ${ids.length} procedures, each once\n`);
  }, 240_000);
});
