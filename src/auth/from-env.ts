import { DEV_AUTH, type Env } from '../config/env.js';
import { devVerificationKey, loadPublicKeyFile, remoteJwks, type VerificationKey } from './keys.js';
import { createTokenVerifier, type TokenVerifier } from './verifier.js';

export type AuthMode = 'jwks' | 'public-key-file' | 'dev-keys';

/** The token verifier the configuration asks for. env.ts already refuses dev keys in production. */
export async function verifierFromEnv(env: Env): Promise<{ verify: TokenVerifier; mode: AuthMode }> {
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
  const verify = createTokenVerifier({
    key,
    issuer: env.AUTH_ISSUER ?? DEV_AUTH.issuer,
    audience: env.AUTH_AUDIENCE ?? DEV_AUTH.audience,
  });
  return { verify, mode };
}
