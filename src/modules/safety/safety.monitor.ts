import type { Pool, Tx } from '../../db/client.js';
import { newId } from '../../shared/ids.js';
import { createPoller } from '../../shared/poller.js';
import type { EventLog } from '../events/events.service.js';
import * as q from './safety.queries.js';
import { judgeSignal, responderRules } from './signal.js';

/**
 * The safety monitor: keeps the per-lot counts of the safety report (safety.table.ts) and judges the signals,
 * from the event feed (the transactional outbox), so no clinical write waits on a counter row.
 *
 * A pass, on any instance (PostgreSQL lets one at a time: a session advisory lock), in one REPEATABLE READ
 * transaction: the settled counting events after the monitor's cursor (`procedure.created` /
 * `procedure.entered-in-error` move the procedure counts; adverse-event events re-judge their procedure's
 * membership of the with-event set; `outcome.created` and entered-in-error move the responder counts by the
 * difference between the procedure's responders with and without the pass's changes), then a few lot rebuilds
 * from the records, then the signals of every lot of the products touched, then the cursor. Records that this
 * snapshot sees but whose events come later (not yet settled) are read as if not yet there, so each change is
 * counted exactly once. A crash (kill -9) rolls the pass back: the next one repeats it.
 *
 * A lot newly flagged (the first time, or again after it cleared) gets its `lot_safety_signals` row written and one
 * `lot.safety-signal` event in the same transaction; a lot that stays flagged is not told again.
 */
export interface SafetyMonitorOptions {
  /** How often this instance runs a pass (ms); 0: none in the background (reports still catch up). Default 0. */
  pollIntervalMs?: number;
  /** Events per pass. Default 5000. */
  batch?: number;
  /** Time a background pass may spend rebuilding lots from the records (ms); at least one lot per pass. Default 1000. */
  rebuildBudgetMs?: number;
}

export interface SafetyMonitor {
  /**
   * Counts what is settled now (passes until caught up, at most `maxPasses`); with `rebuild`, also the lots waiting
   * for a rebuild, within the budget per pass. Answers false when another connection was passing (nothing done).
   */
  catchUp(opts?: { rebuild?: boolean; maxPasses?: number }): Promise<boolean>;
  start(): void;
  stop(): Promise<void>;
}

interface Log {
  warn(obj: object, msg: string): void;
}

const MAX_REBUILDS_PER_PASS = 50;

export function createSafetyMonitor(deps: { pool: Pool; events: EventLog; log: Log }, opts: SafetyMonitorOptions = {}): SafetyMonitor {
  const { pool, events, log } = deps;
  const batchSize = opts.batch ?? 5000;
  const rebuildBudgetMs = opts.rebuildBudgetMs ?? 1000;
  const pollMs = opts.pollIntervalMs ?? 0;
  const rules = responderRules();

  /** One pass; answers whether there is more to do now, or undefined when another connection holds the monitor. */
  async function pass(rebuild: boolean): Promise<boolean | undefined> {
    return q.withMonitorClaim(pool, async (tx) => {
      const cursor = await q.cursorOf(tx);
      const { events: batch, next } = await q.settledAfter(tx, cursor, batchSize);
      const later = await q.visibleAfter(tx, next);
      const subjects = (type: string, list: q.FeedEvent[]) => list.filter((e) => e.type === type).map((e) => e.subject_id);
      const as: q.AsCounted = {
        completedAnyway: subjects('procedure.entered-in-error', later),
        notYet: subjects('procedure.created', later),
        excludedOutcomes: subjects('outcome.created', later),
      };

      const deltas = new Map<string, { lotId: string; clinicId: string; delta: number }>();
      const add = (e: q.FeedEvent, delta: number) => {
        if (!e.lot_id || !e.clinic_id) return;
        const key = `${e.lot_id}|${e.clinic_id}`;
        const d = deltas.get(key) ?? { lotId: e.lot_id, clinicId: e.clinic_id, delta: 0 };
        d.delta += delta;
        deltas.set(key, d);
      };
      const enteredInError: string[] = [];
      const adverseEventProcedures = new Set<string>();
      const outcomeProcedures = new Set<string>();
      const newOutcomes: string[] = [];
      const touched = new Set<string>();
      for (const e of batch) {
        if (e.lot_id) touched.add(e.lot_id);
        if (e.type === 'procedure.created') add(e, 1);
        else if (e.type === 'procedure.entered-in-error') {
          add(e, -1);
          enteredInError.push(e.subject_id);
        } else if (e.type === 'outcome.created') {
          newOutcomes.push(e.subject_id);
          if (e.procedure_id) outcomeProcedures.add(e.procedure_id);
        } else if (e.procedure_id) adverseEventProcedures.add(e.procedure_id);
      }

      // Reads first (no xid is held while they run): responders without and with this pass's changes, rebuilds.
      const responderScope = { procedureIds: [...new Set([...outcomeProcedures, ...enteredInError])] };
      const before = await q.responderCounts(
        tx,
        responderScope,
        { completedAnyway: [...as.completedAnyway, ...enteredInError], notYet: as.notYet, excludedOutcomes: [...as.excludedOutcomes, ...newOutcomes] },
        rules,
      );
      const after = await q.responderCounts(tx, responderScope, as, rules);
      const rebuilds: q.Rebuilt[] = [];
      let moreToRebuild = false;
      if (rebuild) {
        const started = Date.now();
        const waiting = await q.recountRequests(tx, MAX_REBUILDS_PER_PASS + 1);
        for (const lotId of waiting.slice(0, MAX_REBUILDS_PER_PASS)) {
          if (rebuilds.length && Date.now() - started > rebuildBudgetMs) break;
          rebuilds.push(await q.rebuildOf(tx, [lotId], as, rules));
        }
        moreToRebuild = waiting.length > rebuilds.length;
      }

      await q.addProcedures(tx, [...deltas.values()].filter((d) => d.delta !== 0));
      await q.rejudgeWithEvent(tx, [...new Set([...adverseEventProcedures, ...enteredInError])], as);
      await q.addResponders(tx, difference(after, before));
      for (const r of rebuilds) {
        await q.replaceCounts(tx, r);
        for (const id of r.lotIds) touched.add(id);
      }
      if (touched.size) await judge(tx, [...touched]);
      if (next.tx !== cursor.tx || next.seq !== cursor.seq) await q.moveCursor(tx, next);
      return batch.length >= batchSize || moreToRebuild;
    });
  }

  /** Judges every lot of the touched lots' products; a lot newly flagged (first time, or again after clearing) is recorded and told. */
  async function judge(tx: Tx, lotIds: string[]) {
    const products = await q.productsOf(tx, lotIds);
    const totals = await q.lotTotals(tx, products, null);
    const byProduct = new Map<string, { procedures: number; withEvent: number }>();
    for (const t of totals) {
      const p = byProduct.get(t.product_name) ?? { procedures: 0, withEvent: 0 };
      p.procedures += t.procedures;
      p.withEvent += t.with_event;
      byProduct.set(t.product_name, p);
    }
    const known = new Map((await q.signalsOf(tx, totals.map((t) => t.lot_id))).map((s) => [s.lot_id, s.flagged]));
    for (const t of totals) {
      const all = byProduct.get(t.product_name)!;
      const { flagged, pValue } = judgeSignal(t.with_event, t.procedures, all.withEvent - t.with_event, all.procedures - t.procedures);
      const was = known.get(t.lot_id);
      if (flagged && was !== true) {
        // A new signal: a lot flagged for the first time, or again after its rate had fallen back.
        const eventId = newId();
        if (was === undefined) await q.insertSignal(tx, { lotId: t.lot_id, pValue, eventId });
        else await q.updateSignal(tx, { lotId: t.lot_id, flagged, pValue, eventId });
        // Ids and codes only: the p-value is judged over every clinic, and clinics that received the lot hear of it.
        await events.emit(tx, {
          type: 'lot.safety-signal',
          clinicId: null,
          subject: { type: 'Lot', id: t.lot_id },
          lotIds: [t.lot_id],
          data: { lotId: t.lot_id, lotNumber: t.lot_number, productName: t.product_name, test: 'fisher-exact-greater', recurrence: was === false },
        });
      } else if (was !== undefined && was !== flagged) {
        await q.updateSignal(tx, { lotId: t.lot_id, flagged, pValue });
      }
    }
  }

  async function catchUp({ rebuild = false, maxPasses = 20 } = {}): Promise<boolean> {
    // Without rebuilds there is nothing to do unless an event waits (the background passes also move the cursor on).
    if (!rebuild && !(await q.pendingToCount(pool))) return true;
    for (let i = 0; i < maxPasses; i++) {
      const more = await pass(rebuild);
      if (more === undefined) return false;
      if (!more) return true;
    }
    return true;
  }

  const warn = (err: unknown) => log.warn({ err: { code: (err as { code?: string }).code } }, 'safety monitor rebuild failed; counting the feed without it');
  const poller = createPoller(
    async () => {
      // A rebuild that fails (and fails again) must not hold up counting the feed: then a pass without rebuilds.
      await catchUp({ rebuild: true, maxPasses: 3 }).catch(async (err: unknown) => {
        warn(err);
        await catchUp({ rebuild: false, maxPasses: 3 });
      });
    },
    { intervalMs: pollMs, log, failure: 'safety monitor pass failed; will retry' },
  );

  return {
    catchUp,
    start: () => poller.start(),
    stop: () => poller.stop(),
  };
}

/** after − before, per lot, clinic, instrument and timepoint (rows that do not change are left out). */
function difference(after: q.ResponderRow[], before: q.ResponderRow[]): q.ResponderRow[] {
  const key = (r: q.ResponderRow) => `${r.lot_id}|${r.clinic_id}|${r.instrument}|${r.timepoint}`;
  const out = new Map<string, q.ResponderRow>();
  for (const r of after) out.set(key(r), { ...r });
  for (const r of before) {
    const o = out.get(key(r)) ?? { ...r, n: 0, responders: 0 };
    o.n -= r.n;
    o.responders -= r.responders;
    out.set(key(r), o);
  }
  return [...out.values()].filter((r) => r.n !== 0 || r.responders !== 0);
}
