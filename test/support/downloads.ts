import http from 'node:http';
import type pg from 'pg';
import { expect } from 'vitest';

/**
 * Starts a GET over a real socket and goes away after the first piece of the body, as a client that closed its
 * browser tab does (supertest reads whole bodies, so it cannot leave early).
 */
export function abandonDownload(port: number, path: string, headers: Record<string, string>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      expect(res.statusCode).toBe(200);
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', reject);
  });
}

/** How many of `pool`'s connections are still checked out once they have had `ms` to come back. */
export async function checkedOutAfter(pool: pg.Pool, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  while (pool.totalCount - pool.idleCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return pool.totalCount - pool.idleCount;
}
