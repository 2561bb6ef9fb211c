/** Why a pass runs: its interval came round, the previous pass asked for another at once, or work was announced. */
export type PassReason = 'interval' | 'again' | 'kick';

export interface Poller {
  /** Runs the first pass one interval from now; nothing with an interval of 0 or less. */
  start(): void;
  /** A pass now; during a pass, another right after it. Nothing once stopped. */
  kick(): void;
  /** No more passes; resolves when the pass in progress has ended. */
  stop(): Promise<void>;
}

/**
 * The background loop of the service's workers (webhook dispatcher, bulk export worker, safety monitor): one pass at a
 * time on this instance, the next `intervalMs` after the previous one ends, at once when a pass answers true (more
 * is due) or on `kick()`. A pass that throws is logged with its SQLSTATE only (never a value from a request) and the
 * loop goes on at the next interval, so a lost database connection never ends it. What must happen once across
 * instances is claimed in PostgreSQL by the pass itself; the loop keeps no state instances share.
 */
export function createPoller(
  pass: (reason: PassReason) => Promise<boolean | void>,
  opts: { intervalMs: number; log: { warn(obj: object, msg: string): void }; failure: string },
): Poller {
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let inPass = false;
  let again = false;
  let current: Promise<void> = Promise.resolve();

  const schedule = (ms: number, reason: PassReason) => {
    timer = setTimeout(() => run(reason), ms);
    timer.unref();
  };
  function run(reason: PassReason) {
    clearTimeout(timer);
    if (stopped) return;
    if (inPass) {
      again = true;
      return;
    }
    inPass = true;
    again = false;
    current = pass(reason)
      .then((more) => {
        if (more) again = true;
      })
      .catch((err: unknown) => opts.log.warn({ err: { code: (err as { code?: string } | null)?.code } }, opts.failure))
      .finally(() => {
        inPass = false;
        if (!stopped) schedule(again ? 0 : opts.intervalMs, again ? 'again' : 'interval');
      });
  }

  return {
    start() {
      if (!stopped || opts.intervalMs <= 0) return;
      stopped = false;
      schedule(opts.intervalMs, 'interval');
    },
    kick() {
      run('kick');
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
    },
  };
}
