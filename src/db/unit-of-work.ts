import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from './client.js';
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
        const result = await fn(tx);
        if (idem) {
          await tx
            .update(idempotencyKeys)
            .set({ status: 201, body: result })
            .where(and(eq(idempotencyKeys.owner, idem.owner), eq(idempotencyKeys.key, idem.key)));
        }
        return result;
      });
    },
  };
}
