import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { handleConnectionLoss } from './connection-loss.js';
import { migrateDatabase } from './migrate.js';

/**
 * Logical backups without pg_dump (the embedded server ships none, and the system's client is older than
 * the server): one REPEATABLE READ snapshot, every table COPY'd in foreign-key order, and a manifest with
 * the schema version and row counts. Restore loads it into an empty database migrated to the same version.
 */
export const BACKUP_FORMAT = 'exosome-records-backup/1';

/**
 * Tables a migration itself fills (a singleton position, no clinical or audit row): an empty database has their
 * rows already, so a restore replaces them with the backup's instead of calling the database not empty.
 * `safety_monitor`: the safety counts' feed position (migration 0022), restored with the counts it belongs to.
 */
const SEEDED_BY_MIGRATIONS = new Set(['safety_monitor']);

interface Manifest {
  format: string;
  createdAt: string;
  migrations: number;
  tables: { name: string; rows: number; file: string }[];
}

/** Public tables, parents before children (foreign keys), so a restore can load them in order. */
async function tablesInOrder(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string; deps: string[] }>(`
    select c.relname::text as name,
           coalesce(array_agg(distinct p.relname::text) filter (where p.relname is not null and p.relname <> c.relname), '{}'::text[]) as deps
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    left join pg_constraint k on k.conrelid = c.oid and k.contype = 'f'
    left join pg_class p on p.oid = k.confrelid
    where n.nspname = 'public' and c.relkind in ('r', 'p')
    group by c.relname order by c.relname`);
  const deps = new Map(rows.map((r) => [r.name, new Set(r.deps)]));
  const ordered: string[] = [];
  while (deps.size) {
    const ready = [...deps].filter(([, d]) => [...d].every((x) => !deps.has(x))).map(([n]) => n);
    if (!ready.length) throw new Error(`foreign keys form a cycle among ${[...deps.keys()].join(', ')}`);
    for (const n of ready.sort()) {
      ordered.push(n);
      deps.delete(n);
    }
  }
  return ordered;
}

async function migrationCount(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
  return rows[0]!.n;
}

export async function backupDatabase(url: string, dir: string): Promise<Manifest> {
  await fsp.mkdir(dir, { recursive: true });
  if ((await fsp.readdir(dir)).length) throw new Error(`${dir} is not empty`);
  const client = handleConnectionLoss(new pg.Client({ connectionString: url, application_name: 'exosome-records-backup' }));
  await client.connect();
  try {
    // One snapshot for every table: the backup is consistent while the service keeps writing.
    await client.query('begin isolation level repeatable read read only');
    const manifest: Manifest = { format: BACKUP_FORMAT, createdAt: new Date().toISOString(), migrations: await migrationCount(client), tables: [] };
    for (const [i, name] of (await tablesInOrder(client)).entries()) {
      const file = `${String(i).padStart(3, '0')}-${name}.copy`;
      await pipeline(client.query(copyTo(`copy ${client.escapeIdentifier(name)} to stdout`)), fs.createWriteStream(path.join(dir, file)));
      const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${client.escapeIdentifier(name)}`);
      manifest.tables.push({ name, rows: rows[0]!.n, file });
    }
    await client.query('commit');
    await fsp.writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    await client.end();
  }
}

export async function restoreDatabase(url: string, dir: string): Promise<Manifest> {
  const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  if (manifest.format !== BACKUP_FORMAT) throw new Error(`${dir}: not a ${BACKUP_FORMAT} backup`);
  await migrateDatabase(url);
  const client = handleConnectionLoss(new pg.Client({ connectionString: url, application_name: 'exosome-records-restore' }));
  await client.connect();
  try {
    const migrations = await migrationCount(client);
    if (migrations !== manifest.migrations) {
      throw new Error(`the backup has ${manifest.migrations} migrations applied, this code ${migrations}: restore with the version that made it`);
    }
    for (const t of manifest.tables) {
      if (SEEDED_BY_MIGRATIONS.has(t.name)) continue;
      const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${client.escapeIdentifier(t.name)}`);
      if (rows[0]!.n > 0) throw new Error(`the target database is not empty (${t.name} has rows): restore into an empty database`);
    }
    await client.query('begin');
    for (const name of SEEDED_BY_MIGRATIONS) {
      if (manifest.tables.some((t) => t.name === name)) await client.query(`delete from ${client.escapeIdentifier(name)}`);
    }
    for (const t of manifest.tables) {
      const table = client.escapeIdentifier(t.name);
      // User triggers off while loading: the rows are restored as they were (sealing queue included),
      // not re-queued or refused. Foreign keys stay on; the order satisfies them.
      await client.query(`alter table ${table} disable trigger user`);
      await pipeline(fs.createReadStream(path.join(dir, t.file)), client.query(copyFrom(`copy ${table} from stdin`)));
      await client.query(`alter table ${table} enable trigger user`);
    }
    // Identity sequences continue after the restored ids.
    await client.query(`
      do $$ declare r record; begin
        for r in select c.relname as tbl, a.attname as col from pg_attribute a join pg_class c on c.oid = a.attrelid
                 join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and a.attidentity <> '' loop
          execute format('select setval(pg_get_serial_sequence(%L, %L), greatest(1, coalesce((select max(%I) from %I), 0)))', r.tbl, r.col, r.col, r.tbl);
        end loop;
      end $$`);
    await client.query('commit');
    for (const t of manifest.tables) {
      const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${client.escapeIdentifier(t.name)}`);
      if (rows[0]!.n !== t.rows) throw new Error(`${t.name}: restored ${rows[0]!.n} rows, the backup has ${t.rows}`);
    }
    return manifest;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}
