import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { handleConnectionLoss } from './connection-loss.js';

/** src/db and dist/db both sit two levels below the project root. */
export const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url));

// Any constant works; it only has to be the same for every instance of this service.
const MIGRATION_LOCK = 7_314_201_118;

/**
 * Applies pending migrations. drizzle's migrator takes no lock, so concurrent starts of several instances
 * serialize on a session advisory lock held by this dedicated connection.
 */
export async function migrateDatabase(connectionString: string): Promise<void> {
  // A lost connection fails the migration (the start fails and says why), it does not crash the process.
  const client = handleConnectionLoss(new pg.Client({ connectionString, application_name: 'exosome-records-migrate' }));
  await client.connect();
  try {
    await client.query('SET client_min_messages = warning');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await migrate(drizzle({ client }), { migrationsFolder });
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    await client.end();
  }
}
