import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { patientBody } from '../support/fixtures.js';
import { createCluster, type Cluster } from './harness.js';

let cluster: Cluster;
afterAll(() => cluster?.stopAll());

describe('graceful shutdown', () => {
  it('lets an accepted request finish after SIGTERM, refuses new ones, then exits 0', async () => {
    cluster = await createCluster();
    const svc = await cluster.start();
    const api = cluster.client(svc);
    const token = await cluster.signer.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
    const p = (await api.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody())).body;

    // Hold the row so the PATCH is still in flight when SIGTERM arrives.
    const blocker = new pg.Client({ connectionString: cluster.databaseUrl });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('select * from patients where id = $1 for update', [p.id]);
    const inFlight = fetch(`${svc.url}/v1/patients/${p.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'if-match': '"1"' },
      body: JSON.stringify({ givenName: 'Finished' }),
    });
    await new Promise((r) => setTimeout(r, 300));
    svc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));

    const late = await fetch(`${svc.url}/health/live`).then((r) => r.status, () => 'refused');
    expect(['refused', 503]).toContain(late);
    expect(svc.child.exitCode).toBeNull(); // still draining

    await blocker.query('commit');
    await blocker.end();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { givenName: string }).givenName).toBe('Finished');
    const code = await svc.exited;
    if (code !== 0) process.stdout.write(svc.output().split('\n').slice(-12).join('\n'));
    expect(code).toBe(0);
    expect(svc.output()).toMatch(/"msg":"stopped"/);
  });
});
