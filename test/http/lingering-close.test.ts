import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINGER_MS } from '../../src/http/lingering-close.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

/**
 * A refused upload (413, 415, 401, 406, 404...) is answered before its body is read. These run against a real
 * listening server (not inject): what matters is what the TCP connection does after the response.
 */
let t: TestApp;
let port: number;
let base: string;
let token: string;

beforeAll(async () => {
  t = await createTestApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as net.AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  token = await t.token({ scope: 'patients:read patients:write' });
});
afterAll(() => t.close());

const MB3 = 3 * 1024 * 1024;
/** 3 MB of JSON, over the 1 MiB body limit. */
const bigJson = () => JSON.stringify({ ...patientBody(), notes: 'x'.repeat(MB3) });

/** The same bytes as a stream: fetch sends it chunked, with no Content-Length. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + 64 * 1024));
      at += 64 * 1024;
    },
  });
}

type Case = { name: string; status: number; code: string; headers: Record<string, string>; path?: string };
const cases = (): Case[] => [
  { name: '413 too large', status: 413, code: 'body-too-large', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
  { name: '415 text/plain', status: 415, code: 'unsupported-media-type', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' } },
  { name: '401 no token', status: 401, code: 'unauthorized', headers: { 'content-type': 'application/json' } },
  { name: '406 Accept: text/html', status: 406, code: 'not-acceptable', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/html' } },
  // (a JSON body to an unknown route is read, up to the limit, before the 404: this one is not)
  { name: '404 no such route', status: 404, code: 'route-not-found', headers: { 'content-type': 'application/octet-stream' }, path: '/v1/no-such-thing' },
];

describe('a response sent before the upload was read (fetch, 3 MB)', () => {
  it('reaches the client with its problem+json, with or without Content-Length, every time', async () => {
    const body = bigJson();
    const seen: string[] = [];
    for (let round = 0; round < 4; round++) {
      for (const c of cases()) {
        for (const form of ['content-length', 'chunked'] as const) {
          const res = await fetch(`${base}${c.path ?? '/v1/patients'}`, {
            method: 'POST',
            headers: c.headers,
            body: form === 'chunked' ? chunked(body) : body,
            duplex: 'half',
          });
          const problem = (await res.json()) as { status: number; code: string };
          expect(res.headers.get('content-type'), `${c.name} ${form}`).toMatch(/^application\/problem\+json/);
          expect(res.headers.get('connection'), `${c.name} ${form}`).toBe('close');
          seen.push(`${c.name} ${form}: ${res.status} ${problem.code}`);
          expect([res.status, problem.status, problem.code], `${c.name} ${form}`).toEqual([c.status, c.status, c.code]);
        }
      }
    }
    expect(seen).toHaveLength(4 * cases().length * 2);
  });

  it('leaves a request whose body was read on a kept-alive connection', async () => {
    const res = await fetch(`${base}/v1/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(patientBody()),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('connection')).not.toBe('close');
    await res.arrayBuffer();
  });
});

/**
 * A client that sends its whole request before it reads anything (as many do), a little at a time. Before the
 * lingering close, the server closed with upload bytes unread, the kernel reset the connection, and this client
 * got EPIPE and never saw the response.
 */
function sendAllThenRead(head: string, body: Buffer): Promise<{ response: string; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.pause();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ response: Buffer.concat(chunks).toString('latin1'), error }));
    s.write(head);
    let at = 0;
    const pump = () => {
      while (at < body.length) {
        const part = body.subarray(at, at + 64 * 1024);
        at += part.length;
        if (!s.write(part)) return void s.once('drain', pump);
        if (at % (256 * 1024) === 0) return void setTimeout(pump, 10);
      }
      s.on('data', (c: Buffer) => chunks.push(c));
      s.resume();
    };
    pump();
  });
}

describe('a client that reads only after sending everything', () => {
  it('reads the 413, 415, 401 and 406 after its 3 MB upload, every time', async () => {
    const body = Buffer.from(bigJson());
    for (let round = 0; round < 3; round++) {
      for (const c of cases()) {
        const headers = Object.entries({ ...c.headers, host: 'localhost', 'content-length': String(body.length) })
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
        const { response, error } = await sendAllThenRead(`POST ${c.path ?? '/v1/patients'} HTTP/1.1\r\n${headers}\r\n`, body);
        expect({ error, status: response.split('\r\n')[0] }, c.name).toEqual({ error: undefined, status: expect.stringContaining(`HTTP/1.1 ${c.status} `) });
        expect(response.toLowerCase(), c.name).toContain('connection: close');
        expect(response, c.name).toContain(`"code":"${c.code}"`);
      }
    }
  });
});

describe('a client that never stops sending', () => {
  /** Sends chunk after chunk until the server closes; resolves with what it read and how long that took. */
  function sendForever(head: string, size = 32 * 1024): Promise<{ response: string; ms: number }> {
    return new Promise((resolve) => {
      const started = Date.now();
      // allowHalfOpen: the server's FIN does not make this client stop sending.
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      const chunks: Buffer[] = [];
      const chunk = Buffer.alloc(size, 0x20);
      const frame = head.includes('chunked') ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
      let timer: NodeJS.Timeout | undefined;
      const send = () => {
        if (s.destroyed || !s.writable) return;
        s.write(frame);
        timer = setTimeout(send, 2);
      };
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ response: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - started });
      });
      s.write(head);
      send();
    });
  }

  it('is answered, then cut off after the lingering bound (chunked or with a huge Content-Length, fast or slow)', async () => {
    const runs = await Promise.all([
      sendForever(`POST /v1/patients HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`),
      sendForever(`POST /v1/patients HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n`),
      sendForever(`POST /v1/patients HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\n\r\n`),
      // Too slow to reach the byte bound: the time bound ends it.
      sendForever(`POST /v1/patients HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n`, 256),
    ]);
    for (const [i, status] of [401, 401, 415, 401].entries()) {
      expect(runs[i]!.response.split('\r\n')[0], `run ${i}`).toContain(` ${status} `);
      expect(runs[i]!.ms, `run ${i}`).toBeLessThan(LINGER_MS + 3_000);
    }
    expect(runs[3].ms).toBeGreaterThanOrEqual(LINGER_MS - 100);
  });
});
