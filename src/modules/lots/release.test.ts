import { describe, expect, it } from 'vitest';
import { unmetReleaseCriteria, type ReleaseFacts } from './release.js';

const ready: ReleaseFacts = {
  characterization: { particlesPerMl: 2.5e11, meanSizeNm: 110, sizeMethod: 'nta', positiveMarkers: ['cd63', 'TSG101'], negativeMarkers: ['calnexin'] },
  releaseTests: { sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.5 },
  manufacturedOn: '2026-09-01',
  expiresOn: '2027-09-01',
  donorStatuses: [{ donorId: 'd1', status: 'eligible' }],
};
const at = new Date('2026-10-01T10:00:00Z');

describe('lot release criteria', () => {
  it('are all met by a characterized, tested, unexpired lot of an eligible donor (endotoxin at the limit passes)', () => {
    expect(unmetReleaseCriteria(ready, at, 0.5)).toEqual([]);
  });

  it('lists every unmet criterion at once', () => {
    const unmet = unmetReleaseCriteria(
      {
        characterization: { ...ready.characterization!, positiveMarkers: ['TSG101'] },
        releaseTests: { sterility: 'pending', mycoplasma: 'fail', endotoxinEuPerMl: 0.51 },
        manufacturedOn: '2026-09-01',
        expiresOn: '2026-09-30',
        donorStatuses: [
          { donorId: 'd1', status: 'pending' },
          { donorId: 'd2', status: undefined },
        ],
      },
      at,
      0.5,
    );
    expect(unmet.map((u) => u.path)).toEqual([
      'donors.d1',
      'donors.d2',
      'releaseTests.sterility',
      'releaseTests.mycoplasma',
      'releaseTests.endotoxinEuPerMl',
      'characterization.positiveMarkers',
      'expiresOn',
    ]);
  });

  it('needs a characterization and an endotoxin result', () => {
    const unmet = unmetReleaseCriteria({ ...ready, characterization: null, releaseTests: { ...ready.releaseTests, endotoxinEuPerMl: null } }, at, 0.5);
    expect(unmet.map((u) => u.path)).toEqual(['releaseTests.endotoxinEuPerMl', 'characterization']);
  });

  it('honours a configured endotoxin limit', () => {
    expect(unmetReleaseCriteria(ready, at, 0.25).map((u) => u.path)).toEqual(['releaseTests.endotoxinEuPerMl']);
  });
});
