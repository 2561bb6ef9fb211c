import { Readable } from 'node:stream';

/**
 * A JSON array whose items are read as it is written (a database cursor, say): a value in a report that
 * `jsonBody` writes item by item, so a report with 100,000 recipients never holds them all in memory.
 * `open` is called once, when the writer reaches the list; leaving early (the client went away) returns the
 * iterator, which lets a cursor release its connection.
 */
export class StreamedList<T> implements AsyncIterable<T> {
  constructor(private readonly open: () => AsyncIterable<T>) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.open()[Symbol.asyncIterator]();
  }

  /** JSON.stringify would write `{}` for it: only `jsonBody` writes a streamed list. */
  toJSON(): never {
    throw new TypeError('a StreamedList is written by jsonBody, not JSON.stringify');
  }
}

/** Text is handed on in pieces of about this many UTF-16 units (one socket write each). */
const PIECE = 64 * 1024;

const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/** Whether a streamed list sits anywhere in `v` (through arrays and plain objects). */
function holdsStream(v: unknown): boolean {
  if (v instanceof StreamedList) return true;
  if (Array.isArray(v)) return v.some(holdsStream);
  if (isPlain(v)) return Object.values(v).some(holdsStream);
  return false;
}

/** What JSON.stringify leaves out of an object (and writes as null in an array). */
const omitted = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

async function* pieces(v: unknown): AsyncGenerator<string> {
  if (v instanceof StreamedList) {
    yield '[';
    let first = true;
    for await (const item of v as StreamedList<unknown>) {
      const text = omitted(item) ? 'null' : JSON.stringify(item);
      yield first ? text : `,${text}`;
      first = false;
    }
    yield ']';
  } else if (!holdsStream(v)) {
    yield JSON.stringify(v);
  } else if (Array.isArray(v)) {
    yield '[';
    for (let i = 0; i < v.length; i++) {
      if (i) yield ',';
      if (omitted(v[i])) yield 'null';
      else yield* pieces(v[i]);
    }
    yield ']';
  } else {
    yield '{';
    let first = true;
    for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
      if (omitted(value)) continue;
      yield `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      yield* pieces(value);
    }
    yield '}';
  }
}

/**
 * The JSON text of `value` (RFC 8259), exactly as JSON.stringify writes it: a string when nothing in it is
 * streamed, otherwise a Readable that writes it in ~64 KiB pieces as its `StreamedList`s are read, with
 * backpressure (the next item is read when the client has taken the text before it). An error while
 * streaming destroys the Readable: the client sees a cut-off body, never a complete-looking wrong one.
 */
export function jsonBody(value: unknown): string | Readable {
  if (!holdsStream(value)) return JSON.stringify(value);
  async function* text(): AsyncGenerator<string> {
    let buffered = '';
    for await (const piece of pieces(value)) {
      buffered += piece;
      if (buffered.length >= PIECE) {
        yield buffered;
        buffered = '';
      }
    }
    if (buffered) yield buffered;
  }
  return Readable.from(text(), { objectMode: false });
}
