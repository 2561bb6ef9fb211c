import { Readable } from 'node:stream';

/**
 * A JSON array whose items are read as it is written (a database cursor, say): a value in a report that
 * `jsonBody` writes item by item, so a report with 100,000 recipients never holds them all in memory.
 * `open` is called once, when the writer reaches the list. `onAbandon` frees what the list holds (a cursor's
 * connection) when it will not be read to its end: the reader left early (the iterator was returned before it
 * was done), or the writer never reached it (`abandon()`, which `jsonBody` calls for its lists when it stops).
 */
export class StreamedList<T> implements AsyncIterable<T> {
  private finished = false;

  constructor(
    private readonly open: () => AsyncIterable<T>,
    private readonly onAbandon: () => void = () => undefined,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const items = this.open()[Symbol.asyncIterator]();
    return {
      next: async () => {
        const result = await items.next();
        if (result.done) this.finished = true;
        return result;
      },
      return: async (value?: unknown) => {
        this.abandon();
        return (await items.return?.(value)) ?? { done: true, value: undefined };
      },
    };
  }

  /** Will not be read (further): frees what it holds, once. Nothing happens after it was read to its end. */
  abandon(): void {
    if (this.finished) return;
    this.finished = true;
    this.onAbandon();
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

/** Every streamed list in `v` (through arrays and plain objects). */
function listsIn(v: unknown, into: StreamedList<unknown>[] = []): StreamedList<unknown>[] {
  if (v instanceof StreamedList) into.push(v as StreamedList<unknown>);
  else if (Array.isArray(v)) for (const x of v) listsIn(x, into);
  else if (isPlain(v)) for (const x of Object.values(v)) listsIn(x, into);
  return into;
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
 * streaming destroys the Readable: the client sees a cut-off body, never a complete-looking wrong one. When it
 * ends, however it ends, every list in `value` not read to its end is abandoned.
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
  const body = Readable.from(text(), { objectMode: false });
  // However it ends (read to the end, the client gone, even before the first piece, a list failed), lists not
  // read to their end let go of what they hold. Not in the generator's finally: a generator destroyed before its
  // first step never runs it.
  body.once('close', () => {
    for (const list of listsIn(value)) list.abandon();
  });
  return body;
}
