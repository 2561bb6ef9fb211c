import { getHeapStatistics } from 'node:v8';
import type pg from 'pg';
import { buildApp } from './app.js';
import { signingKeyFromEnv, verifierFromEnv } from './auth/from-env.js';
import { EnvError, loadEnv, type Env } from './config/env.js';
import { createPool } from './db/client.js';
import { openEmbeddedDatabase } from './db/embedded-database.js';
import { migrateDatabase } from './db/migrate.js';
import { createLogger } from './shared/logger.js';

/** The process: configuration, database (embedded or DATABASE_URL), listen, and an ordered shutdown. */
const started = performance.now();
let env: Env;
try {
  env = loadEnv();
} catch (err) {
  if (err instanceof EnvError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
const log = createLogger(env.LOG_LEVEL);

let embedded: { url: string; port?: number; close: () => Promise<void> } | undefined;
let shuttingDown = false;

/** Resolves once no connection is checked out or awaited (twice in a row), or after `limitMs`. */
async function drained(pool: pg.Pool, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    quiet = pool.totalCount === pool.idleCount && pool.waitingCount === 0 ? quiet + 1 : 0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    const t0 = performance.now();
    embedded = await openEmbeddedDatabase(env.DATA_DIR, {
      log: (line) => log.debug({ postgres: line }, 'postgres'),
      onUnexpectedExit: (lines) => {
        if (shuttingDown) return;
        log.fatal({ lastLines: lines.slice(-10) }, 'the embedded PostgreSQL exited unexpectedly');
        process.exit(1);
      },
    });
    databaseUrl = embedded.url;
    log.info({ dataDir: env.DATA_DIR, port: embedded.port, ms: Math.round(performance.now() - t0) }, 'embedded PostgreSQL started');
  }
  await migrateDatabase(databaseUrl);
  const pool = createPool(
    databaseUrl,
    { max: env.DB_POOL_SIZE, connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS, statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS },
    log,
  );
  const { verify, mode, tokenIssuer } = await verifierFromEnv(env, await signingKeyFromEnv(env));
  const app = await buildApp({
    pool,
    verifyToken: verify,
    logger: log,
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    endotoxinLimitEuPerMl: env.ENDOTOXIN_LIMIT_EU_PER_ML,
    auditSealIntervalMs: env.AUDIT_SEAL_INTERVAL_MS,
    tokenIssuer,
    publicBaseUrl: env.PUBLIC_BASE_URL,
    webhooks: { allowPrivateUrls: env.WEBHOOK_ALLOW_PRIVATE_URLS, pollIntervalMs: env.WEBHOOK_POLL_INTERVAL_MS, attemptTimeoutMs: env.WEBHOOK_ATTEMPT_TIMEOUT_MS },
    bulk: { maxConcurrentJobs: env.BULK_MAX_CONCURRENT_JOBS, pollIntervalMs: env.BULK_POLL_INTERVAL_MS, leaseMs: env.BULK_LEASE_MS },
    safety: { pollIntervalMs: env.SAFETY_POLL_INTERVAL_MS },
  });
  await app.listen({ port: env.PORT, host: env.HOST });
  log.info(
    {
      auth: mode,
      database: embedded ? 'embedded' : 'external',
      startupMs: Math.round(performance.now() - started),
      // The V8 heap cap the process runs with (--max-old-space-size in the start scripts and the image; README "Memory").
      heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 1048576),
      docs: '/docs',
    },
    'ready',
  );
  if (!tokenIssuer) log.warn('AUTH_SIGNING_KEY_FILE is not set: POST /auth/token answers 503 (SMART Backend Services off)');
  if (mode === 'dev-keys') log.info('development keys: get a token with  npm run token -- --scope "patients:read patients:write" --clinic clinic-a');

  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'shutting down: draining requests');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    try {
      await app.close(); // stops accepting, waits for in-flight requests
      await drained(pool, 10_000); // handlers whose client went away may still be mid-query
      await pool.end();
      await embedded?.close();
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch(async (err: unknown) => {
  log.fatal({ err }, 'could not start');
  await embedded?.close().catch(() => undefined);
  process.exit(1);
});
