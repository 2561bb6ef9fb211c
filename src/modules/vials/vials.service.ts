import type { Db, Executor, Tx } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import { clinicOf, type Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { Conflict, Forbidden, NotFound, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { effectiveTime, todayIso } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog } from '../events/events.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { CustodyEntryDto, DiscardDto, ReturnDto, ShipmentDto, VialDto, VialListFilters } from './vials.schemas.js';
import * as vq from './vials.queries.js';

export type { Selection } from './vials.queries.js';

/** A vial as the API answers it: `expired` when unused and past the lot's expiry at `today`. */
function toVialDto(v: vq.VialWithLot, today: string): VialDto {
  const unused = v.status === 'in-stock' || v.status === 'at-clinic';
  return {
    id: v.id,
    lotId: v.lotId,
    lotNumber: v.lotNumber,
    sequence: v.sequence,
    barcode: v.barcode,
    status: (unused && v.expiresOn < today ? 'expired' : v.status) as VialDto['status'],
    clinicId: v.clinicId,
    usedBy: v.procedureId,
    receivedAt: v.receivedAt?.toISOString() ?? null,
    expiresOn: v.expiresOn,
  };
}

function toCustodyDto(c: vq.CustodyRow): CustodyEntryDto {
  return {
    at: c.at.toISOString(),
    action: c.action as CustodyEntryDto['action'],
    clinicId: c.clinicId,
    by: c.by,
    ...(c.procedureId ? { procedureId: c.procedureId } : {}),
    ...(c.shipmentId ? { shipmentId: c.shipmentId } : {}),
    ...(c.discardId ? { discardId: c.discardId } : {}),
    ...(c.returnId ? { returnId: c.returnId } : {}),
    ...(c.reason !== null ? { reason: c.reason } : {}),
    recordedAt: c.recordedAt.toISOString(),
  };
}

/** A movement's vials as it answers them: ids and barcodes in the same (sequence) order. */
async function named(exec: Executor, ids: string[]) {
  const barcodes = await vq.barcodesOf(exec, ids);
  return { vialIds: ids, barcodes: ids.map((id) => barcodes.get(id)!) };
}

const toShipmentDto = async (exec: Executor, s: vq.ShipmentRow): Promise<ShipmentDto> => ({
  id: s.id,
  lotId: s.lotId,
  clinicId: s.clinicId,
  vials: s.vials,
  ...(await named(exec, s.vialIds)),
  shippedAt: s.shippedAt.toISOString(),
  recordedBy: s.recordedBy,
  recordedAt: s.recordedAt.toISOString(),
});

const toDiscardDto = async (exec: Executor, d: vq.DiscardRow): Promise<DiscardDto> => ({
  id: d.id,
  lotId: d.lotId,
  clinicId: d.clinicId,
  vials: d.vials,
  ...(await named(exec, d.vialIds)),
  reason: d.reason,
  discardedAt: d.discardedAt.toISOString(),
  recordedBy: d.recordedBy,
  recordedAt: d.recordedAt.toISOString(),
});

const toReturnDto = async (exec: Executor, r: vq.ReturnRow): Promise<ReturnDto> => ({
  id: r.id,
  lotId: r.lotId,
  clinicId: r.clinicId,
  vials: r.vials,
  ...(await named(exec, r.vialIds)),
  reason: r.reason,
  returnedAt: r.returnedAt.toISOString(),
  recordedBy: r.recordedBy,
  recordedAt: r.recordedAt.toISOString(),
});

/** How a request names the vials of a movement: `vialIds`, `barcodes`, or `vials` (a number). */
export interface VialChoice {
  vialIds?: string[];
  barcodes?: string[];
  vials?: number;
}

function selectionOf(input: VialChoice): vq.Selection {
  if (input.vialIds) return { vialIds: input.vialIds };
  if (input.barcodes) return { barcodes: input.barcodes };
  return { count: input.vials! };
}

/** The body field a selection came from, for the 422's `errors`. */
const fieldOf = (s: vq.Selection) => ('vialIds' in s ? 'body.vialIds' : 'barcodes' in s ? 'body.barcodes' : 'body.vials');

/**
 * 422 `vial-not-available` naming each of `missing` as the request named it (an id or a barcode), each `where`
 * it is not (e.g. "unused at clinic-a in this lot"), under the body `field` that named it.
 */
export function vialsNotAvailable(missing: string[], where: string, field: string): RuleViolation {
  return new RuleViolation(
    'vial-not-available',
    `${missing.length === 1 ? 'Vial' : 'Vials'} ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not ${where}.`,
    missing.map((m) => ({ path: field, message: `${m}: not ${where}` })),
  );
}

/**
 * The named vials that may not move (unknown, of another lot, at another clinic, or not in a status `from`
 * allows): 422 `vial-not-available` naming each by what the request named it with.
 */
function refuseUnavailable(
  selection: vq.Selection,
  locked: { id: string; barcode: string; status: string; clinicId: string | null; shippedAt: Date | null }[],
  ok: (v: { status: string; clinicId: string | null; shippedAt: Date | null }) => boolean,
  where: string,
) {
  if ('count' in selection) return;
  const byId = 'vialIds' in selection;
  const wanted = byId ? selection.vialIds : selection.barcodes;
  const good = new Set(locked.filter(ok).map((v) => (byId ? v.id : v.barcode)));
  const missing = wanted.filter((w) => !good.has(w));
  if (missing.length) throw vialsNotAvailable(missing, where, fieldOf(selection));
}

export interface VialsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** A shipment tells `shipment.created` to its clinic, in its transaction. */
  events: EventLog;
  clock: Clock;
  /** The lot a movement concerns: its counts, and locked with its status at an instant for a shipment. */
  lots: Pick<LotsService, 'counts' | 'lockWithStatusAt'>;
  /** "Recalled vials reached this clinic after the recall": the recall-notices module tells the clinic. */
  notices: VialRecallNotices;
}

/** The reaction to recalled vials arriving at a clinic after the recall was recorded, in the same transaction. */
export interface VialRecallNotices {
  addToNotice(tx: Tx, lotId: string, clinicId: string, barcodes: string[]): Promise<void>;
}

export type VialsService = ReturnType<typeof createVialsService>;

/** A clinic's token acts only for its own clinic; a supplier token (no clinic_id) for any. */
function assertOwnClinic(actor: Actor, clinicId: string) {
  if (actor.clinicId && actor.clinicId !== clinicId) {
    throw new Forbidden(`This token acts for ${actor.clinicId}; it cannot move vials of ${clinicId}.`, 'clinic-mismatch');
  }
}

/**
 * Every vial of every lot, one row each: made with the lot, released with it, shipped to a clinic (the
 * consignee), received, administered by a procedure, discarded, returned, recalled; each movement appended to
 * the vial's custody (21 CFR 1271.290 tracking). A clinic token sees the vials its clinic holds or held.
 */
export function createVialsService({ db, uow, audit, events, clock, lots, notices }: VialsDeps) {
  /** The lot's vial counts (404 for an unknown lot). */
  const existingLot = (id: string) => lots.counts(id);
  const today = () => todayIso(clock);

  /** Locks the vials a movement names or takes and refuses any that may not move: answers them in sequence order. */
  async function take(tx: Tx, lotId: string, selection: vq.Selection, from: readonly string[], clinicId: string | null, where: string, shippedBy?: Date) {
    const locked = await vq.lockSelected(tx, lotId, from, clinicId, selection, shippedBy);
    const inTime = (v: { shippedAt: Date | null }) => !shippedBy || (v.shippedAt !== null && v.shippedAt <= shippedBy);
    refuseUnavailable(selection, locked, (v) => from.includes(v.status) && v.clinicId === clinicId && inTime(v), where);
    if ('count' in selection && locked.length < selection.count) {
      throw new RuleViolation(
        'insufficient-vials',
        clinicId
          ? `${clinicId} holds ${locked.length} vial(s) of this lot; ${selection.count} requested.`
          : `Only ${locked.length} of the lot's vials are in stock; ${selection.count} requested.`,
        [{ path: 'body.vials', message: clinicId ? 'more than on hand' : 'more than remain unshipped' }],
      );
    }
    return locked;
  }

  /**
   * Vials that leave a clinic's hands unused (discarded, returned): named or the lowest it holds, each of this
   * lot, at that clinic and unused; moved, recorded (`record`: the row written and the answer made from it, in the
   * transaction, so an idempotent retry gets the same answer) and audited in one transaction.
   */
  async function leaveClinic<R>(
    actor: Actor,
    lotId: string,
    input: VialChoice & { clinicId: string; reason: string; at?: string; field: string },
    action: 'discarded' | 'returned',
    idem: IdempotencyRequest | undefined,
    record: (tx: Tx, r: { id: string; lotId: string; clinicId: string; vials: number; vialIds: string[]; reason: string; at: Date; recordedBy: string; recordedAt: Date }) => Promise<R>,
  ): Promise<R> {
    assertOwnClinic(actor, input.clinicId);
    const at = effectiveTime(clock, input.at, input.field);
    const selection = selectionOf(input);
    await existingLot(lotId);
    return uow.run(async (tx) => {
      // Nothing leaves a clinic before it got there: each vial must have been shipped by `at`.
      const taken = await take(tx, lotId, selection, vq.AT_CLINIC, input.clinicId, `unused at ${input.clinicId} in this lot by ${at.toISOString()}`, at);
      const id = newId();
      const ids = taken.map((v) => v.id);
      await vq.moveVials(tx, ids, { status: action }, { action, at, by: actor.sub, reason: input.reason, movementId: id });
      const answer = await record(tx, { id, lotId, clinicId: input.clinicId, vials: ids.length, vialIds: ids, reason: input.reason, at, recordedBy: actor.sub, recordedAt: clock.now() });
      const resourceType = action === 'discarded' ? 'discard' : 'vial-return';
      await audit.record(tx, actor, { action: 'create', resourceType, resourceId: id, clinicId: input.clinicId, details: { lotId, vials: ids.length } });
      return answer;
    }, idem);
  }

  return {
    /**
     * Ships vials to a clinic: named (`vialIds`, `barcodes`) or the lowest `vials` sequences in stock. Only a
     * released, unexpired lot ships, at `shippedAt`; a shipment entered late, made while the lot was released,
     * takes vials a later recall marked (they stay recalled, now at the clinic). Told as `shipment.created`.
     */
    async ship(actor: Actor, lotId: string, input: VialChoice & { clinicId: string; shippedAt?: string }, idem?: IdempotencyRequest): Promise<ShipmentDto> {
      assertOwnClinic(actor, input.clinicId);
      const shippedAt = effectiveTime(clock, input.shippedAt, 'shippedAt');
      const selection = selectionOf(input);
      return uow.run(async (tx) => {
        // The lot row lock orders shipments against status changes of the same lot, on every instance.
        const { lot, status } = await lots.lockWithStatusAt(tx, lotId, shippedAt);
        if (status !== 'released') {
          throw new RuleViolation('lot-not-released', `The lot was ${status ?? 'not yet recorded'} at ${shippedAt.toISOString()}; only a released lot ships.`);
        }
        if (shippedAt.toISOString().slice(0, 10) > lot.expiresOn) {
          throw new RuleViolation('lot-expired', `The lot expired on ${lot.expiresOn}.`);
        }
        const taken = await take(tx, lotId, selection, ['in-stock', 'recalled'], null, 'in stock (unshipped) in this lot');
        const id = newId();
        const m = { action: 'shipped' as const, at: shippedAt, by: actor.sub, movementId: id };
        const ids = taken.map((v) => v.id);
        const recalled = taken.filter((v) => v.status === 'recalled').map((v) => v.id);
        const inStock = taken.filter((v) => v.status !== 'recalled').map((v) => v.id);
        if (inStock.length) await vq.moveVials(tx, inStock, { status: 'at-clinic', clinicId: input.clinicId }, m);
        if (recalled.length) {
          await vq.moveVials(tx, recalled, { status: 'recalled', clinicId: input.clinicId }, m);
          await notices.addToNotice(tx, lotId, input.clinicId, taken.filter((v) => v.status === 'recalled').map((v) => v.barcode));
        }
        await vq.addShipped(tx, lotId, ids.length);
        const row = await vq.insertShipment(tx, { id, lotId, clinicId: input.clinicId, vials: ids.length, vialIds: ids, shippedAt, recordedBy: actor.sub, recordedAt: clock.now() });
        await audit.record(tx, actor, { action: 'create', resourceType: 'shipment', resourceId: id, clinicId: input.clinicId, details: { lotId, vials: ids.length } });
        await events.emit(tx, {
          type: 'shipment.created',
          clinicId: input.clinicId,
          subject: { type: 'Shipment', id },
          lotIds: [lotId],
          data: { shipmentId: id, lotId, clinicId: input.clinicId, vialIds: ids, barcodes: taken.map((v) => v.barcode) },
        });
        return toShipmentDto(tx, row);
      }, idem);
    },

    /** Vials a clinic wasted: named, or the lowest `vials` sequences it holds (recalled ones included: destroyed). */
    async discard(actor: Actor, lotId: string, input: VialChoice & { clinicId: string; reason: string; discardedAt?: string }, idem?: IdempotencyRequest): Promise<DiscardDto> {
      return leaveClinic(actor, lotId, { ...input, at: input.discardedAt, field: 'discardedAt' }, 'discarded', idem, async (tx, r) =>
        toDiscardDto(tx, await vq.insertDiscard(tx, { ...r, discardedAt: r.at })),
      );
    },

    /** Unused vials a clinic sends back to the manufacturer (a recall's usual end), named by id or barcode. */
    async returnVials(actor: Actor, lotId: string, input: VialChoice & { clinicId: string; reason: string; returnedAt?: string }, idem?: IdempotencyRequest): Promise<ReturnDto> {
      return leaveClinic(actor, lotId, { ...input, at: input.returnedAt, field: 'returnedAt' }, 'returned', idem, async (tx, r) =>
        toReturnDto(tx, await vq.insertReturn(tx, { ...r, returnedAt: r.at })),
      );
    },

    /**
     * The clinic confirms a vial arrived (custody `received`), once: 404 if the vial is not at the caller's
     * clinic; 409 `vial-already-received`, or `vial-not-at-clinic` once it was used, discarded or returned.
     */
    async receive(actor: Actor, vialId: string, input: { receivedAt?: string }): Promise<VialDto> {
      const clinicId = clinicOf(actor);
      const receivedAt = effectiveTime(clock, input.receivedAt, 'receivedAt');
      return uow.run(async (tx) => {
        const vial = await vq.lockVial(tx, vialId, clinicId);
        if (!vial) throw new NotFound('vial');
        if (!(vq.AT_CLINIC as readonly string[]).includes(vial.status)) {
          throw new Conflict(`The vial is ${vial.status}; only a vial at the clinic can be received.`, 'vial-not-at-clinic');
        }
        if (vial.receivedAt) throw new Conflict(`The vial was received at ${vial.receivedAt.toISOString()}.`, 'vial-already-received');
        const shipped = await vq.lastShipment(tx, vialId);
        if (shipped && receivedAt < shipped.at) {
          throw new RuleViolation('received-before-shipped', `receivedAt is before the vial was shipped (${shipped.at.toISOString()}).`, [
            { path: 'body.receivedAt', message: 'before the shipment' },
          ]);
        }
        await vq.markReceived(tx, vialId, { action: 'received', at: receivedAt, by: actor.sub, movementId: shipped?.shipmentId ?? null });
        await audit.record(tx, actor, { action: 'state-change', resourceType: 'vial', resourceId: vialId, clinicId, details: { lotId: vial.lotId, received: true } });
        const found = await vq.findVial(tx, vialId, clinicId);
        return toVialDto(found!, today());
      });
    },

    /** One vial (404 if unknown, or not at or used by the caller's clinic). */
    async get(actor: Actor, id: string): Promise<VialDto> {
      const row = await vq.findVial(db, id, actor.clinicId);
      if (!row) throw new NotFound('vial');
      return toVialDto(row, today());
    },

    /** Vials by barcode (the scan), lot, status, clinic; a clinic token sees its own clinic's only. */
    async list(actor: Actor, filters: VialListFilters, page: PageRequest) {
      const rows = await vq.listVials(db, { ...filters, today: today() }, actor.clinicId, page);
      const t = today();
      return toPage(rows.map((r) => toVialDto(r, t)), page.limit);
    },

    /** A lot's vials (404 for an unknown lot). */
    async ofLot(actor: Actor, lotId: string, filters: Omit<VialListFilters, 'barcode'>, page: PageRequest) {
      await existingLot(lotId);
      return this.list(actor, { ...filters, lotId }, page);
    },

    /** A vial's custody, oldest first (404 as for the vial). */
    async custody(actor: Actor, id: string, page: PageRequest<number>) {
      const vial = await vq.findVial(db, id, actor.clinicId);
      if (!vial) throw new NotFound('vial');
      const rows = await vq.custodyOf(db, id, page);
      const paged = toPage(rows, page.limit, (r) => String(r.id));
      return { items: paged.items.map(toCustodyDto), nextKey: paged.nextKey };
    },

    async shipments(actor: Actor, lotId: string, page: PageRequest) {
      await existingLot(lotId);
      const rows = await vq.listShipments(db, lotId, actor.clinicId, page);
      return toPage(await Promise.all(rows.map((r) => toShipmentDto(db, r))), page.limit);
    },

    async discards(actor: Actor, lotId: string, page: PageRequest) {
      await existingLot(lotId);
      const rows = await vq.listDiscards(db, lotId, actor.clinicId, page);
      return toPage(await Promise.all(rows.map((r) => toDiscardDto(db, r))), page.limit);
    },

    async returns(actor: Actor, lotId: string, page: PageRequest) {
      await existingLot(lotId);
      const rows = await vq.listReturns(db, lotId, actor.clinicId, page);
      return toPage(await Promise.all(rows.map((r) => toReturnDto(db, r))), page.limit);
    },

    /**
     * Vial accounting per clinic, derived from the vials: shipped = administered + discarded + returned +
     * recalled + expired + onHand (onHand: at the clinic, usable today).
     */
    async inventory(actor: Actor, lotId: string) {
      const lot = await existingLot(lotId);
      const clinics = await vq.countsPerClinic(db, lotId, actor.clinicId, today());
      return { lotId, vialCount: lot.vialCount, vialsShipped: lot.vialsShipped, vialsUnshipped: lot.vialCount - lot.vialsShipped, clinics };
    },

    /** A new lot's vials (the lot's reaction, in its transaction): `barcodes` in sequence order, or the defaults. */
    async createForLot(tx: Tx, lot: { id: string; manufacturer: string; lotNumber: string; vialCount: number }, barcodes?: string[]) {
      if (barcodes) {
        const taken = await vq.barcodesTaken(tx, lot.manufacturer, barcodes);
        if (taken.length) {
          throw new Conflict(`Barcode ${taken.join(', ')} is already on a vial of ${lot.manufacturer}; barcodes are unique per manufacturer.`, 'barcode-taken');
        }
      }
      if ((await vq.insertForLot(tx, lot, newId(), barcodes)) === 'barcode-taken') {
        throw new Conflict(
          `A barcode of this lot's vials is already on a vial of ${lot.manufacturer}; barcodes are unique per manufacturer${barcodes ? '' : ' (the defaults {lotNumber}-0001... included)'}.`,
          'barcode-taken',
        );
      }
    },

    /** The lot was released at `at`: every vial still in stock is (custody `released`). */
    async released(tx: Tx, actor: Actor, lotId: string, at: Date) {
      await vq.moveAllOfLot(tx, lotId, vq.IN_STOCK, { action: 'released', at, by: actor.sub });
    },

    /** The lot was recalled at `at`: every unused vial is marked recalled. Answers the barcodes per clinic (null: in stock). */
    async recalled(tx: Tx, actor: Actor, lotId: string, at: Date, reason: string) {
      return vq.moveAllOfLot(tx, lotId, ['in-stock', 'at-clinic'], { action: 'recalled', at, by: actor.sub, reason }, 'recalled');
    },

    /** 422 `vial-not-available` naming each vial of `missing` (see vialsNotAvailable). */
    notAvailable: vialsNotAvailable,

    /** The vials a procedure uses, claimed in its statement: a named part (see vials.queries administeredPart), and its values. */
    administered: vq.administeredPart,
    administeredValues: vq.administeredValues,

    /** How many of `limit` vials the clinic held at `at` and holds now (after concurrent claims end). */
    claimable(lotId: string, clinicId: string, at: Date, limit: number) {
      return vq.claimableCount(db, lotId, clinicId, at, limit);
    },

    /** Which named vials the clinic cannot give from the lot at `at`. */
    unavailable(lotId: string, clinicId: string, at: Date, selection: { vialIds: string[] } | { barcodes: string[] }) {
      return vq.unavailable(db, lotId, clinicId, at, selection);
    },

    /**
     * A procedure entered in error gave vials back (named, or a number: its highest sequences): the clinic holds
     * them again (custody `received`, with the procedure); answers the vials given back (fewer when a named one
     * was not this procedure's).
     */
    async restock(tx: Tx, actor: Actor, procedureId: string, which: vq.Selection, reason: string) {
      const back = await vq.restock(tx, procedureId, which, { action: 'received', at: clock.now(), by: actor.sub, reason });
      const recalled = back.filter((v) => v.status === 'recalled');
      if (recalled.length) await notices.addToNotice(tx, recalled[0]!.lotId, recalled[0]!.clinicId!, recalled.map((v) => v.barcode));
      return back;
    },

    /** The vials each procedure uses now. */
    ofProcedures(exec: Executor, procedureIds: string[]) {
      return vq.vialsOfProcedures(exec, procedureIds);
    },
  };
}
