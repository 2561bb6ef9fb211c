import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

let t: TestApp;
let clinicA: string;
let auditor: string;
beforeAll(async () => {
  t = await createTestApp({ auditSealIntervalMs: 15 });
  clinicA = await t.token({ scope: 'patients:read patients:write audit:read', clinic: 'clinic-a', sub: 'nurse-a' });
  auditor = await t.token({ scope: 'audit:read', clinic: null, sub: 'inspector' });
});
afterAll(() => t.close());

const verify = async (query = '') => (await t.http.get(`/v1/audit-events/verify${query}`).set('authorization', `Bearer ${auditor}`)).body;

describe('the audit log', () => {
  it('is append-only in the database: UPDATE, DELETE and TRUNCATE are refused', async () => {
    await t.http.post('/v1/patients').set('authorization', `Bearer ${clinicA}`).send(patientBody());
    await expect(t.pool.query("UPDATE audit_events SET actor_sub = 'x'")).rejects.toThrow(/append-only/);
    await expect(t.pool.query('DELETE FROM audit_events')).rejects.toThrow(/append-only/);
    // The background sealer (every 15 ms here) is held off by its own advisory lock (migrations/0007), so
    // TRUNCATE's locks cannot deadlock with it: what refuses the TRUNCATE is the append-only trigger itself.
    const sealerHold = await t.pool.connect();
    try {
      await sealerHold.query('BEGIN');
      await sealerHold.query('SELECT pg_advisory_xact_lock(7314201119)');
      const before = (await t.pool.query('SELECT count(*)::int AS n FROM audit_events')).rows[0].n;
      await expect(t.pool.query('TRUNCATE audit_events CASCADE')).rejects.toThrow(/append-only/);
      expect((await t.pool.query('SELECT count(*)::int AS n FROM audit_events')).rows[0].n).toBe(before);
    } finally {
      await sealerHold.query('ROLLBACK');
      sealerHold.release();
    }
    await verify();
    await expect(t.pool.query("UPDATE audit_chain SET hash = 'x'")).rejects.toThrow(/append-only/);
  });

  it('lists entries by resource, actor and time, with their chain link; a clinic sees only its own', async () => {
    const p = (await t.http.post('/v1/patients').set('authorization', `Bearer ${clinicA}`).send(patientBody())).body;
    await t.http.get(`/v1/patients/${p.id}`).set('authorization', `Bearer ${clinicA}`);
    const other = await t.token({ scope: 'patients:read patients:write audit:read', clinic: 'clinic-b' });
    await t.http.post('/v1/patients').set('authorization', `Bearer ${other}`).send(patientBody());
    await verify(); // seals
    const res = await t.http.get('/v1/audit-events').query({ resourceType: 'patient', resourceId: p.id }).set('authorization', `Bearer ${auditor}`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((e: { action: string; actor: { sub: string } }) => [e.action, e.actor.sub])).toEqual([
      ['create', 'nurse-a'],
      ['read', 'nurse-a'],
    ]);
    expect(res.body.items[0].chain).toEqual({ seq: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const byActor = await t.http.get('/v1/audit-events').query({ actor: 'nurse-a', from: '2020-01-01T00:00:00Z' }).set('authorization', `Bearer ${auditor}`);
    // Not empty (every() of nothing holds): at least this test's create and read by nurse-a are there.
    expect(byActor.body.items.filter((e: { resourceId: string | null }) => e.resourceId === p.id).map((e: { action: string }) => e.action)).toEqual(['create', 'read']);
    expect(byActor.body.items.every((e: { actor: { sub: string } }) => e.actor.sub === 'nurse-a')).toBe(true);
    const mine = await t.http.get('/v1/audit-events').query({ limit: 200 }).set('authorization', `Bearer ${other}`);
    expect(mine.body.items.length).toBeGreaterThan(0);
    expect(mine.body.items.every((e: { clinicId: string | null; actor: { clinicId: string | null } }) => e.clinicId === 'clinic-b' || e.actor.clinicId === 'clinic-b')).toBe(true);
  });

  it('keeps one valid chain under concurrent writes from two instances, both sealing', async () => {
    const second = await t.another({ auditSealIntervalMs: 10 });
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 ? second.http : t.http).post('/v1/patients').set('authorization', `Bearer ${clinicA}`).send(patientBody())),
    );
    const result = await verify();
    expect(result).toMatchObject({ valid: true, firstInvalid: null, notInChain: 0 });
    const { rows } = await t.pool.query('SELECT (SELECT count(*) FROM audit_events)::int AS events, (SELECT count(*) FROM audit_chain)::int AS links, (SELECT max(seq) FROM audit_chain)::int AS top');
    // No gap in the chain, and verify checked every entry but its own (written after it sealed; a background
    // sealer may have linked that one since).
    expect(rows[0].links).toBe(rows[0].top);
    expect(rows[0].events - result.checked).toBe(1);
  });

  it('finds and names an entry changed behind the service\'s back (superuser, trigger disabled)', async () => {
    const p = (await t.http.post('/v1/patients').set('authorization', `Bearer ${clinicA}`).send(patientBody())).body;
    await t.http.get(`/v1/patients/${p.id}`).set('authorization', `Bearer ${clinicA}`);
    expect((await verify()).valid).toBe(true);
    const { rows } = await t.pool.query("SELECT id FROM audit_events WHERE resource_id = $1 AND action = 'read'", [p.id]);
    const tampered = rows[0].id as number;
    const su = new pg.Client({ connectionString: t.databaseUrl });
    await su.connect();
    await su.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only');
    await su.query("UPDATE audit_events SET actor_sub = 'someone-else' WHERE id = $1", [tampered]);
    await su.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only');
    await su.end();
    const result = await verify();
    expect(result.valid).toBe(false);
    expect(result.firstInvalid).toMatchObject({ auditEventId: tampered, reason: 'entry-altered' });
  });
});
