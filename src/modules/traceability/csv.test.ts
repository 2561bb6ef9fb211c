import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { csvField, csvLine, csvNumber, toCsv } from './csv.js';

describe('CSV cells a spreadsheet would run as a formula', () => {
  it.each([
    ['=2+5', "'=2+5"],
    ['+1+1', "'+1+1"],
    ['-2+3', "'-2+3"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\t=1', "'\t=1"],
    ['\r=1', `"'\r=1"`], // a carriage return also needs RFC 4180 quotes
    ['=HYPERLINK("http://x","y")', `"'=HYPERLINK(""http://x"",""y"")"`],
    ['-1', "'-1"], // text that looks like a number is still text
    ['MRN-=1', 'MRN-=1'], // only the first character matters
    ['a,b', '"a,b"'],
    ['', ''],
  ])('text %j → %s', (text, cell) => {
    expect(csvField(text)).toBe(cell);
  });

  it('writes the service\'s own numbers, booleans and dates as they are', () => {
    expect(csvLine([-3, 0.01, 2_500_000_000, -12.5, true, new Date('2026-03-10T09:30:00Z'), null])).toBe('-3,0.01,2500000000,-12.5,true,2026-03-10T09:30:00.000Z,\r\n');
  });

  it('writes a numeric column\'s text (pg sends numeric and bigint as strings) as a number, and anything else there as text', () => {
    expect(['-12.5', '0.01', '2500000000', '-3', '1e-7'].map(csvNumber)).toEqual(['-12.5', '0.01', '2500000000', '-3', '1e-7']);
    expect(['-2+3', '=1', '-Infinity', 'NaN'].map(csvNumber)).toEqual(["'-2+3", "'=1", "'-Infinity", 'NaN']);
  });

  it('decides by the column in a streamed export, not by how the text looks', async () => {
    const rows = [
      { mrn: '-2+3', dose: '-12.5', count: 4 },
      { mrn: '@x', dose: '0.01', count: -1 },
    ];
    const out: string[] = [];
    for await (const chunk of Readable.from(rows).pipe(toCsv(['mrn', 'dose', 'count'], new Set(['dose', 'count'])))) out.push(String(chunk));
    expect(out.join('')).toBe("mrn,dose,count\r\n'-2+3,-12.5,4\r\n'@x,0.01,-1\r\n");
  });
});
