import type pg from 'pg';
import QueryStream from 'pg-query-stream';

/**
 * A read-only REPEATABLE READ transaction on a pooled connection of its own, for reads that outlive the pool's
 * timeouts: Bulk Data exports (modules/bulk) and report downloads (modules/traceability). Every statement and
 * cursor in it sees one snapshot.
 *
 * Timeouts: a suspended cursor keeps its statement's timer running until its last row, and pg's client-side read
 * timeout (the pool's `query_timeout`) covers a whole cursor, so both pool timeouts would end a long read. The
 * transaction sets its own statement and idle-in-transaction timeouts (SET LOCAL: the connection is back to the
 * pool's when it ends), and each cursor gets its own read timeout.
 */
export interface ReadSnapshot {
  /** The snapshot's connection, for single statements in it (counts, the snapshot's time). */
  readonly client: pg.PoolClient;
  /** The connection's error once it is lost (a restart, pg_terminate_backend); the snapshot is then unusable. */
  readonly lost: Error | undefined;
  /** A server-side cursor in the snapshot, started; pg's read timeout for it is `readTimeoutMs` (whole cursor). */
  cursor(text: string, values: unknown[], opts: { batchSize: number; highWaterMark?: number; readTimeoutMs: number; types?: pg.CustomTypesConfig }): QueryStream;
  /**
   * Ends the transaction, once, and gives the connection back: committed with `commit`, else rolled back (after
   * any cursor still closing: pg runs a connection's queries in order). With `err`, or once the connection was
   * lost, the connection is discarded with its transaction instead.
   */
  close(opts?: { commit?: boolean; err?: Error }): Promise<void>;
}

export interface ReadSnapshotOptions {
  /** The transaction's statement timeout (ms); 0: none. */
  statementTimeoutMs: number;
  /** How long the transaction may sit idle between statements (ms). */
  idleInTransactionMs: number;
  /** Told once when the connection is lost, so a reader can stop at once rather than wait for a reply. */
  onLost?: (err: Error) => void;
}

/** Opens a ReadSnapshot (see there); a failure to open gives the connection back discarded and is thrown. */
export async function openReadSnapshot(pool: pg.Pool, opts: ReadSnapshotOptions): Promise<ReadSnapshot> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error) => {
    if (lost) return;
    lost = err;
    opts.onLost?.(err);
  };
  client.on('error', onError);
  let closed = false;
  const snapshot: ReadSnapshot = {
    client,
    get lost() {
      return lost;
    },
    cursor(text, values, { batchSize, highWaterMark, readTimeoutMs, types }) {
      const stream = new QueryStream(text, values, { batchSize, highWaterMark, types });
      (stream as unknown as { query_timeout: number }).query_timeout = readTimeoutMs;
      return client.query(stream);
    },
    async close({ commit = false, err } = {}) {
      if (closed) return;
      closed = true;
      client.removeListener('error', onError);
      const failure = err ?? lost;
      if (failure) return client.release(failure);
      try {
        await client.query(commit ? 'commit' : 'rollback');
        client.release();
      } catch (e) {
        client.release(e as Error);
      }
    },
  };
  try {
    await client.query(
      `begin isolation level repeatable read read only; set local statement_timeout = ${Math.floor(opts.statementTimeoutMs)}; ` +
        `set local idle_in_transaction_session_timeout = ${Math.floor(opts.idleInTransactionMs)}`,
    );
  } catch (err) {
    await snapshot.close({ err: err as Error });
    throw err;
  }
  return snapshot;
}
