import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Db } from '../../db/client.js';
import { createPoller } from '../../shared/poller.js';
import { toEventDto } from '../events/events.service.js';
import { addressRefusal, checkedLookup } from './address.js';
import { signedHeaders } from './signing.js';
import * as q from './webhooks.queries.js';

/** How deliveries are attempted; every figure has the default of the contract ("Events and webhooks"). */
export interface DispatchOptions {
  /** Accept http, loopback and private addresses (development and tests only; WEBHOOK_ALLOW_PRIVATE_URLS). */
  allowPrivateUrls: boolean;
  /** How often an idle instance looks for work (ms). Default 250. */
  pollIntervalMs?: number;
  /** One attempt's limit, connection to last byte (ms). Default 10 000. */
  attemptTimeoutMs?: number;
  /**
   * The waits before the 2nd, 3rd, ... attempt (ms); after the last, the delivery is `failed`. Default 5 s,
   * 30 s, 2 min, 10 min, 1 h, 4 h, 8 h, 12 h (25 h 12 min in all), each lengthened by up to 20 % of jitter.
   */
  retryScheduleMs?: number[];
  /** A subscription failing this long (since its last success) is disabled (ms). Default 3 days. */
  disableAfterMs?: number;
  /** Attempts in flight per instance (each is a socket and a timer, not a connection). Default 64. */
  concurrency?: number;
}

export const DEFAULT_RETRY_SCHEDULE_MS = [5_000, 30_000, 120_000, 600_000, 3_600_000, 14_400_000, 28_800_000, 43_200_000];
const DAY_MS = 86_400_000;
/** Most attempts a parallel subscription has in flight at once. */
const PARALLEL_IN_FLIGHT = 4;
const USER_AGENT = 'exosome-records-webhooks/1';

/** When to try again after `attempt` failed attempts; null when the schedule is spent. Jitter only lengthens. */
export function retryAt(now: Date, attempt: number, schedule: number[], random = Math.random): Date | null {
  const wait = schedule[attempt - 1];
  if (wait === undefined) return null;
  return new Date(now.getTime() + Math.round(wait * (1 + 0.2 * random())));
}

/**
 * Why an attempt to `url` is refused before any connection, under production rules (`allowPrivate` false): an IP
 * literal that is not public (Node does not pass literals to `lookup`), then a scheme other than https (a
 * subscription made under development settings is held to production's rules when delivered under them).
 * Names are checked as the socket connects (checkedLookup).
 */
export function deliveryRefusal(url: URL, allowPrivate: boolean): string | undefined {
  if (allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const refused = addressRefusal(host);
    if (refused) return refused;
  }
  return url.protocol === 'https:' ? undefined : 'scheme must be https';
}

interface Sent {
  statusCode: number | null;
  error: string | null;
}

/**
 * POSTs `body` to `url` with `headers`: no redirects followed, the whole exchange within `timeoutMs`, the
 * address checked as the socket connects (checkedLookup pins the address it approved; an IP literal is judged
 * here, as Node does not look it up). The receiver's answer body is read and dropped.
 */
export function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, allowPrivate: boolean): Promise<Sent> {
  const refused = deliveryRefusal(url, allowPrivate);
  if (refused) return Promise.resolve({ statusCode: null, error: `refused: ${refused}` });
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    let settled = false;
    const done = (sent: Sent) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(sent);
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': USER_AGENT },
        lookup: checkedLookup(allowPrivate),
        agent: false,
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => done({ statusCode: res.statusCode ?? null, error: null }));
        res.on('error', (err) => done({ statusCode: res.statusCode ?? null, error: describe(err) }));
      },
    );
    const timer = setTimeout(() => {
      done({ statusCode: null, error: `timeout after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => done({ statusCode: null, error: describe(err) }));
    req.end(body);
  });
}

/** An error as an attempt records it: its code and message, never a request value. */
function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code === 'EWEBHOOKADDRESS') return `refused: ${e.message ?? 'address not allowed'}`;
  return e.code ? `${e.code}` : (e.message ?? 'error').slice(0, 200);
}

export interface Dispatcher {
  /** One pass: fan events out to deliveries (unless `fanOut` is false), claim what is due, start the attempts. Answers the attempts started. */
  tick(fanOut?: boolean): Promise<number>;
  /** Resolves when the attempts in flight have been recorded. */
  idle(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

interface Log {
  warn(obj: object, msg: string): void;
}

/**
 * Delivers webhooks from any instance (docs: contract "Events and webhooks"). Work lives in PostgreSQL only:
 * deliveries are made from the feed under row locks (SKIP LOCKED), claimed with a lease, attempted without
 * holding a connection, and recorded; a killed process leaves leases that expire, and the delivery is tried
 * again with the same `webhook-id`. A slow receiver holds one of `concurrency` slots for at most the timeout.
 */
export function createDispatcher(db: Db, log: Log, opts: DispatchOptions): Dispatcher {
  const pollMs = opts.pollIntervalMs ?? 250;
  const timeoutMs = opts.attemptTimeoutMs ?? 10_000;
  const schedule = opts.retryScheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
  const disableAfterMs = opts.disableAfterMs ?? 3 * DAY_MS;
  const concurrency = opts.concurrency ?? 64;
  // A parallel subscription's attempts in flight, on all instances together: the other slots stay for the others.
  // A tenant's attempts in flight (a clinic's, or the supplier's), on all instances together: a quarter of the slots;
  // a parallel subscription's at most half of its tenant's, so the tenant's other subscriptions keep slots too.
  const perTenant = Math.max(1, Math.floor(concurrency / 4));
  const perSubscription = Math.min(PARALLEL_IN_FLIGHT, Math.max(1, Math.floor(perTenant / 2)));
  // Longer than any attempt (which ends at its timeout), so a lease outlives the attempt that holds it.
  const leaseMs = timeoutMs + 5_000;
  const inFlight = new Set<Promise<void>>();

  async function attempt(d: q.ClaimedDelivery): Promise<void> {
    const event = toEventDto(d.event);
    const body = JSON.stringify({ type: event.type, timestamp: event.occurredAt, data: event.data, subject: event.subject, clinicId: event.clinicId });
    const at = new Date();
    const started = performance.now();
    const sent = await post(new URL(d.url), signedHeaders(event.id, at, body, d.secrets), body, timeoutMs, opts.allowPrivateUrls);
    const latencyMs = Math.round(performance.now() - started);
    const succeeded = sent.statusCode !== null && sent.statusCode >= 200 && sent.statusCode < 300;
    const gone = sent.statusCode === 410;
    const error = succeeded ? null : (sent.error ?? `HTTP ${sent.statusCode}`);
    const outcome: q.AttemptOutcome = {
      at,
      statusCode: sent.statusCode,
      latencyMs,
      error,
      succeeded,
      gone,
      retryAt: succeeded || gone ? null : retryAt(new Date(), d.attempt, schedule),
    };
    await q.recordAttempt(db, d, outcome, new Date(at.getTime() - disableAfterMs));
  }

  function launch(d: q.ClaimedDelivery) {
    const p: Promise<void> = attempt(d)
      // A recorded attempt may have freed the next delivery of its subscription: look again now, not at the next poll.
      .then(() => kick())
      // Not recorded (the database is away): the lease runs out and the delivery is attempted again.
      .catch((err: unknown) => log.warn({ err: { code: (err as { code?: string }).code } }, 'webhook attempt not recorded; it will be retried'))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }

  async function tick(fanOut = true): Promise<number> {
    if (fanOut) await q.fanOut(db);
    const free = concurrency - inFlight.size;
    if (free <= 0) return 0;
    const claimed = await q.claimDue(db, free, leaseMs, perSubscription, perTenant);
    for (const d of claimed) launch(d);
    return claimed.length;
  }

  // A steady stream of kicks (attempts ending) must not starve the fan-out: it runs on each interval's pass and at
  // least every interval; a kick (or a full batch asking for more) claims only, new events become deliveries then.
  let lastFanOut = 0;
  const poller = createPoller(
    async (reason) => {
      const fanOut = reason === 'interval' || Date.now() - lastFanOut >= pollMs;
      if (fanOut) lastFanOut = Date.now();
      const started = await tick(fanOut);
      // A full batch: there may be more due.
      return started > 0 && inFlight.size < concurrency;
    },
    { intervalMs: pollMs, log, failure: 'webhook dispatch failed; will retry' },
  );
  const kick = () => poller.kick();

  return {
    tick,
    async idle() {
      while (inFlight.size) await Promise.all([...inFlight]);
    },
    start: () => poller.start(),
    async stop() {
      await poller.stop();
      while (inFlight.size) await Promise.all([...inFlight]);
    },
  };
}
