import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { signingKeyFromEnv, verifierFromEnv } from '../../src/auth/from-env.js';
import { ensureDevSigningKey, loadSigningKeyFile } from '../../src/auth/signing-key.js';
import { loadEnv } from '../../src/config/env.js';

const dirs: string[] = [];
async function tempDir() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'signing-key-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

describe('the signing key of the service\'s own tokens', () => {
  it('is made once under DATA_DIR in development, the same for processes starting together', async () => {
    const dir = await tempDir();
    const keys = await Promise.all([ensureDevSigningKey(dir), ensureDevSigningKey(dir), ensureDevSigningKey(dir)]);
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    expect(keys[0].alg).toBe('ES384');
    expect((await ensureDevSigningKey(dir)).kid).toBe(keys[0].kid);
    expect(Object.keys(keys[0].publicJwk)).not.toContain('d');
  });

  it('loads PEM and JWK private keys; refuses public keys and weak RSA', async () => {
    const dir = await tempDir();
    const pem = path.join(dir, 'ec.pem');
    await fs.writeFile(pem, generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    expect((await loadSigningKeyFile(pem)).alg).toBe('ES384');
    const rsa = path.join(dir, 'rsa.jwk.json');
    await fs.writeFile(rsa, JSON.stringify(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })));
    expect((await loadSigningKeyFile(rsa)).alg).toBe('RS384');
    const pub = path.join(dir, 'pub.pem');
    await fs.writeFile(pub, generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'pem', type: 'spki' }));
    await expect(loadSigningKeyFile(pub)).rejects.toThrow(/private key/);
    const weak = path.join(dir, 'weak.pem');
    await fs.writeFile(weak, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await expect(loadSigningKeyFile(weak)).rejects.toThrow(/2048/);
  });

  it('is optional in production (no token endpoint), and its tokens pass the same verifier as external ones', async () => {
    const dir = await tempDir();
    const prod = loadEnv({ NODE_ENV: 'production', DATABASE_URL: 'postgres://u:p@db/x', AUTH_PUBLIC_KEY_FILE: '/x.pem', AUTH_ISSUER: 'https://idp', AUTH_AUDIENCE: 'aud' });
    expect(await signingKeyFromEnv(prod)).toBeUndefined();
    expect(() => loadEnv({ AUTH_ISSUER: 'urn:exosome-records:smart' })).toThrow(/AUTH_ISSUER/);

    const dev = loadEnv({ NODE_ENV: 'development', DATA_DIR: dir });
    const { verify, tokenIssuer } = await verifierFromEnv(dev, await signingKeyFromEnv(dev));
    const { token } = await tokenIssuer!.issue({ sub: '01a22afd-2532-74ca-843f-ba2013534a42', scope: 'patients:read', clinicId: 'clinic-a' }, new Date());
    expect(decodeJwt(token).aud).toBe('exosome-records');
    const principal = await verify(`Bearer ${token}`);
    expect(principal).toMatchObject({ sub: '01a22afd-2532-74ca-843f-ba2013534a42', clinicId: 'clinic-a', clientId: '01a22afd-2532-74ca-843f-ba2013534a42' });
    // A token claiming the service's issuer but signed by another key is refused.
    const other = await verifierFromEnv(loadEnv({ NODE_ENV: 'development', DATA_DIR: await tempDir() }), await ensureDevSigningKey(await tempDir()));
    await expect(other.verify(`Bearer ${token}`)).rejects.toThrow(/not accepted/);
  });
});
