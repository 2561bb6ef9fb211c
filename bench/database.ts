import { loadEnv } from '../src/config/env.js';
import { openEmbeddedDatabase } from '../src/db/embedded-database.js';

/** DATABASE_URL if set, otherwise the embedded PostgreSQL under the data folder (as `npm start` uses). */
export async function openDatabase(dataDir?: string): Promise<{ url: string; close: () => Promise<void> }> {
  const env = loadEnv();
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, close: async () => undefined };
  return openEmbeddedDatabase(dataDir ?? env.DATA_DIR, {
    settings: { shared_buffers: '512MB', max_wal_size: '4GB', checkpoint_timeout: '15min', max_connections: '300' },
  });
}
