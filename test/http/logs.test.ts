import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { patientBody } from '../support/fixtures.js';

/** Contract, "Logs": no value taken from a request reaches a log line, database driver messages included. */
let t: TestApp;
let token: string;

beforeAll(async () => {
  t = await createTestApp();
  token = await t.token({ scope: 'patients:read patients:write', clinic: 'clinic-a' });
  // A database that refuses one name with a message quoting it, as PostgreSQL's own errors quote values.
  await t.pool.query(`
    create function refuse_name() returns trigger language plpgsql as $$
    begin raise exception 'refused family name %', new.family_name using errcode = 'P0001'; end $$;
    create trigger refuse_name before insert on patients for each row when (new.family_name like 'Zebulonia%') execute function refuse_name();`);
});
afterAll(() => t.close());

const logged = () => t.logLines.join('\n');

describe('log lines hold no request value', () => {
  it('a database error quoting the value is a 500 whose log line has the SQLSTATE and the route, not the value', async () => {
    const res = await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody({ familyName: 'Zebulonia-Quark' }));
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain('Zebulonia');
    const line = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'unhandled error');
    expect(line).toBeDefined();
    expect(JSON.stringify(line)).toContain('P0001');
    expect(line).toMatchObject({ route: '/v1/patients', reqId: res.body.requestId });
    expect(logged()).not.toContain('Zebulonia');
    expect(logged()).not.toContain('refused family name');
  });

  it('searched values, refused values and path values never appear', async () => {
    const values = ['Quixotica', 'MRN-SEARCHED-991', '1961-04-17', 'Jos%E9', 'Impossible-2023-02-30'];
    await t.http.get('/v1/patients?familyName=Quixotica').set('authorization', `Bearer ${token}`);
    await t.http.get('/v1/patients?mrn=MRN-SEARCHED-991&birthDate=1961-04-17').set('authorization', `Bearer ${token}`);
    await t.http.get('/v1/patients?familyName=Jos%E9').set('authorization', `Bearer ${token}`);
    await t.http.get('/v1/patients?birthDate=Impossible-2023-02-30').set('authorization', `Bearer ${token}`);
    await t.http.post('/v1/patients').set('authorization', `Bearer ${token}`).send(patientBody({ mrn: 'MRN-SEARCHED-991\u0000' }));
    for (const v of values) expect(logged()).not.toContain(v);
  });
});
