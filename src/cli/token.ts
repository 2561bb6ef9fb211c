import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { DEV_AUTH, EnvError, loadEnv } from '../config/env.js';
import { devSigningKey } from '../auth/keys.js';
import { SCOPES } from '../auth/principal.js';

/** Prints a development token signed by the local key under DATA_DIR. */
const usage = `Usage: npm run token -- --scope "patients:read patients:write" [--clinic clinic-a] [--sub alice] [--ttl 8h]
Scopes: ${SCOPES.join(' ')}`;

async function main() {
  const { values } = parseArgs({
    options: {
      scope: { type: 'string' },
      clinic: { type: 'string' },
      sub: { type: 'string', default: 'dev-user' },
      ttl: { type: 'string', default: '8h' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.scope) {
    process.stderr.write(`${usage}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const env = loadEnv();
  if (env.AUTH_JWKS_URL || env.AUTH_PUBLIC_KEY_FILE || env.NODE_ENV === 'production') {
    process.stderr.write('Dev tokens exist only without AUTH_* configuration and outside production: get a token from your identity provider.\n');
    process.exit(2);
  }
  const unknown = values.scope.split(' ').filter((s) => s && !(SCOPES as readonly string[]).includes(s));
  if (unknown.length) process.stderr.write(`warning: unknown scope(s) ${unknown.join(', ')}\n`);
  const { key, alg, kid } = await devSigningKey(env.DATA_DIR);
  const claims: Record<string, string> = { scope: values.scope };
  if (values.clinic) claims.clinic_id = values.clinic;
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setSubject(values.sub)
    .setIssuer(env.AUTH_ISSUER ?? DEV_AUTH.issuer)
    .setAudience(env.AUTH_AUDIENCE ?? DEV_AUTH.audience)
    .setIssuedAt()
    .setExpirationTime(values.ttl)
    .sign(key);
  process.stdout.write(`${token}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof EnvError ? err.message : String(err)}\n`);
  process.exit(1);
});
