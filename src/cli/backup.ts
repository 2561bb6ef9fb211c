import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadEnv } from '../config/env.js';
import { backupDatabase, restoreDatabase } from '../db/backup.js';
import { openEmbeddedDatabase } from '../db/embedded-database.js';

/**
 * npm run backup [-- --out DIR]   writes a consistent backup of DATABASE_URL, or of the embedded database
 *                                 (reached through a running service, or started for the purpose)
 * npm run restore -- --from DIR   loads a backup into an empty database (DATABASE_URL or embedded)
 */
const [command] = process.argv.slice(2, 3);
const { values } = parseArgs({ args: process.argv.slice(3), options: { out: { type: 'string' }, from: { type: 'string' } } });

async function main() {
  const env = loadEnv();
  const db = env.DATABASE_URL ? { url: env.DATABASE_URL, close: async () => undefined } : await openEmbeddedDatabase(env.DATA_DIR, { reuseRunning: true });
  try {
    if (command === 'backup') {
      const dir = path.resolve(values.out ?? path.join('backups', new Date().toISOString().replace(/[:.]/g, '-')));
      const manifest = await backupDatabase(db.url, dir);
      const rows = manifest.tables.reduce((n, t) => n + t.rows, 0);
      process.stdout.write(`backup written to ${dir}: ${manifest.tables.length} tables, ${rows.toLocaleString('en')} rows\n`);
    } else if (command === 'restore') {
      if (!values.from) throw new Error('usage: npm run restore -- --from <backup folder>');
      const manifest = await restoreDatabase(db.url, path.resolve(values.from));
      process.stdout.write(`restored ${manifest.tables.length} tables from ${values.from} (backup of ${manifest.createdAt})\n`);
    } else {
      throw new Error('usage: backup.ts backup|restore');
    }
  } finally {
    await db.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
