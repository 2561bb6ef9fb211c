import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportJWK } from 'jose';
import supertest from 'supertest';
import { createSigner, TEST_AUDIENCE, TEST_ISSUER, type Signer, type TestApp } from '../support/app.js';
import { cloneTemplateDatabase } from '../support/database.js';
import { startService, type ServiceProcess } from '../support/process.js';

/** Real service processes (src/server.ts) on a cloned test database, trusting a test key. */
export interface Cluster {
  databaseUrl: string;
  signer: Signer;
  env: Record<string, string>;
  start(extra?: Record<string, string>): Promise<ServiceProcess>;
  /** What the fixtures need, pointed at one process. */
  client(svc: ServiceProcess): TestApp;
  stopAll(): Promise<void>;
}

/** On a clone of the test template, or on `databaseUrl` (a database of another server, already there). */
export async function createCluster(opts: { databaseUrl?: string } = {}): Promise<Cluster> {
  const url = opts.databaseUrl ?? (await cloneTemplateDatabase()).url;
  const signer = await createSigner();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'exosome-keys-'));
  const keyFile = path.join(dir, 'public.jwk.json');
  await fs.writeFile(keyFile, JSON.stringify({ ...(await exportJWK(signer.publicKey)), alg: 'ES256' }));
  const env = {
    DATABASE_URL: url,
    AUTH_PUBLIC_KEY_FILE: keyFile,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    AUDIT_SEAL_INTERVAL_MS: '50',
    RATE_LIMIT_PER_MINUTE: '0',
  };
  const running: ServiceProcess[] = [];
  return {
    databaseUrl: url,
    signer,
    env,
    async start(extra = {}) {
      const svc = await startService({ ...env, ...extra });
      running.push(svc);
      return svc;
    },
    client(svc) {
      return { http: supertest(svc.url), token: (o: Parameters<Signer['token']>[0]) => signer.token(o) } as unknown as TestApp;
    },
    async stopAll() {
      await Promise.all(running.map((s) => s.stop('SIGKILL')));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
