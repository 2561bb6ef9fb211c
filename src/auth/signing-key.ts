import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

/**
 * The issuer of the access tokens this service signs itself (SMART Backend Services, POST /auth/token). Distinct
 * from AUTH_ISSUER (external tokens): the verifier picks the key by it, and config/env.ts refuses an AUTH_ISSUER equal to it.
 */
export const SELF_ISSUER = 'urn:exosome-records:smart';
/** Lifetime of an issued access token (s): a disabled client's tokens end within it on every instance. */
export const ACCESS_TOKEN_TTL_SEC = 300;

/** The private key that signs issued tokens, with its public half as published at /.well-known/jwks.json. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Public members only, with `kid` (its RFC 7638 thumbprint: the same on every instance sharing the key), `alg`, `use`. */
  publicJwk: JWK;
  alg: 'ES384' | 'ES256' | 'RS384' | 'EdDSA';
  kid: string;
}

/** ES384 for P-384, ES256 for P-256, RS384 for RSA of 2048 bits or more, EdDSA for Ed25519; anything else is refused. */
export async function signingKeyOf(privateKey: KeyObject, source = 'signing key'): Promise<SigningKey> {
  if (privateKey.type !== 'private') throw new Error(`${source}: not a private key`);
  const details = privateKey.asymmetricKeyDetails ?? {};
  let alg: SigningKey['alg'];
  if (privateKey.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') alg = 'ES384';
  else if (privateKey.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') alg = 'ES256';
  else if (privateKey.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) alg = 'RS384';
  else if (privateKey.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else throw new Error(`${source}: expected an EC P-384 or P-256, RSA (2048 bits or more) or Ed25519 private key`);
  const publicKey = createPublicKey(privateKey);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { privateKey, publicKey, publicJwk: { ...jwk, kid, alg, use: 'sig' }, alg, kid };
}

/** AUTH_SIGNING_KEY_FILE: a PEM (PKCS#8 or SEC1/PKCS#1) or JWK private key. */
export async function loadSigningKeyFile(file: string): Promise<SigningKey> {
  const text = (await fs.readFile(file, 'utf8')).trim();
  let key: KeyObject;
  try {
    key = text.startsWith('-----BEGIN') ? createPrivateKey(text) : createPrivateKey({ key: JSON.parse(text) as JWK & { kty: string }, format: 'jwk' });
  } catch {
    throw new Error(`${file}: not a PEM or JWK private key`);
  }
  return signingKeyOf(key, file);
}

/**
 * The development signing key under DATA_DIR/dev-auth, made once (ES384). It is written to a temporary file
 * and linked into place, so processes starting together on one data folder end up with the same key.
 */
export async function ensureDevSigningKey(dataDir: string): Promise<SigningKey> {
  const dir = path.join(path.resolve(dataDir), 'dev-auth');
  const file = path.join(dir, 'signing.private.jwk.json');
  try {
    return await loadSigningKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { privateKey } = await generateKeyPair('ES384', { extractable: true });
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${randomUUID()}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600 });
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
  return loadSigningKeyFile(file);
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
}

export interface TokenIssuer {
  issuer: string;
  key: SigningKey;
  /** A bearer token for a registered client: sub = client id, the granted service scopes, its clinic if any. */
  issue(claims: { sub: string; scope: string; clinicId: string | null }, now: Date): Promise<IssuedToken>;
}

/** Signs access tokens with the service's key; `audience` is the one the verifier expects (AUTH_AUDIENCE). */
export function createTokenIssuer(key: SigningKey, audience: string, issuer = SELF_ISSUER): TokenIssuer {
  return {
    issuer,
    key,
    async issue({ sub, scope, clinicId }, now) {
      const iat = Math.floor(now.getTime() / 1000);
      const token = await new SignJWT({ scope, ...(clinicId ? { clinic_id: clinicId } : {}) })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(sub)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ACCESS_TOKEN_TTL_SEC)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresIn: ACCESS_TOKEN_TTL_SEC };
    },
  };
}
