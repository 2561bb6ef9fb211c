import { describe, expect, it } from 'vitest';
import { parsePgTimestamp } from './columns.js';

describe('timestamps read from PostgreSQL', () => {
  it.each([
    ['0099-10-01 09:00:00+00', '0099-10-01T09:00:00.000Z'],
    ['0010-01-01 00:00:00+00', '0010-01-01T00:00:00.000Z'],
    ['0001-12-31 23:59:59.999+00', '0001-12-31T23:59:59.999Z'],
    ['1999-10-01 09:00:00+00', '1999-10-01T09:00:00.000Z'],
    ['2026-10-01 09:00:00.123456+02', '2026-10-01T07:00:00.123Z'],
    ['2026-10-01 09:00:00.5-05:30', '2026-10-01T14:30:00.500Z'],
    ['1900-01-01 00:00:00+00:19:32', '1899-12-31T23:40:28.000Z'],
    ['2026-10-01T09:00:00.123+00:00', '2026-10-01T09:00:00.123Z'],
    ['9999-12-31 23:59:59.999999+00', '9999-12-31T23:59:59.999Z'],
  ])('%s is %s (no legacy Date parsing)', (text, iso) => {
    expect(parsePgTimestamp(text).toISOString()).toBe(iso);
  });

  it('years before 1 (BC) are kept as such', () => {
    expect(parsePgTimestamp('0044-03-15 12:00:00+00 BC').getUTCFullYear()).toBe(-43);
  });

  it('refuses text that is not a timestamp', () => {
    expect(() => parsePgTimestamp('infinity')).toThrow(TypeError);
    expect(() => parsePgTimestamp('2026-10-01')).toThrow(TypeError);
  });
});
