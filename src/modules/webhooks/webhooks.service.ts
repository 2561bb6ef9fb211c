import type { z } from 'zod';
import type { Db } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import { BadRequest, Forbidden, NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { toPage, type PageRequest } from '../../shared/paging.js';
import type { AuditLog } from '../audit/audit.service.js';
import { AddressRefused, resolveChecked, urlRefusal } from './address.js';
import { newSecret } from './signing.js';
import type { DeliveryDto, SubscriptionCreate, SubscriptionDto, SubscriptionPatch } from './webhooks.schemas.js';
import * as q from './webhooks.queries.js';

const RESOURCE = 'webhook-subscription';
/** How long the old secret keeps signing after a rotation. */
const PREVIOUS_SECRET_GRACE_MS = 24 * 3600_000;
/** Subscriptions a clinic (or the supplier) may keep, not counting disabled ones: deliveries share each instance's slots. */
export const MAX_SUBSCRIPTIONS_PER_TENANT = 25;
/** Most deliveries one replay queues. */
export const REPLAY_LIMIT = 10_000;

const iso = (d: Date | null) => d?.toISOString() ?? null;

const toSubscriptionDto = (s: q.SubscriptionRow): SubscriptionDto => ({
  id: s.id,
  url: s.url,
  types: s.types as SubscriptionDto['types'],
  description: s.description,
  parallel: s.parallel,
  status: s.status as SubscriptionDto['status'],
  disabledReason: s.disabledReason,
  failingSince: iso(s.failingSince),
  clinicId: s.clinicId,
  previousSecretExpiresAt: s.previousSecrets.at(-1)?.expiresAt ?? null,
  version: s.version,
  createdAt: s.createdAt.toISOString(),
  createdBy: s.createdBy,
  updatedAt: s.updatedAt.toISOString(),
});

function toDeliveryDto(d: q.DeliveryRow, eventType: string, attempts: q.AttemptRow[]): DeliveryDto {
  return {
    id: d.id,
    subscriptionId: d.subscriptionId,
    eventId: d.eventId,
    eventType: eventType as DeliveryDto['eventType'],
    cause: d.cause as DeliveryDto['cause'],
    status: d.status as DeliveryDto['status'],
    nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
    createdAt: d.createdAt.toISOString(),
    completedAt: iso(d.completedAt),
    attempts: attempts.map((a) => ({ attempt: a.attempt, at: a.at.toISOString(), statusCode: a.statusCode, latencyMs: a.latencyMs, error: a.error, succeeded: a.succeeded })),
  };
}

export interface WebhooksDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  clock: Clock;
  /** WEBHOOK_ALLOW_PRIVATE_URLS: http, loopback and private receivers (development and tests only). */
  allowPrivateUrls: boolean;
  /** The feed position of an event the clinic (null: anyone) may see, or undefined (the events module). */
  positionOf: (eventId: string, clinicId: string | null) => Promise<{ tx: string; seq: number } | undefined>;
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;

/** Webhook subscriptions (contract "Events and webhooks"): a clinic's own, or every one for a token without clinic. */
export function createWebhooksService({ db, uow, audit, clock, allowPrivateUrls, positionOf }: WebhooksDeps) {
  /**
   * 422 `webhook-url-refused` unless the URL is https and every address its host resolves to is public
   * (loopback, private, link-local, metadata and other special ranges are refused: address.ts). Delivery checks
   * the address again as it connects, so a name that later resolves elsewhere is refused then too.
   */
  async function checkUrl(raw: string): Promise<void> {
    const url = new URL(raw);
    const refused = urlRefusal(url, allowPrivateUrls) ?? (allowPrivateUrls ? undefined : await resolved(url.hostname));
    if (refused) {
      throw new RuleViolation('webhook-url-refused', `The webhook URL is refused: ${refused}.`, [{ path: 'body.url', message: refused }]);
    }
  }
  async function resolved(hostname: string): Promise<string | undefined> {
    try {
      await resolveChecked(hostname, false);
      return undefined;
    } catch (err) {
      if (err instanceof AddressRefused) return err.reason;
      throw err;
    }
  }

  async function owned(actor: Actor, id: string) {
    const row = await q.findSubscription(db, id, actor.clinicId);
    if (!row) throw new NotFound('webhook subscription');
    return row;
  }

  /**
   * A subscription the caller may change: its tenant's own. A token without clinic reads every clinic's
   * subscriptions but cannot change one (it could redirect a clinic's deliveries): 403 `clinic-subscription`.
   */
  function assertChangeable(actor: Actor, row: q.SubscriptionRow): void {
    if (row.clinicId !== actor.clinicId) {
      throw new Forbidden(`This subscription belongs to ${row.clinicId}; only that clinic's tokens change it.`, 'clinic-subscription');
    }
  }

  return {
    /** A new subscription of the caller's clinic (or of every event, for a token without clinic); its secret shown once. */
    async create(actor: Actor, input: z.output<typeof SubscriptionCreate>, idem?: IdempotencyRequest): Promise<SubscriptionDto & { secret: string }> {
      await checkUrl(input.url);
      return uow.run(async (tx) => {
        // Serializes creates of one tenant, so the limit holds under concurrent requests on any instance.
        if ((await q.lockTenantAndCount(tx, actor.clinicId)) >= MAX_SUBSCRIPTIONS_PER_TENANT) {
          throw new RuleViolation(
            'subscription-limit',
            `A clinic (or the supplier) keeps at most ${MAX_SUBSCRIPTIONS_PER_TENANT} subscriptions that are not disabled; pause is not enough, change an existing one's URL or types instead.`,
          );
        }
        const now = clock.now();
        const row = await q.insertSubscription(tx, {
          id: newId(),
          clinicId: actor.clinicId,
          url: input.url,
          types: input.types,
          description: input.description ?? null,
          parallel: input.parallel ?? false,
          status: 'active',
          secret: newSecret(),
          createdAt: now,
          createdBy: actor.sub,
          updatedAt: now,
          updatedBy: actor.sub,
        });
        await audit.record(tx, actor, { action: 'create', resourceType: RESOURCE, resourceId: row.id, clinicId: row.clinicId, details: { types: row.types } });
        return { ...toSubscriptionDto(row), secret: row.secret };
      }, idem);
    },

    async list(actor: Actor, page: PageRequest) {
      return toPage((await q.listSubscriptions(db, actor.clinicId, page)).map(toSubscriptionDto), page.limit);
    },

    /** 404 for another clinic's subscription. */
    async get(actor: Actor, id: string): Promise<SubscriptionDto> {
      return toSubscriptionDto(await owned(actor, id));
    },

    /**
     * Changes url, types, description, parallel or status (`paused` holds deliveries; `active` resumes, also a
     * subscription the service disabled, clearing its reason). 412 unless `expectedVersion` is current.
     */
    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof SubscriptionPatch>): Promise<SubscriptionDto> {
      if (patch.url !== undefined) await checkUrl(patch.url);
      return uow.run(async (tx) => {
        const current = await q.findSubscription(tx, id, actor.clinicId, true);
        if (!current) throw new NotFound('webhook subscription');
        assertChangeable(actor, current);
        if (current.version !== expectedVersion) {
          throw new PreconditionFailed(`The subscription is at version ${current.version}, not ${expectedVersion}; read it again and reapply your change.`);
        }
        const changes: Partial<q.SubscriptionRow> = {};
        if (patch.url !== undefined && patch.url !== current.url) changes.url = patch.url;
        if (patch.types !== undefined && JSON.stringify(patch.types) !== JSON.stringify(current.types)) changes.types = patch.types;
        if (patch.description !== undefined && patch.description !== current.description) changes.description = patch.description;
        if (patch.parallel !== undefined && patch.parallel !== current.parallel) changes.parallel = patch.parallel;
        if (patch.status !== undefined && patch.status !== current.status) {
          changes.status = patch.status;
          if (patch.status === 'active') Object.assign(changes, { disabledReason: null, failingSince: null });
        }
        if (Object.keys(changes).length === 0) return toSubscriptionDto(current);
        const row = await q.updateSubscription(tx, id, { ...changes, updatedAt: clock.now(), updatedBy: actor.sub });
        await audit.record(tx, actor, { action: 'update', resourceType: RESOURCE, resourceId: id, clinicId: row.clinicId, details: { changedFields: Object.keys(changes), version: row.version } });
        return toSubscriptionDto(row);
      });
    },

    /** A new secret, shown once; the old one keeps signing beside it for 24 h (receivers switch over meanwhile). */
    async rotateSecret(actor: Actor, id: string): Promise<SubscriptionDto & { secret: string }> {
      return uow.run(async (tx) => {
        const current = await q.findSubscription(tx, id, actor.clinicId, true);
        if (!current) throw new NotFound('webhook subscription');
        assertChangeable(actor, current);
        const now = clock.now();
        // Every replaced secret signs for 24 h after its rotation, also when rotations follow each other.
        const stillValid = current.previousSecrets.filter((p) => new Date(p.expiresAt) > now);
        const row = await q.updateSubscription(tx, id, {
          secret: newSecret(),
          previousSecrets: [...stillValid, { secret: current.secret, expiresAt: new Date(now.getTime() + PREVIOUS_SECRET_GRACE_MS).toISOString() }],
          updatedAt: now,
          updatedBy: actor.sub,
        });
        await audit.record(tx, actor, { action: 'update', resourceType: RESOURCE, resourceId: id, clinicId: row.clinicId, details: { changedFields: ['secret'], version: row.version } });
        return { ...toSubscriptionDto(row), secret: row.secret };
      });
    },

    /** The subscription's deliveries, newest first, each with every attempt (time, status code, latency, error). */
    async deliveries(actor: Actor, id: string, status: string | undefined, page: PageRequest<number>) {
      await owned(actor, id);
      const { rows, attempts } = await q.listDeliveries(db, id, status, page);
      const byDelivery = new Map<string, q.AttemptRow[]>();
      for (const a of attempts) byDelivery.set(a.deliveryId, [...(byDelivery.get(a.deliveryId) ?? []), a]);
      const page1 = toPage(rows, page.limit, (r) => String(r.d.seq));
      return { items: page1.items.map((r) => toDeliveryDto(r.d, r.eventType, byDelivery.get(r.d.id) ?? [])), nextKey: page1.nextKey };
    },

    /** Sends one delivery's event again, now (a new delivery, the same `webhook-id`); 404 for another's. */
    async retry(actor: Actor, id: string, deliveryId: string, idem?: IdempotencyRequest): Promise<DeliveryDto> {
      const sub = await owned(actor, id);
      assertChangeable(actor, sub);
      const found = await q.findDelivery(db, id, deliveryId);
      if (!found) throw new NotFound('delivery');
      return uow.run(async (tx) => {
        const row = await q.insertDelivery(tx, { id: newId(), subscriptionId: id, eventId: found.d.eventId, cause: 'retry' });
        await audit.record(tx, actor, { action: 'state-change', resourceType: RESOURCE, resourceId: id, clinicId: sub.clinicId, details: { retried: deliveryId, delivery: row.id } });
        return toDeliveryDto(row, found.eventType, []);
      }, idem);
    },

    /**
     * Queues again, in feed order, the events after `after` (an event id the subscription may see) that it
     * wants, up to where delivery has reached; at most REPLAY_LIMIT (continue after `lastEventId`).
     */
    async replay(actor: Actor, id: string, after: string, idem?: IdempotencyRequest) {
      const sub = await owned(actor, id);
      assertChangeable(actor, sub);
      const position = await positionOf(after, sub.clinicId);
      if (!position) throw new BadRequest('after is not the id of an event this subscription may receive.', [{ path: 'after', message: 'unknown event' }], 'invalid-cursor');
      return uow.run(async (tx) => {
        const locked = (await q.findSubscription(tx, id, actor.clinicId, true))!;
        const { count, lastEventId } = await q.replay(tx, locked, position, REPLAY_LIMIT);
        await audit.record(tx, actor, { action: 'state-change', resourceType: RESOURCE, resourceId: id, clinicId: sub.clinicId, details: { replayedAfter: after, replayed: count } });
        return { replayed: count, lastEventId, limit: REPLAY_LIMIT };
      }, idem);
    },
  };
}
