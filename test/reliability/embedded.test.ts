import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { devSigningKey } from '../../src/auth/keys.js';
import { DEV_AUTH } from '../../src/config/env.js';
import { devToken, freePort, startService, tempDataDir, type ServiceProcess } from '../support/process.js';
import { patientBody } from '../support/fixtures.js';

const running: ServiceProcess[] = [];
const parents: ChildProcess[] = [];
const dirs: string[] = [];
let dir: string;
afterAll(async () => {
  for (const s of running) await s.stop('SIGTERM');
  for (const p of parents) p.kill('SIGKILL');
  for (const d of [dir, ...dirs]) if (d) await fs.rm(d, { recursive: true, force: true });
});

const root = path.resolve(import.meta.dirname, '../..');
const state = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
};

/**
 * The service under a parent that does not reap it (a busy supervisor, a shell that moved on): once killed,
 * it stays a zombie, its pid still answering kill(pid, 0), until that parent goes.
 */
async function serviceUnderIdleParent(dataDir: string): Promise<{ pid: number; url: string; parent: ChildProcess }> {
  const port = await freePort();
  const parent = spawn('sh', ['-c', `"$0" --import tsx src/server.ts & echo "pid $!"; exec sleep 300`, process.execPath], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'info', HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  parents.push(parent);
  let out = '';
  parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
  parent.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if (await fetch(`${url}/health/ready`).then((r) => r.ok, () => false)) return { pid: Number(/pid (\d+)/.exec(out)![1]), url, parent };
  }
  throw new Error(`service not ready in 60 s:\n${out}`);
}

describe('the embedded database after a crash', () => {
  it('recovers from a kill -9 of the service: the leftover postmaster is stopped and the data is there', async () => {
    dir = await tempDataDir();
    const first = await startService({ DATA_DIR: dir });
    running.push(first);
    const token = await devToken(dir, ['--scope', 'patients:read patients:write', '--clinic', 'clinic-a']);
    const created = await fetch(`${first.url}/v1/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(patientBody()),
    });
    expect(created.status).toBe(201);
    const patient = (await created.json()) as { id: string };
    const postmasterPid = Number((await fs.readFile(`${dir}/postgres/postmaster.pid`, 'utf8')).split('\n')[0]);

    first.child.kill('SIGKILL');
    await first.exited;
    // The postmaster outlived its parent, and the service.pid lock file is stale.
    expect(() => process.kill(postmasterPid, 0)).not.toThrow();

    const t0 = Date.now();
    const second = await startService({ DATA_DIR: dir });
    running.push(second);
    const recoveredMs = Date.now() - t0;
    const read = await fetch(`${second.url}/v1/patients/${patient.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);
    expect(state(postmasterPid)).toMatch(/^(gone|Z)$/); // stopped (an orphan's zombie waits for init to reap it)
    process.stdout.write(`embedded database: restarted after kill -9 (stale postmaster and lock) in ${recoveredMs} ms with its data\n`);
  });

  it('restarts at once after kill -9, while the killed process is still a zombie; a second live service on the folder is refused', async () => {
    const folder = await tempDataDir();
    dirs.push(folder);
    const first = await serviceUnderIdleParent(folder);
    // As `npm run token` signs it, without its process start.
    const { key, alg, kid } = await devSigningKey(folder);
    const token = await new SignJWT({ scope: 'patients:read patients:write', clinic_id: 'clinic-a' })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setSubject('dev-user')
      .setIssuer(DEV_AUTH.issuer)
      .setAudience(DEV_AUTH.audience)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key);
    const created = await fetch(`${first.url}/v1/patients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(patientBody()),
    });
    expect(created.status).toBe(201);
    const patient = (await created.json()) as { id: string };

    process.kill(first.pid, 'SIGKILL');
    while (state(first.pid) !== 'Z') await new Promise((r) => setTimeout(r, 10));
    expect(() => process.kill(first.pid, 0)).not.toThrow(); // a pid check would think it still runs

    // The supervisor's restart, in the same instant.
    const t0 = Date.now();
    const second = await startService({ DATA_DIR: folder });
    running.push(second);
    const readyMs = Date.now() - t0;
    const read = await fetch(`${second.url}/v1/patients/${patient.id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);
    expect(state(first.pid)).toBe('Z');

    // The lock still holds against the living.
    const third = await startService({ DATA_DIR: folder }, { waitReady: false });
    running.push(third);
    expect(await third.exited).toBe(1);
    expect(third.output()).toContain(`Another service (pid ${second.child.pid}) is already running on the data folder`);
    expect((await fetch(`${second.url}/health/ready`)).status).toBe(200);
    process.stdout.write(`embedded database: restarted while the killed service was a zombie, ready in ${readyMs} ms; a second live service refused\n`);
  });
});
