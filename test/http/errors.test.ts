import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/client.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

let t: TestApp;
let token: string;
beforeAll(async () => {
  t = await createTestApp();
  token = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
});
afterAll(() => t.close());

const countPatients = async () => (await t.pool.query('SELECT count(*)::int AS n FROM patients')).rows[0].n as number;

describe('bad input gets a clear 4xx problem and changes nothing', () => {
  it('400 for malformed JSON, an empty body, a wrong type and an unknown field, each naming what is wrong', async () => {
    const before = await countPatients();
    const malformed = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).set('content-type', 'application/json').send('{"mrn": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('malformed-json');

    const empty = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).set('content-type', 'application/json').send('');
    expect(empty.status).toBe(400);

    const wrongType = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody({ birthDate: 19610417, sex: 'f' }));
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['body.birthDate', 'body.sex']);

    const unknownField = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody({ ssn: '123-45-6789' }));
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.errors).toEqual([{ path: 'body.ssn', message: 'unknown field' }]);

    const badIdentifier = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody({ identifiers: [{ system: 'not a uri', value: 'x' }] }));
    expect(badIdentifier.status).toBe(400);
    expect(badIdentifier.body.errors[0].path).toBe('body.identifiers.0.system');

    expect(await countPatients()).toBe(before);
  });

  it('400 for a path id that is not a UUID', async () => {
    const res = await t.http.get('/v1/patients/12345').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('params.id');
  });

  it('404 problem for an unknown route', async () => {
    const res = await t.http.get('/v1/nothing-here').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('route-not-found');
  });

  it('413 for a body over 1 MiB', async () => {
    const res = await t.http
      .post('/v1/patients')
      .set('authorization', `Bearer ${token}`)
      .send(patientBody({ givenName: 'x'.repeat(1024 * 1024 + 10) }));
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('body-too-large');
  });

  it('415 for a body that is not JSON', async () => {
    for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).set('content-type', type).send('mrn=1');
      expect(res.status, type).toBe(415);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it('400 for a malformed If-Match and a malformed Idempotency-Key', async () => {
    const p = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody());
    const badTag = await t.http.patch(`/v1/patients/${p.body.id}`).set('authorization', `Bearer ${token}`).set('if-match', 'version-one').send({ givenName: 'x' });
    expect(badTag.status).toBe(400);
    const badKey = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).set('idempotency-key', 'x'.repeat(300)).send(patientBody());
    expect(badKey.status).toBe(400);
  });

  it('echoes the request id, and problems carry it', async () => {
    const res = await t.http.get('/v1/patients/12345').set('authorization', `Bearer ${token}`).set('x-request-id', 'abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(res.body.requestId).toBe('abc-123');
  });
});

describe('rate limit', () => {
  it('answers 429 per token subject past RATE_LIMIT_PER_MINUTE, leaving other subjects alone', async () => {
    const limited = await t.another({ rateLimitPerMinute: 3 });
    const alice = await t.token({ scope: 'patients:read', sub: 'alice' });
    const bob = await t.token({ scope: 'patients:read', sub: 'bob' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await limited.http.get('/v1/patients').set('authorization', `Bearer ${alice}`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const last = await limited.http.get('/v1/patients').set('authorization', `Bearer ${alice}`);
    expect(last.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(last.body.code).toBe('rate-limited');
    expect((await limited.http.get('/v1/patients').set('authorization', `Bearer ${bob}`)).status).toBe(200);
  });
});

describe('database unavailable', () => {
  it('answers 503 problem+json (never 500) and /health/ready turns 503', async () => {
    const deadPool = createPool('postgres://nobody:x@127.0.0.1:1/none', { max: 2, connectTimeoutMs: 500, statementTimeoutMs: 1000 });
    const down = await t.another({ pool: deadPool });
    const res = await down.http.get('/v1/patients').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('database-unavailable');
    expect(res.headers['retry-after']).toBeDefined();
    const ready = await down.http.get('/health/ready');
    expect(ready.status).toBe(503);
    await down.app.close();
    await deadPool.end();
  });
});
