import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../src/db/client.js';
import { openSnapshot } from '../../src/modules/bulk/bulk.queries.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t?.close());

describe('an export cursor', () => {
  it('reads to its last row however long the export takes: the pool\'s per-query timeout does not end it', async () => {
    const clinician = await t.token({ scope: 'patients:write', clinic: 'clinic-cursor' });
    for (let i = 0; i < 8; i++) expect((await t.http.post('/v1/patients').set('authorization', `Bearer ${clinician}`).send(patientBody())).status).toBe(201);
    // A pool whose queries time out after 1.2 s (statement timeout 200 ms + 1 s), as the service's do after 16 s.
    const pool = createPool(t.databaseUrl, { max: 2, connectTimeoutMs: 3000, statementTimeoutMs: 200 });
    const snapshot = await openSnapshot(pool);
    try {
      let read = 0;
      const started = Date.now();
      for await (const rows of snapshot.rows('Patient', { clinicId: 'clinic-cursor', since: null, lotId: null }, 1)) {
        read += rows.length;
        await new Promise((r) => setTimeout(r, 450)); // a slow consumer: writing chunks, a busy database
      }
      expect(Date.now() - started).toBeGreaterThan(2500);
      expect(read).toBe(8);
    } finally {
      await snapshot.close();
      await pool.end();
    }
  });
});
