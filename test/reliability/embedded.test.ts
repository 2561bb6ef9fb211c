import fs from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { devToken, startService, tempDataDir, type ServiceProcess } from '../support/process.js';
import { patientBody } from '../support/fixtures.js';

const running: ServiceProcess[] = [];
let dir: string;
afterAll(async () => {
  for (const s of running) await s.stop('SIGTERM');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

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
    expect(() => process.kill(postmasterPid, 0)).toThrow();
    process.stdout.write(`embedded database: restarted after kill -9 (stale postmaster and lock) in ${recoveredMs} ms with its data\n`);
  });
});
