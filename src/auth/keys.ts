import type { KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRemoteJWKSet, exportJWK, generateKeyPair, importJWK, importSPKI, type JWK, type JWTVerifyGetKey, type CryptoKey } from 'jose';

/** Asymmetric only. ES384 and RS384 are what SMART Backend Services clients sign with (and this service may issue with). */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'ES384', 'RS384'] as const;

export type VerificationKey = CryptoKey | KeyObject | JWTVerifyGetKey;

const DEV_ALG = 'ES256';

function devKeyPaths(dataDir: string) {
  const dir = path.join(path.resolve(dataDir), 'dev-auth');
  return { dir, privateKey: path.join(dir, 'private.jwk.json'), publicKey: path.join(dir, 'public.jwk.json') };
}

/**
 * The development key pair under the data folder, made on first use. Only used when no AUTH_* is set and
 * NODE_ENV is not production (config/env.ts refuses that combination).
 */
export async function ensureDevKeys(dataDir: string): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const paths = devKeyPaths(dataDir);
  try {
    const [priv, pub] = await Promise.all([fs.readFile(paths.privateKey, 'utf8'), fs.readFile(paths.publicKey, 'utf8')]);
    return { privateJwk: JSON.parse(priv) as JWK, publicJwk: JSON.parse(pub) as JWK };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey, publicKey } = await generateKeyPair(DEV_ALG, { extractable: true });
  const kid = `dev-${Date.now().toString(36)}`;
  const privateJwk = { ...(await exportJWK(privateKey)), alg: DEV_ALG, kid };
  const publicJwk = { ...(await exportJWK(publicKey)), alg: DEV_ALG, kid, use: 'sig' };
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  // Write the public key last: a reader that finds both files finds a matching pair.
  await fs.writeFile(paths.privateKey, JSON.stringify(privateJwk), { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await fs.writeFile(paths.publicKey, JSON.stringify(publicJwk), { mode: 0o644, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return ensureDevKeys(dataDir);
}

export async function devSigningKey(dataDir: string): Promise<{ key: CryptoKey; alg: string; kid?: string }> {
  const { privateJwk } = await ensureDevKeys(dataDir);
  return { key: (await importJWK(privateJwk, DEV_ALG)) as CryptoKey, alg: DEV_ALG, kid: privateJwk.kid };
}

/** A public key from a PEM (SPKI) or JWK file. Symmetric JWKs (`kty: oct`) are refused. */
export async function loadPublicKeyFile(file: string): Promise<CryptoKey> {
  const text = (await fs.readFile(file, 'utf8')).trim();
  if (text.startsWith('-----BEGIN')) {
    if (!text.includes('PUBLIC KEY')) throw new Error(`${file}: expected a PEM public key (SPKI)`);
    const errors: string[] = [];
    for (const alg of ALLOWED_ALGORITHMS) {
      try {
        return await importSPKI(text, alg);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw new Error(`${file}: not an RSA, P-256, P-384 or Ed25519 public key`);
  }
  const jwk = JSON.parse(text) as JWK;
  if (jwk.kty === 'oct') throw new Error(`${file}: symmetric keys are refused; use an asymmetric public key`);
  if (jwk.d) throw new Error(`${file}: holds a private key; give the service only the public key`);
  const alg = jwk.alg ?? (jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'OKP' ? 'EdDSA' : jwk.crv === 'P-384' ? 'ES384' : 'ES256');
  if (!(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) throw new Error(`${file}: algorithm ${alg} is not allowed`);
  return (await importJWK(jwk, alg)) as CryptoKey;
}

export function remoteJwks(url: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000 });
}

export async function devVerificationKey(dataDir: string): Promise<CryptoKey> {
  const { publicJwk } = await ensureDevKeys(dataDir);
  return (await importJWK(publicJwk, DEV_ALG)) as CryptoKey;
}
