import type { Db } from '../../db/client.js';
import type { Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import type { AuditLog } from '../audit/audit.service.js';
import { RELATEDNESS } from '../adverse-events/vocabulary.js';
import type { LotsService } from '../lots/lots.service.js';
import { TIMEPOINT_CODES } from '../outcomes/instruments.js';
import type { SafetyMonitor } from './safety.monitor.js';
import * as q from './safety.queries.js';
import type { LotSafety, SafetySignalsDto } from './safety.schemas.js';
import { judgeSignal, rateOf } from './signal.js';

export interface SafetyDeps {
  db: Db;
  audit: AuditLog;
  clock: Clock;
  lots: Pick<LotsService, 'get'>;
  /** The counts are the monitor's; a report first has it count what is settled (skipped if another instance is). */
  monitor: Pick<SafetyMonitor, 'catchUp'>;
}

export type SafetyService = ReturnType<typeof createSafetyService>;

type Totals = Pick<q.LotTotals, 'procedures' | 'with_event'>;

/** The pool of a lot: the product's other lots with a counted procedure. */
function poolOf(lotId: string, productLots: q.LotTotals[]) {
  const others = productLots.filter((t) => t.lot_id !== lotId && t.procedures > 0);
  const procedures = others.reduce((s, t) => s + t.procedures, 0);
  const withEvent = others.reduce((s, t) => s + Math.min(t.with_event, t.procedures), 0);
  return { lots: others.length, procedures, proceduresWithEvent: withEvent, rate: rateOf(withEvent, procedures) };
}

function signalOf(lot: Totals, pool: { procedures: number; proceduresWithEvent: number }) {
  const { flagged, pValue } = judgeSignal(lot.with_event, lot.procedures, pool.proceduresWithEvent, pool.procedures);
  return { flagged, pValue, test: 'fisher-exact-greater' as const };
}

const TIMEPOINT_ORDER = new Map(TIMEPOINT_CODES.map((t, i) => [t, i]));

/**
 * Product safety (contract "Safety"): per lot, adverse events and responders against the product's other lots,
 * and the lots whose adverse-event rate stands out.
 *
 * Tenancy: a token without a clinic sees every clinic's procedures. A clinic token sees its own clinic's only, on
 * both sides of every comparison (its procedures of this lot against its procedures of the product's other lots),
 * and its signal is judged on those numbers: no count, rate or p-value of another clinic reaches it, so it cannot
 * learn another clinic's patient volume or adverse events by subtraction. What the supplier judges over every
 * clinic reaches a clinic that received the lot as the `lot.safety-signal` event (ids, the lot number and the p-value).
 */
export function createSafetyService({ db, audit, clock, lots, monitor }: SafetyDeps) {
  const requestedBy = (actor: Actor) => ({ sub: actor.sub, clinicId: actor.clinicId });
  // Best effort and bounded: a report answers from the counts as they stand if counting now fails or is long
  // (the monitor's own passes log their failures and carry on).
  const catchUp = () => monitor.catchUp({ maxPasses: 4 }).catch(() => false);

  /** The lot safety report's figures (see lotSafety), with no audit entry of their own. */
  async function lotFigures(actor: Actor, lotId: string): Promise<LotSafety> {
    const [lot] = await Promise.all([lots.get(lotId), catchUp()]);
    const clinicId = actor.clinicId;
    const now = clock.now();
    const [productLots, responders, aes] = await Promise.all([
      q.lotTotals(db, [lot.productName], clinicId),
      q.responderTotals(db, lotId, lot.productName, clinicId),
      q.adverseEventBreakdown(db, lotId, clinicId, now),
    ]);
    const own: Totals = productLots.find((t) => t.lot_id === lotId) ?? { procedures: 0, with_event: 0 };
    const withEvent = Math.min(own.with_event, own.procedures);
    const pool = poolOf(lotId, productLots);
    return {
      generatedAt: now.toISOString(),
      requestedBy: requestedBy(actor),
      lotId,
      lotNumber: lot.lotNumber,
      productName: lot.productName,
      procedures: own.procedures,
      proceduresWithEvent: withEvent,
      adverseEvents: {
        total: aes.total,
        serious: aes.serious,
        byGrade: { 1: aes.grade_1, 2: aes.grade_2, 3: aes.grade_3, 4: aes.grade_4, 5: aes.grade_5 },
        byRelatedness: Object.fromEntries(RELATEDNESS.map((r) => [r, aes.by_relatedness?.[r] ?? 0])),
        reportsOverdue: aes.reports_overdue,
      },
      rate: rateOf(withEvent, own.procedures),
      pool,
      signal: signalOf(own, pool),
      responders: responders
        .map((r) => ({
          instrument: r.instrument as LotSafety['responders'][number]['instrument'],
          timepoint: r.timepoint as LotSafety['responders'][number]['timepoint'],
          n: r.lot_n,
          responders: r.lot_responders,
          rate: rateOf(r.lot_responders, r.lot_n),
          pool: { n: r.pool_n, responders: r.pool_responders, rate: rateOf(r.pool_responders, r.pool_n) },
        }))
        .sort((a, b) => a.instrument.localeCompare(b.instrument) || TIMEPOINT_ORDER.get(a.timepoint)! - TIMEPOINT_ORDER.get(b.timepoint)!),
    };
  }

  return {
    /**
     * The lot safety report (shape: contract "Safety", plus `lotNumber`, `proceduresWithEvent`, `generatedAt`,
     * `requestedBy`, `adverseEvents.reportsOverdue`). 404 for an unknown lot. Audited as an export of the lot.
     * Procedures are the lot's not entered in error; the rate is the share of them with at least one adverse event
     * not judged `not-related`, with its exact 95 % interval; counts come from the safety monitor as of the feed's
     * settled position (this request has it catch up first), adverse-event breakdowns from the records now.
     */
    async lotSafety(actor: Actor, lotId: string): Promise<LotSafety> {
      const report = await lotFigures(actor, lotId);
      await audit.record(db, actor, { action: 'export', resourceType: 'lot', resourceId: lotId, clinicId: actor.clinicId, details: { report: 'lot-safety', format: 'json' } });
      return report;
    },

    /** lotSafety's figures without an audit entry: for a report that is itself audited (the lot dossier). */
    lotFigures,

    /**
     * Every flagged lot (same rule and tenancy as lotSafety), worst first: smallest p, then the higher rate, then
     * lot number. Judged on the monitor's counts, which this request has catch up first. Audited as one export.
     */
    async safetySignals(actor: Actor): Promise<SafetySignalsDto> {
      await catchUp();
      const totals = await q.lotTotals(db, null, actor.clinicId);
      const byProduct = new Map<string, q.LotTotals[]>();
      for (const t of totals) byProduct.set(t.product_name, [...(byProduct.get(t.product_name) ?? []), t]);
      const items: SafetySignalsDto['items'] = [];
      for (const t of totals) {
        const pool = poolOf(t.lot_id, byProduct.get(t.product_name)!);
        const signal = signalOf(t, pool);
        if (!signal.flagged) continue;
        const withEvent = Math.min(t.with_event, t.procedures);
        items.push({ lotId: t.lot_id, lotNumber: t.lot_number, productName: t.product_name, procedures: t.procedures, proceduresWithEvent: withEvent, rate: rateOf(withEvent, t.procedures), pool, signal });
      }
      items.sort((a, b) => a.signal.pValue - b.signal.pValue || (b.rate.value ?? 0) - (a.rate.value ?? 0) || a.lotNumber.localeCompare(b.lotNumber));
      await audit.record(db, actor, { action: 'export', resourceType: 'lot', clinicId: actor.clinicId, details: { report: 'safety-signals', format: 'json', lots: items.length } });
      return { generatedAt: clock.now().toISOString(), requestedBy: requestedBy(actor), items };
    },
  };
}
