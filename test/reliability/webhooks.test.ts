import fs from 'node:fs/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';
import { clinicSetup } from '../support/fixtures.js';
import { freePort, tempDataDir, type ServiceProcess } from '../support/process.js';
import { startReceiver, waitFor, type Receiver } from '../support/receiver.js';
import { createCluster, type Cluster } from './harness.js';

const clusters: Cluster[] = [];
const receivers: Receiver[] = [];
let dir: string | undefined;
let server: EmbeddedPostgres | undefined;
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stopAll()));
  await Promise.all(receivers.map((r) => r.close()));
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

// Delivery settings of these processes: loopback receivers, a short poll, a 1 s attempt timeout (so a killed
// process's leases run out in 6 s instead of 15 s).
const WEBHOOK_ENV = { WEBHOOK_ALLOW_PRIVATE_URLS: 'true', WEBHOOK_POLL_INTERVAL_MS: '20', WEBHOOK_ATTEMPT_TIMEOUT_MS: '1000' };

/** `n` shipments of one vial each (one shipment.created event each), through the API; answers the event ids from the feed. */
async function shipments(cluster: Cluster, svc: ServiceProcess, n: number, lotId: string, supplier: string): Promise<void> {
  const api = cluster.client(svc);
  for (let i = 0; i < n; i++) {
    const res = await api.http.post(`/v1/lots/${lotId}/shipments`).set('authorization', `Bearer ${supplier}`).send({ clinicId: 'clinic-b', vials: 1 });
    if (res.status !== 201) throw new Error(`shipment: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** Every event id of `type` in the feed, in order. */
async function feedIds(cluster: Cluster, svc: ServiceProcess, type: string): Promise<string[]> {
  const token = await cluster.signer.token({ scope: 'events:read', clinic: null });
  const ids: string[] = [];
  for (let after: string | null = null; ; ) {
    const res = await cluster.client(svc).http.get(`/v1/events?types=${type}&limit=200${after ? `&after=${after}` : ''}`).set('authorization', `Bearer ${token}`);
    const page = res.body as { items: { id: string }[]; nextCursor: string | null };
    if (page.items.length === 0) return ids;
    ids.push(...page.items.map((e) => e.id));
    after = page.nextCursor;
  }
}

async function subscribe(cluster: Cluster, svc: ServiceProcess, url: string, parallel: boolean) {
  const token = await cluster.signer.token({ scope: 'webhooks:write', clinic: null });
  const res = await cluster.client(svc).http.post('/v1/webhook-subscriptions').set('authorization', `Bearer ${token}`).send({ url, types: ['shipment.created'], parallel });
  if (res.status !== 201) throw new Error(`subscribe: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string };
}

describe('webhook delivery survives what processes and databases do', () => {
  it('kill -9 of the delivering process mid-batch loses no event: another process delivers the rest, duplicates keep their webhook-id', async () => {
    const cluster = await createCluster();
    clusters.push(cluster);
    // Slow enough that a batch is in flight when the process dies.
    const rx = await startReceiver(() => ({ status: 200, delayMs: 150 }));
    receivers.push(rx);
    const first = await cluster.start(WEBHOOK_ENV);
    const s = await clinicSetup(cluster.client(first), { vials: 1, lot: { vialCount: 200 } });
    const earlier = await feedIds(cluster, first, 'shipment.created');
    const sub = await subscribe(cluster, first, rx.url, true);
    // Paused while the events are made, so that all 60 fall due at once when it resumes.
    const writer = await cluster.signer.token({ scope: 'webhooks:write', clinic: null });
    const patch = (status: string, version: number) =>
      cluster.client(first).http.patch(`/v1/webhook-subscriptions/${sub.id}`).set('authorization', `Bearer ${writer}`).set('if-match', `"${version}"`).send({ status });
    expect((await patch('paused', 1)).status).toBe(200);
    await shipments(cluster, first, 60, s.lot.id, s.supplier);
    expect(rx.received).toHaveLength(0);
    expect((await patch('active', 2)).status).toBe(200);

    await waitFor(() => rx.received.length >= 10 && rx.inFlight > 0, 'deliveries in flight');
    first.child.kill('SIGKILL');
    await first.exited;
    const beforeKill = new Set(rx.ids()).size;

    const second = await cluster.start(WEBHOOK_ENV);
    const expected = (await feedIds(cluster, second, 'shipment.created')).filter((id) => !earlier.includes(id));
    expect(expected).toHaveLength(60);
    await waitFor(() => expected.every((id) => rx.ids().includes(id)), 'every committed event delivered', 30_000);
    // The attempts the kill cut off are tried again once their leases run out: every delivery ends succeeded.
    const reader = await cluster.signer.token({ scope: 'webhooks:read', clinic: null });
    await waitFor(async () => {
      const res = await cluster.client(second).http.get(`/v1/webhook-subscriptions/${sub.id}/deliveries?limit=200`).set('authorization', `Bearer ${reader}`);
      const items = res.body.items as { status: string }[];
      return items.length === 60 && items.every((d) => d.status === 'succeeded');
    }, 'every delivery succeeded', 30_000);
    const ids = rx.ids();
    expect(ids.every((id) => expected.includes(id)), 'only events of the feed, by their ids').toBe(true);
    expect(rx.maxInFlightPerId, 'one attempt of an event at a time').toBe(1);
    process.stdout.write(`kill -9 mid-batch: ${beforeKill} of 60 delivered before the kill, all 60 after; ${ids.length - 60} duplicates (same webhook-id)\n`);
  });

  it('PostgreSQL stopped and started while deliveries are due: the process stays up and every event is delivered after', async () => {
    dir = await tempDataDir();
    const port = await freePort();
    const settings = { fsync: 'off', synchronous_commit: 'off' };
    server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('create database records');
    await admin.end();
    const cluster = await createCluster({ databaseUrl: server.urlFor('records') });
    clusters.push(cluster);
    let up = false;
    // The receiver refuses (503) until the database has been back: deliveries are pending across the restart.
    const rx = await startReceiver(() => ({ status: up ? 200 : 503 }));
    receivers.push(rx);
    const svc = await cluster.start(WEBHOOK_ENV);
    const s = await clinicSetup(cluster.client(svc), { vials: 1, lot: { vialCount: 100 } });
    const earlier = await feedIds(cluster, svc, 'shipment.created');
    await subscribe(cluster, svc, rx.url, false);
    await shipments(cluster, svc, 20, s.lot.id, s.supplier);
    await waitFor(() => rx.received.length >= 1, 'a first (refused) attempt');

    await server.stop();
    server = undefined;
    await new Promise((r) => setTimeout(r, 1000));
    server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
    up = true;

    const expected = await (async () => {
      for (;;) {
        try {
          return (await feedIds(cluster, svc, 'shipment.created')).filter((id) => !earlier.includes(id));
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    })();
    expect(expected).toHaveLength(20);
    // The refused first delivery waits out its backoff (5 s), then the rest follow in order.
    await waitFor(() => expected.every((id) => rx.ids().includes(id)), 'every event delivered after the restart', 60_000);
    // In order: the first arrival of each id follows the feed.
    const firstArrivals = [...new Set(rx.ids())];
    expect(firstArrivals).toEqual(expected);
    expect(svc.child.exitCode, svc.output()).toBeNull();
  });
});
