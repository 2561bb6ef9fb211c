import { createHash } from 'node:crypto';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { Logger } from 'pino';
import { handleConnectionLoss } from './connection-loss.js';

/** drizzle over the pool; queries name their tables, so no schema object is attached (no relational API). */
export type Db = NodePgDatabase;
/** A transaction handle; queries functions take `Db | Tx` as their executor. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;
/** The pg pool, for what drizzle does not do (a cursor streamed to a response). */
export type Pool = pg.Pool;

export interface PoolOptions {
  max: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

// int8 arrives as a string from pg; counts and particle numbers stay below 2^53 (CHECKed in SQL).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * Every parameterized query gets a statement name derived from its text, so PostgreSQL parses and plans it
 * once per connection instead of on every execution. Query texts are the fixed shapes the code builds
 * (lists travel as one array parameter), so the set of names stays small; past the cap a new text runs
 * unnamed rather than growing every connection's statement cache.
 */
const STATEMENT_CAP = 2000;
const statementNames = new Map<string, string>();
export function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (!name && statementNames.size < STATEMENT_CAP) {
    name = `s_${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

function prepareParameterizedQueries(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, values?: unknown, callback?: unknown) => {
    // drizzle passes `name: undefined` when a query has none: test the value, not the key.
    if (config && typeof config === 'object' && 'text' in config && !(config as { name?: string }).name && !('submit' in config)) {
      const c = config as { text: string; values?: unknown[] };
      const params = Array.isArray(values) ? values : c.values;
      const name = params && params.length > 0 ? statementName(c.text) : undefined;
      if (name) return query({ ...c, name }, values, callback);
    }
    return query(config, values, callback);
  };
}

/**
 * drizzle's transaction() sends BEGIN before the try/finally that releases its pooled client (drizzle-orm
 * issue 6241, open for 0.45.x): a BEGIN that fails, as it does on a connection lost just after checkout,
 * would keep the client checked out for good, one pool slot fewer each time until nothing is served. Release
 * it here with the error, so the pool discards it; a later release of the same checkout becomes a no-op.
 */
function releaseOnFailedBegin(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (config: unknown, values?: unknown, callback?: unknown) => {
    const result = query(config, values, callback);
    const text = typeof config === 'string' ? config : config && typeof config === 'object' ? (config as { text?: unknown }).text : undefined;
    if (typeof text !== 'string' || !/^\s*begin\b/i.test(text) || !(result instanceof Promise)) return result;
    return result.catch((err: unknown) => {
      const release = client.release.bind(client);
      client.release = () => undefined;
      release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    });
  };
}

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
  // Every client, idle or checked out, survives the loss of its connection (a restart, a failover).
  pool.on('connect', (client) => {
    handleConnectionLoss(client, (err) => log?.warn({ err }, 'database connection lost'));
    prepareParameterizedQueries(client);
    releaseOnFailedBegin(client);
  });
  // The pool re-emits an idle client's error after discarding it; the client's own listener has logged it.
  pool.on('error', () => undefined);
  return pool;
}

const pools = new WeakMap<object, pg.Pool>();

export function createDb(pool: pg.Pool): Db {
  const db = drizzle({ client: pool });
  pools.set(db, pool);
  return db;
}

/** The pool under a Db made by createDb (undefined for a transaction), for statements sent to pg directly. */
export function poolOf(exec: Executor): pg.Pool | undefined {
  return pools.get(exec);
}

/**
 * The type parsing drizzle's node-postgres session applies to `execute` (dates, timestamps and intervals
 * and their arrays stay text, for the column types to parse), so rows read straight from pg map the same.
 */
const TEXT_TYPES = new Set<number>([pg.types.builtins.TIMESTAMPTZ, pg.types.builtins.TIMESTAMP, pg.types.builtins.DATE, pg.types.builtins.INTERVAL, 1231, 1115, 1185, 1187, 1182]);
export const rowTypes: pg.CustomTypesConfig = {
  getTypeParser: ((typeId: number, format?: 'text' | 'binary'): unknown =>
    TEXT_TYPES.has(typeId) ? (value: string) => value : (pg.types.getTypeParser(typeId, format) as unknown)) as pg.CustomTypesConfig['getTypeParser'],
};
