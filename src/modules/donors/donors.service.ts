import type { z } from 'zod';
import type { Db, Executor, Tx } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Actor } from '../../auth/principal.js';
import type { PageRequest } from '../../shared/paging.js';
import { toPage } from '../../shared/paging.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound, RuleViolation } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { effectiveTime, todayIso } from '../../shared/time.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog } from '../events/events.service.js';
import type { History } from '../history/history.service.js';
import * as q from './donors.queries.js';
import type { DonorCreate, DonorDto, EligibilityCreate, EligibilityDto, ScreeningTestCreate, ScreeningTestDto } from './donors.schemas.js';
import { assessEligibility, describeAssessment } from './eligibility.js';
import type { Marker, SourceTissue, TestResult } from './vocabulary.js';

export const DONOR = 'donor';

const toTestDto = (t: q.TestRow): ScreeningTestDto => ({
  id: t.id,
  donorId: t.donorId,
  marker: t.marker as ScreeningTestDto['marker'],
  method: t.method as ScreeningTestDto['method'],
  result: t.result as ScreeningTestDto['result'],
  testedOn: t.testedOn,
  laboratory: t.laboratory,
  recordedAt: t.recordedAt.toISOString(),
  recordedBy: t.recordedBy,
});

const toEligibilityDto = (e: q.DeterminationRow): EligibilityDto => ({
  id: e.id,
  donorId: e.donorId,
  status: e.status as EligibilityDto['status'],
  determinedBy: e.determinedBy,
  determinedAt: e.determinedAt.toISOString(),
  reason: e.reason,
  recordedAt: e.recordedAt.toISOString(),
  recordedBy: e.recordedBy,
});

function toDonorDto(d: q.DonorRow, tests: q.TestRow[], determinations: q.DeterminationRow[]): DonorDto {
  const mine = determinations.filter((e) => e.donorId === d.id).map(toEligibilityDto);
  return {
    id: d.id,
    din: d.din,
    dinCheckCharacter: d.dinCheckCharacter,
    sourceTissue: d.sourceTissue as DonorDto['sourceTissue'],
    sex: d.sex as DonorDto['sex'],
    ageAtDonationYears: d.ageAtDonationYears,
    collectedOn: d.collectedOn,
    eligibility: mine.at(-1) ?? null,
    screeningTests: tests.filter((t) => t.donorId === d.id).map(toTestDto),
    determinations: mine,
    version: d.version,
    createdAt: d.createdAt.toISOString(),
  };
}

/**
 * The reaction to "a donor was found ineligible": the lots module quarantines the donor's released lots in the
 * same transaction and answers their ids, and the ids of every lot made from the donor (wired once in app.ts;
 * required, so a determination never goes without it).
 */
export interface DonorIneligibleReaction {
  quarantineLotsOfDonor(tx: Tx, actor: Actor, donorId: string, at: Date, reason: string): Promise<{ quarantinedLotIds: string[]; lotIds: string[] }>;
}

export interface DonorsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** An ineligible determination tells `donor.ineligible`, in its transaction. */
  events: EventLog;
  history: History;
  clock: Clock;
  onIneligible: DonorIneligibleReaction;
}

export type DonorsService = ReturnType<typeof createDonorsService>;

export function createDonorsService({ db, uow, audit, events, history, clock, onIneligible }: DonorsDeps) {
  async function load(exec: Executor, row: q.DonorRow): Promise<DonorDto> {
    const [tests, determinations] = await Promise.all([q.testsOf(exec, [row.id]), q.determinationsOf(exec, [row.id])]);
    return toDonorDto(row, tests, determinations);
  }

  /** Keeps the new version in history and audits the change, in the caller's transaction. */
  async function recordChange(tx: Tx, actor: Actor, row: q.DonorRow, details: Record<string, unknown>) {
    const dto = await load(tx, row);
    await history.record(tx, { resourceType: DONOR, resourceId: row.id, version: row.version, clinicId: null, body: dto, by: actor.sub });
    await audit.record(tx, actor, { action: row.version === 1 ? 'create' : 'update', resourceType: DONOR, resourceId: row.id, details });
  }

  return {
    async create(actor: Actor, input: z.output<typeof DonorCreate>, idem?: IdempotencyRequest): Promise<DonorDto> {
      if (input.collectedOn > todayIso(clock)) {
        throw new RuleViolation('time-in-future', 'collectedOn cannot be after today.', [{ path: 'body.collectedOn', message: 'after today' }]);
      }
      return uow.run(async (tx) => {
        const now = clock.now();
        const row = await q.insertDonor(tx, { id: newId(), ...input, createdAt: now, updatedAt: now, createdBy: actor.sub });
        await recordChange(tx, actor, row, { din: row.din });
        return toDonorDto(row, [], []);
      }, idem);
    },

    async get(id: string): Promise<DonorDto> {
      const row = await q.findDonor(db, id);
      if (!row) throw new NotFound('donor');
      return load(db, row);
    },

    /** Several donors at once, with their tests and determinations (unknown ids are left out). */
    async getMany(ids: string[]): Promise<DonorDto[]> {
      if (ids.length === 0) return [];
      const rows = await q.findDonors(db, ids);
      const [tests, determinations] = await Promise.all([q.testsOf(db, ids), q.determinationsOf(db, ids)]);
      return rows.map((r) => toDonorDto(r, tests, determinations));
    },

    /** The ISBT 128 DIN of each of these donors (unknown ids are left out): one query, for labels and FHIR identifiers. */
    async dinsOf(ids: string[]): Promise<Map<string, string>> {
      if (ids.length === 0) return new Map();
      return new Map((await q.findDonors(db, ids)).map((d) => [d.id, d.din]));
    },

    async list(din: string | undefined, page: PageRequest) {
      const rows = await q.listDonors(db, din, page);
      const ids = rows.map((r) => r.id);
      const [tests, determinations] = await Promise.all([q.testsOf(db, ids), q.determinationsOf(db, ids)]);
      return toPage(
        rows.map((r) => toDonorDto(r, tests, determinations)),
        page.limit,
      );
    },

    async addTest(actor: Actor, donorId: string, input: z.output<typeof ScreeningTestCreate>, idem?: IdempotencyRequest): Promise<ScreeningTestDto> {
      if (input.testedOn > todayIso(clock)) {
        throw new RuleViolation('time-in-future', 'testedOn cannot be after today.', [{ path: 'body.testedOn', message: 'after today' }]);
      }
      return uow.run(async (tx) => {
        if (!(await q.lockDonor(tx, donorId))) throw new NotFound('donor');
        const now = clock.now();
        const test = await q.insertTest(tx, { id: newId(), donorId, ...input, recordedAt: now, recordedBy: actor.sub });
        const row = await q.bumpDonorVersion(tx, donorId, now);
        await recordChange(tx, actor, row, { screeningTest: test.id, marker: test.marker, result: test.result });
        return toTestDto(test);
      }, idem);
    },

    async determine(actor: Actor, donorId: string, input: z.output<typeof EligibilityCreate>, idem?: IdempotencyRequest) {
      const determinedAt = effectiveTime(clock, input.determinedAt, 'determinedAt');
      return uow.run(async (tx) => {
        const donor = await q.lockDonor(tx, donorId);
        if (!donor) throw new NotFound('donor');
        const [tests, previous] = await Promise.all([q.testsOf(tx, [donorId]), q.determinationsOf(tx, [donorId])]);
        const latest = previous.at(-1);
        if (latest && determinedAt < latest.determinedAt) {
          throw new RuleViolation(
            'determination-out-of-order',
            `determinedAt is before the current determination (${latest.determinedAt.toISOString()}); determinations are kept in time order.`,
            [{ path: 'body.determinedAt', message: 'before the current determination' }],
          );
        }
        if (input.status === 'eligible') {
          const assessment = assessEligibility(
            { sourceTissue: donor.sourceTissue as SourceTissue, collectedOn: donor.collectedOn },
            tests.map((t) => ({ marker: t.marker as Marker, result: t.result as TestResult, testedOn: t.testedOn })),
            determinedAt.toISOString().slice(0, 10),
          );
          if (!assessment.eligible) {
            throw new RuleViolation('donor-not-eligible', describeAssessment(assessment), [
              ...assessment.missing.map((m) => ({ path: `screeningTests.${m}`, message: 'no non-reactive result within the specimen window' })),
              ...assessment.failing.map((f) => ({ path: `screeningTests.${f.marker}`, message: `${f.result} on ${f.testedOn}` })),
            ]);
          }
        }
        const now = clock.now();
        const determination = await q.insertDetermination(tx, {
          id: newId(),
          donorId,
          status: input.status,
          determinedBy: input.determinedBy,
          determinedAt,
          reason: input.reason ?? null,
          recordedAt: now,
          recordedBy: actor.sub,
        });
        let quarantinedLotIds: string[] = [];
        if (input.status === 'ineligible') {
          const lots = await onIneligible.quarantineLotsOfDonor(tx, actor, donorId, determinedAt, `Donor ${donor.din} determined ineligible: ${input.reason}`);
          quarantinedLotIds = lots.quarantinedLotIds;
          // Told when it changes something (the donor was not ineligible, or lots went back to quarantine): a
          // supplier event about every lot of the donor, so each clinic that received one sees it.
          if (latest?.status !== 'ineligible' || quarantinedLotIds.length) {
            await events.emit(tx, { type: 'donor.ineligible', clinicId: null, subject: { type: 'Donor', id: donorId }, lotIds: lots.lotIds, data: { donorId, quarantinedLotIds } });
          }
        }
        const row = await q.bumpDonorVersion(tx, donorId, now);
        await recordChange(tx, actor, row, { determination: determination.id, status: input.status, quarantinedLotIds });
        return { ...toEligibilityDto(determination), quarantinedLotIds };
      }, idem);
    },

    /** Each donor's eligibility status in force at `at` (`undefined`: no determination by then). */
    statusesAt(exec: Executor, donorIds: string[], at: Date) {
      return q.statusesAt(exec, donorIds, at);
    },

    existingIds(exec: Executor, ids: string[]) {
      return q.existingDonorIds(exec, ids);
    },
  };
}
