import pg from 'pg';
import { handleConnectionLoss } from './connection-loss.js';
import { runningEmbeddedUrl, startEmbeddedPostgres, type EmbeddedPostgresOptions } from './embedded.js';

/** The database the service uses inside the embedded server. */
export const EMBEDDED_DATABASE = 'exosome_records';

/**
 * The embedded server's service database: started here (and created if new), or reached where a running
 * service already has it up (the folder lock forbids a second server). `close` stops only what was started.
 */
export async function openEmbeddedDatabase(
  dataDir: string,
  opts: Omit<EmbeddedPostgresOptions, 'dataDir'> & { reuseRunning?: boolean } = {},
): Promise<{ url: string; port?: number; close: () => Promise<void> }> {
  if (opts.reuseRunning) {
    const running = await runningEmbeddedUrl(dataDir, EMBEDDED_DATABASE);
    if (running) return { url: running, close: async () => undefined };
  }
  const embedded = await startEmbeddedPostgres({ ...opts, dataDir });
  try {
    const admin = handleConnectionLoss(new pg.Client({ connectionString: embedded.url }));
    await admin.connect();
    try {
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [EMBEDDED_DATABASE]);
      if (!rowCount) await admin.query(`create database ${admin.escapeIdentifier(EMBEDDED_DATABASE)}`);
    } finally {
      await admin.end();
    }
  } catch (err) {
    await embedded.stop();
    throw err;
  }
  return { url: embedded.urlFor(EMBEDDED_DATABASE), port: embedded.port, close: () => embedded.stop() };
}
