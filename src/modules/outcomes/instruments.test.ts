import { describe, expect, it } from 'vitest';
import { changeFromBaseline, daysAfter, inWindow, isResponder } from './instruments.js';

describe('timepoint windows', () => {
  it('flag week-6 from day 35 to 49 and baseline from 30 days before to the day of the procedure', () => {
    expect(inWindow('week-6', 35)).toBe(true);
    expect(inWindow('week-6', 49)).toBe(true);
    expect(inWindow('week-6', 50)).toBe(false);
    expect(inWindow('baseline', -30)).toBe(true);
    expect(inWindow('baseline', 1)).toBe(false);
    expect(inWindow('month-12', 410)).toBe(true);
    expect(inWindow('unscheduled', 3)).toBeNull();
  });
  it('counts whole days after the procedure', () => {
    expect(daysAfter(new Date('2026-03-01T10:00:00Z'), new Date('2026-04-12T09:00:00Z'))).toBe(41);
    expect(daysAfter(new Date('2026-03-01T10:00:00Z'), new Date('2026-02-20T10:00:00Z'))).toBe(-9);
  });
});

describe('responders', () => {
  it('need an improvement of at least the MCID in the better direction', () => {
    expect(isResponder('nrs-pain', 5, 7)).toBe(true); // 2 points lower
    expect(isResponder('nrs-pain', 6, 7)).toBe(false);
    expect(isResponder('nrs-pain', 9, 7)).toBe(false); // worse
    expect(isResponder('koos-qol', 58, 50)).toBe(true); // 8 points higher
    expect(isResponder('koos-qol', 57.9, 50)).toBe(false);
  });
  it('use 12 % of baseline for WOMAC', () => {
    expect(isResponder('womac', 44, 50)).toBe(true); // 6 = 12 % of 50
    expect(isResponder('womac', 44.1, 50)).toBe(false);
  });
  it('are null without a baseline or an MCID', () => {
    expect(isResponder('nrs-pain', 5, null)).toBeNull();
    expect(isResponder('koos-jr', 80, 50)).toBeNull();
  });
  it('report the change from baseline', () => {
    expect(changeFromBaseline(4.5, 7)).toBe(-2.5);
    expect(changeFromBaseline(4.5, null)).toBeNull();
  });
});
