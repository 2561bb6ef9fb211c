import { INSTRUMENTS, type Instrument } from '../outcomes/instruments.js';
import { clopperPearson, fisherExactGreater } from './statistics.js';

/** A lot is flagged when Fisher's exact test (one-sided) against its product's other lots gives p below this… */
export const SIGNAL_ALPHA = 0.01;
/** …and at least this many of its procedures had an adverse event not judged not-related. */
export const SIGNAL_MIN_EVENTS = 3;
export const CONFIDENCE = 0.95 as const;

/**
 * The signal rule (contract "Safety"): `events` of the lot's `procedures` had at least one adverse event not judged
 * `not-related` (procedures, not adverse events: a patient with three reactions counts once), against `poolEvents`
 * of `poolProcedures` in every other lot of the same product. Flagged when the one-sided Fisher exact p < 0.01 and
 * events ≥ 3. Counts are clamped so that a count never exceeds its procedures (a lot being rebuilt).
 */
export function judgeSignal(events: number, procedures: number, poolEvents: number, poolProcedures: number): { flagged: boolean; pValue: number } {
  const x = Math.min(events, procedures);
  const px = Math.min(poolEvents, poolProcedures);
  const pValue = fisherExactGreater(x, procedures - x, px, poolProcedures - px);
  return { flagged: pValue < SIGNAL_ALPHA && x >= SIGNAL_MIN_EVENTS, pValue };
}

/** A rate with its exact 95 % interval, as the report shapes it. */
export function rateOf(x: number, n: number) {
  return { ...clopperPearson(Math.min(x, n), n, CONFIDENCE), method: 'clopper-pearson' as const, confidence: CONFIDENCE };
}

/** The responder rules of the instruments that have an MCID, as the counting SQL takes them (instruments.ts). */
export function responderRules() {
  return Object.entries(INSTRUMENTS as Record<string, Instrument>)
    .filter(([, i]) => i.mcid !== null)
    .map(([instrument, i]) => ({
      instrument,
      lower: i.better === 'lower',
      points: i.mcid && 'points' in i.mcid ? i.mcid.points : null,
      fraction: i.mcid && 'fractionOfBaseline' in i.mcid ? i.mcid.fractionOfBaseline : null,
    }));
}
