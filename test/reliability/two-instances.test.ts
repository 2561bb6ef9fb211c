import { afterAll, describe, expect, it } from 'vitest';
import { clinicSetup, patientBody, procedureBody } from '../support/fixtures.js';
import { createCluster, type Cluster } from './harness.js';

let cluster: Cluster;
afterAll(() => cluster?.stopAll());

describe('two service processes on one database', () => {
  it('never oversell, never fork a version, honour idempotency keys across both, and keep one valid audit chain', async () => {
    cluster = await createCluster();
    const [a, b] = [await cluster.start(), await cluster.start()];
    const [apiA, apiB] = [cluster.client(a), cluster.client(b)];
    const s = await clinicSetup(apiA, { vials: 10 });
    const auth = ['authorization', `Bearer ${s.clinician}`] as const;

    const procedures = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? apiB : apiA).http.post('/v1/procedures').set(...auth).send(procedureBody(s.patientId, s.lot.id))),
    );
    expect(procedures.filter((r) => r.status === 201)).toHaveLength(10);
    expect(procedures.filter((r) => r.status !== 201).every((r) => r.body.code === 'insufficient-vials')).toBe(true);
    const inventory = (await apiB.http.get(`/v1/lots/${s.lot.id}/inventory`).set('authorization', `Bearer ${s.supplier}`)).body;
    expect(inventory.clinics.find((c: { clinicId: string }) => c.clinicId === 'clinic-a')).toMatchObject({ administered: 10, onHand: 0 });

    const [p1, p2] = await Promise.all([
      apiA.http.patch(`/v1/patients/${s.patientId}`).set(...auth).set('if-match', '"1"').send({ givenName: 'From A' }),
      apiB.http.patch(`/v1/patients/${s.patientId}`).set(...auth).set('if-match', '"1"').send({ givenName: 'From B' }),
    ]);
    expect([p1.status, p2.status].sort()).toEqual([200, 412]);

    const body = patientBody();
    const retries = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? apiB : apiA).http.post('/v1/patients').set(...auth).set('idempotency-key', `two-${body.mrn}`).send(body)),
    );
    expect(retries.map((r) => r.status)).toEqual(Array(12).fill(201));
    expect(new Set(retries.map((r) => r.body.id)).size).toBe(1);

    const auditor = await cluster.signer.token({ scope: 'audit:read', clinic: null });
    const verify = (await apiA.http.get('/v1/audit-events/verify').set('authorization', `Bearer ${auditor}`)).body;
    expect(verify).toMatchObject({ valid: true, firstInvalid: null, notInChain: 0 });
  });
});
