import type { Db, Executor } from '../../db/client.js';
import { write } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import { BadRequest } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { EventType } from './vocabulary.js';
import * as q from './events.queries.js';

export type { EventType } from './vocabulary.js';

/**
 * A change worth telling (contract "Events and webhooks"). `data` holds ids, codes and statuses only: never
 * names, birth dates, MRNs or free text (a receiver fetches what it may see, and that read is audited).
 */
export interface NewEvent {
  type: EventType;
  /** The clinic whose record changed; null for supplier events (lots, donors). */
  clinicId: string | null;
  subject: { type: string; id: string };
  /** For supplier events: the lots it concerns (a clinic sees it when one of them was shipped to it). */
  lotIds?: string[];
  data: Record<string, string | number | boolean | null | string[]>;
}

const toInsert = (e: NewEvent): q.EventInsert => ({
  id: newId(),
  type: e.type,
  clinicId: e.clinicId,
  subjectType: e.subject.type,
  subjectId: e.subject.id,
  lotIds: e.lotIds ?? [],
  data: e.data,
});

/** The transactional outbox: how services say what happened, in the transaction that made it happen. */
export interface EventLog {
  /** Appends events with the caller's executor, so they commit or roll back with the change (deferred like audit entries). */
  emit(exec: Executor, ...events: NewEvent[]): Promise<void>;
  /** One event as a part of a change written in one statement (UnitOfWork.once): values `{ event }`, from `values`. */
  part: typeof q.eventPart;
  values(event: NewEvent): { event: q.EventInsert };
}

export function createEventLog(): EventLog {
  /**
   * The rows of a transaction's one deferred events insert, in emit order. Deferred writes go as CTEs of one
   * statement, and PostgreSQL runs those in no promised order: each emit adding its own insert could number a
   * later event before an earlier one (a recall's notices before the recall). One insert numbers its rows in order.
   */
  const queued = new WeakMap<Executor, q.EventInsert[]>();
  return {
    async emit(exec, ...list) {
      if (list.length === 0) return;
      const rows = list.map(toInsert);
      const open = queued.get(exec);
      if (open) {
        open.push(...rows);
        return;
      }
      let sent = false;
      const insert = () => {
        sent = true;
        return q.eventsInsert(exec, rows);
      };
      // Built when it is sent, so it carries the rows later emits of the same transaction add.
      await write(exec, { getSQL: () => insert().getSQL(), then: (ok, fail) => insert().then(ok, fail) });
      // Not sent yet: deferred to the transaction's end (UnitOfWork.run), where later events join it.
      if (!sent) queued.set(exec, rows);
    },
    part: q.eventPart,
    values: (event) => ({ event: toInsert(event) }),
  };
}

/** An event as the feed and webhooks show it. */
export interface EventDto {
  id: string;
  type: EventType;
  occurredAt: string;
  clinicId: string | null;
  subject: { type: string; id: string };
  data: Record<string, unknown>;
}

export const toEventDto = (e: q.EventRow): EventDto => ({
  id: e.id,
  type: e.type as EventType,
  occurredAt: e.occurredAt.toISOString(),
  clinicId: e.clinicId,
  subject: { type: e.subjectType, id: e.subjectId },
  data: e.data,
});

export type EventFeed = ReturnType<typeof createEventFeed>;

/** The pull feed: `GET /events`. */
export function createEventFeed({ db }: { db: Db }) {
  return {
    /** The feed position of an event a reader of `clinicId` (null: anyone) may see; undefined otherwise. */
    positionOf: (id: string, clinicId: string | null) => q.positionOf(db, id, clinicId),

    /**
     * Events the caller may see after the event `after` (an id from an earlier page or a webhook), in feed order
     * (events.table.ts), at most `limit`. `nextCursor` is the id of the last event returned, or `after` when there
     * is nothing new yet: a client keeps it and asks again. 400 `invalid-cursor` for an id it cannot see.
     */
    async list(actor: Actor, query: { after?: string; types?: EventType[]; limit: number }): Promise<{ items: EventDto[]; nextCursor: string | null }> {
      let after: { tx: string; seq: number } | undefined;
      if (query.after) {
        after = await q.positionOf(db, query.after, actor.clinicId);
        if (!after) {
          throw new BadRequest('after is not the id of an event this token can see.', [{ path: 'query.after', message: 'unknown event' }], 'invalid-cursor');
        }
      }
      const rows = await q.feed(db, { clinicId: actor.clinicId, after, types: query.types, limit: query.limit });
      const items = rows.map(toEventDto);
      return { items, nextCursor: items.at(-1)?.id ?? query.after ?? null };
    },
  };
}
