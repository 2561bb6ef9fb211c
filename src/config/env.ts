import { z } from 'zod';

/**
 * The only reader of process.env. Every variable is parsed here once, at start; a bad one stops the
 * process with a message naming it.
 */
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const intFrom = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);

export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: intFrom(3000, 0, 65535),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    DATABASE_URL: optionalString.pipe(z.url().optional()),
    DATA_DIR: z.string().trim().min(1).default('./.data'),
    DB_POOL_SIZE: intFrom(16, 1, 500),
    DB_CONNECT_TIMEOUT_MS: intFrom(5000, 100),
    DB_STATEMENT_TIMEOUT_MS: intFrom(15000, 100),
    REQUEST_TIMEOUT_MS: intFrom(30000, 1000),
    AUTH_JWKS_URL: optionalString.pipe(z.url().optional()),
    AUTH_PUBLIC_KEY_FILE: optionalString,
    AUTH_ISSUER: optionalString,
    AUTH_AUDIENCE: optionalString,
    /** The private key (PEM or JWK) that signs POST /auth/token's access tokens; unset outside production: made under DATA_DIR. */
    AUTH_SIGNING_KEY_FILE: optionalString,
    /** The service's public origin (https://records.example.org), for the token URL that client assertions name as `aud`. */
    PUBLIC_BASE_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    RATE_LIMIT_PER_MINUTE: intFrom(60000, 0),
    ENDOTOXIN_LIMIT_EU_PER_ML: z.coerce.number().positive().default(0.5),
    AUDIT_SEAL_INTERVAL_MS: intFrom(250, 0, 60_000),
    WEBHOOK_ALLOW_PRIVATE_URLS: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
    /** How often an idle instance looks for webhook deliveries to make; 0 leaves delivery to other instances. */
    WEBHOOK_POLL_INTERVAL_MS: intFrom(250, 0, 60_000),
    /** One delivery attempt's limit (the contract's 10 s; shorter only for tests). */
    WEBHOOK_ATTEMPT_TIMEOUT_MS: intFrom(10_000, 100, 60_000),
    /** FHIR Bulk Data export jobs running at once across every instance; more wait, queued. */
    BULK_MAX_CONCURRENT_JOBS: intFrom(2, 1, 64),
    /** How often an idle instance looks for an export job to run; 0 leaves running them to other instances. */
    BULK_POLL_INTERVAL_MS: intFrom(500, 0, 60_000),
    /** A running export's lease: another instance takes over a job whose runner died after it (shorter only for tests). */
    BULK_LEASE_MS: intFrom(30_000, 300, 600_000),
    /** How often an instance counts the event feed into the lot safety counts and judges signals; 0 leaves it to other instances. */
    SAFETY_POLL_INTERVAL_MS: intFrom(2000, 0, 600_000),
  })
  .superRefine((env, ctx) => {
    if (env.AUTH_JWKS_URL && env.AUTH_PUBLIC_KEY_FILE) {
      ctx.addIssue({ code: 'custom', path: ['AUTH_JWKS_URL'], message: 'set AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE, not both' });
    }
    const external = Boolean(env.AUTH_JWKS_URL || env.AUTH_PUBLIC_KEY_FILE);
    if (external || env.NODE_ENV === 'production') {
      if (!external) {
        ctx.addIssue({
          code: 'custom',
          path: ['AUTH_JWKS_URL'],
          message: 'production needs AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE (dev keys are refused in production)',
        });
      }
      if (!env.AUTH_ISSUER) ctx.addIssue({ code: 'custom', path: ['AUTH_ISSUER'], message: 'required with external keys and in production' });
      if (!env.AUTH_AUDIENCE) ctx.addIssue({ code: 'custom', path: ['AUTH_AUDIENCE'], message: 'required with external keys and in production' });
    }
    if (env.AUTH_ISSUER === 'urn:exosome-records:smart') {
      ctx.addIssue({ code: 'custom', path: ['AUTH_ISSUER'], message: 'urn:exosome-records:smart is the issuer of the service\'s own tokens; name the external issuer' });
    }
    if (env.PUBLIC_BASE_URL && /[?#]/.test(env.PUBLIC_BASE_URL)) {
      ctx.addIssue({ code: 'custom', path: ['PUBLIC_BASE_URL'], message: 'an origin with an optional path, no query or fragment' });
    }
    if (env.NODE_ENV === 'production' && env.WEBHOOK_ALLOW_PRIVATE_URLS) {
      ctx.addIssue({ code: 'custom', path: ['WEBHOOK_ALLOW_PRIVATE_URLS'], message: 'is for development and tests; production webhooks must be https to public addresses' });
    }
    if (env.NODE_ENV === 'production' && !env.DATABASE_URL) {
      ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'required in production (the embedded database is for development)' });
    }
  });

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const result = envSchema.safeParse(source);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new EnvError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Issuer and audience of the development key pair, used when no AUTH_* is configured. */
export const DEV_AUTH = { issuer: 'urn:exosome-records:dev', audience: 'exosome-records' } as const;
