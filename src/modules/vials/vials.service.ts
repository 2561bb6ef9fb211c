import type { z } from 'zod';
import type { Db, Executor, Tx } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { Forbidden, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { effectiveTime } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { DiscardCreate, DiscardDto, ShipmentCreate, ShipmentDto } from './vials.schemas.js';
import * as vq from './vials.queries.js';

const toShipmentDto = (s: vq.ShipmentRow): ShipmentDto => ({
  id: s.id,
  lotId: s.lotId,
  clinicId: s.clinicId,
  vials: s.vials,
  shippedAt: s.shippedAt.toISOString(),
  recordedBy: s.recordedBy,
  recordedAt: s.recordedAt.toISOString(),
});

const toDiscardDto = (d: vq.DiscardRow): DiscardDto => ({
  id: d.id,
  lotId: d.lotId,
  clinicId: d.clinicId,
  vials: d.vials,
  reason: d.reason,
  discardedAt: d.discardedAt.toISOString(),
  recordedBy: d.recordedBy,
  recordedAt: d.recordedAt.toISOString(),
});

export interface VialsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  clock: Clock;
  /** The lot a movement concerns: its counts, and locked with its status at an instant for a shipment. */
  lots: Pick<LotsService, 'counts' | 'lockWithStatusAt'>;
}

export type VialsService = ReturnType<typeof createVialsService>;

/** A clinic's token acts only for its own clinic; a supplier token (no clinic_id) for any. */
function assertOwnClinic(actor: Actor, clinicId: string) {
  if (actor.clinicId && actor.clinicId !== clinicId) {
    throw new Forbidden(`This token acts for ${actor.clinicId}; it cannot move vials of ${clinicId}.`, 'clinic-mismatch');
  }
}

export function createVialsService({ db, uow, audit, clock, lots }: VialsDeps) {
  /** The lot's vial counts (404 for an unknown lot). */
  const existingLot = (id: string) => lots.counts(id);

  return {
    async ship(actor: Actor, lotId: string, input: z.output<typeof ShipmentCreate>, idem?: IdempotencyRequest): Promise<ShipmentDto> {
      assertOwnClinic(actor, input.clinicId);
      const shippedAt = effectiveTime(clock, input.shippedAt, 'shippedAt');
      return uow.run(async (tx) => {
        // The lot row lock orders shipments against status changes of the same lot, on every instance.
        const { lot, status } = await lots.lockWithStatusAt(tx, lotId, shippedAt);
        if (status !== 'released') {
          throw new RuleViolation('lot-not-released', `The lot was ${status ?? 'not yet recorded'} at ${shippedAt.toISOString()}; only a released lot ships.`);
        }
        if (shippedAt.toISOString().slice(0, 10) > lot.expiresOn) {
          throw new RuleViolation('lot-expired', `The lot expired on ${lot.expiresOn}.`);
        }
        if (!(await vq.addShipped(tx, lotId, input.clinicId, input.vials))) {
          throw new RuleViolation(
            'insufficient-vials',
            `Only ${lot.vialCount - lot.vialsShipped} of the lot's ${lot.vialCount} vials are unshipped; ${input.vials} requested.`,
            [{ path: 'body.vials', message: 'more than remain unshipped' }],
          );
        }
        const row = await vq.insertShipment(tx, { id: newId(), lotId, clinicId: input.clinicId, vials: input.vials, shippedAt, recordedBy: actor.sub, recordedAt: clock.now() });
        await audit.record(tx, actor, { action: 'create', resourceType: 'shipment', resourceId: row.id, clinicId: input.clinicId, details: { lotId, vials: input.vials } });
        return toShipmentDto(row);
      }, idem);
    },

    async discard(actor: Actor, lotId: string, input: z.output<typeof DiscardCreate>, idem?: IdempotencyRequest): Promise<DiscardDto> {
      assertOwnClinic(actor, input.clinicId);
      const discardedAt = effectiveTime(clock, input.discardedAt, 'discardedAt');
      await existingLot(lotId);
      return uow.run(async (tx) => {
        if (!(await vq.takeFromStock(tx, lotId, input.clinicId, input.vials, 'discarded'))) {
          const [stock] = await vq.stockOf(tx, lotId, input.clinicId);
          const onHand = stock ? stock.shipped - stock.administered - stock.discarded : 0;
          throw new RuleViolation('insufficient-vials', `${input.clinicId} holds ${onHand} vial(s) of this lot on hand; cannot discard ${input.vials}.`, [
            { path: 'body.vials', message: 'more than on hand' },
          ]);
        }
        const row = await vq.insertDiscard(tx, {
          id: newId(),
          lotId,
          clinicId: input.clinicId,
          vials: input.vials,
          reason: input.reason,
          discardedAt,
          recordedBy: actor.sub,
          recordedAt: clock.now(),
        });
        await audit.record(tx, actor, { action: 'create', resourceType: 'discard', resourceId: row.id, clinicId: input.clinicId, details: { lotId, vials: input.vials } });
        return toDiscardDto(row);
      }, idem);
    },

    /** Takes vials used by a procedure off the clinic's hand: a named part of its statement, returning a row, none when short. */
    administered: vq.administeredPart,

    returnToStock(tx: Tx, lotId: string, clinicId: string, vials: number) {
      return vq.returnAdministered(tx, lotId, clinicId, vials);
    },

    async onHand(exec: Executor, lotId: string, clinicId: string): Promise<number> {
      const [s] = await vq.stockOf(exec, lotId, clinicId);
      return s ? s.shipped - s.administered - s.discarded : 0;
    },

    async shipments(actor: Actor, lotId: string, page: PageRequest) {
      await existingLot(lotId);
      return toPage((await vq.listShipments(db, lotId, actor.clinicId, page)).map(toShipmentDto), page.limit);
    },

    async discards(actor: Actor, lotId: string, page: PageRequest) {
      await existingLot(lotId);
      return toPage((await vq.listDiscards(db, lotId, actor.clinicId, page)).map(toDiscardDto), page.limit);
    },

    async inventory(actor: Actor, lotId: string) {
      const lot = await existingLot(lotId);
      const stock = await vq.stockOf(db, lotId, actor.clinicId);
      return {
        lotId,
        vialCount: lot.vialCount,
        vialsShipped: lot.vialsShipped,
        vialsUnshipped: lot.vialCount - lot.vialsShipped,
        clinics: stock.map((s) => ({
          clinicId: s.clinicId,
          shipped: s.shipped,
          administered: s.administered,
          discarded: s.discarded,
          onHand: s.shipped - s.administered - s.discarded,
        })),
      };
    },
  };
}
