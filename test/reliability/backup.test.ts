import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { verifyChain, sealAll } from '../../src/modules/audit/audit.queries.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { cloneTemplateDatabase } from '../support/database.js';
import { clinicSetup, procedureBody } from '../support/fixtures.js';

const root = path.resolve(import.meta.dirname, '../..');
let t: TestApp;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'exosome-backup-'));
});
afterAll(async () => {
  await t.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const cli = (args: string[], databaseUrl: string) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/backup.ts', ...args], { cwd: root, env: { ...process.env, DATABASE_URL: databaseUrl } });

async function tableCounts(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query<{ relname: string }>("select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and relkind = 'r' order by 1");
  const out: Record<string, number> = {};
  for (const { relname } of rows) out[relname] = (await c.query<{ n: number }>(`select count(*)::int as n from "${relname}"`)).rows[0]!.n;
  await c.end();
  return out;
}

describe('backup and restore', () => {
  it('round-trips a database through npm run backup and npm run restore: same rows, a valid audit chain, a working service', async () => {
    const s = await clinicSetup(t);
    for (let i = 0; i < 5; i++) await t.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id));
    await sealAll(createDb(t.pool));

    const out = path.join(dir, 'b1');
    const backup = await cli(['backup', '--out', out], t.databaseUrl);
    expect(backup.stdout).toMatch(/backup written to .*: \d+ tables/);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'manifest.json'), 'utf8'));
    expect(manifest.format).toBe('exosome-records-backup/1');

    const target = await cloneTemplateDatabase();
    const restore = await cli(['restore', '--from', out], target.url);
    expect(restore.stdout).toMatch(/restored \d+ tables/);
    const [before, after] = [await tableCounts(t.databaseUrl), await tableCounts(target.url)];
    expect(after).toEqual(before);
    expect(after.procedures).toBe(5);

    // The chain verifies on the copy, and the copy serves and keeps chaining.
    const restored = await createTestApp({ databaseUrl: target.url });
    try {
      const chain = await verifyChain(createDb(restored.pool));
      expect(chain.firstInvalid).toBeNull();
      expect(chain.checked).toBeGreaterThan(10);
      const read = await restored.http.get(`/v1/patients/${s.patientId}`).set('authorization', `Bearer ${await restored.token({ scope: 'patients:read', clinic: 'clinic-a' })}`);
      expect(read.status).toBe(200);
      const auditor = await restored.token({ scope: 'audit:read', clinic: null });
      expect((await restored.http.get('/v1/audit-events/verify').set('authorization', `Bearer ${auditor}`)).body).toMatchObject({ valid: true, notInChain: 0 });
    } finally {
      await restored.close();
    }

    // Restoring twice is refused: the target must be empty.
    await expect(cli(['restore', '--from', out], target.url)).rejects.toThrow(/not empty/);
  });
});
