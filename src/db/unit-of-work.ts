import { and, eq, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Db, Executor, Tx } from './client.js';
import { idempotencyKeys } from './idempotency.table.js';
import { Conflict, RuleViolation, type AppError } from '../shared/errors.js';
import { pgCode } from './errors.js';
import { builder, compiled, type Compiled } from './compiled.js';

export interface IdempotencyRequest {
  owner: string;
  key: string;
  fingerprint: string;
}

/**
 * The statement of a change written at once (see UnitOfWork.once), compiled once: `writes` become
 * data-modifying CTEs named by their keys; `guards` are boolean SQL over the database and those CTEs,
 * checked in order after them. Build both from the stand-in values `v` (see compiled()).
 */
export interface OnceShape {
  writes: Record<string, Statement>;
  guards?: [name: string, holds: SQL][];
}

export interface OnceStatement<V> {
  plain: Compiled<V>;
  claiming: Compiled<V & { idem: IdempotencyRequest & { body: unknown } }>;
}

export function onceStatement<V extends object>(build: (v: V) => OnceShape): OnceStatement<V> {
  const statement = (shape: OnceShape) => {
    const ctes = sql.join(Object.entries(shape.writes).map(([name, s]) => sql`${sql.raw(name)} as (${s.getSQL()})`), sql`, `);
    const guards = shape.guards ?? [];
    const checks = guards.length
      ? sql`case ${sql.join(guards.map(([name, holds]) => sql`when not (${holds}) then guard_failed(${name})`), sql` `)} else true end`
      : sql`true`;
    return sql`with ${ctes} select ${checks} as ok`;
  };
  return {
    plain: compiled<V>((v) => statement(build(v))),
    claiming: compiled<V & { idem: IdempotencyRequest & { body: unknown } }>((v) => {
      const shape = build(v);
      // Claimed with the finished result: a concurrent twin waits on the key's unique index, then finds it taken.
      const claim = v.idem;
      return statement({
        writes: {
          idempotency_claim: builder
            .insert(idempotencyKeys)
            .values({ owner: claim.owner, key: claim.key, fingerprint: claim.fingerprint, status: 201, body: claim.body })
            .onConflictDoNothing()
            .returning({ key: idempotencyKeys.key }),
          ...shape.writes,
        },
        guards: [['idempotency', sql`exists (select 1 from idempotency_claim)`], ...(shape.guards ?? [])],
      });
    }),
  };
}

/**
 * A change judged on plain reads: the statement that writes it with the values of this request,
 * `refused` to turn a guard that does not hold into the client's answer (a guard without one means the
 * reads went stale, and the change is prepared again), and the result to answer with.
 */
export interface OnceChange<T, V> {
  statement: OnceStatement<V>;
  values: V;
  refused?: Record<string, () => Promise<AppError>>;
  result: T;
}

export interface UnitOfWork {
  /** One transaction. With an idempotency key: a retry gets the stored result and creates nothing. */
  run<T>(fn: (tx: Tx) => Promise<T>, idempotency?: IdempotencyRequest): Promise<T>;
  /**
   * A create whose checks are reads: `prepare` reads and judges without a transaction (throwing the 4xx a
   * rule gives) and returns the rows to write; the writes, the idempotency claim and the guards that
   * re-check at write time what a concurrent request could have changed since the reads (stock, a lot's
   * status, consent) go as one statement, atomic without BEGIN and COMMIT: two round trips instead of six.
   */
  once<T, V>(prepare: () => Promise<OnceChange<T, V>>, idempotency?: IdempotencyRequest): Promise<T>;
}

/** Times a change is prepared again when its reads went stale before it could be written. */
const ONCE_ATTEMPTS = 3;
const GUARD_FAILED = 'EG001';

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

/** The stored answer of an idempotency key (undefined if none yet); 422 when the key was used for another request. */
async function storedResult(exec: Executor, idem: IdempotencyRequest): Promise<{ body: unknown } | undefined> {
  const [stored] = await exec
    .select({ fingerprint: idempotencyKeys.fingerprint, body: idempotencyKeys.body })
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.owner, idem.owner), eq(idempotencyKeys.key, idem.key)));
  if (!stored) return undefined;
  if (stored.fingerprint !== idem.fingerprint) {
    throw new RuleViolation('idempotency-key-reused', 'This Idempotency-Key was already used for a different request; use a new key for a new request.');
  }
  return { body: stored.body };
}

/** The guard that did not hold, from the statement's error (EG001, detail = guard name). */
function failedGuard(err: unknown): string | undefined {
  if (pgCode(err) !== GUARD_FAILED) return undefined;
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const detail = (e as { detail?: unknown }).detail;
    if (typeof detail === 'string') return detail;
  }
  return undefined;
}

async function writeOnce<V>(db: Db, change: OnceChange<unknown, V>, idem?: IdempotencyRequest): Promise<void> {
  if (idem) await change.statement.claiming.run(db, { ...change.values, idem: { ...idem, body: change.result } });
  else await change.statement.plain.run(db, change.values);
}

/**
 * The key row is claimed first, inside the creating transaction. A concurrent retry's INSERT waits on the
 * unique index until the first commits (then it reads the stored result) or rolls back (then it proceeds
 * itself): twenty parallel retries create one record, with any number of instances on one database.
 */
export function createUnitOfWork(db: Db): UnitOfWork {
  return {
    async once(prepare, idem) {
      if (idem) {
        const stored = await storedResult(db, idem);
        if (stored) return stored.body as Awaited<ReturnType<typeof prepare>>['result'];
      }
      for (let attempt = 1; ; attempt++) {
        const change = await prepare();
        try {
          await writeOnce(db, change, idem);
          return change.result;
        } catch (err) {
          const guard = failedGuard(err);
          if (guard === undefined) throw err;
          if (guard === 'idempotency' && idem) {
            const stored = await storedResult(db, idem);
            if (stored) return stored.body as typeof change.result;
          }
          const refused = change.refused?.[guard];
          if (refused) throw await refused();
          if (attempt >= ONCE_ATTEMPTS) {
            throw new Conflict('The records this change depends on kept changing while it was written; send it again.', 'concurrent-change');
          }
        }
      }
    },

    run(fn, idem) {
      return db.transaction(async (tx) => {
        if (idem) {
          const claimed = await tx
            .insert(idempotencyKeys)
            .values({ owner: idem.owner, key: idem.key, fingerprint: idem.fingerprint, status: 0, body: {} })
            .onConflictDoNothing()
            .returning({ key: idempotencyKeys.key });
          if (claimed.length === 0) {
            const stored = await storedResult(tx, idem);
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
