import { describe, expect, it } from 'vitest';
import { assessEligibility, inSpecimenWindow, requiredMarkers, type ScreeningTest } from './eligibility.js';
import { ALWAYS_REQUIRED, type Marker } from './vocabulary.js';

const allClear = (markers: readonly Marker[], testedOn: string): ScreeningTest[] => markers.map((marker) => ({ marker, result: 'non-reactive', testedOn }));

describe('required markers', () => {
  it('are the eight always-required markers for adipose collected in winter', () => {
    expect(requiredMarkers({ sourceTissue: 'adipose', collectedOn: '2026-01-15' })).toEqual(ALWAYS_REQUIRED);
  });
  it('add WNV NAT from 1 June to 31 October, inclusive', () => {
    expect(requiredMarkers({ sourceTissue: 'adipose', collectedOn: '2026-06-01' })).toContain('wnv-nat');
    expect(requiredMarkers({ sourceTissue: 'adipose', collectedOn: '2026-10-31' })).toContain('wnv-nat');
    expect(requiredMarkers({ sourceTissue: 'adipose', collectedOn: '2026-05-31' })).not.toContain('wnv-nat');
    expect(requiredMarkers({ sourceTissue: 'adipose', collectedOn: '2026-11-01' })).not.toContain('wnv-nat');
  });
  it('add HTLV and CMV for leukocyte-rich sources only', () => {
    for (const s of ['bone-marrow', 'umbilical-cord-blood', 'peripheral-blood'] as const) {
      expect(requiredMarkers({ sourceTissue: s, collectedOn: '2026-01-15' })).toEqual(expect.arrayContaining(['htlv-1-2-ab', 'cmv']));
    }
    expect(requiredMarkers({ sourceTissue: 'umbilical-cord', collectedOn: '2026-01-15' })).not.toContain('cmv');
  });
});

describe('specimen window', () => {
  it('is 7 days either side of collection, and from 30 days before for bone marrow', () => {
    const adipose = { sourceTissue: 'adipose' as const, collectedOn: '2026-03-10' };
    expect(inSpecimenWindow(adipose, '2026-03-03')).toBe(true);
    expect(inSpecimenWindow(adipose, '2026-03-02')).toBe(false);
    expect(inSpecimenWindow(adipose, '2026-03-17')).toBe(true);
    expect(inSpecimenWindow(adipose, '2026-03-18')).toBe(false);
    const marrow = { sourceTissue: 'bone-marrow' as const, collectedOn: '2026-03-10' };
    expect(inSpecimenWindow(marrow, '2026-02-08')).toBe(true);
    expect(inSpecimenWindow(marrow, '2026-02-07')).toBe(false);
  });
});

describe('assessment', () => {
  const donor = { sourceTissue: 'adipose' as const, collectedOn: '2026-01-15' };
  it('is eligible with every required marker non-reactive in the window', () => {
    expect(assessEligibility(donor, allClear(ALWAYS_REQUIRED, '2026-01-14'), '2026-01-20')).toEqual({ eligible: true, missing: [], failing: [] });
  });
  it('names the missing markers, counting neither out-of-window tests nor tests after the determination', () => {
    const tests = [...allClear(ALWAYS_REQUIRED.slice(0, 6), '2026-01-14'), { marker: 'hcv-nat', result: 'non-reactive', testedOn: '2026-02-20' } as ScreeningTest];
    const a = assessEligibility(donor, tests, '2026-01-20');
    expect(a.eligible).toBe(false);
    expect(a.missing).toEqual(['hcv-nat', 'syphilis']);
  });
  it('is blocked by any reactive or indeterminate result, whenever tested', () => {
    const tests = [...allClear(ALWAYS_REQUIRED, '2026-01-14'), { marker: 'anti-hbc', result: 'indeterminate', testedOn: '2025-06-01' } as ScreeningTest];
    const a = assessEligibility(donor, tests, '2026-01-20');
    expect(a.eligible).toBe(false);
    expect(a.failing).toEqual([{ marker: 'anti-hbc', result: 'indeterminate', testedOn: '2025-06-01' }]);
  });
});
