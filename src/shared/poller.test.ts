import { describe, expect, it } from 'vitest';
import { createPoller, type PassReason } from './poller.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quietLog = (warnings: object[]) => ({ warn: (obj: object) => void warnings.push(obj) });

describe('createPoller: the workers\' background loop', () => {
  it('runs one pass at a time; a kick during a pass asks for exactly one more, right after it', async () => {
    const reasons: PassReason[] = [];
    let active = 0;
    let most = 0;
    const p = createPoller(
      async (reason) => {
        reasons.push(reason);
        most = Math.max(most, ++active);
        await sleep(30);
        active--;
      },
      { intervalMs: 10_000, log: quietLog([]), failure: 'x' },
    );
    p.start();
    p.kick();
    p.kick();
    p.kick();
    await sleep(120);
    await p.stop();
    expect(most).toBe(1);
    expect(reasons).toEqual(['kick', 'again']);
  });

  it('runs again at once while a pass answers true, then waits its interval', async () => {
    let left = 3;
    const reasons: PassReason[] = [];
    const p = createPoller(async (reason) => {
      reasons.push(reason);
      return --left > 0;
    }, { intervalMs: 10_000, log: quietLog([]), failure: 'x' });
    p.start();
    p.kick();
    await sleep(50);
    await p.stop();
    expect(reasons).toEqual(['kick', 'again', 'again']);
  });

  it('logs a failing pass by its SQLSTATE only and goes on at the next interval', async () => {
    const warnings: object[] = [];
    let calls = 0;
    const p = createPoller(async () => {
      calls++;
      throw Object.assign(new Error('secret patient value'), { code: '57P01' });
    }, { intervalMs: 20, log: quietLog(warnings), failure: 'pass failed' });
    p.start();
    await sleep(110);
    await p.stop();
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(warnings[0]).toEqual({ err: { code: '57P01' } });
    expect(JSON.stringify(warnings)).not.toContain('secret');
  });

  it('stop waits for the pass in progress and runs no other; an interval of 0 never starts; kicks before start do nothing', async () => {
    let ended = false;
    let calls = 0;
    const p = createPoller(async () => {
      calls++;
      await sleep(40);
      ended = true;
    }, { intervalMs: 10, log: quietLog([]), failure: 'x' });
    p.kick();
    expect(calls).toBe(0);
    p.start();
    await sleep(20);
    await p.stop();
    expect(ended).toBe(true);
    const after = calls;
    await sleep(50);
    expect(calls).toBe(after);
    const idle = createPoller(async () => void calls++, { intervalMs: 0, log: quietLog([]), failure: 'x' });
    idle.start();
    await sleep(20);
    expect(calls).toBe(after);
  });
});
