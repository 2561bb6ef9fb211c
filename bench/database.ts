import pg from 'pg';
import { loadEnv } from '../src/config/env.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';

/** DATABASE_URL if set, otherwise the embedded PostgreSQL under the data folder (as `npm start` uses). */
export async function openDatabase(dataDir?: string): Promise<{ url: string; close: () => Promise<void> }> {
  const env = loadEnv();
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, close: async () => undefined };
  const embedded = await startEmbeddedPostgres({
    dataDir: dataDir ?? env.DATA_DIR,
    settings: { shared_buffers: '512MB', max_wal_size: '4GB', checkpoint_timeout: '15min', max_connections: '300' },
  });
  const admin = new pg.Client({ connectionString: embedded.url });
  await admin.connect();
  const { rowCount } = await admin.query("select 1 from pg_database where datname = 'exosome_records'");
  if (!rowCount) await admin.query('create database exosome_records');
  await admin.end();
  return { url: embedded.urlFor('exosome_records'), close: () => embedded.stop() };
}
