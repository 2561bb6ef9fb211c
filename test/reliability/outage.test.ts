import fs from 'node:fs/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.js';
import { migrateDatabase } from '../../src/db/migrate.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';
import { freePort, tempDataDir } from '../support/process.js';

let dir: string;
let server: EmbeddedPostgres | undefined;
let t: TestApp | undefined;
afterAll(async () => {
  await t?.close();
  await server?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const settings = { fsync: 'off', synchronous_commit: 'off' };

async function until(probe: () => Promise<boolean>, limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (await probe()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${limitMs} ms`);
}

describe('a database outage', () => {
  it('answers 503 problem+json fast while PostgreSQL is down (never hangs, never 500) and recovers without a restart', async () => {
    dir = await tempDataDir();
    const port = await freePort();
    server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query('create database outage');
    await admin.end();
    const url = server.urlFor('outage');
    await migrateDatabase(url);
    t = await createTestApp({ databaseUrl: url });
    const token = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
    const patient = (await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody())).body;
    expect((await t.http.get('/health/ready')).status).toBe(200);

    await server.stop();
    server = undefined;
    const readyDown = await until(async () => (await t!.http.get('/health/ready')).status === 503, 2000);
    const t0 = Date.now();
    const read = await t.http.get(`/v1/patients/${patient.id}`).set('authorization', `Bearer ${token}`);
    const readMs = Date.now() - t0;
    expect(read.status).toBe(503);
    expect(read.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(read.body.code).toBe('database-unavailable');
    expect(readMs).toBeLessThan(5000);
    const write = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody());
    expect(write.status).toBe(503);

    server = await startEmbeddedPostgres({ dataDir: dir, port, settings });
    const recovered = await until(async () => (await t!.http.get(`/v1/patients/${patient.id}`).set('authorization', `Bearer ${token}`)).status === 200, 15000);
    expect((await t.http.get('/health/ready')).status).toBe(200);
    expect((await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody())).status).toBe(201);
    process.stdout.write(`database outage: /health/ready 503 after ${readyDown} ms; a read answered 503 in ${readMs} ms; served again ${recovered} ms after PostgreSQL was back\n`);
  });
});
