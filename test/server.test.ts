import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { devToken, startScriptNodeFlags, startService, tempDataDir, type ServiceProcess } from './support/process.js';

const running: ServiceProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const s of running) await s.stop('SIGKILL');
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

describe('the service process on the embedded database', () => {
  it('keeps its data across a graceful restart, logs no patient data or token, and refuses a second service on one folder', async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const first = await startService({ DATA_DIR: dataDir });
    running.push(first);

    const token = await devToken(dataDir, ['--scope', 'patients:read patients:write', '--clinic', 'clinic-a']);
    expect(token.split('.')).toHaveLength(3);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const secret = { mrn: 'MRN-SECRET-4711', givenName: 'Zebulon', familyName: 'Quixotic', birthDate: '1947-03-29', ident: 'EHR-SECRET-0815' };
    const created = await fetch(`${first.url}/v1/patients`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        mrn: secret.mrn,
        givenName: secret.givenName,
        familyName: secret.familyName,
        birthDate: secret.birthDate,
        sex: 'male',
        identifiers: [{ system: 'https://ehr.example.org/id', value: secret.ident }],
      }),
    });
    expect(created.status).toBe(201);
    const patient = (await created.json()) as { id: string };
    // Searches put patient data in the query string; it must not reach the log either.
    const search = await fetch(`${first.url}/v1/patients?familyName=${secret.familyName}&mrn=${secret.mrn}&birthDate=${secret.birthDate}`, { headers: auth });
    expect(search.status).toBe(200);
    const bad = await fetch(`${first.url}/v1/patients`, { method: 'POST', headers: auth, body: JSON.stringify({ mrn: secret.mrn, givenName: secret.givenName }) });
    expect(bad.status).toBe(400);

    // A second service on the same data folder fails fast with a clear message.
    const second = await startService({ DATA_DIR: dataDir }, { waitReady: false });
    running.push(second);
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(/already running on the data folder/);

    expect(await first.stop('SIGTERM')).toBe(0);
    await expect(fs.access(path.join(dataDir, 'postgres', 'postmaster.pid'))).rejects.toThrow();
    await expect(fs.access(path.join(dataDir, 'service.pid'))).rejects.toThrow();

    const again = await startService({ DATA_DIR: dataDir });
    running.push(again);
    const read = await fetch(`${again.url}/v1/patients/${patient.id}`, { headers: auth });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: patient.id, mrn: secret.mrn, familyName: secret.familyName });
    expect(await again.stop('SIGTERM')).toBe(0);

    const logs = first.output() + again.output();
    expect(logs).toContain('"msg":"request"');
    // The process runs under the start script's heap cap (old generation; V8 adds the young generation to it).
    const ready = logs.split('\n').filter((l) => l.includes('"msg":"ready"')).map((l) => JSON.parse(l) as { heapLimitMb: number });
    const cap = Number((await startScriptNodeFlags()).find((f) => f.startsWith('--max-old-space-size='))!.split('=')[1]);
    expect(ready).toHaveLength(2);
    for (const r of ready) expect(r.heapLimitMb).toBeGreaterThanOrEqual(cap);
    for (const r of ready) expect(r.heapLimitMb).toBeLessThan(cap + 128);
    for (const value of [...Object.values(secret), token, token.split('.')[2]!]) {
      expect(logs.includes(value), `log holds ${value.slice(0, 12)}`).toBe(false);
    }
  });
});
