import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got: its headers (lower-case), raw body, and when. */
export interface Received {
  headers: Record<string, string>;
  body: string;
  at: number;
}

/** What the receiver answers a request: a status, after an optional delay. */
export type Answer = { status: number; delayMs?: number };

/**
 * A real HTTP receiver on 127.0.0.1 (never another address): it records every request and answers with
 * `answer(request, n)` (n: how many requests with this webhook-id it had before), 200 by default.
 */
export async function startReceiver(answer: (r: Received, n: number) => Answer = () => ({ status: 200 })) {
  const received: Received[] = [];
  let inFlight = 0;
  let maxInFlightPerId = 0;
  const inFlightById = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      const id = r.headers['webhook-id'] ?? '';
      const before = received.filter((x) => x.headers['webhook-id'] === id).length;
      received.push(r);
      inFlight++;
      const now = (inFlightById.get(id) ?? 0) + 1;
      inFlightById.set(id, now);
      maxInFlightPerId = Math.max(maxInFlightPerId, now);
      const a = answer(r, before);
      const finish = () => {
        inFlight--;
        inFlightById.set(id, (inFlightById.get(id) ?? 1) - 1);
        if (!res.destroyed) res.writeHead(a.status, { 'content-type': 'text/plain' }).end('ok');
      };
      if (a.delayMs) setTimeout(finish, a.delayMs);
      else finish();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    /** The bodies parsed, in arrival order. */
    bodies: () => received.map((r) => JSON.parse(r.body) as { type: string; timestamp: string; data: Record<string, unknown>; subject: { type: string; id: string }; clinicId: string | null }),
    ids: () => received.map((r) => r.headers['webhook-id']!),
    get inFlight() {
      return inFlight;
    },
    get maxInFlightPerId() {
      return maxInFlightPerId;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Polls `check` until it holds or `ms` pass (then throws with `what`). */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
