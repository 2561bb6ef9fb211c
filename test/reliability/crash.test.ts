import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { clinicSetup, procedureBody } from '../support/fixtures.js';
import { createCluster, type Cluster } from './harness.js';

let cluster: Cluster;
afterAll(() => cluster?.stopAll());

type Answered = { op: 'procedure' | 'outcome' | 'shipment'; body: Record<string, unknown> };

describe('a crash under write load', () => {
  it('loses no answered write and half-applies none: kill -9 mid-load, restart, everything answered 201 is there', async () => {
    cluster = await createCluster();
    const first = await cluster.start();
    const api = cluster.client(first);
    const s = await clinicSetup(api, { vials: 400, lot: { vialCount: 2000 } });
    const baseProcedure = (await api.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id))).body;

    const answered: Answered[] = [];
    let sent = 0;
    let stop = false;
    const worker = async (i: number) => {
      while (!stop) {
        const op = (['procedure', 'outcome', 'shipment'] as const)[(i + sent) % 3]!;
        sent++;
        try {
          const res =
            op === 'procedure'
              ? await api.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id))
              : op === 'outcome'
                ? await api.http
                    .post('/v1/outcomes')
                    .set('authorization', `Bearer ${s.clinician}`)
                    .send({ procedureId: baseProcedure.id, instrument: 'nrs-pain', score: (sent % 10) + 0.5, assessedAt: '2026-04-20T10:00:00Z', timepoint: 'week-6' })
                : await api.http.post(`/v1/lots/${s.lot.id}/shipments`).set('authorization', `Bearer ${s.supplier}`).send({ clinicId: 'clinic-b', vials: 1 });
          if (res.status === 201) answered.push({ op, body: res.body as Record<string, unknown> });
        } catch {
          // the process died under this request: unanswered, so it may or may not have happened
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, i) => worker(i));
    await new Promise((r) => setTimeout(r, 1500));
    first.child.kill('SIGKILL');
    await first.exited;
    stop = true;
    await Promise.all(workers);
    expect(answered.length).toBeGreaterThan(20);

    const second = await cluster.start();
    const after = cluster.client(second);
    const found = { procedure: 0, outcome: 0, shipment: 0 };
    const outcomes = (await after.http.get(`/v1/procedures/${baseProcedure.id}/outcomes?limit=200`).set('authorization', `Bearer ${s.clinician}`)).body.items as { id: string; score: number }[];
    const shipments: { id: string }[] = [];
    for (let cursor: string | null = null, first = true; first || cursor; first = false) {
      const page: { items: { id: string }[]; nextCursor: string | null } = (
        await after.http.get(`/v1/lots/${s.lot.id}/shipments?limit=200${cursor ? `&cursor=${cursor}` : ''}`).set('authorization', `Bearer ${s.supplier}`)
      ).body;
      shipments.push(...page.items);
      cursor = page.nextCursor;
    }
    for (const a of answered) {
      if (a.op === 'procedure') {
        const res = await after.http.get(`/v1/procedures/${a.body.id as string}`).set('authorization', `Bearer ${s.clinician}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(a.body);
        found.procedure++;
      } else if (a.op === 'outcome') {
        expect(outcomes.find((o) => o.id === a.body.id)?.score).toBe(a.body.score);
        found.outcome++;
      } else {
        expect(shipments.some((x) => x.id === a.body.id)).toBe(true);
        found.shipment++;
      }
    }

    // Nothing half-applied: vial counts agree with the records that exist.
    const db = new pg.Client({ connectionString: cluster.databaseUrl });
    await db.connect();
    // Every vial at a clinic came with one of its shipments; every administered vial belongs to a procedure that stands.
    const stock = await db.query(`
      select x.clinic_id,
        (select count(*)::int from vials v where v.lot_id = x.lot_id and v.clinic_id = x.clinic_id) as shipped,
        (select count(*)::int from vials v where v.lot_id = x.lot_id and v.clinic_id = x.clinic_id and v.status = 'administered') as administered,
        sum(x.vials)::int as shipments,
        (select coalesce(sum(vials_used - vials_returned), 0)::int from procedures p where p.lot_id = x.lot_id and p.clinic_id = x.clinic_id) as used,
        (select count(*)::int from procedures p where p.lot_id = x.lot_id and p.clinic_id = x.clinic_id
           and p.vials_used - p.vials_returned <> (select count(*) from vials v where v.procedure_id = p.id)) as procedures_off
      from shipments x where x.lot_id = $1 group by x.lot_id, x.clinic_id order by 1`, [s.lot.id]);
    for (const r of stock.rows) {
      expect(r.shipped, r.clinic_id).toBe(r.shipments);
      expect(r.administered, r.clinic_id).toBe(r.used);
      expect(r.procedures_off, r.clinic_id).toBe(0);
    }
    const lot = await db.query('select vials_shipped, (select sum(vials)::int from shipments where lot_id = $1) as total from lots where id = $1', [s.lot.id]);
    expect(lot.rows[0].vials_shipped).toBe(lot.rows[0].total);
    await db.end();

    const auditor = await cluster.signer.token({ scope: 'audit:read', clinic: null });
    const verify = await after.http.get('/v1/audit-events/verify').set('authorization', `Bearer ${auditor}`);
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null, notInChain: 0 });
    process.stdout.write(
      `crash under load: ${sent} writes sent, ${answered.length} answered 201 before kill -9, all ${found.procedure + found.outcome + found.shipment} found after restart ` +
        `(${found.procedure} procedures, ${found.outcome} outcomes, ${found.shipment} shipments); vial counts consistent; chain valid over ${verify.body.checked} entries\n`,
    );
  });
});
