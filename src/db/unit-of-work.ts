import { and, eq, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import type { Db, Executor, Tx } from './client.js';
import { idempotencyKeys } from './idempotency.table.js';
import { Conflict, RuleViolation, type AppError } from '../shared/errors.js';
import { pgCode } from './errors.js';
import { builder, part, rewritten, sqlOf, statement, type AnyPart, type Part, type Statement, type ValuesOf } from './statement.js';

export interface IdempotencyRequest {
  owner: string;
  key: string;
  fingerprint: string;
}

/**
 * The one idempotency claim, on both write paths: the key row inserted unless it exists. UnitOfWork.run
 * sends it first in its transaction (status 0, the result stored at commit); UnitOfWork.once writes it
 * in its statement with the finished result (status 201). A concurrent twin waits on the key's unique
 * index, then finds it taken.
 */
type Claim = IdempotencyRequest & { status: number; body: unknown };
const claim = part<Claim>(
  { owner: true, key: true, fingerprint: true, status: true, body: true },
  (p) => builder.insert(idempotencyKeys).values(p).onConflictDoNothing().returning({ key: idempotencyKeys.key }),
);
const claimStatement = statement(claim);

const stored = statement(
  part<{ owner: string; key: string }>({ owner: true, key: true }, (p) =>
    builder
      .select({ fingerprint: idempotencyKeys.fingerprint, body: idempotencyKeys.body })
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.owner, p.owner), eq(idempotencyKeys.key, p.key))),
  ),
);

/** A guard: boolean SQL (a part), or "the write named `returned` returned a row". */
export type Guard = AnyPart | { returned: string };

/** The values of a change: each write's and each guard part's values under its name. */
export type ChangeValues<W extends Record<string, AnyPart>, G extends Record<string, Guard>> = { [K in keyof W]: ValuesOf<W[K]> } & {
  [K in keyof G as G[K] extends AnyPart ? K : never]: ValuesOf<G[K]>;
};

export interface OnceStatement<V> {
  plain: Statement<V>;
  claiming: Statement<V & { idempotency_claim: Claim }>;
  /** Whether the statement answers the result (the prepared one completed in SQL) in its `result` column. */
  completes: boolean;
}

/** A change whose answer is completed by what its writes return (the vials a procedure claimed, say). */
export interface OnceOptions {
  /** The answer as SQL, from the prepared result's json (`prepared`); it is also what an idempotency key stores. */
  result?: (prepared: unknown) => SQLWrapper;
}

/**
 * The statement of a change written at once (see UnitOfWork.once), built once from named parts: `writes`
 * become data-modifying CTEs named by their keys; `guards` are checked in their order after them, and the
 * first that does not hold fails the statement with its name (guard_failed, SQLSTATE EG001). A query file
 * defines it from its own parts and the parts other modules' services hand it.
 */
export function onceStatement<W extends Record<string, AnyPart>, G extends Record<string, Guard>>(
  writes: W,
  guards: G,
  opts: OnceOptions = {},
): OnceStatement<ChangeValues<W, G>> {
  const result = opts.result;
  const change = (w: Record<string, AnyPart>, g: Record<string, Guard>): AnyPart => {
    const keys: Record<string, unknown> = result ? { result: true } : {};
    for (const [name, p] of Object.entries(w)) keys[name] = p.keys;
    for (const [name, p] of Object.entries(g)) if (!('returned' in p)) keys[name] = p.keys;
    const shaped = [...Object.values(w), ...Object.values(g)].some((p) => 'shaped' in p && p.shaped);
    return {
      keys,
      shaped,
      build: (p, present) => {
        const ctes = sql.join(Object.entries(w).map(([name, p]) => sql`${sql.identifier(name)} as (${sqlOf(p, `${name}.`, present)})`), sql`, `);
        const checks: SQL[] = Object.entries(g).map(([name, p]) => {
          const holds = 'returned' in p ? sql`exists (select 1 from ${sql.identifier(p.returned)})` : sqlOf(p, `${name}.`, present);
          return sql`when not (${holds}) then guard_failed(${name})`;
        });
        const answer = result ? sql`, ${result((p as { result: unknown }).result)} as result` : sql``;
        return sql`with ${ctes} select ${checks.length ? sql`case ${sql.join(checks, sql` `)} else true end` : sql`true`} as ok${answer}`;
      },
    };
  };
  type V = ChangeValues<W, G>;
  return {
    plain: statement(change(writes, guards) as unknown as Part<V>),
    // The claim goes first, so a concurrent twin waits on the key before writing anything. A claim whose answer
    // reads the writes (`result`) can only come after them: it is then the last write and the last guard, and
    // a twin that fails an earlier guard finds the stored answer all the same (UnitOfWork.once).
    claiming: statement(
      (result
        ? change({ ...writes, idempotency_claim: rewritten(claim, 'body', result) }, { ...guards, idempotency: { returned: 'idempotency_claim' } })
        : change({ idempotency_claim: claim, ...writes }, { idempotency: { returned: 'idempotency_claim' }, ...guards })) as unknown as Part<
        V & { idempotency_claim: Claim }
      >,
    ),
    completes: result !== undefined,
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
  /** A guard's answer to the client; undefined when the change should be prepared again (the reads went stale). */
  refused?: Record<string, () => Promise<AppError | undefined>>;
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

type Deferred = SQLWrapper & PromiseLike<unknown> & { getSQL(): SQL };
const deferred = new WeakMap<object, Deferred[]>();

/**
 * Writes a statement whose result nobody reads (an audit entry, a version, a row built in full by the
 * service). Inside a unit of work it is deferred and sent with the others as one statement just before
 * COMMIT (same transaction, same order, one round trip); outside one it runs at once. Only for inserts that
 * cannot conflict: an error surfaces at the flush, not at the call.
 */
export async function write(exec: Executor, statement: Deferred): Promise<void> {
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
  const [row] = await stored.run(exec, idem);
  if (!row) return undefined;
  if (row.fingerprint !== idem.fingerprint) {
    throw new RuleViolation('idempotency-key-reused', 'This Idempotency-Key was already used for a different request; use a new key for a new request.');
  }
  return { body: row.body };
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

/** Writes the change; answers its result (as the statement completed it, when it does). */
async function writeOnce<T, V>(db: Db, change: OnceChange<T, V>, idem?: IdempotencyRequest): Promise<T> {
  const values = change.statement.completes ? { ...change.values, result: change.result } : change.values;
  const [row] = idem
    ? await change.statement.claiming.run(db, { ...values, idempotency_claim: { ...idem, status: 201, body: change.result } })
    : await change.statement.plain.run(db, values);
  return change.statement.completes ? (row!.result as T) : change.result;
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
          return await writeOnce(db, change, idem);
        } catch (err) {
          const guard = failedGuard(err);
          if (guard === undefined) throw err;
          // A refusal may wait for concurrent writers to finish (a claim counting vials), so it is asked first;
          // then, with a key, a twin of this request that committed meanwhile answers instead.
          const refusal = guard === 'idempotency' ? undefined : await change.refused?.[guard]?.();
          if (idem) {
            const stored = await storedResult(db, idem);
            if (stored) return stored.body as typeof change.result;
          }
          if (refusal) throw refusal;
          if (attempt >= ONCE_ATTEMPTS) {
            throw new Conflict('The records this change depends on kept changing while it was written; send it again.', 'concurrent-change');
          }
        }
      }
    },

    run(fn, idem) {
      return db.transaction(async (tx) => {
        if (idem) {
          const claimed = await claimStatement.run(tx, { ...idem, status: 0, body: {} });
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
