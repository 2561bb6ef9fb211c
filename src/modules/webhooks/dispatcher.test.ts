import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE_MS, deliveryRefusal, retryAt } from './dispatcher.js';

// Pure checks: nothing here opens a connection.
describe('deliveryRefusal (production rules, before any connection)', () => {
  it.each([
    ['https://127.0.0.1:8443/hooks', /loopback/],
    ['http://127.0.0.1/hooks', /loopback/],
    ['https://[::1]/hooks', /loopback/],
    ['https://[::ffff:127.0.0.1]/hooks', /loopback/],
    ['https://10.1.2.3/hooks', /private/],
    ['https://169.254.169.254/latest/meta-data', /metadata/],
    ['http://93.184.216.34/hooks', /https/],
    ['http://ehr.example.org/hooks', /https/],
  ])('%s is refused', (url, reason) => {
    expect(deliveryRefusal(new URL(url), false)).toMatch(reason);
  });

  it.each(['https://93.184.216.34/hooks', 'https://ehr.example.org/hooks'])('%s passes (a name is checked as it connects)', (url) => {
    expect(deliveryRefusal(new URL(url), false)).toBeUndefined();
  });

  it('allows everything under development settings', () => {
    expect(deliveryRefusal(new URL('http://127.0.0.1:3000/hooks'), true)).toBeUndefined();
  });
});

describe('retryAt', () => {
  it('follows the schedule, jitter only lengthening a wait by up to 20 %, and ends after the last', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: DEFAULT_RETRY_SCHEDULE_MS.length }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const now = new Date('2026-11-30T00:00:00Z');
        const at = retryAt(now, attempt, DEFAULT_RETRY_SCHEDULE_MS, () => r)!;
        const wait = at.getTime() - now.getTime();
        const base = DEFAULT_RETRY_SCHEDULE_MS[attempt - 1]!;
        expect(wait).toBeGreaterThanOrEqual(base);
        expect(wait).toBeLessThanOrEqual(Math.round(base * 1.2));
      }),
    );
    expect(retryAt(new Date(), DEFAULT_RETRY_SCHEDULE_MS.length + 1, DEFAULT_RETRY_SCHEDULE_MS)).toBeNull();
  });

  it('the default schedule retries for more than 24 hours in all', () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0)).toBeGreaterThan(24 * 3600_000);
  });
});
