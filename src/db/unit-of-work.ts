import { and, eq, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Db, Executor, Tx } from './client.js';
import { idempotencyKeys } from './idempotency.table.js';
import { RuleViolation } from '../shared/errors.js';

export interface IdempotencyRequest {
  owner: string;
  key: string;
  fingerprint: string;
}

export interface UnitOfWork {
  /** One transaction. With an idempotency key: a retry gets the stored result and creates nothing. */
  run<T>(fn: (tx: Tx) => Promise<T>, idempotency?: IdempotencyRequest): Promise<T>;
}

type Statement = SQLWrapper & PromiseLike<unknown> & { getSQL(): SQL };
const deferred = new WeakMap<object, Statement[]>();

/**
 * Writes a statement whose result nobody reads (an audit entry, a version, a row built in full by the
 * service). Inside a unit of work it is deferred and sent with the others as one statement just before
 * COMMIT (same transaction, same order, one round trip); outside one it runs at once. Only for inserts that
 * cannot conflict: an error surfaces at the flush, not at the call.
 */
export async function write(exec: Executor, statement: Statement): Promise<void> {
  const queue = deferred.get(exec);
  if (queue) queue.push(statement);
  else await statement;
}

async function flush(tx: Tx): Promise<void> {
  const queue = deferred.get(tx) ?? [];
  deferred.delete(tx);
  if (queue.length === 0) return;
  if (queue.length === 1) {
    await queue[0];
    return;
  }
  // Data-modifying CTEs all run, in one statement and one snapshot.
  const ctes = sql.join(
    // getSQL(): an embedded builder would be parenthesized, which PostgreSQL refuses for INSERT in WITH.
    queue.map((s, i) => sql`${sql.raw(`w${i}`)} as (${s.getSQL()})`),
    sql`, `,
  );
  await tx.execute(sql`with ${ctes} select 1`);
}

/**
 * The key row is claimed first, inside the creating transaction. A concurrent retry's INSERT waits on the
 * unique index until the first commits (then it reads the stored result) or rolls back (then it proceeds
 * itself): twenty parallel retries create one record, with any number of instances on one database.
 */
export function createUnitOfWork(db: Db): UnitOfWork {
  return {
    run(fn, idem) {
      return db.transaction(async (tx) => {
        if (idem) {
          const claimed = await tx
            .insert(idempotencyKeys)
            .values({ owner: idem.owner, key: idem.key, fingerprint: idem.fingerprint, status: 0, body: {} })
            .onConflictDoNothing()
            .returning({ key: idempotencyKeys.key });
          if (claimed.length === 0) {
            const [stored] = await tx
              .select()
              .from(idempotencyKeys)
              .where(and(eq(idempotencyKeys.owner, idem.owner), eq(idempotencyKeys.key, idem.key)));
            if (stored && stored.fingerprint !== idem.fingerprint) {
              throw new RuleViolation(
                'idempotency-key-reused',
                'This Idempotency-Key was already used for a different request; use a new key for a new request.',
              );
            }
            if (stored) return stored.body as Awaited<ReturnType<typeof fn>>;
          }
        }
        deferred.set(tx, []);
        const result = await fn(tx);
        if (idem) {
          await write(
            tx,
            tx
              .update(idempotencyKeys)
              .set({ status: 201, body: result })
              .where(and(eq(idempotencyKeys.owner, idem.owner), eq(idempotencyKeys.key, idem.key))),
          );
        }
        await flush(tx);
        return result;
      });
    },
  };
}
