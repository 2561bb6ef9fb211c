import type { z } from 'zod';
import type { Db, Executor, Tx } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { BadRequest, Conflict, NotFound, PreconditionFailed, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { effectiveTime, todayIso } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { EventLog, EventType } from '../events/events.service.js';
import { historyReads, type History, type VersionPage } from '../history/history.service.js';
import * as q from './lots.queries.js';
import { CharacterizationInput, ReleaseTestsInput, type LotCreate, type LotDto, type LotFilters, type LotPatch, type LotSummary } from './lots.schemas.js';
import { mergePatch } from '../../shared/merge-patch.js';
import { sameJson } from '../../shared/canonical-json.js';
import { unmetReleaseCriteria } from './release.js';
import type { LotStatus } from './vocabulary.js';
import { pageOf, type Condition, type SearchQuery, type SearchResult } from '../../shared/search.js';

export const LOT = 'lot';

type StatusCause = 'created' | 'manual' | 'donor-ineligible';

/** The event each status change tells (contract "Events and webhooks"). */
const STATUS_EVENT: Record<LotStatus, EventType> = { released: 'lot.released', quarantine: 'lot.quarantined', recalled: 'lot.recalled' };

function toLotDto(l: q.LotRow, donorIds: string[], changes: q.StatusChangeRow[]): LotDto {
  return {
    ...toLotSummary(l, donorIds),
    statusChanges: changes
      .filter((c) => c.lotId === l.id)
      .map((c) => ({
        status: c.status as LotStatus,
        effectiveAt: c.effectiveAt.toISOString(),
        reason: c.reason,
        cause: c.cause as StatusCause,
        changedBy: c.changedBy,
        recordedAt: c.recordedAt.toISOString(),
      })),
  };
}

function toLotSummary(l: q.LotRow, donorIds: string[]): LotSummary {
  return {
    id: l.id,
    lotNumber: l.lotNumber,
    manufacturer: l.manufacturer,
    productName: l.productName,
    donorIds,
    poolingJustification: l.poolingJustification,
    isolationMethod: l.isolationMethod as LotDto['isolationMethod'],
    characterization: (l.characterization ?? null) as LotDto['characterization'],
    releaseTests: l.releaseTests,
    manufacturedOn: l.manufacturedOn,
    expiresOn: l.expiresOn,
    storageTempC: l.storageTempC,
    vialVolumeMl: l.vialVolumeMl,
    vialCount: l.vialCount,
    vialsShipped: l.vialsShipped,
    status: l.status as LotStatus,
    version: l.version,
    createdAt: l.createdAt.toISOString(),
    updatedAt: l.updatedAt.toISOString(),
  };
}


/** The count a recall reports: distinct patients who received the lot, read in the caller's transaction. */
export interface LotRecipients {
  countForLot(exec: Executor, lotId: string): Promise<number>;
}

export interface LotsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** Each status change tells `lot.released` / `lot.quarantined` / `lot.recalled`, in its transaction. */
  events: EventLog;
  history: History;
  clock: Clock;
  donors: Pick<DonorsService, 'statusesAt' | 'existingIds'>;
  endotoxinLimitEuPerMl: number;
  /**
   * "How many patients received this lot", asked by a recall in its transaction. The procedures module answers
   * (wired once in app.ts); required, so a recall can never report 0 recipients for want of wiring.
   */
  recipients: LotRecipients;
  /** "This lot was recalled": the recall-notices module notifies each clinic that received it, in the recall's transaction. */
  notices: LotRecallNotices;
  /** The lot's vials, one row each (the vials module): made with the lot, released with it, marked by its recall. */
  vials: LotVials;
}

/** The reactions of a lot's vials to the lot's life, each in the lot's transaction. */
export interface LotVials {
  /** `vialCount` vials, barcodes as given (in sequence order) or the defaults; 409 `barcode-taken`. */
  createForLot(tx: Tx, lot: { id: string; manufacturer: string; lotNumber: string; vialCount: number }, barcodes?: string[]): Promise<void>;
  /** The vials in stock are released at `at` (custody). */
  released(tx: Tx, actor: Actor, lotId: string, at: Date): Promise<void>;
  /** Every unused vial is recalled at `at`. */
  recalled(tx: Tx, actor: Actor, lotId: string, at: Date, reason: string): Promise<unknown>;
}

/** The reaction to a recall: notices to the clinics that received the lot; answers how many. */
export interface LotRecallNotices {
  createForRecall(tx: Tx, lotId: string, reason: string, recalledAt: Date): Promise<number>;
}

export type LotsService = ReturnType<typeof createLotsService>;

const forUse = (row: { lot: q.LotRow; statusAt: string | null }) => ({ lot: row.lot, statusAt: (row.statusAt ?? undefined) as LotStatus | undefined });

/**
 * A merge patch (RFC 7396) applied to what is stored: members not sent keep their values, null removes one;
 * the result must be a whole valid object (400 naming what is missing, e.g. a characterization that never had
 * a particle concentration).
 */
function merged<S extends z.ZodType>(schema: S, field: string, stored: unknown, patch: unknown): z.output<S> {
  const result = schema.safeParse(mergePatch(stored ?? {}, patch));
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({ path: ['body', field, ...i.path.map(String)].join('.'), message: i.message }));
  throw new BadRequest(`The ${field} after this merge patch is invalid: ${errors.map((e) => e.path).join(', ')}.`, errors, 'validation-failed');
}

export function createLotsService(deps: LotsDeps) {
  const { db, uow, audit, history, clock, donors } = deps;
  const versionReads = historyReads(db, audit, { resourceType: LOT, noun: 'lot', record: q.byId, clinicColumn: null });

  async function loadMany(exec: Executor, rows: q.LotRow[]): Promise<LotDto[]> {
    const ids = rows.map((r) => r.id);
    const [donorIds, changes] = await Promise.all([q.donorIdsOf(exec, ids), q.statusChangesOf(exec, ids)]);
    return rows.map((r) => toLotDto(r, donorIds.get(r.id) ?? [], changes));
  }
  const load = async (exec: Executor, row: q.LotRow) => (await loadMany(exec, [row]))[0]!;

  async function recordVersion(tx: Tx, actor: Actor, row: q.LotRow, action: 'create' | 'update' | 'state-change', details: Record<string, unknown>) {
    const dto = await load(tx, row);
    await history.record(tx, { resourceType: LOT, resourceId: row.id, version: row.version, clinicId: null, body: dto, by: actor.sub });
    await audit.record(tx, actor, { action, resourceType: LOT, resourceId: row.id, details });
    return dto;
  }

  async function lockExisting(tx: Tx, id: string) {
    const lot = await q.lockLot(tx, id);
    if (!lot) throw new NotFound('lot');
    return lot;
  }

  /** Status changes are kept in effective order, so the status at any instant has one answer. */
  async function assertInOrder(tx: Tx, lotId: string, at: Date, field: string) {
    const last = await q.lastStatusChange(tx, lotId);
    if (last && at < last.effectiveAt) {
      throw new RuleViolation(
        'effective-time-out-of-order',
        `${field} is before the lot's last status change (${last.status} at ${last.effectiveAt.toISOString()}).`,
        [{ path: `body.${field}`, message: 'before the last status change' }],
      );
    }
  }

  /**
   * The one place a lot's status changes after it is recorded: the change, the new version, its audit entry and
   * its event (a supplier event, seen by the clinics the lot was shipped to; codes only, never the reason text).
   */
  async function changeStatus(tx: Tx, actor: Actor, lot: q.LotRow, to: LotStatus, at: Date, reason: string | null, cause: StatusCause) {
    const now = clock.now();
    await q.insertStatusChange(tx, { id: newId(), lotId: lot.id, status: to, effectiveAt: at, reason, cause, changedBy: actor.sub, recordedAt: now });
    const row = await q.updateLot(tx, lot.id, { status: to, updatedAt: now, updatedBy: actor.sub });
    await deps.events.emit(tx, {
      type: STATUS_EVENT[to],
      clinicId: null,
      subject: { type: 'Lot', id: lot.id },
      lotIds: [lot.id],
      data: { lotId: lot.id, lotNumber: lot.lotNumber, productName: lot.productName, status: to, cause, effectiveAt: at.toISOString() },
    });
    return recordVersion(tx, actor, row, 'state-change', { status: to, from: lot.status, cause, effectiveAt: at.toISOString() });
  }

  return {
    async create(actor: Actor, input: z.output<typeof LotCreate>, idem?: IdempotencyRequest): Promise<LotDto> {
      if (input.donorIds.length > 1 && !input.poolingJustification) {
        throw new RuleViolation('pooling-not-justified', 'A lot from more than one donor needs a poolingJustification (21 CFR 1271.220 forbids pooling by default).', [
          { path: 'body.poolingJustification', message: 'required for more than one donor' },
        ]);
      }
      if (input.manufacturedOn > todayIso(clock)) {
        throw new RuleViolation('time-in-future', 'manufacturedOn cannot be after today.', [{ path: 'body.manufacturedOn', message: 'after today' }]);
      }
      return uow.run(async (tx) => {
        const known = await donors.existingIds(tx, input.donorIds);
        const unknown = input.donorIds.filter((id) => !known.has(id));
        if (unknown.length) {
          throw new RuleViolation('unknown-donor', `No donor with id ${unknown.join(', ')}.`, unknown.map((id) => ({ path: 'body.donorIds', message: `unknown donor ${id}` })));
        }
        const now = clock.now();
        const { donorIds, characterization, vialBarcodes, ...rest } = input;
        const row = await q.insertLot(
          tx,
          { id: newId(), ...rest, characterization: (characterization ?? null), status: 'quarantine', createdAt: now, updatedAt: now, createdBy: actor.sub, updatedBy: actor.sub },
          donorIds,
        );
        await deps.vials.createForLot(tx, row, vialBarcodes);
        // Quarantine from manufacture: a late-entered lot can still be released at a past date.
        await q.insertStatusChange(tx, {
          id: newId(),
          lotId: row.id,
          status: 'quarantine',
          effectiveAt: new Date(`${row.manufacturedOn}T00:00:00Z`),
          reason: 'Lot recorded; quarantined until release',
          cause: 'created',
          changedBy: actor.sub,
          recordedAt: now,
        });
        return recordVersion(tx, actor, row, 'create', { lotNumber: row.lotNumber, manufacturer: row.manufacturer, donorIds });
      }, idem);
    },

    async get(id: string): Promise<LotDto> {
      const row = await q.findLot(db, id);
      if (!row) throw new NotFound('lot');
      return load(db, row);
    },

    /** Every version of the lot, oldest first (supplier records: any lots:read token may read them); audited. */
    history(actor: Actor, id: string, page: VersionPage) {
      return versionReads.list<LotDto>(actor, { id }, page);
    },

    /** One version of the lot (404 for an unknown lot or version); audited as a history read. */
    version(actor: Actor, id: string, version: number) {
      return versionReads.get<LotDto>(actor, { id }, version);
    },

    /** The lot's vial counts and expiry (404 for an unknown lot): what vial movements check. */
    async counts(id: string): Promise<{ vialCount: number; vialsShipped: number; expiresOn: string }> {
      const row = await q.findLot(db, id);
      if (!row) throw new NotFound('lot');
      return { vialCount: row.vialCount, vialsShipped: row.vialsShipped, expiresOn: row.expiresOn };
    },

    /**
     * Locks the lot row in the caller's transaction (ordering vial movements against status changes of the same
     * lot, on every instance) and answers its counts with its status at `at` (undefined before it was recorded);
     * 404 for an unknown lot.
     */
    async lockWithStatusAt(tx: Tx, id: string, at: Date): Promise<{ lot: { vialCount: number; vialsShipped: number; expiresOn: string }; status: string | undefined }> {
      const row = await q.lockLot(tx, id);
      if (!row) throw new NotFound('lot');
      return { lot: { vialCount: row.vialCount, vialsShipped: row.vialsShipped, expiresOn: row.expiresOn }, status: await q.statusAt(tx, id, at) };
    },

    /** Several lots without their status history, in the order of `ids` (unknown ids are left out): one statement. */
    async summariesOf(ids: string[]): Promise<LotSummary[]> {
      const byId = new Map((await q.findLotsWithDonors(db, ids)).map((r) => [r.id, toLotSummary(r, r.donorIds)]));
      return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
    },

    /** Several lots at once (unknown ids are left out). */
    async getMany(ids: string[]): Promise<LotDto[]> {
      return ids.length ? loadMany(db, await q.findLots(db, ids)) : [];
    },

    /** One page of the lots matching `search` (shared/search.ts criteria); supplier records, not audited as reads. */
    async find(search: SearchQuery<q.LotField, 'updatedAt'>): Promise<SearchResult<LotDto>> {
      const page = pageOf(await q.lotSearch.rows(db, search), search.limit, q.lotFromRaw);
      return { ...page, items: await loadMany(db, page.items) };
    },

    /** How many lots match `where` (a FHIR Bundle's total). */
    countMatching(where: Condition<q.LotField>[]) {
      return q.lotSearch.count(db, where);
    },

    async list(filters: LotFilters, page: PageRequest) {
      const rows = await q.listLots(db, filters, page);
      return toPage(await loadMany(db, rows), page.limit);
    },

    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof LotPatch>): Promise<LotDto> {
      return uow.run(async (tx) => {
        const lot = await lockExisting(tx, id);
        if (lot.version !== expectedVersion) throw new PreconditionFailed(`The lot is at version ${lot.version}, not ${expectedVersion}.`);
        if (lot.status !== 'quarantine') throw new Conflict(`The lot is ${lot.status}; results can be corrected only in quarantine.`, 'lot-not-in-quarantine');
        const changes = {
          ...(patch.characterization ? { characterization: merged(CharacterizationInput, 'characterization', lot.characterization, patch.characterization) } : {}),
          ...(patch.releaseTests ? { releaseTests: merged(ReleaseTestsInput, 'releaseTests', lot.releaseTests, patch.releaseTests) } : {}),
        };
        // A patch that leaves both as stored is no change: no new version.
        if (Object.entries(changes).every(([k, v]) => sameJson(v, lot[k as keyof typeof changes]))) return load(tx, lot);
        const row = await q.updateLot(tx, id, {
          ...changes,
          updatedAt: clock.now(),
          updatedBy: actor.sub,
        });
        return recordVersion(tx, actor, row, 'update', { changedFields: Object.keys(patch), version: row.version });
      });
    },

    async release(actor: Actor, id: string, input: { releasedAt?: string; reason?: string }): Promise<LotDto> {
      const at = effectiveTime(clock, input.releasedAt, 'releasedAt');
      return uow.run(async (tx) => {
        const lot = await lockExisting(tx, id);
        if (lot.status !== 'quarantine') throw new Conflict(`The lot is ${lot.status}; only a lot in quarantine can be released.`, 'lot-not-in-quarantine');
        await assertInOrder(tx, id, at, 'releasedAt');
        const donorIds = (await q.donorIdsOf(tx, [id])).get(id) ?? [];
        const statuses = await donors.statusesAt(tx, donorIds, at);
        const unmet = unmetReleaseCriteria(
          {
            characterization: lot.characterization,
            releaseTests: lot.releaseTests,
            manufacturedOn: lot.manufacturedOn,
            expiresOn: lot.expiresOn,
            donorStatuses: donorIds.map((donorId) => ({ donorId, status: statuses.get(donorId) })),
          },
          at,
          deps.endotoxinLimitEuPerMl,
        );
        if (unmet.length) {
          throw new RuleViolation('lot-release-criteria-unmet', `The lot cannot be released: ${unmet.map((u) => `${u.path}: ${u.message}`).join('; ')}.`, unmet);
        }
        await deps.vials.released(tx, actor, id, at);
        return changeStatus(tx, actor, lot, 'released', at, input.reason ?? null, 'manual');
      });
    },

    async quarantine(actor: Actor, id: string, input: { reason: string; effectiveAt?: string }): Promise<LotDto> {
      const at = effectiveTime(clock, input.effectiveAt, 'effectiveAt');
      return uow.run(async (tx) => {
        const lot = await lockExisting(tx, id);
        if (lot.status !== 'released') throw new Conflict(`The lot is ${lot.status}; only a released lot can be put back in quarantine.`, 'lot-not-released');
        await assertInOrder(tx, id, at, 'effectiveAt');
        return changeStatus(tx, actor, lot, 'quarantine', at, input.reason, 'manual');
      });
    },

    async recall(actor: Actor, id: string, input: { reason: string; recalledAt?: string }) {
      const at = effectiveTime(clock, input.recalledAt, 'recalledAt');
      return uow.run(async (tx) => {
        const lot = await lockExisting(tx, id);
        if (lot.status === 'recalled') throw new Conflict('The lot is already recalled.', 'lot-already-recalled');
        await assertInOrder(tx, id, at, 'recalledAt');
        const dto = await changeStatus(tx, actor, lot, 'recalled', at, input.reason, 'manual');
        await deps.vials.recalled(tx, actor, id, at, input.reason);
        const affectedClinics = await deps.notices.createForRecall(tx, id, input.reason, at);
        const affectedRecipients = await deps.recipients.countForLot(tx, id);
        return { ...dto, affectedRecipients, affectedClinics };
      });
    },

    /**
     * A donor became ineligible at `at`: its released lots go back to quarantine, in the caller's transaction.
     * Answers their ids (`quarantinedLotIds`) and the ids of every lot made from the donor (`lotIds`).
     */
    async quarantineLotsOfDonor(tx: Tx, actor: Actor, donorId: string, at: Date, reason: string): Promise<{ quarantinedLotIds: string[]; lotIds: string[] }> {
      const affected = await q.lockReleasedLotsOfDonor(tx, donorId);
      for (const lot of affected) {
        const last = await q.lastStatusChange(tx, lot.id);
        const effective = last && last.effectiveAt > at ? last.effectiveAt : at;
        await changeStatus(tx, actor, lot, 'quarantine', effective, reason, 'donor-ineligible');
      }
      return { quarantinedLotIds: affected.map((l) => l.id), lotIds: await q.lotIdsOfDonor(tx, donorId) };
    },

    /**
     * Named parts for a procedure's statements (db/statement.ts): `forUseAt` reads the lot and its status at
     * `at` (rows map with `forUseFromRaw`); `releasedAt` re-checks it where the procedure is written.
     */
    forUseAt: q.forUseAtPart,
    forUseFromRaw: (raw: Record<string, unknown>) => forUse(q.withStatusFromRaw(raw)),
    releasedAt: q.releasedAtPart,

  };
}
