import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { SELF_ISSUER } from '../../src/auth/signing-key.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody, uniq } from '../support/fixtures.js';

/**
 * SMART Backend Services through HTTP (contract "SMART Backend Services"): client registration, POST /auth/token
 * with signed assertions (RFC 7523), the refusals of RFC 6749 §5.2, and discovery.
 */

const BASE = 'https://records.test';
const TOKEN_URL = `${BASE}/auth/token`;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ADMIN_SCOPE = 'clients:write patients:read patients:write clinical:read lots:read reports:read';
const bearer = (token: string) => ['authorization', `Bearer ${token}`] as const;

interface ClientKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  alg: 'ES384' | 'RS384';
}

async function clientKey(alg: 'ES384' | 'RS384' = 'ES384', kid = `k-${uniq()}`): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg };
}

interface AssertionOptions {
  iss?: string;
  sub?: string;
  aud?: string;
  exp?: number;
  jti?: string | null;
  alg?: string;
  key?: CryptoKey | Uint8Array;
}

async function assertion(clientId: string, key: ClientKey, o: AssertionOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader({ alg: o.alg ?? key.alg, kid: key.publicJwk.kid, typ: 'JWT' })
    .setIssuer(o.iss ?? clientId)
    .setSubject(o.sub ?? clientId)
    .setAudience(o.aud ?? TOKEN_URL)
    .setExpirationTime(o.exp ?? now + 240);
  if (o.jti !== null) jwt.setJti(o.jti ?? randomUUID());
  return jwt.sign(o.key ?? key.privateKey);
}

let t: TestApp;
let admin: string;
const clinic = `clinic-smart-${uniq()}`;
const otherClinic = `clinic-smart-other-${uniq()}`;

function form(body: Record<string, string | undefined>) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(body)) if (v !== undefined) params.append(k, v);
  return params.toString();
}

function requestToken(body: Record<string, string | undefined>) {
  return t.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(form(body));
}

const tokenForm = (clientAssertion: string, scope = 'system/Patient.rs') => ({
  grant_type: 'client_credentials',
  client_assertion_type: JWT_BEARER,
  client_assertion: clientAssertion,
  scope,
});

/** A 2048-bit RSA public key as a JWK. */
function rsaJwk(): Record<string, unknown> {
  return { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: `rsa-${uniq()}` };
}
/** The modulus with its lowest bit cleared (an even number: not an RSA modulus). */
function evenModulus(n: string): string {
  const bytes = Buffer.from(n, 'base64url');
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! & 0xfe;
  return bytes.toString('base64url');
}

async function register(body: Record<string, unknown>, token = admin) {
  return t.http.post('/v1/clients').set(...bearer(token)).send(body);
}

async function registered(key: ClientKey, overrides: Record<string, unknown> = {}) {
  const res = await register({ name: `Backend ${uniq()}`, jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.rs', 'system/Procedure.rs'], ...overrides });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { clientId: string; version: number; clinicId: string | null; status: string; scopes: string[] };
}

function expectOAuthError(res: { status: number; body: unknown; headers: Record<string, string> }, status: number, error: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ error, error_description: expect.any(String) });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('no-store');
}

beforeAll(async () => {
  t = await createTestApp({ publicBaseUrl: BASE });
  admin = await t.token({ scope: ADMIN_SCOPE, clinic, sub: 'clinic-admin' });
});
afterAll(async () => {
  await t?.close();
});

describe('a client with an ES384 key', () => {
  it('registers, gets a token with a signed assertion, and reads its clinic\'s patients through FHIR with it', async () => {
    const key = await clientKey('ES384');
    const client = await registered(key);
    expect(client).toMatchObject({ clinicId: clinic, status: 'active', scopes: ['system/Patient.rs', 'system/Procedure.rs'], version: 1 });

    const mine = await t.http.post('/v1/patients').set(...bearer(admin)).send(patientBody());
    expect(mine.status).toBe(201);
    const theirs = await t.http.post('/v1/patients').set(...bearer(await t.token({ scope: 'patients:write', clinic: otherClinic }))).send(patientBody());
    expect(theirs.status).toBe(201);

    const res = await requestToken(tokenForm(await assertion(client.clientId, key), 'system/Patient.rs'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'bearer', scope: 'system/Patient.rs', access_token: expect.any(String) });
    expect(res.body.expires_in).toBeGreaterThan(0);
    expect(res.body.expires_in).toBeLessThanOrEqual(300);
    const accessToken = res.body.access_token as string;
    const claims = decodeJwt(accessToken);
    expect(claims).toMatchObject({ iss: SELF_ISSUER, sub: client.clientId, clinic_id: clinic, scope: 'patients:read' });
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(300);
    const jwks = (await t.http.get('/.well-known/jwks.json')).body as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(accessToken).kid);

    const own = await t.http.get(`/fhir/R4/Patient?_id=${mine.body.id}`).set(...bearer(accessToken));
    expect(own.status, JSON.stringify(own.body)).toBe(200);
    expect(own.body).toMatchObject({ resourceType: 'Bundle', total: 1 });
    const read = await t.http.get(`/fhir/R4/Patient/${mine.body.id}`).set(...bearer(accessToken));
    expect(read.status).toBe(200);
    const other = await t.http.get(`/fhir/R4/Patient?_id=${theirs.body.id}`).set(...bearer(accessToken));
    expect(other.status).toBe(200);
    expect(other.body.total).toBe(0);
    // Only what was granted: no clinical read, no write.
    expect((await t.http.get(`/fhir/R4/Procedure?patient=${mine.body.id}`).set(...bearer(accessToken))).status).toBe(403);
    expect((await t.http.post('/v1/patients').set(...bearer(accessToken)).send(patientBody())).status).toBe(403);
  });

  it('is granted system/*.rs only when registered for everything it stands for; service scopes are taken as they are', async () => {
    const key = await clientKey();
    const narrow = await registered(key);
    expectOAuthError(await requestToken(tokenForm(await assertion(narrow.clientId, key), 'system/*.rs')), 400, 'invalid_scope');
    const wide = await registered(key, { scopes: ['system/*.rs'] });
    const res = await requestToken(tokenForm(await assertion(wide.clientId, key), 'system/*.rs system/Group.rs patients:read'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.scope).toBe('system/*.rs system/Group.rs patients:read');
    expect(new Set(String(decodeJwt(res.body.access_token).scope).split(' '))).toEqual(new Set(['patients:read', 'clinical:read', 'lots:read', 'reports:read']));
  });

  it('accepts the token URL derived from the request when no public URL is configured for it', async () => {
    const key = await clientKey();
    const client = await registered(key);
    const res = await t.http
      .post('/auth/token')
      .set('host', 'records.internal:8443')
      .set('content-type', 'application/x-www-form-urlencoded')
      .send(form(tokenForm(await assertion(client.clientId, key, { aud: 'http://records.internal:8443/auth/token' }))));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });

  it('never logs the assertion or the token', async () => {
    const key = await clientKey();
    const client = await registered(key);
    const signed = await assertion(client.clientId, key);
    const res = await requestToken(tokenForm(signed));
    expect(res.status).toBe(200);
    const replay = await requestToken(tokenForm(signed));
    expect(replay.status).toBe(401);
    const logs = t.logLines.join('\n');
    expect(logs).not.toContain(signed.split('.')[2]);
    expect(logs).not.toContain(String(res.body.access_token).split('.')[2]);
  });
});

describe('a client with an RS384 key', () => {
  it('gets a token too; RS256, HS256 and unsigned assertions are refused', async () => {
    const key = await clientKey('RS384');
    const client = await registered(key);
    expect((await requestToken(tokenForm(await assertion(client.clientId, key)))).status).toBe(200);
    const rs256 = await importJWK(await exportJWK(key.privateKey), 'RS256');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { alg: 'RS256', key: rs256 as CryptoKey }))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { alg: 'HS256', key: new TextEncoder().encode('a-shared-secret-of-32-bytes-long!!') }))), 401, 'invalid_client');
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: client.clientId, sub: client.clientId, aud: TOKEN_URL, exp: Math.floor(Date.now() / 1000) + 60, jti: randomUUID() })).toString('base64url')}.`;
    expectOAuthError(await requestToken(tokenForm(unsigned)), 401, 'invalid_client');
  });
});

describe('the token endpoint refuses, with the RFC\'s error', () => {
  let key: ClientKey;
  let client: { clientId: string; version: number };
  beforeAll(async () => {
    key = await clientKey();
    client = await registered(key);
  });

  it('a replayed jti (invalid_client), also from another instance', async () => {
    const signed = await assertion(client.clientId, key, { jti: `replay-${uniq()}` });
    expect((await requestToken(tokenForm(signed))).status).toBe(200);
    expectOAuthError(await requestToken(tokenForm(signed)), 401, 'invalid_client');
    const other = await t.another();
    const res = await other.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(form(tokenForm(signed)));
    expectOAuthError(res, 401, 'invalid_client');
    expect(res.body.error_description).toMatch(/jti/);
  });

  it('a wrong aud, an expired assertion, one that expires more than 5 min ahead, one without jti', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { aud: 'https://elsewhere.test/auth/token' }))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { exp: now - 60 }))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { exp: now + 600 }))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { jti: null }))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key, { sub: randomUUID() }))), 401, 'invalid_client');
  });

  it('an assertion signed by a key not registered, and an unknown client', async () => {
    const stranger = await clientKey('ES384', key.publicJwk.kid);
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, stranger))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion(randomUUID(), key))), 401, 'invalid_client');
    expectOAuthError(await requestToken(tokenForm(await assertion('not-a-client', key))), 401, 'invalid_client');
  });

  it('a scope beyond the registration, or not a scope of this service (invalid_scope)', async () => {
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key), 'system/Patient.rs system/Observation.rs')), 400, 'invalid_scope');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key), 'patients:write')), 400, 'invalid_scope');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key), 'clinical:read lots:read')), 400, 'invalid_scope');
    // What the registration stands for, asked for as a service scope, is granted.
    const service = await requestToken(tokenForm(await assertion(client.clientId, key), 'patients:read'));
    expect(service.status).toBe(200);
    expect(service.body.scope).toBe('patients:read');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key), 'system/Patient.cruds')), 400, 'invalid_scope');
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key), 'launch/patient')), 400, 'invalid_scope');
  });

  it('a wrong or missing grant_type, a missing or other assertion type, a missing scope', async () => {
    const signed = () => assertion(client.clientId, key);
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), grant_type: 'authorization_code' }), 400, 'unsupported_grant_type');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), grant_type: undefined }), 400, 'invalid_request');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), client_assertion_type: undefined }), 401, 'invalid_client');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }), 401, 'invalid_client');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), client_assertion: undefined }), 401, 'invalid_client');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), scope: undefined }), 400, 'invalid_request');
    expectOAuthError(await requestToken({ ...tokenForm(await signed()), client_id: randomUUID() }), 401, 'invalid_client');
  });

  it('a body that is not a UTF-8 form, or repeats a parameter (invalid_request)', async () => {
    const json = await t.http.post('/auth/token').send(tokenForm(await assertion(client.clientId, key)));
    expectOAuthError(json, 415, 'invalid_request');
    const repeated = `${form(tokenForm(await assertion(client.clientId, key)))}&scope=system%2FProcedure.rs`;
    expectOAuthError(await t.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(repeated), 400, 'invalid_request');
    const badEscape = `${form(tokenForm(await assertion(client.clientId, key)))}&client_id=%E9`;
    expectOAuthError(await t.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(badEscape), 400, 'invalid_request');
    const latin1 = await t.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded; charset=iso-8859-1').send('grant_type=client_credentials');
    expectOAuthError(latin1, 415, 'invalid_request');
    const text = await t.http.post('/auth/token').set('content-type', 'text/plain').send('grant_type=client_credentials');
    expectOAuthError(text, 415, 'invalid_request');
    const huge = await t.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(`scope=${'a'.repeat(70_000)}`);
    expectOAuthError(huge, 413, 'invalid_request');
    const empty = await t.http.post('/auth/token');
    expectOAuthError(empty, 400, 'invalid_request');
  });

  it('every request when the service has no signing key (503 temporarily_unavailable)', async () => {
    const keyless = await t.another({ tokenIssuer: undefined });
    const res = await keyless.http.post('/auth/token').set('content-type', 'application/x-www-form-urlencoded').send(form(tokenForm(await assertion(client.clientId, key))));
    expectOAuthError(res, 503, 'temporarily_unavailable');
    expect((await keyless.http.get('/.well-known/jwks.json')).body).toEqual({ keys: [] });
  });
});

describe('a disabled client', () => {
  it('gets no token, and the token it holds stops working; enabled again, it gets tokens again', async () => {
    const key = await clientKey();
    const client = await registered(key);
    const issued = await requestToken(tokenForm(await assertion(client.clientId, key)));
    expect(issued.status).toBe(200);
    expect(issued.body.expires_in).toBeLessThanOrEqual(300);
    const accessToken = issued.body.access_token as string;
    expect((await t.http.get('/fhir/R4/Patient?_count=1').set(...bearer(accessToken))).status).toBe(200);

    const disabled = await t.http.patch(`/v1/clients/${client.clientId}`).set(...bearer(admin)).set('if-match', '"1"').send({ status: 'disabled' });
    expect(disabled.status, JSON.stringify(disabled.body)).toBe(200);
    expect(disabled.body).toMatchObject({ status: 'disabled', version: 2 });
    expect(disabled.headers.etag).toBe('"2"');

    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, key))), 401, 'invalid_client');
    expect((await t.http.get('/fhir/R4/Patient?_count=1').set(...bearer(accessToken))).status).toBe(401);

    const enabled = await t.http.patch(`/v1/clients/${client.clientId}`).set(...bearer(admin)).set('if-match', '"2"').send({ status: 'active' });
    expect(enabled.status).toBe(200);
    expect((await requestToken(tokenForm(await assertion(client.clientId, key)))).status).toBe(200);

    const audit = await t.pool.query<{ action: string }>(`select action from audit_events where resource_type = 'client' and resource_id = $1 order by id`, [client.clientId]);
    expect(audit.rows.map((r) => r.action)).toEqual(['create', 'state-change', 'state-change']);
  });
});

describe('registration', () => {
  it('changes keys with If-Match: the old key stops working, the new one works; 428 without If-Match, 412 when stale', async () => {
    const oldKey = await clientKey();
    const newKey = await clientKey('RS384');
    const client = await registered(oldKey);
    const path = `/v1/clients/${client.clientId}`;
    const got = await t.http.get(path).set(...bearer(admin));
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe('"1"');
    const missing = await t.http.patch(path).set(...bearer(admin)).send({ jwks: { keys: [newKey.publicJwk] } });
    expect(missing.status).toBe(428);
    const stale = await t.http.patch(path).set(...bearer(admin)).set('if-match', '"7"').send({ jwks: { keys: [newKey.publicJwk] } });
    expect(stale.status).toBe(412);
    const changed = await t.http.patch(path).set(...bearer(admin)).set('if-match', '"1"').send({ jwks: { keys: [newKey.publicJwk] }, name: 'Renamed' });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toMatchObject({ name: 'Renamed', version: 2, jwksUri: null });
    expectOAuthError(await requestToken(tokenForm(await assertion(client.clientId, oldKey))), 401, 'invalid_client');
    expect((await requestToken(tokenForm(await assertion(client.clientId, newKey)))).status).toBe(200);
    const both = await t.http.patch(path).set(...bearer(admin)).set('if-match', '"2"').send({ jwks: { keys: [newKey.publicJwk] }, jwksUri: 'https://keys.example.org/jwks.json' });
    expect(both.status).toBe(400);
    // A public address given as a literal: checked without DNS, and nothing is fetched until a token is asked for.
    const toUri = await t.http.patch(path).set(...bearer(admin)).set('if-match', '"2"').send({ jwksUri: 'https://93.184.216.34/jwks.json' });
    expect(toUri.status, JSON.stringify(toUri.body)).toBe(200);
    expect(toUri.body).toMatchObject({ jwksUri: 'https://93.184.216.34/jwks.json', jwks: null, version: 3 });
  });

  it('refuses private keys, both or neither of jwksUri and jwks, unknown scopes, weak or other keys (400)', async () => {
    const key = await clientKey();
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'priv' };
    const base = { name: 'Refused', scopes: ['system/Patient.rs'] };
    const cases: Record<string, unknown>[] = [
      { ...base, jwks: { keys: [privateJwk] } },
      { ...base, jwks: { keys: [key.publicJwk] }, jwksUri: 'https://keys.example.org/jwks.json' },
      { ...base },
      { ...base, jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.read'] },
      { ...base, jwks: { keys: [key.publicJwk] }, scopes: [] },
      { ...base, jwksUri: 'ftp://keys.example.org/jwks.json' },
      { ...base, jwksUri: 'https://keys.example.org/jwks json' },
      // RSA public exponents that let anyone sign (e = 1, e = 3), an even modulus.
      { ...base, jwks: { keys: [{ ...rsaJwk(), e: 'AQ' }] } },
      { ...base, jwks: { keys: [{ ...rsaJwk(), e: 'Aw' }] } },
      { ...base, jwks: { keys: [{ ...rsaJwk(), n: evenModulus(rsaJwk().n as string) }] } },
      { ...base, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } },
      { ...base, jwks: { keys: [{ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)) }] } },
      { ...base, jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }) }] } },
      { ...base, jwks: { keys: [{ ...key.publicJwk, x: key.publicJwk.y, y: key.publicJwk.x }] } },
      { ...base, jwks: { keys: [{ ...key.publicJwk, alg: 'ES256' }] } },
    ];
    for (const body of cases) {
      const res = await register(body);
      expect(res.status, JSON.stringify(body).slice(0, 200)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const withD = await register(cases[0]!);
    expect(withD.body.errors).toEqual([{ path: 'body.jwks.keys.0.d', message: 'unknown field' }]);
  });

  it('gives a client only scopes the registering token holds (403)', async () => {
    const key = await clientKey();
    const narrow = await t.token({ scope: 'clients:write patients:read', clinic });
    expect((await register({ name: 'Writer', jwks: { keys: [key.publicJwk] }, scopes: ['patients:write'] }, narrow)).status).toBe(403);
    expect((await register({ name: 'Reader', jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.rs'] }, narrow)).status).toBe(201);
    expect((await t.http.get('/v1/clients').set(...bearer(await t.token({ scope: 'patients:read', clinic })))).status).toBe(403);
  });

  it('keeps clinics apart: 404 for another clinic\'s client, lists its own; a token without clinic sees all', async () => {
    const key = await clientKey();
    const mine = await registered(key);
    const otherAdmin = await t.token({ scope: ADMIN_SCOPE, clinic: otherClinic });
    expect((await t.http.get(`/v1/clients/${mine.clientId}`).set(...bearer(otherAdmin))).status).toBe(404);
    expect((await t.http.patch(`/v1/clients/${mine.clientId}`).set(...bearer(otherAdmin)).set('if-match', '"1"').send({ status: 'disabled' })).status).toBe(404);
    expect((await register({ name: 'Theirs', jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.rs'], clinicId: clinic }, otherAdmin)).status).toBe(403);
    // In a POST body null means absent: the token's own clinic.
    const nullClinic = await register({ name: 'Everyone', jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.rs'], clinicId: null }, otherAdmin);
    expect(nullClinic.status).toBe(201);
    expect(nullClinic.body.clinicId).toBe(otherClinic);
    const theirs = await register({ name: 'Theirs', jwks: { keys: [key.publicJwk] }, scopes: ['system/Patient.rs'] }, otherAdmin);
    expect(theirs.status).toBe(201);
    expect(theirs.body.clinicId).toBe(otherClinic);

    const listed = await t.http.get('/v1/clients?limit=200').set(...bearer(otherAdmin));
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((c: { clientId: string }) => c.clientId).sort()).toEqual([nullClinic.body.clientId, theirs.body.clientId].sort());

    const supplier = await t.token({ scope: ADMIN_SCOPE, clinic: null });
    const all = await t.http.get('/v1/clients?limit=200').set(...bearer(supplier));
    const ids = all.body.items.map((c: { clientId: string }) => c.clientId);
    expect(ids).toEqual(expect.arrayContaining([mine.clientId, theirs.body.clientId]));
    const wide = await register({ name: 'Supplier-wide', jwks: { keys: [key.publicJwk] }, scopes: ['system/BiologicallyDerivedProduct.rs'] }, supplier);
    expect(wide.status).toBe(201);
    expect(wide.body.clinicId).toBeNull();
    const res = await requestToken(tokenForm(await assertion(wide.body.clientId, key), 'system/BiologicallyDerivedProduct.rs'));
    expect(res.status).toBe(200);
    expect(decodeJwt(res.body.access_token).clinic_id).toBeUndefined();
  });
});

describe('discovery', () => {
  it('publishes the SMART configuration, at the root and under the FHIR base', async () => {
    for (const path of ['/.well-known/smart-configuration', '/fhir/R4/.well-known/smart-configuration']) {
      const res = await t.http.get(path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({
        token_endpoint: TOKEN_URL,
        jwks_uri: `${BASE}/.well-known/jwks.json`,
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
        token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
        grant_types_supported: ['client_credentials'],
        capabilities: expect.arrayContaining(['client-confidential-asymmetric', 'permission-v2']),
        scopes_supported: expect.arrayContaining(['system/Patient.rs', 'system/Group.rs', 'system/*.rs', 'patients:read']),
      });
    }
  });

  it('publishes only public members of the signing key', async () => {
    const res = await t.http.get('/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.body.keys).toHaveLength(1);
    const [jwk] = res.body.keys as JWK[];
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-384', alg: 'ES384', use: 'sig', kid: expect.any(String) });
    expect(Object.keys(jwk!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('names SMART in the CapabilityStatement\'s rest.security, with the token URL', async () => {
    const res = await t.http.get('/fhir/R4/metadata');
    expect(res.status).toBe(200);
    const security = res.body.rest[0].security;
    expect(security.service[0].coding[0]).toMatchObject({ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' });
    expect(security.extension[0]).toEqual({
      url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
      extension: [{ url: 'token', valueUri: TOKEN_URL }],
    });
  });
});

describe('issuing is audited, and a jwksUri is held to the outbound URL rules', () => {
  it('each token issued is an audit entry naming the client, the scopes and the lifetime, never the token', async () => {
    const key = await clientKey('ES384');
    const client = await registered(key);
    const res = await requestToken(tokenForm(await assertion(client.clientId, key), 'system/Patient.rs'));
    expect(res.status).toBe(200);
    const auditor = await t.token({ scope: 'audit:read', clinic: null, sub: 'auditor' });
    const audit = await t.http.get('/v1/audit-events').query({ resourceType: 'access-token', actor: client.clientId }).set(...bearer(auditor));
    expect(audit.status).toBe(200);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({ action: 'create', clinicId: clinic, details: { clientId: client.clientId, scope: ['patients:read'], expiresIn: res.body.expires_in } });
    expect(JSON.stringify(audit.body)).not.toContain(res.body.access_token as string);
  });

  it('refuses a jwksUri on a loopback or private address under production settings (422 jwks-uri-refused), storing nothing', async () => {
    for (const jwksUri of ['https://127.0.0.1/jwks.json', 'https://localhost/jwks.json', 'https://[::1]/jwks.json', 'https://169.254.169.254/jwks.json', 'https://10.0.0.8/jwks.json']) {
      const res = await register({ name: `Remote ${uniq()}`, jwksUri, scopes: ['system/Patient.rs'] });
      expect(res.status, jwksUri).toBe(422);
      expect(res.body.code).toBe('jwks-uri-refused');
    }
  });

  it('fetches a jwksUri (a loopback server, allowed for development) and accepts assertions signed by its keys', async () => {
    const { createServer } = await import('node:http');
    const key = await clientKey('ES384');
    let fetched = 0;
    const server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.publicJwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dev = await createTestApp({ publicBaseUrl: BASE, webhooks: { allowPrivateUrls: true } });
    try {
      const devAdmin = await dev.token({ scope: ADMIN_SCOPE, clinic, sub: 'clinic-admin' });
      const port = (server.address() as { port: number }).port;
      const created = await dev.http.post('/v1/clients').set(...bearer(devAdmin)).send({ name: `Remote ${uniq()}`, jwksUri: `http://127.0.0.1:${port}/jwks.json`, scopes: ['system/Patient.rs'] });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const token = await dev.http
        .post('/auth/token')
        .set('content-type', 'application/x-www-form-urlencoded')
        .send(form(tokenForm(await assertion(created.body.clientId as string, key))));
      expect(token.status, JSON.stringify(token.body)).toBe(200);
      expect(fetched).toBe(1);
    } finally {
      await dev.close();
      server.close();
    }
  });
});

describe('what an integrator tried against the token endpoint (review findings)', () => {
  it('refuses an assertion without kid, a second authentication method (client_secret, Authorization) and http jwksUri in production', async () => {
    const key = await clientKey('ES384');
    const client = await registered(key);
    const noKid = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES384', typ: 'JWT' })
      .setIssuer(client.clientId)
      .setSubject(client.clientId)
      .setAudience(TOKEN_URL)
      .setExpirationTime(Math.floor(Date.now() / 1000) + 240)
      .setJti(randomUUID())
      .sign(key.privateKey);
    expectOAuthError(await requestToken(tokenForm(noKid)), 401, 'invalid_client');
    expectOAuthError(await requestToken({ ...tokenForm(await assertion(client.clientId, key)), client_secret: 'x' }), 400, 'invalid_request');
    const basic = await t.http
      .post('/auth/token')
      .set('content-type', 'application/x-www-form-urlencoded')
      .set('authorization', `Basic ${Buffer.from(`${client.clientId}:x`).toString('base64')}`)
      .send(form(tokenForm(await assertion(client.clientId, key))));
    expectOAuthError(basic, 400, 'invalid_request');
    const http = await register({ name: `Remote ${uniq()}`, jwksUri: 'http://93.184.216.34/jwks.json', scopes: ['system/Patient.rs'] });
    expect(http.status).toBe(422);
    expect(http.body.code).toBe('jwks-uri-refused');
  });

  it('a jwksUri that cannot be fetched, or serves only a forgeable key (e = 1), is invalid_client: never a 500 or 503', async () => {
    const { createServer } = await import('node:http');
    const forgeable: Record<string, unknown> = { ...rsaJwk(), e: 'AQ', alg: 'RS384' };
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [forgeable] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => resolve(port));
      });
    });
    const dev = await createTestApp({ publicBaseUrl: BASE, webhooks: { allowPrivateUrls: true } });
    try {
      const devAdmin = await dev.token({ scope: ADMIN_SCOPE, clinic, sub: 'clinic-admin' });
      const port = (server.address() as { port: number }).port;
      const key = await clientKey('RS384', forgeable.kid as string);
      for (const jwksUri of [`http://127.0.0.1:${port}/jwks.json`, `http://127.0.0.1:${closed}/jwks.json`]) {
        const created = await dev.http.post('/v1/clients').set(...bearer(devAdmin)).send({ name: `Remote ${uniq()}`, jwksUri, scopes: ['system/Patient.rs'] });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const res = await dev.http
          .post('/auth/token')
          .set('content-type', 'application/x-www-form-urlencoded')
          .send(form(tokenForm(await assertion(created.body.clientId as string, key))));
        expectOAuthError(res, 401, 'invalid_client');
      }
    } finally {
      await dev.close();
      server.close();
    }
  });
});
