import type { Clock } from './clock.js';
import { RuleViolation } from './errors.js';

/** Clocks of clinic systems drift; a time this far ahead of ours still counts as "now". */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** An effective time from the request (defaulting to now), refused when it lies in the future. */
export function effectiveTime(clock: Clock, value: string | undefined, field: string): Date {
  const now = clock.now();
  if (value === undefined) return now;
  const at = new Date(value);
  if (at.getTime() > now.getTime() + CLOCK_SKEW_MS) {
    throw new RuleViolation('time-in-future', `${field} cannot be in the future.`, [{ path: `body.${field}`, message: 'in the future' }]);
  }
  return at;
}

export const todayIso = (clock: Clock) => clock.now().toISOString().slice(0, 10);
