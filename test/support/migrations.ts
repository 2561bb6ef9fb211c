import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { expect, inject } from 'vitest';
import { migrationsFolder } from '../../src/db/migrate.js';
import { databaseUrl } from './database.js';

/** Runs `fn` with a client of its own on `url`, ended afterwards. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** An empty database of the test file's own; named after the run's template so the global teardown drops it too. */
export async function createEmptyDatabase(label: string): Promise<{ name: string; url: string }> {
  const name = `${inject('templateDatabase')}_${label}_${randomBytes(4).toString('hex')}`;
  await withClient(inject('adminDatabaseUrl'), async (admin) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`CREATE DATABASE ${name}`);
        return;
      } catch (err) {
        // "source database is being accessed by other users": template1 is being copied right now.
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  });
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  await withClient(inject('adminDatabaseUrl'), (admin) => admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`));
}

/**
 * Applies migrations 0000..`lastIdx` only: a copy of migrations/ without the later files and journal entries, run by
 * drizzle's migrator into the same migrations table, so a later full migrateDatabase applies only what follows.
 * `expectLater`: tags that must be among the migrations left out (the ones the test is about).
 */
export async function migrateThrough(url: string, lastIdx: number, expectLater: string[]): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'migrate-through-'));
  try {
    await fs.cp(migrationsFolder, dir, { recursive: true });
    const journalPath = path.join(dir, 'meta', '_journal.json');
    const journal = JSON.parse(await fs.readFile(journalPath, 'utf8')) as { entries: { idx: number; tag: string }[] };
    const later = journal.entries.filter((e) => e.idx > lastIdx);
    expect(later.map((e) => e.tag)).toEqual(expect.arrayContaining(expectLater));
    for (const e of later) await fs.rm(path.join(dir, `${e.tag}.sql`));
    journal.entries = journal.entries.filter((e) => e.idx <= lastIdx);
    await fs.writeFile(journalPath, JSON.stringify(journal, null, 2));
    await withClient(url, async (client) => {
      await client.query('SET client_min_messages = warning');
      await migrate(drizzle({ client }), { migrationsFolder: dir });
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
