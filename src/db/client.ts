import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import * as schema from './schema.js';

export type Db = NodePgDatabase<typeof schema>;
/** A transaction handle; queries functions take `Db | Tx` as their executor. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

export interface PoolOptions {
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

// int8 arrives as a string from pg; counts and particle numbers stay below 2^53 (CHECKed in SQL).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function createPool(connectionString: string, opts: PoolOptions, log?: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    statement_timeout: opts.statementTimeoutMs,
    idle_in_transaction_session_timeout: opts.statementTimeoutMs * 2,
    query_timeout: opts.statementTimeoutMs + 1000,
    application_name: 'exosome-records',
    keepAlive: true,
  });
  // An idle client's error (a restart, a failover) must not crash the process.
  pool.on('error', (err) => log?.warn({ err }, 'idle database client error'));
  return pool;
}

export function createDb(pool: pg.Pool): Db {
  return drizzle({ client: pool, schema });
}
