import type { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamedList, jsonBody } from './json-stream.js';

async function text(body: string | Readable): Promise<string> {
  if (typeof body === 'string') return body;
  let out = '';
  for await (const chunk of body) out += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return out;
}

/** An async iterable over `items`, one at a time with a pause, as a cursor hands rows on. */
async function* slowly<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

/** `value` with each array (at any depth) that `pick` chooses replaced by a streamed list of its items. */
function streamArrays(value: unknown, pick: () => boolean): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => streamArrays(v, pick));
    // A streamed list's items are written with JSON.stringify: the lists inside them stay arrays.
    return pick() ? new StreamedList(() => slowly(value)) : items;
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, streamArrays(v, pick)]));
  }
  return value;
}

describe('jsonBody: a report written as JSON while its lists are read', () => {
  it('writes exactly what JSON.stringify writes, whichever arrays are streamed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.infiniteStream(fc.boolean()), async (value, coin) => {
        const it = coin[Symbol.iterator]();
        const streamed = streamArrays(value, () => it.next().value as boolean);
        expect(await text(jsonBody(streamed))).toBe(JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps JSON.stringify\'s rules for values JSON has no text for, and for Dates and toJSON', async () => {
    const when = new Date('2026-03-10T08:30:00.000Z');
    const value = {
      gone: undefined,
      fn: () => 1,
      when,
      list: [undefined, () => 1, when, 'é "quoted" \u2028'],
      nested: { inner: [1, { deeper: undefined, x: 2 }] },
    };
    const streamed = { ...value, list: new StreamedList(() => slowly(value.list)), nested: { inner: [1, { x: 2, deeper: new StreamedList(() => slowly([when])) }] } };
    expect(await text(jsonBody(streamed))).toBe(
      JSON.stringify({ ...value, nested: { inner: [1, { x: 2, deeper: [when] }] } }),
    );
  });

  it('answers a string when nothing is streamed, and a stream in pieces of about 64 KiB when a list is', async () => {
    expect(jsonBody({ a: [1, 2] })).toBe('{"a":[1,2]}');
    const rows = Array.from({ length: 5000 }, (_, i) => ({ i, name: `recipient ${i}`.padEnd(40, '.') }));
    const body = jsonBody({ head: 1, rows: new StreamedList(() => slowly(rows)) });
    expect(typeof body).not.toBe('string');
    const pieces: number[] = [];
    let all = '';
    for await (const chunk of body as Readable) {
      const s = String(chunk);
      pieces.push(s.length);
      all += s;
    }
    expect(JSON.parse(all)).toEqual({ head: 1, rows });
    expect(pieces.length).toBeGreaterThan(3);
    for (const n of pieces.slice(0, -1)) expect(n).toBeLessThan(80 * 1024);
  });

  it('opens a list only when the writer reaches it, and closes it when the reader goes away', async () => {
    const events: string[] = [];
    async function* cursor() {
      events.push('open');
      try {
        for (let i = 0; ; i++) yield { i, pad: 'x'.repeat(100) };
      } finally {
        events.push('closed');
      }
    }
    const body = jsonBody({ rows: new StreamedList(cursor) }) as Readable;
    expect(events).toEqual([]);
    for await (const chunk of body) {
      expect(String(chunk).startsWith('{"rows":[')).toBe(true);
      break; // the client went away after the first piece
    }
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['open', 'closed']);
  });

  it('lets go of every list it did not read to the end, even when destroyed before its first piece', async () => {
    const abandoned: string[] = [];
    const list = (name: string, items: number[]) => new StreamedList(() => slowly(items), () => abandoned.push(name));
    const body = jsonBody({ a: list('a', [1]), nested: [{ b: list('b', [2]) }] }) as Readable;
    const closed = new Promise((r) => body.once('close', r));
    body.destroy();
    await closed;
    expect(abandoned.sort()).toEqual(['a', 'b']);
    // Read to the end: nothing to let go.
    const whole: string[] = [];
    const done = jsonBody({ a: new StreamedList(() => slowly([1, 2]), () => whole.push('a')) });
    expect(await text(done)).toBe('{"a":[1,2]}');
    await new Promise((r) => setImmediate(r));
    expect(whole).toEqual([]);
  });

  it('refuses to be written by JSON.stringify, which would write it as {}', () => {
    expect(() => JSON.stringify({ rows: new StreamedList(() => slowly([1])) })).toThrow(/jsonBody/);
  });
});
