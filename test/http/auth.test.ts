import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair, exportJWK } from 'jose';
import { createTestApp, TEST_AUDIENCE, TEST_ISSUER, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

const get = (token?: string) => {
  const req = t.http.get('/v1/patients');
  return token === undefined ? req : req.set('authorization', `Bearer ${token}`);
};

function expectProblem(res: { status: number; headers: Record<string, string>; body: Record<string, unknown> }, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, type: expect.stringContaining(':problem:'), title: expect.any(String), detail: expect.any(String), instance: '/v1/patients' });
}

describe('authentication', () => {
  it('answers 401 problem+json without a token, with a malformed header, and with garbage', async () => {
    expectProblem(await get(), 401);
    expectProblem(await t.http.get('/v1/patients').set('authorization', 'Basic dXNlcjpwYXNz'), 401);
    expectProblem(await get('not.a.jwt'), 401);
  });

  it('accepts a valid ES256 token', async () => {
    const res = await get(await t.token({ scope: 'patients:read' }));
    expect(res.status).toBe(200);
  });

  it('refuses expired tokens, a wrong issuer and a wrong audience', async () => {
    expectProblem(await get(await t.token({ scope: 'patients:read', expiresIn: Math.floor(Date.now() / 1000) - 120 })), 401);
    expectProblem(await get(await t.token({ scope: 'patients:read', issuer: 'https://evil.test' })), 401);
    expectProblem(await get(await t.token({ scope: 'patients:read', audience: 'someone-else' })), 401);
  });

  it('refuses a token signed by another key', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'patients:read', clinic_id: 'clinic-a' })
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('mallory')
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('5m')
      .sign(privateKey);
    expectProblem(await get(forged), 401);
  });

  it('refuses HMAC-signed and unsigned (alg none) tokens', async () => {
    // An HS256 token whose secret is the service's public key material: the classic algorithm-confusion attack.
    const secret = new TextEncoder().encode(JSON.stringify(await exportJWK(t.signer.publicKey)));
    const hmac = await new SignJWT({ scope: 'patients:read', clinic_id: 'clinic-a' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('mallory')
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('5m')
      .sign(secret);
    expectProblem(await get(hmac), 401);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'mallory', scope: 'patients:read', clinic_id: 'clinic-a', iss: TEST_ISSUER, aud: TEST_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
    expectProblem(await get(none), 401);
  });

  it('refuses a token without exp', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    void publicKey;
    const token = await new SignJWT({ scope: 'patients:read' }).setProtectedHeader({ alg: 'ES256' }).setSubject('x').setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).sign(privateKey);
    expectProblem(await get(token), 401);
  });
});

describe('authorization', () => {
  it('answers 403 when the token lacks the route\'s scope, naming the scope', async () => {
    const res = await get(await t.token({ scope: 'lots:read clinical:read' }));
    expectProblem(res, 403);
    expect(res.body.code).toBe('insufficient-scope');
    expect(res.body.detail).toContain('patients:read');
    const write = await t.http
      .post('/v1/patients')
      .set('authorization', `Bearer ${await t.token({ scope: 'patients:read' })}`)
      .send({});
    expect(write.status).toBe(403);
  });

  it('checks the token before the body: an anonymous invalid body gets 401, not 400', async () => {
    const res = await t.http.post('/v1/patients').send({ nonsense: true });
    expect(res.status).toBe(401);
  });

  it('leaves health, the OpenAPI document and the docs page public', async () => {
    expect((await t.http.get('/health/live')).status).toBe(200);
    expect((await t.http.get('/health/ready')).status).toBe(200);
    expect((await t.http.get('/openapi.json')).status).toBe(200);
    const docs = await t.http.get('/docs/');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('swagger');
  });
});
