import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { SignJWT, generateKeyPair, type CryptoKey } from 'jose';
import type pg from 'pg';
import supertest from 'supertest';
import { buildApp, type AppOptions } from '../../src/app.js';
import { createTokenVerifier } from '../../src/auth/verifier.js';
import { createTokenIssuer, signingKeyOf, type SigningKey, type TokenIssuer } from '../../src/auth/signing-key.js';
import { generateKeyPairSync } from 'node:crypto';
import { createPool } from '../../src/db/client.js';
import { createLogger } from '../../src/shared/logger.js';
import type { Clock } from '../../src/shared/clock.js';
import { cloneTemplateDatabase } from './database.js';

export const TEST_ISSUER = 'https://issuer.test';
export const TEST_AUDIENCE = 'exosome-records-test';

export interface TokenOptions {
  scope: string;
  clinic?: string | null;
  sub?: string;
  expiresIn?: string | number;
  issuer?: string;
  audience?: string;
}

export interface Signer {
  publicKey: CryptoKey;
  token(opts: TokenOptions): Promise<string>;
  /** A token with exactly these claims besides iss, aud and exp (for claims of the wrong type). */
  raw(claims: Record<string, unknown>): Promise<string>;
}

export async function createSigner(): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  return {
    publicKey,
    async token({ scope, clinic = 'clinic-a', sub = 'tester', expiresIn = '10m', issuer = TEST_ISSUER, audience = TEST_AUDIENCE }) {
      const claims: Record<string, string> = { scope };
      if (clinic) claims.clinic_id = clinic;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256' })
        .setSubject(sub)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime(expiresIn)
        .sign(privateKey);
    },
    raw: (claims) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(TEST_ISSUER).setAudience(TEST_AUDIENCE).setExpirationTime('10m').sign(privateKey),
  };
}

export interface TestApp {
  app: FastifyInstance;
  http: ReturnType<typeof supertest>;
  pool: pg.Pool;
  databaseUrl: string;
  signer: Signer;
  /** Signs the app's own access tokens (POST /auth/token); undefined when made with `signingKey: null`. */
  tokenIssuer?: TokenIssuer;
  logLines: string[];
  token(opts: TokenOptions): Promise<string>;
  /** A second app instance on the same database (another "service instance"). */
  another(overrides?: Partial<AppOptions>): Promise<{ app: FastifyInstance; http: ReturnType<typeof supertest> }>;
  close(): Promise<void>;
}

/** A real app on this file's own cloned database, with tokens from a test key. */
export async function createTestApp(
  opts: {
    clock?: Clock;
    rateLimitPerMinute?: number;
    databaseUrl?: string;
    auditSealIntervalMs?: number;
    webhooks?: AppOptions['webhooks'];
    /** FHIR Bulk Data export jobs (default: no polling; tests drive `app.bulkWorker.tick()`). */
    bulk?: AppOptions['bulk'];
    /** The key that signs the app's own tokens (SMART Backend Services): default a fresh ES384 key; null: none (the token endpoint answers 503). */
    signingKey?: SigningKey | null;
    publicBaseUrl?: string;
  } = {},
): Promise<TestApp> {
  const databaseUrl = opts.databaseUrl ?? (await cloneTemplateDatabase()).url;
  const pool = createPool(databaseUrl, { max: 20, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
  const signer = await createSigner();
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const signingKey = opts.signingKey === undefined ? await signingKeyOf(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey) : opts.signingKey;
  const tokenIssuer = signingKey ? createTokenIssuer(signingKey, TEST_AUDIENCE) : undefined;
  const verifyToken = createTokenVerifier({
    key: signer.publicKey,
    issuer: TEST_ISSUER,
    audience: TEST_AUDIENCE,
    selfIssued: tokenIssuer ? { key: tokenIssuer.key.publicKey, issuer: tokenIssuer.issuer, algorithms: [tokenIssuer.key.alg] } : undefined,
  });
  const base: AppOptions = {
    pool,
    verifyToken,
    logger: createLogger('info', sink),
    clock: opts.clock,
    rateLimitPerMinute: opts.rateLimitPerMinute ?? 0,
    auditSealIntervalMs: opts.auditSealIntervalMs ?? 0,
    webhooks: opts.webhooks,
    bulk: opts.bulk,
    tokenIssuer,
    publicBaseUrl: opts.publicBaseUrl,
  };
  const app = await buildApp(base);
  await app.ready();
  const others: FastifyInstance[] = [];
  const pools: pg.Pool[] = [pool];
  return {
    app,
    http: supertest(app.server),
    pool,
    databaseUrl,
    signer,
    tokenIssuer,
    logLines,
    token: (t) => signer.token(t),
    async another(overrides = {}) {
      const otherPool = createPool(databaseUrl, { max: 20, connectTimeoutMs: 3000, statementTimeoutMs: 10000 });
      pools.push(otherPool);
      const other = await buildApp({ ...base, pool: otherPool, ...overrides });
      await other.ready();
      others.push(other);
      return { app: other, http: supertest(other.server) };
    },
    async close() {
      await Promise.all([app.close(), ...others.map((o) => o.close())]);
      await Promise.all(pools.map((p) => p.end()));
    },
  };
}
