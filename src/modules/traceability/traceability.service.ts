import { AsyncResource } from 'node:async_hooks';
import { pipeline, type Readable } from 'node:stream';
import type { Db, Pool } from '../../db/client.js';
import type { Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound } from '../../shared/errors.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { DonorsService } from '../donors/donors.service.js';
import type { LotsService } from '../lots/lots.service.js';
import type { VialsService } from '../vials/vials.service.js';
import { INSTRUMENTS, changeFromBaseline, isResponder, type InstrumentCode, type Timepoint } from '../outcomes/instruments.js';
import type { PatientsService } from '../patients/patients.service.js';
import { isReportOverdue } from '../adverse-events/rules.js';
import { todayIso } from '../../shared/time.js';
import { StreamedList } from '../../shared/json-stream.js';
import { csvLine, toCsv } from './csv.js';
import * as q from './traceability.queries.js';

export interface TraceabilityDeps {
  db: Db;
  pool: Pool;
  audit: AuditLog;
  clock: Clock;
  lots: Pick<LotsService, 'get' | 'getMany'>;
  donors: Pick<DonorsService, 'get' | 'getMany'>;
  vials: Pick<VialsService, 'inventory'>;
  patients: Pick<PatientsService, 'findAnywhere' | 'findInClinic'>;
  /** Where a report download that ended before its last row is told (no values: the report, format and why). */
  log: { warn(obj: object, msg: string): void };
}

/** A report being downloaded: what its export audit entry names. */
interface Delivery {
  report: 'lot-traceability' | 'donor-lookback';
  format: 'json' | 'csv' | 'pdf' | 'html';
  resourceType: 'lot' | 'donor';
  resourceId: string;
}

const RECIPIENT_CSV_COLUMNS = [
  'lot_number',
  'lot_id',
  'procedure_id',
  'clinic_id',
  'patient_id',
  'mrn',
  'performed_at',
  'route',
  'body_site',
  'laterality',
  'imaging_guidance',
  'dose_particles',
  'dose_volume_ml',
  'vials_used',
  'vial_barcodes',
  'status',
];
/** Written by the service as numbers; every other column is text, neutralised against formulas (csv.ts). */
const RECIPIENT_CSV_NUMERIC = new Set(['dose_particles', 'dose_volume_ml', 'vials_used']);

function toRecipient(r: q.RecipientRow) {
  return {
    procedureId: r.procedure_id,
    clinicId: r.clinic_id,
    patientId: r.patient_id,
    mrn: r.mrn,
    performedAt: r.performed_at,
    route: r.route,
    site: r.body_site ? { bodySite: r.body_site, laterality: r.laterality } : null,
    imagingGuidance: r.imaging_guidance,
    dose: { particles: Number(r.dose_particles), volumeMl: Number(r.dose_volume_ml) },
    vialsUsed: r.vials_used,
    vialBarcodes: r.vial_barcodes,
    status: r.status as 'completed' | 'entered-in-error',
  };
}

function toReportAdverseEvent(a: q.AdverseEventRow) {
  return {
    id: a.id,
    procedureId: a.procedure_id,
    patientId: a.patient_id,
    clinicId: a.clinic_id,
    onsetAt: a.onset_at.toISOString(),
    severityGrade: a.severity_grade,
    serious: a.serious,
    seriousnessCriteria: a.seriousness_criteria,
    relatedness: a.relatedness,
    outcome: a.outcome,
  };
}

/** Per instrument and timepoint: n, mean change from baseline, responder rate (rows are counted groups of scores). */
export function summarizeOutcomes(rows: q.ScoreRow[]) {
  const groups = new Map<string, { instrument: InstrumentCode; timepoint: Timepoint; n: number; withBaseline: number; changeSum: number; assessable: number; responders: number }>();
  for (const r of rows) {
    const key = `${r.instrument}|${r.timepoint}`;
    const g = groups.get(key) ?? { instrument: r.instrument as InstrumentCode, timepoint: r.timepoint as Timepoint, n: 0, withBaseline: 0, changeSum: 0, assessable: 0, responders: 0 };
    groups.set(key, g);
    g.n += r.n;
    const change = changeFromBaseline(r.score, r.baseline);
    if (change !== null) {
      g.withBaseline += r.n;
      g.changeSum += change * r.n;
    }
    const responder = isResponder(g.instrument, r.score, r.baseline);
    if (responder !== null) {
      g.assessable += r.n;
      if (responder) g.responders += r.n;
    }
  }
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return [...groups.values()]
    .sort((a, b) => (a.instrument === b.instrument ? a.timepoint.localeCompare(b.timepoint) : a.instrument.localeCompare(b.instrument)))
    .map((g) => ({
      instrument: g.instrument,
      timepoint: g.timepoint,
      n: g.n,
      withBaseline: g.withBaseline,
      meanChangeFromBaseline: g.withBaseline ? round(g.changeSum / g.withBaseline) : null,
      responderRate: INSTRUMENTS[g.instrument].mcid && g.assessable ? round(g.responders / g.assessable) : null,
    }));
}

/** A recipient procedure as the lot report lists it. */
export type ReportRecipient = ReturnType<typeof toRecipient>;

const dateOrNull = (iso: string | null) => (iso === null ? null : new Date(iso));

export type TraceabilityService = ReturnType<typeof createTraceabilityService>;
/** The dossier's figures: what `lotDossier` answers. */
export type LotDossierData = Awaited<ReturnType<TraceabilityService['lotDossier']>>;

/** Reports for auditors and quality units. A clinic token sees its own clinic's recipients only. */
export function createTraceabilityService({ db, pool, audit, clock, lots, donors, vials, patients, log }: TraceabilityDeps) {
  const requestedBy = (actor: Actor) => ({ sub: actor.sub, clinicId: actor.clinicId });

  async function exported(actor: Actor, report: string, resourceType: string, resourceId: string, details: Record<string, unknown>) {
    await audit.record(db, actor, { action: 'export', resourceType, resourceId, clinicId: actor.clinicId, details: { report, ...details } });
  }

  /**
   * Watches a report's rows as they are downloaded. The export entry is written before the first byte; if the
   * rows then stop before their last (the client left, the database failed, the client stopped reading), a
   * second export entry with outcome `incomplete` says so (21 CFR 11.10(e): the log must not claim a delivery
   * that did not happen), and a warning is logged with the report, format and reason only. A client that leaves
   * after the last row was read, while the end of the text is still on its way, is not detected.
   */
  function watchDelivery(actor: Actor, rows: Readable, d: Delivery): void {
    let ended = false;
    let reason = 'closed-early';
    rows.once('end', () => (ended = true));
    rows.once('error', (err: Error & { code?: string }) => {
      reason = err.code ?? err.name;
    });
    rows.once(
      'close',
      // Bound to the request's context, so the entry carries its request id.
      AsyncResource.bind(() => {
        if (ended) return;
        log.warn({ report: d.report, format: d.format, reason }, 'report download ended before its last row');
        audit
          .record(db, actor, {
            action: 'export',
            resourceType: d.resourceType,
            resourceId: d.resourceId,
            clinicId: actor.clinicId,
            outcome: 'incomplete',
            details: { report: d.report, format: d.format, reason },
          })
          .catch((err: unknown) => log.warn({ err: { code: (err as { code?: string }).code } }, 'could not record an incomplete report download'));
      }),
    );
  }

  /**
   * Opens the recipient procedures of these lots (of the actor's clinic, or all) for a report about to be written:
   * one cursor, by lot then time, with `counts` from the same snapshot, so the audit entry names exactly what is
   * sent. Opened before the first byte, so a busy instance answers 503 (streamRows) rather than a cut-off body.
   * `of(lotId)` is one lot's list; lists must be read in lot id order (the order of lotIdsOf and lots.getMany).
   * `recorded(details)` writes the export entry, then watches the download; `abandon()` frees the connection of a
   * report that will not be written (each list also does, when left early). No lots: no cursor, nothing held.
   */
  async function openRecipients(actor: Actor, lotIds: string[], delivery: Delivery) {
    if (lotIds.length === 0) {
      const none: q.RecipientCountsRow = { procedures: 0, patients: 0, clinics: 0, entered_in_error: 0 };
      return {
        counts: none,
        of: () => new StreamedList<ReportRecipient>(async function* nothing() {}),
        recorded: (details: Record<string, unknown>) => exported(actor, delivery.report, delivery.resourceType, delivery.resourceId, details),
        abandon: () => undefined,
      };
    }
    const { rows, counts } = await q.streamLotRecipients(pool, lotIds, actor.clinicId);
    const recorded = async (details: Record<string, unknown>) => {
      await exported(actor, delivery.report, delivery.resourceType, delivery.resourceId, details);
      watchDelivery(actor, rows, delivery);
    };
    const items = (rows as AsyncIterable<q.RecipientRow>)[Symbol.asyncIterator]();
    let ahead: IteratorResult<q.RecipientRow> | undefined;
    const abandon = () => void rows.destroy();
    const of = (lotId: string) =>
      new StreamedList(async function* recipients() {
        for (;;) {
          ahead ??= await items.next();
          if (ahead.done || ahead.value.lot_id !== lotId) return;
          const row = ahead.value;
          ahead = undefined;
          yield toRecipient(row);
        }
      }, abandon);
    return { counts, of, recorded, abandon };
  }

  /**
   * The recipients of these lots as CSV (one line per procedure, by lot then time), streamed; audited as one
   * export before the first byte, and watched for a download that ends early.
   */
  async function recipientsCsv(actor: Actor, lotIds: string[], d: Delivery, details: Record<string, unknown> = {}): Promise<Readable> {
    const rows = await q.streamRecipients(pool, lotIds, actor.clinicId);
    try {
      await exported(actor, d.report, d.resourceType, d.resourceId, { format: 'csv', ...details });
    } catch (err) {
      rows.destroy();
      throw err;
    }
    watchDelivery(actor, rows, d);
    // pipeline, not pipe: when the client goes away mid-download Fastify destroys `csv`, and the cursor
    // must be destroyed with it, or its pooled connection would stay checked out for good.
    return pipeline(rows, toCsv(RECIPIENT_CSV_COLUMNS, RECIPIENT_CSV_NUMERIC), () => undefined);
  }

  /** Runs `use` with the opened recipients; a failure before the report is handed on frees their connection. */
  async function withRecipients<T>(opened: { abandon(): void }, use: () => Promise<T>): Promise<T> {
    try {
      return await use();
    } catch (err) {
      opened.abandon();
      throw err;
    }
  }

  /** The lot report's content but its recipients, for `actor` (its clinic's part for a clinic token); 404 for an unknown lot. */
  async function lotReportBesidesRecipients(actor: Actor, lotId: string) {
    const lot = await lots.get(lotId);
    const [donorDtos, inventory, adverseEvents, scores] = await Promise.all([
      donors.getMany(lot.donorIds),
      vials.inventory(actor, lotId),
      q.adverseEventsOfLots(db, [lotId], actor.clinicId),
      q.followUpScores(db, lotId, actor.clinicId),
    ]);
    return {
      generatedAt: clock.now().toISOString(),
      requestedBy: requestedBy(actor),
      lot,
      donors: donorDtos,
      vialAccounting: inventory.clinics,
      adverseEvents: adverseEvents.map(toReportAdverseEvent),
      outcomeSummary: summarizeOutcomes(scores),
    };
  }

  return {
    /**
     * The lot traceability report (contract "Reports") for `actor`: its recipients are a `StreamedList`, written
     * as they are read (`jsonBody`), so its memory does not grow with the lot. Audited as one export with the
     * number of recipient procedures, before the first byte. 404 for an unknown lot.
     */
    async lotTraceability(actor: Actor, lotId: string) {
      const report = await lotReportBesidesRecipients(actor, lotId);
      const opened = await openRecipients(actor, [lotId], { report: 'lot-traceability', format: 'json', resourceType: 'lot', resourceId: lotId });
      return withRecipients(opened, async () => {
        await opened.recorded({ format: 'json', recipients: opened.counts.procedures });
        const { adverseEvents, outcomeSummary, ...head } = report;
        return { ...head, recipients: opened.of(lotId), adverseEvents, outcomeSummary };
      });
    },

    /**
     * What the printed dossier of a lot shows (GET /reports/lot-traceability/{id} as PDF or HTML): the JSON report
     * (same tenancy), its recipients counted (`recipientCounts`) and read later as a stream (`recipients`: a
     * cursor on a pooled connection, released when the stream ends or is destroyed; rows as the JSON report's), and
     * beside it the adverse events with what happened and their reporting clocks (21 CFR 312.32; `reportOverdue`
     * judged now), change from baseline per instrument and timepoint as n, mean and SD (points), the lot's vials
     * that went to no recipient (as runs of consecutive vials in one state), and its recall notices. Audited as one
     * export in `format`, with the number of recipient procedures. 404 for an unknown lot.
     */
    async lotDossier(actor: Actor, lotId: string, format: 'pdf' | 'html') {
      const now = clock.now();
      const [report, changes, events, unused, notices] = await Promise.all([
        lotReportBesidesRecipients(actor, lotId),
        q.changeFromBaselineStats(db, lotId, actor.clinicId),
        q.dossierAdverseEvents(db, lotId, actor.clinicId),
        q.unusedVialRuns(db, lotId, actor.clinicId, todayIso(clock)),
        q.recallNoticesOf(db, lotId, actor.clinicId),
      ]);
      const opened = await openRecipients(actor, [lotId], { report: 'lot-traceability', format, resourceType: 'lot', resourceId: lotId });
      await withRecipients(opened, () => opened.recorded({ format, recipients: opened.counts.procedures }));
      return {
        ...report,
        recipientCounts: opened.counts,
        recipients: opened.of(lotId),
        adverseEventDetails: events.map((a) => ({ ...a, report_overdue: isReportOverdue({ reportDueAt: dateOrNull(a.report_due_at), reportedAt: dateOrNull(a.reported_at) }, now) })),
        changeFromBaseline: changes.map((c) => ({ instrument: c.instrument, timepoint: c.timepoint, n: c.n, mean: c.mean, sd: c.sd })),
        unusedVials: unused,
        recallNotices: notices,
      };
    },

    async lotTraceabilityCsv(actor: Actor, lotId: string): Promise<Readable> {
      await lots.get(lotId);
      return recipientsCsv(actor, [lotId], { report: 'lot-traceability', format: 'csv', resourceType: 'lot', resourceId: lotId });
    },

    /**
     * The donor lookback report (contract "Reports"): each of the donor's lots with its recipients (a
     * `StreamedList` per lot, read when the writer reaches it) and adverse events. Audited as one export with the
     * number of lots and recipient procedures. 404 for an unknown donor.
     */
    async donorLookback(actor: Actor, donorId: string) {
      const donor = await donors.get(donorId);
      const lotIds = await q.lotIdsOf(db, donorId);
      const [lotDtos, adverseEvents] = await Promise.all([lots.getMany(lotIds), q.adverseEventsOfLots(db, lotIds, actor.clinicId)]);
      const opened = await openRecipients(actor, lotIds, { report: 'donor-lookback', format: 'json', resourceType: 'donor', resourceId: donorId });
      return withRecipients(opened, async () => {
        await opened.recorded({ format: 'json', lots: lotIds.length, recipients: opened.counts.procedures });
        return {
          generatedAt: clock.now().toISOString(),
          requestedBy: requestedBy(actor),
          donor,
          // In lot id order, as the cursor reads them.
          lots: lotDtos.map((lot) => ({
            lot,
            recipients: opened.of(lot.id),
            adverseEvents: adverseEvents.filter((a) => a.lot_id === lot.id).map(toReportAdverseEvent),
          })),
        };
      });
    },

    async donorLookbackCsv(actor: Actor, donorId: string): Promise<Readable> {
      await donors.get(donorId);
      const lotIds = await q.lotIdsOf(db, donorId);
      return recipientsCsv(actor, lotIds, { report: 'donor-lookback', format: 'csv', resourceType: 'donor', resourceId: donorId }, { lots: lotIds.length });
    },

    /** The patient's exposures as CSV, one line per (procedure, donor); the export is audited as csv. */
    async patientExposuresCsv(actor: Actor, patientId: string): Promise<string> {
      const report = await this.patientExposures(actor, patientId, 'csv');
      let csv = csvLine(['patient_id', 'mrn', 'procedure_id', 'performed_at', 'route', 'status', 'lot_id', 'lot_number', 'lot_status', 'donor_id', 'din', 'donor_eligibility']);
      for (const e of report.exposures) {
        for (const d of e.donors) {
          csv += csvLine([report.patient.id, report.patient.mrn, e.procedureId, e.performedAt, e.route, e.status, e.lot.id, e.lot.lotNumber, e.lot.status, d.id, d.din, d.eligibility?.status ?? '']);
        }
      }
      return csv;
    },

    async patientExposures(actor: Actor, patientId: string, format: 'json' | 'csv' = 'json') {
      const patient = actor.clinicId ? await patients.findInClinic(db, actor.clinicId, patientId) : await patients.findAnywhere(db, patientId);
      if (!patient) throw new NotFound('patient');
      const exposures = await q.exposuresOfPatient(db, patientId);
      const lotIds = [...new Set(exposures.map((e) => e.lot_id))];
      const lotDtos = new Map((await lots.getMany(lotIds)).map((l) => [l.id, l]));
      const donorIds = [...new Set([...lotDtos.values()].flatMap((l) => l.donorIds))];
      const donorDtos = new Map((await donors.getMany(donorIds)).map((d) => [d.id, d]));
      await exported(actor, 'patient-exposures', 'patient', patientId, { format, lots: lotIds.length });
      return {
        generatedAt: clock.now().toISOString(),
        requestedBy: requestedBy(actor),
        patient: { id: patient.id, clinicId: patient.clinicId, mrn: patient.mrn },
        exposures: exposures.map((e) => {
          const lot = lotDtos.get(e.lot_id)!;
          return {
            procedureId: e.procedure_id,
            performedAt: e.performed_at.toISOString(),
            route: e.route,
            site: e.body_site ? { bodySite: e.body_site, laterality: e.laterality } : null,
            dose: { particles: Number(e.dose_particles) },
            vialsUsed: e.vials_used,
            vialBarcodes: e.vial_barcodes,
            status: e.status as 'completed' | 'entered-in-error',
            lot,
            donors: lot.donorIds.map((id) => donorDtos.get(id)!),
          };
        }),
      };
    },
  };
}
