import { DEV_AUTH, type Env } from '../config/env.js';
import { devVerificationKey, loadPublicKeyFile, remoteJwks, type VerificationKey } from './keys.js';
import { createTokenIssuer, ensureDevSigningKey, loadSigningKeyFile, type SigningKey, type TokenIssuer } from './signing-key.js';
import { createTokenVerifier, type TokenVerifier } from './verifier.js';

export type AuthMode = 'jwks' | 'public-key-file' | 'dev-keys';

/**
 * The key that signs the access tokens of POST /auth/token: AUTH_SIGNING_KEY_FILE; unset outside production, one
 * made once under DATA_DIR/dev-auth (shared by every process on that folder); unset in production, none (the
 * token endpoint then answers 503 and everything else works as before).
 */
export async function signingKeyFromEnv(env: Env): Promise<SigningKey | undefined> {
  if (env.AUTH_SIGNING_KEY_FILE) return loadSigningKeyFile(env.AUTH_SIGNING_KEY_FILE);
  if (env.NODE_ENV === 'production') return undefined;
  return ensureDevSigningKey(env.DATA_DIR);
}

/**
 * The token verifier the configuration asks for (env.ts already refuses dev keys in production), and the
 * issuer of the service's own tokens when there is a signing key: the verifier accepts those too.
 */
export async function verifierFromEnv(env: Env, signingKey?: SigningKey): Promise<{ verify: TokenVerifier; mode: AuthMode; tokenIssuer?: TokenIssuer }> {
  let key: VerificationKey;
  let mode: AuthMode;
  if (env.AUTH_JWKS_URL) {
    key = remoteJwks(env.AUTH_JWKS_URL);
    mode = 'jwks';
  } else if (env.AUTH_PUBLIC_KEY_FILE) {
    key = await loadPublicKeyFile(env.AUTH_PUBLIC_KEY_FILE);
    mode = 'public-key-file';
  } else {
    key = await devVerificationKey(env.DATA_DIR);
    mode = 'dev-keys';
  }
  const audience = env.AUTH_AUDIENCE ?? DEV_AUTH.audience;
  const tokenIssuer = signingKey ? createTokenIssuer(signingKey, audience) : undefined;
  const verify = createTokenVerifier({
    key,
    issuer: env.AUTH_ISSUER ?? DEV_AUTH.issuer,
    audience,
    selfIssued: tokenIssuer ? { key: tokenIssuer.key.publicKey, issuer: tokenIssuer.issuer, algorithms: [tokenIssuer.key.alg] } : undefined,
  });
  return { verify, mode, tokenIssuer };
}
