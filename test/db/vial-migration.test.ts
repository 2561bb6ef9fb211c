import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../src/db/migrate.js';
import type { TestApp } from '../support/app.js';
import { createEmptyDatabase, dropDatabase, migrateThrough, withClient } from '../support/migrations.js';

/**
 * Migration 0015 turns the per-clinic counters of lot_stock into one row per vial. A database written by the
 * service before it (counts only) is migrated and read back through the API: every clinic's counts stay what the
 * old inventory showed, and each vial names where it went.
 */

const LAST_BEFORE_VIALS = 14;
const MFR = 'Vesicle Biologics Inc.';

// --- databases -------------------------------------------------------------------------------------------------

/** Applies migrations 0000..0014 only (before the vials), and checks the old lot_stock is what the database has. */
async function migrateToBeforeVials(url: string) {
  await migrateThrough(url, LAST_BEFORE_VIALS, ['0015_vials', '0016_drop_lot_stock']);
  await withClient(url, async (c) => {
    const { rows } = await c.query<{ vials: string | null; stock: string | null }>(`select to_regclass('public.vials') as vials, to_regclass('public.lot_stock') as stock`);
    expect(rows[0]).toEqual({ vials: null, stock: 'lot_stock' });
  });
}

const tableExists = async (c: pg.Client, table: string) =>
  (await c.query<{ t: string | null }>(`select to_regclass($1) as t`, [`public.${table}`])).rows[0]!.t !== null;

/** Why a migration failed: the database's own message (drizzle wraps it in a "Failed query" error as `cause`). */
async function migrationFailure(url: string): Promise<string | null> {
  try {
    await migrateDatabase(url);
    return null;
  } catch (err) {
    return String(((err as { cause?: { message?: string } }).cause ?? (err as Error)).message);
  }
}

const appliedMigrations = async (c: pg.Client) => (await c.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations')).rows[0]!.n;

// --- the old service's writes, as plain SQL ----------------------------------------------------------------------

interface LotSeed {
  id: string;
  number: string;
  vialCount: number;
}

/** The old write path: counters moved in the same transaction as each record, refused when short. */
class OldService {
  constructor(private readonly c: pg.Client) {}

  private async one(text: string, params: unknown[], what: string) {
    const r = await this.c.query(text, params);
    if (r.rowCount !== 1) throw new Error(`seed: ${what} refused (${r.rowCount} rows)`);
  }

  private statusChange(lotId: string, status: string, at: string, reason: string | null, cause: string, by: string) {
    return this.c.query(
      `insert into lot_status_changes (id, lot_id, status, effective_at, reason, cause, changed_by, recorded_at) values ($1, $2, $3, $4, $5, $6, $7, $4)`,
      [randomUUID(), lotId, status, at, reason, cause, by],
    );
  }

  async lot(lot: LotSeed, at: string) {
    await this.c.query(
      `insert into lots (id, lot_number, manufacturer, product_name, isolation_method, characterization, release_tests, manufactured_on,
                         expires_on, storage_temp_c, vial_volume_ml, vial_count, created_at, created_by, updated_at, updated_by)
       values ($1, $2, $3, 'MSC-EV knee injection 2.5e11/mL', 'tangential-flow-filtration', $4, $5, '2026-01-02', '2030-01-02', -80, 1, $6, $7, 'qa-unit', $7, 'qa-unit')`,
      [
        lot.id,
        lot.number,
        MFR,
        JSON.stringify({ particlesPerMl: 250_000_000_000, meanSizeNm: 112, sizeMethod: 'nta', positiveMarkers: ['CD63', 'CD81', 'TSG101'], negativeMarkers: ['calnexin'] }),
        JSON.stringify({ sterility: 'pass', mycoplasma: 'pass', endotoxinEuPerMl: 0.12 }),
        lot.vialCount,
        at,
      ],
    );
    await this.statusChange(lot.id, 'quarantine', at, null, 'created', 'qa-unit');
  }

  async release(lotId: string, at: string) {
    await this.one(`update lots set status = 'released', version = version + 1, updated_at = $2, updated_by = 'qa-release' where id = $1 and status = 'quarantine'`, [lotId, at], 'release');
    await this.statusChange(lotId, 'released', at, null, 'manual', 'qa-release');
  }

  /** A recall: the lot's status, and one notice per clinic the lot was shipped to. */
  async recall(lotId: string, at: string, reason: string) {
    await this.one(`update lots set status = 'recalled', version = version + 1, updated_at = $2, updated_by = 'qa-release' where id = $1 and status = 'released'`, [lotId, at], 'recall');
    await this.statusChange(lotId, 'recalled', at, reason, 'manual', 'qa-release');
    await this.c.query(
      `insert into recall_notices (id, lot_id, clinic_id, recall_reason, recalled_at, created_at)
       select gen_random_uuid(), $1, clinic_id, $3, $2, $2 from (select distinct clinic_id from shipments where lot_id = $1) s`,
      [lotId, at, reason],
    );
  }

  async ship(s: { id: string; lotId: string; clinicId: string; vials: number; at: string }) {
    await this.one(`update lots set vials_shipped = vials_shipped + $2 where id = $1 and vials_shipped + $2 <= vial_count`, [s.lotId, s.vials], 'shipment');
    await this.c.query(
      `insert into lot_stock (lot_id, clinic_id, shipped) values ($1, $2, $3)
       on conflict (lot_id, clinic_id) do update set shipped = lot_stock.shipped + excluded.shipped`,
      [s.lotId, s.clinicId, s.vials],
    );
    await this.c.query(`insert into shipments (id, lot_id, clinic_id, vials, shipped_at, recorded_by, recorded_at) values ($1, $2, $3, $4, $5, 'logistics', $5)`, [
      s.id,
      s.lotId,
      s.clinicId,
      s.vials,
      s.at,
    ]);
  }

  private take(lotId: string, clinicId: string, vials: number, column: 'administered' | 'discarded') {
    return this.one(
      `update lot_stock set ${column} = ${column} + $3 where lot_id = $1 and clinic_id = $2 and shipped - administered - discarded >= $3`,
      [lotId, clinicId, vials],
      `${column} ${vials} at ${clinicId}`,
    );
  }

  async patient(p: { id: string; clinicId: string; mrn: string; given: string; family: string; birthDate: string; sex: string }) {
    await this.c.query(
      `insert into patients (id, clinic_id, mrn, given_name, family_name, birth_date, sex, created_by, updated_by) values ($1, $2, $3, $4, $5, $6, $7, 'front-desk', 'front-desk')`,
      [p.id, p.clinicId, p.mrn, p.given, p.family, p.birthDate, p.sex],
    );
  }

  async procedure(p: { id: string; lotId: string; clinicId: string; patientId: string; at: string; vialsUsed: number; by: string }) {
    await this.take(p.lotId, p.clinicId, p.vialsUsed, 'administered');
    await this.c.query(
      `insert into procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, body_site, laterality, imaging_guidance,
                               dose_particles, dose_volume_ml, vials_used, created_at, created_by, updated_at)
       values ($1, $2, $3, $4, $5, 'Dr. Example', $6, 'intra-articular', 'knee-joint', 'right', 'ultrasound', $7, $8, $9, $5, $10, $5)`,
      [
        p.id,
        p.clinicId,
        p.patientId,
        p.lotId,
        p.at,
        JSON.stringify({ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'M17.11', display: 'Unilateral primary osteoarthritis, right knee' }),
        250_000_000_000 * p.vialsUsed,
        p.vialsUsed,
        p.vialsUsed,
        p.by,
      ],
    );
  }

  /** Entered in error: the vials stated unused go back on the clinic's hand. */
  async enteredInError(p: { id: string; lotId: string; clinicId: string; at: string; vialsReturned: number; by: string }) {
    await this.one(
      `update procedures set status = 'entered-in-error', entered_in_error_reason = 'Recorded against the wrong patient', entered_in_error_at = $2,
              entered_in_error_by = $3, vials_returned = $4, version = version + 1, updated_at = $2 where id = $1 and status = 'completed'`,
      [p.id, p.at, p.by, p.vialsReturned],
      'entered-in-error',
    );
    await this.one(
      `update lot_stock set administered = administered - $3 where lot_id = $1 and clinic_id = $2 and administered >= $3`,
      [p.lotId, p.clinicId, p.vialsReturned],
      'vials returned',
    );
  }

  async discard(d: { id: string; lotId: string; clinicId: string; vials: number; at: string; reason: string; by: string }) {
    await this.take(d.lotId, d.clinicId, d.vials, 'discarded');
    await this.c.query(
      `insert into discards (id, lot_id, clinic_id, vials, reason, discarded_at, recorded_by, recorded_at) values ($1, $2, $3, $4, $5, $6, $7, $6)`,
      [d.id, d.lotId, d.clinicId, d.vials, d.reason, d.at, d.by],
    );
  }
}

interface StockRow {
  lotId: string;
  clinicId: string;
  shipped: number;
  administered: number;
  discarded: number;
}

/** The inventory as the old service read it: lot_stock. */
async function readOldStock(c: pg.Client): Promise<StockRow[]> {
  const { rows } = await c.query<StockRow>(
    `select lot_id as "lotId", clinic_id as "clinicId", shipped, administered, discarded from lot_stock order by lot_id, clinic_id`,
  );
  return rows;
}

// --- the data set ---------------------------------------------------------------------------------------------

const lotA: LotSeed = { id: randomUUID(), number: 'EVX-2026-0101', vialCount: 40 }; // released, two clinics
const lotB: LotSeed = { id: randomUUID(), number: 'EVX-2026-0102', vialCount: 20 }; // recalled with stock left
const lotC: LotSeed = { id: randomUUID(), number: 'EVX-2026-0103', vialCount: 10 }; // quarantined, never shipped
const lotD: LotSeed = { id: randomUUID(), number: 'LOT', vialCount: 12_000 }; // released, unshipped: 5-digit sequences

const ids = {
  sA1: randomUUID(), sA2: randomUUID(), sA3: randomUUID(), sA4: randomUUID(), sB1: randomUUID(), sB2: randomUUID(),
  pA1: randomUUID(), pA2: randomUUID(), pA3: randomUUID(), pA4: randomUUID(), pA5: randomUUID(), pA6: randomUUID(), pB1: randomUUID(),
  dA1: randomUUID(), dA2: randomUUID(), dB1: randomUUID(),
  patA1: randomUUID(), patA2: randomUUID(), patA3: randomUUID(), patA4: randomUUID(), patB1: randomUUID(), patB2: randomUUID(),
};
const RELEASED_AT = '2026-01-10T09:00:00.000Z';
const RECALLED_AT = '2026-02-01T08:00:00.000Z';
const RECALL_REASON = 'Sterility failure on the retained sample';
const at = {
  sA1: '2026-01-12T08:00:00.000Z', sA2: '2026-01-13T08:00:00.000Z', sA3: '2026-01-20T08:00:00.000Z', sA4: '2026-01-25T08:00:00.000Z',
  sB1: '2026-01-12T09:00:00.000Z', sB2: '2026-01-13T09:00:00.000Z',
  pA1: '2026-01-14T10:00:00.000Z', pA2: '2026-01-15T10:00:00.000Z', pA3: '2026-01-16T10:00:00.000Z', pA4: '2026-01-22T10:00:00.000Z',
  pA5: '2026-01-14T11:00:00.000Z', pA6: '2026-01-26T11:00:00.000Z', pB1: '2026-01-20T12:00:00.000Z',
  dA1: '2026-01-21T15:00:00.000Z', dA2: '2026-01-15T15:00:00.000Z', dB1: '2026-01-18T15:00:00.000Z',
};

/** Procedures per lot with the vials they keep after migration (vials used, minus those returned when entered in error). */
const proceduresOf: Record<string, { id: string; clinicId: string; vials: number }[]> = {
  [lotA.id]: [
    { id: ids.pA1, clinicId: 'clinic-a', vials: 1 },
    { id: ids.pA2, clinicId: 'clinic-a', vials: 2 },
    { id: ids.pA3, clinicId: 'clinic-a', vials: 1 }, // 2 used, entered in error with 1 returned
    { id: ids.pA4, clinicId: 'clinic-a', vials: 2 },
    { id: ids.pA5, clinicId: 'clinic-b', vials: 1 },
    { id: ids.pA6, clinicId: 'clinic-b', vials: 2 },
  ],
  [lotB.id]: [{ id: ids.pB1, clinicId: 'clinic-a', vials: 2 }],
  [lotC.id]: [],
  [lotD.id]: [],
};

async function seed(c: pg.Client) {
  const old = new OldService(c);
  await old.patient({ id: ids.patA1, clinicId: 'clinic-a', mrn: 'A-1001', given: 'Ana', family: 'García', birthDate: '1961-04-12', sex: 'female' });
  await old.patient({ id: ids.patA2, clinicId: 'clinic-a', mrn: 'A-1002', given: 'Ben', family: 'Okafor', birthDate: '1958-09-30', sex: 'male' });
  await old.patient({ id: ids.patA3, clinicId: 'clinic-a', mrn: 'A-1003', given: 'Chloé', family: 'Martin', birthDate: '1970-01-05', sex: 'female' });
  await old.patient({ id: ids.patA4, clinicId: 'clinic-a', mrn: 'A-1004', given: 'Dmitri', family: 'Ivanov', birthDate: '1949-12-24', sex: 'male' });
  await old.patient({ id: ids.patB1, clinicId: 'clinic-b', mrn: 'B-2001', given: 'Eun-ji', family: 'Park', birthDate: '1966-06-16', sex: 'female' });
  await old.patient({ id: ids.patB2, clinicId: 'clinic-b', mrn: 'B-2002', given: 'Femi', family: 'Adeyemi', birthDate: '1955-03-03', sex: 'male' });

  for (const lot of [lotA, lotB, lotC, lotD]) await old.lot(lot, '2026-01-05T12:00:00.000Z');
  for (const lot of [lotA, lotB, lotD]) await old.release(lot.id, RELEASED_AT);

  // In the order it happened.
  await old.ship({ id: ids.sA1, lotId: lotA.id, clinicId: 'clinic-a', vials: 6, at: at.sA1 });
  await old.ship({ id: ids.sB1, lotId: lotB.id, clinicId: 'clinic-a', vials: 5, at: at.sB1 });
  await old.ship({ id: ids.sA2, lotId: lotA.id, clinicId: 'clinic-b', vials: 5, at: at.sA2 });
  await old.ship({ id: ids.sB2, lotId: lotB.id, clinicId: 'clinic-c', vials: 4, at: at.sB2 });
  await old.procedure({ id: ids.pA1, lotId: lotA.id, clinicId: 'clinic-a', patientId: ids.patA1, at: at.pA1, vialsUsed: 1, by: 'nurse-a' });
  await old.procedure({ id: ids.pA5, lotId: lotA.id, clinicId: 'clinic-b', patientId: ids.patB1, at: at.pA5, vialsUsed: 1, by: 'nurse-b' });
  await old.procedure({ id: ids.pA2, lotId: lotA.id, clinicId: 'clinic-a', patientId: ids.patA2, at: at.pA2, vialsUsed: 2, by: 'nurse-a' });
  await old.discard({ id: ids.dA2, lotId: lotA.id, clinicId: 'clinic-b', vials: 2, at: at.dA2, reason: 'Freezer alarm: above -60 °C for 3 h', by: 'nurse-b' });
  await old.procedure({ id: ids.pA3, lotId: lotA.id, clinicId: 'clinic-a', patientId: ids.patA3, at: at.pA3, vialsUsed: 2, by: 'nurse-a' });
  await old.enteredInError({ id: ids.pA3, lotId: lotA.id, clinicId: 'clinic-a', at: '2026-01-17T09:00:00.000Z', vialsReturned: 1, by: 'nurse-a' });
  await old.discard({ id: ids.dB1, lotId: lotB.id, clinicId: 'clinic-c', vials: 1, at: at.dB1, reason: 'Vial cracked on thaw', by: 'nurse-c' });
  await old.ship({ id: ids.sA3, lotId: lotA.id, clinicId: 'clinic-a', vials: 4, at: at.sA3 });
  await old.procedure({ id: ids.pB1, lotId: lotB.id, clinicId: 'clinic-a', patientId: ids.patA4, at: at.pB1, vialsUsed: 2, by: 'nurse-a' });
  await old.discard({ id: ids.dA1, lotId: lotA.id, clinicId: 'clinic-a', vials: 1, at: at.dA1, reason: 'Vial dropped during thaw', by: 'nurse-a' });
  await old.procedure({ id: ids.pA4, lotId: lotA.id, clinicId: 'clinic-a', patientId: ids.patA4, at: at.pA4, vialsUsed: 2, by: 'nurse-a' });
  await old.ship({ id: ids.sA4, lotId: lotA.id, clinicId: 'clinic-b', vials: 3, at: at.sA4 });
  await old.procedure({ id: ids.pA6, lotId: lotA.id, clinicId: 'clinic-b', patientId: ids.patB2, at: at.pA6, vialsUsed: 2, by: 'nurse-b' });
  await old.recall(lotB.id, RECALLED_AT, RECALL_REASON);
}

const onHand = (s: StockRow) => s.shipped - s.administered - s.discarded;
const barcode = (lot: LotSeed, sequence: number) => `${lot.number}-${String(sequence).padStart(4, '0')}`;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// --- the API's answers -----------------------------------------------------------------------------------------

interface Vial {
  id: string;
  lotId: string;
  sequence: number;
  barcode: string;
  status: string;
  clinicId: string | null;
  usedBy: string | null;
}

interface Custody {
  at: string;
  action: string;
  clinicId: string | null;
  by: string;
  procedureId?: string | null;
  shipmentId?: string | null;
  discardId?: string | null;
  reason?: string | null;
}

/** The contract does not say whether these answer a bare list or a `{ items, nextCursor }` page: either is read. */
const itemsOf = <T>(body: unknown): T[] => (Array.isArray(body) ? (body as T[]) : ((body as { items: T[] }).items ?? [body as T]));

// --- tests -----------------------------------------------------------------------------------------------------

describe('migration 0015: vials from the counts a lot kept before', () => {
  let dbName = '';
  let url = '';
  let oldStock: StockRow[] = [];
  let t: TestApp | undefined;
  let token = '';

  beforeAll(async () => {
    ({ name: dbName, url } = await createEmptyDatabase('vialmig'));
    await migrateToBeforeVials(url);
    await withClient(url, async (c) => {
      await seed(c);
      oldStock = await readOldStock(c);
    });
    await migrateDatabase(url);
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    if (dbName) await dropDatabase(dbName);
  });

  const oldOf = (lotId: string) => oldStock.filter((s) => s.lotId === lotId);

  it('starts from the counters the old service kept, consistent with its records', () => {
    const expected: StockRow[] = [
      { lotId: lotA.id, clinicId: 'clinic-a', shipped: 10, administered: 6, discarded: 1 },
      { lotId: lotA.id, clinicId: 'clinic-b', shipped: 8, administered: 3, discarded: 2 },
      { lotId: lotB.id, clinicId: 'clinic-a', shipped: 5, administered: 2, discarded: 0 },
      { lotId: lotB.id, clinicId: 'clinic-c', shipped: 4, administered: 0, discarded: 1 },
    ];
    const order = (rows: StockRow[]) => [...rows].sort((x, y) => `${x.lotId}${x.clinicId}`.localeCompare(`${y.lotId}${y.clinicId}`));
    expect(order(oldStock)).toEqual(order(expected));
  });

  it('replaces lot_stock by one vial per unit, and keeps with each shipment and discard the vials it moved', async () => {
    await withClient(url, async (c) => {
      expect(await tableExists(c, 'lot_stock')).toBe(false);
      const perLot = await c.query<{ lot_id: string; n: number; min: number; max: number }>(
        `select lot_id, count(*)::int as n, min(sequence) as min, max(sequence) as max from vials group by lot_id`,
      );
      for (const lot of [lotA, lotB, lotC, lotD]) {
        expect(perLot.rows.find((r) => r.lot_id === lot.id)).toMatchObject({ n: lot.vialCount, min: 1, max: lot.vialCount });
      }
      // Oldest shipment first, lowest sequences first; a discard takes the lowest sequences its clinic still held.
      const moved = await c.query<{ id: string; vials: number; sequences: number[] }>(
        `select s.id, s.vials, (select array_agg(v.sequence order by v.sequence) from vials v where v.id = any(s.vial_ids)) as sequences from shipments s
         union all
         select d.id, d.vials, (select array_agg(v.sequence order by v.sequence) from vials v where v.id = any(d.vial_ids)) from discards d`,
      );
      const sequencesOf = Object.fromEntries(moved.rows.map((r) => [r.id, r.sequences]));
      expect(sequencesOf).toEqual({
        [ids.sA1]: range(1, 6),
        [ids.sA2]: range(7, 11),
        [ids.sA3]: range(12, 15),
        [ids.sA4]: range(16, 18),
        [ids.sB1]: range(1, 5),
        [ids.sB2]: range(6, 9),
        [ids.dA1]: [5],
        [ids.dA2]: [8, 9],
        [ids.dB1]: [6],
      });
      for (const r of moved.rows) expect(r.sequences, r.id).toHaveLength(r.vials);

      // Each recall notice keeps the barcodes its clinic was to quarantine.
      const notices = await c.query<{ clinic_id: string; barcodes: string[] }>(`select clinic_id, barcodes from recall_notices where lot_id = $1 order by clinic_id`, [lotB.id]);
      expect(notices.rows).toEqual([
        { clinic_id: 'clinic-a', barcodes: [3, 4, 5].map((n) => barcode(lotB, n)) },
        { clinic_id: 'clinic-c', barcodes: [7, 8, 9].map((n) => barcode(lotB, n)) },
      ]);
    });
  });

  describe('read back through the API', () => {
    beforeAll(async () => {
      // Imported here, not at the top: the migration checks above run even while src/ does not load.
      const { createTestApp } = await import('../support/app.js');
      t = await createTestApp({ databaseUrl: url });
      token = await t.token({ scope: 'lots:read lots:write reports:read clinical:read', clinic: null });
    });

    const get = async (route: string) => {
      const res = await t!.http.get(route).set('authorization', `Bearer ${token}`);
      expect(res.status, `GET ${route} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`).toBe(200);
      return res.body as unknown;
    };

    const vialsOf = async (lotId: string): Promise<Vial[]> => {
      const all: Vial[] = [];
      let cursor: string | null = null;
      do {
        const page = (await get(`/v1/lots/${lotId}/vials?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)) as { items: Vial[]; nextCursor: string | null };
        all.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return all.sort((x, y) => x.sequence - y.sequence);
    };

    const byBarcode = async (code: string): Promise<Vial[]> => itemsOf<Vial>(await get(`/v1/vials?barcode=${encodeURIComponent(code)}`));
    const custodyOf = async (vialId: string): Promise<Custody[]> => itemsOf<Custody>(await get(`/v1/vials/${vialId}/custody`));

    it('inventory: every clinic keeps the shipped, administered and discarded counts the old inventory showed', async () => {
      for (const lot of [lotA, lotB, lotC, lotD]) {
        const inv = (await get(`/v1/lots/${lot.id}/inventory`)) as { clinics: Record<string, unknown>[] };
        const old = oldOf(lot.id);
        const shipped = old.reduce((n, s) => n + s.shipped, 0);
        expect(inv, lot.number).toMatchObject({ lotId: lot.id, vialCount: lot.vialCount, vialsShipped: shipped, vialsUnshipped: lot.vialCount - shipped });
        expect(inv.clinics.map((c) => c.clinicId).sort(), lot.number).toEqual(old.map((s) => s.clinicId).sort());
        for (const s of old) {
          const clinic = inv.clinics.find((c) => c.clinicId === s.clinicId);
          expect(clinic, `${lot.number} at ${s.clinicId}`).toMatchObject({ shipped: s.shipped, administered: s.administered, discarded: s.discarded });
        }
      }
    });

    it('inventory: a released lot has its old on-hand on hand; a recalled lot counts what was left as recalled', async () => {
      const a = (await get(`/v1/lots/${lotA.id}/inventory`)) as { clinics: Record<string, number | string>[] };
      for (const s of oldOf(lotA.id)) {
        expect(a.clinics.find((c) => c.clinicId === s.clinicId), s.clinicId).toEqual({
          clinicId: s.clinicId,
          shipped: s.shipped,
          administered: s.administered,
          discarded: s.discarded,
          returned: 0,
          recalled: 0,
          expired: 0,
          onHand: onHand(s),
        });
      }
      const b = (await get(`/v1/lots/${lotB.id}/inventory`)) as { clinics: Record<string, number | string>[] };
      for (const s of oldOf(lotB.id)) {
        const clinic = b.clinics.find((c) => c.clinicId === s.clinicId)!;
        expect(clinic, s.clinicId).toMatchObject({ recalled: onHand(s), returned: 0 });
        expect(Number(clinic.onHand) + Number(clinic.recalled), `${s.clinicId}: onHand + recalled`).toBe(onHand(s));
      }
    });

    it('lists each lot\'s vials by sequence with default barcodes, each administered vial used by one of the lot\'s procedures', async () => {
      for (const lot of [lotA, lotB, lotC]) {
        const vials = await vialsOf(lot.id);
        expect(vials.map((v) => v.sequence), lot.number).toEqual(range(1, lot.vialCount));
        expect(vials.map((v) => v.barcode), lot.number).toEqual(range(1, lot.vialCount).map((n) => barcode(lot, n)));
        expect(vials.every((v) => v.lotId === lot.id)).toBe(true);
        expect(new Set(vials.map((v) => v.id)).size).toBe(lot.vialCount);

        const procedures = proceduresOf[lot.id]!;
        const administered = vials.filter((v) => v.status === 'administered');
        for (const v of administered) {
          const p = procedures.find((x) => x.id === v.usedBy);
          expect(p, `${v.barcode} usedBy ${String(v.usedBy)}`).toBeDefined();
          expect(v.clinicId, v.barcode).toBe(p!.clinicId);
        }
        for (const p of procedures) expect(vials.filter((v) => v.usedBy === p.id), `vials of procedure ${p.id}`).toHaveLength(p.vials);
        expect(vials.filter((v) => v.status !== 'administered').every((v) => v.usedBy === null), `${lot.number}: usedBy only on administered vials`).toBe(true);

        // Per clinic, the vials' statuses add up to the old counters.
        for (const s of oldOf(lot.id)) {
          const held = vials.filter((v) => v.clinicId === s.clinicId);
          expect(held, `${lot.number} at ${s.clinicId}`).toHaveLength(s.shipped);
          expect(held.filter((v) => v.status === 'administered')).toHaveLength(s.administered);
          expect(held.filter((v) => v.status === 'discarded')).toHaveLength(s.discarded);
          expect(held.filter((v) => v.status === (lot === lotB ? 'recalled' : 'at-clinic'))).toHaveLength(onHand(s));
        }
      }
      const quarantined = await vialsOf(lotC.id);
      expect(quarantined.every((v) => v.status === 'in-stock' && v.clinicId === null)).toBe(true);
    });

    it('assigns vials oldest shipment first and, per clinic, in the order procedures and discards happened', async () => {
      const expected = new Map<number, Pick<Vial, 'status' | 'clinicId' | 'usedBy'>>();
      const put = (sequences: number[], status: string, clinicId: string | null, usedBy: string | null = null) => {
        for (const n of sequences) expected.set(n, { status, clinicId, usedBy });
      };
      put([1], 'administered', 'clinic-a', ids.pA1);
      put([2, 3], 'administered', 'clinic-a', ids.pA2);
      put([4], 'administered', 'clinic-a', ids.pA3);
      put([5], 'discarded', 'clinic-a');
      put([6, 12], 'administered', 'clinic-a', ids.pA4);
      put([13, 14, 15], 'at-clinic', 'clinic-a');
      put([7], 'administered', 'clinic-b', ids.pA5);
      put([8, 9], 'discarded', 'clinic-b');
      put([10, 11], 'administered', 'clinic-b', ids.pA6);
      put([16, 17, 18], 'at-clinic', 'clinic-b');
      put(range(19, 40), 'in-stock', null);
      const vials = await vialsOf(lotA.id);
      expect(vials.map(({ sequence, status, clinicId, usedBy }) => ({ sequence, status, clinicId, usedBy }))).toEqual(
        range(1, 40).map((sequence) => ({ sequence, ...expected.get(sequence)! })),
      );

      const recalled = await vialsOf(lotB.id);
      expect(recalled.map(({ sequence, status, clinicId, usedBy }) => ({ sequence, status, clinicId, usedBy }))).toEqual([
        { sequence: 1, status: 'administered', clinicId: 'clinic-a', usedBy: ids.pB1 },
        { sequence: 2, status: 'administered', clinicId: 'clinic-a', usedBy: ids.pB1 },
        ...[3, 4, 5].map((sequence) => ({ sequence, status: 'recalled', clinicId: 'clinic-a', usedBy: null })),
        { sequence: 6, status: 'discarded', clinicId: 'clinic-c', usedBy: null },
        ...[7, 8, 9].map((sequence) => ({ sequence, status: 'recalled', clinicId: 'clinic-c', usedBy: null })),
        ...range(10, 20).map((sequence) => ({ sequence, status: 'recalled', clinicId: null, usedBy: null })),
      ]);
    });

    it('finds a vial by its barcode, past sequence 9999 with every digit kept', async () => {
      for (const [code, sequence] of [['LOT-10000', 10_000], ['LOT-12000', 12_000], ['LOT-1000', 1000], ['LOT-0001', 1]] as const) {
        const found = await byBarcode(code);
        expect(found, code).toHaveLength(1);
        expect(found[0], code).toMatchObject({ lotId: lotD.id, sequence, barcode: code, status: 'in-stock', clinicId: null, usedBy: null });
      }
      const [v10000] = await byBarcode('LOT-10000');
      expect(await get(`/v1/vials/${v10000!.id}`)).toMatchObject({ id: v10000!.id, sequence: 10_000, barcode: 'LOT-10000' });
      expect((await custodyOf(v10000!.id)).map((e) => e.action)).toEqual(['released']);
    });

    it('custody of an administered vial: released, shipped, administered, with the shipment and the procedure', async () => {
      const [vial] = await byBarcode(barcode(lotA, 2));
      expect(vial).toMatchObject({ status: 'administered', usedBy: ids.pA2 });
      const custody = await custodyOf(vial!.id);
      expect(custody.map((e) => e.action)).toEqual(['released', 'shipped', 'administered']);
      expect(custody[0]).toMatchObject({ action: 'released', at: RELEASED_AT, by: 'qa-release', clinicId: null });
      expect(custody[1]).toMatchObject({ action: 'shipped', at: at.sA1, by: 'logistics', clinicId: 'clinic-a', shipmentId: ids.sA1 });
      expect(custody[2]).toMatchObject({ action: 'administered', at: at.pA2, by: 'nurse-a', clinicId: 'clinic-a', procedureId: ids.pA2 });

      // The one vial an entered-in-error procedure kept (2 used, 1 stated returned) stays administered by it.
      const [kept] = await byBarcode(barcode(lotA, 4));
      expect((await custodyOf(kept!.id)).at(-1)).toMatchObject({ action: 'administered', at: at.pA3, clinicId: 'clinic-a', procedureId: ids.pA3 });
    });

    it('custody of discarded and recalled vials, and none for a lot never released', async () => {
      const [discarded] = await byBarcode(barcode(lotA, 5));
      const d = await custodyOf(discarded!.id);
      expect(d.map((e) => e.action)).toEqual(['released', 'shipped', 'discarded']);
      expect(d[2]).toMatchObject({ at: at.dA1, by: 'nurse-a', clinicId: 'clinic-a', discardId: ids.dA1, reason: 'Vial dropped during thaw' });

      const [atClinic] = await byBarcode(barcode(lotB, 3));
      const r = await custodyOf(atClinic!.id);
      expect(r.map((e) => e.action)).toEqual(['released', 'shipped', 'recalled']);
      expect(r[1]).toMatchObject({ shipmentId: ids.sB1, clinicId: 'clinic-a' });
      expect(r[2]).toMatchObject({ at: RECALLED_AT, by: 'qa-release', clinicId: 'clinic-a', reason: RECALL_REASON });

      const [unshipped] = await byBarcode(barcode(lotB, 15));
      expect((await custodyOf(unshipped!.id)).map((e) => e.action)).toEqual(['released', 'recalled']);

      const [neverReleased] = await byBarcode(barcode(lotC, 1));
      expect(neverReleased).toMatchObject({ status: 'in-stock', lotId: lotC.id });
      expect(await custodyOf(neverReleased!.id)).toEqual([]);
    });

    it('each recall notice lists the barcodes of its clinic\'s recalled vials', async () => {
      const page = (await get(`/v1/lots/${lotB.id}/recall-notices`)) as { items: { clinicId: string; barcodes: string[] }[] };
      const vials = await vialsOf(lotB.id);
      const notices = page.items.map(({ clinicId, barcodes }) => ({ clinicId, barcodes })).sort((x, y) => x.clinicId.localeCompare(y.clinicId));
      // Per clinic: its recalled vials as the vials list shows them, as many as it had on hand before the migration.
      const expected = oldOf(lotB.id)
        .map((s) => ({ clinicId: s.clinicId, barcodes: vials.filter((v) => v.clinicId === s.clinicId && v.status === 'recalled').map((v) => v.barcode) }))
        .sort((x, y) => x.clinicId.localeCompare(y.clinicId));
      for (const e of expected) expect(e.barcodes, e.clinicId).toHaveLength(onHand(oldOf(lotB.id).find((s) => s.clinicId === e.clinicId)!));
      expect(notices).toEqual(expected);
      expect(notices).toEqual([
        { clinicId: 'clinic-a', barcodes: [3, 4, 5].map((n) => barcode(lotB, n)) },
        { clinicId: 'clinic-c', barcodes: [7, 8, 9].map((n) => barcode(lotB, n)) },
      ]);
    });
  });
});

describe('migration 0015 stops on counters it cannot account for', () => {
  const lot: LotSeed = { id: randomUUID(), number: 'EVX-2026-0201', vialCount: 20 };
  const patientId = randomUUID();

  /** A released lot with 5 vials shipped to clinic-a and a procedure that used 1, written the old way. */
  async function seedSmall(c: pg.Client) {
    const old = new OldService(c);
    await old.patient({ id: patientId, clinicId: 'clinic-a', mrn: 'A-9001', given: 'Grace', family: 'Hopper', birthDate: '1950-12-09', sex: 'female' });
    await old.lot(lot, '2026-01-05T12:00:00.000Z');
    await old.release(lot.id, RELEASED_AT);
    await old.ship({ id: randomUUID(), lotId: lot.id, clinicId: 'clinic-a', vials: 5, at: '2026-01-12T08:00:00.000Z' });
    await old.procedure({ id: randomUUID(), lotId: lot.id, clinicId: 'clinic-a', patientId, at: '2026-01-14T10:00:00.000Z', vialsUsed: 1, by: 'nurse-a' });
  }

  it('a counter that drifted from the procedures fails the migration, changes nothing, and goes through once corrected', async () => {
    const { name, url } = await createEmptyDatabase('vialdrift');
    try {
      await migrateToBeforeVials(url);
      await withClient(url, async (c) => {
        await seedSmall(c);
        // Counted twice (a retried write): lot_stock says 2 administered, the procedures account for 1.
        await c.query(`update lot_stock set administered = administered + 1 where lot_id = $1`, [lot.id]);
      });

      expect(await migrationFailure(url)).toBe(`vials do not account for lot ${lot.id} at clinic clinic-a as lot_stock does`);

      await withClient(url, async (c) => {
        expect(await appliedMigrations(c)).toBe(LAST_BEFORE_VIALS + 1);
        expect(await tableExists(c, 'vials')).toBe(false);
        expect(await readOldStock(c)).toEqual([{ lotId: lot.id, clinicId: 'clinic-a', shipped: 5, administered: 2, discarded: 0 }]);
        await c.query(`update lot_stock set administered = 1 where lot_id = $1`, [lot.id]);
      });

      await migrateDatabase(url);
      await withClient(url, async (c) => {
        expect(await tableExists(c, 'lot_stock')).toBe(false);
        const { rows } = await c.query<{ status: string; n: number }>(`select status, count(*)::int as n from vials where lot_id = $1 group by status order by status`, [lot.id]);
        expect(rows).toEqual([
          { status: 'administered', n: 1 },
          { status: 'at-clinic', n: 4 },
          { status: 'in-stock', n: 15 },
        ]);
      });
    } finally {
      await dropDatabase(name);
    }
  }, 180_000);

  it('vials shipped to a clinic lot_stock never counted fail the migration instead of appearing in its inventory', async () => {
    const { name, url } = await createEmptyDatabase('vialorphan');
    try {
      await migrateToBeforeVials(url);
      await withClient(url, async (c) => {
        await seedSmall(c);
        // A shipment to clinic-x whose counter row was never written: lot_stock shows clinic-x nothing.
        await c.query(`update lots set vials_shipped = vials_shipped + 2 where id = $1`, [lot.id]);
        await c.query(`insert into shipments (id, lot_id, clinic_id, vials, shipped_at, recorded_by, recorded_at) values ($1, $2, 'clinic-x', 2, $3, 'logistics', $3)`, [
          randomUUID(),
          lot.id,
          '2026-01-13T08:00:00.000Z',
        ]);
      });

      const failure = await migrationFailure(url);
      const after = failure
        ? ''
        : await withClient(url, async (c) => {
            const { rows } = await c.query(`select clinic_id, status, count(*)::int as n from vials where lot_id = $1 and clinic_id is not null group by 1, 2 order by 1, 2`, [lot.id]);
            return `the migration went through; vials now: ${JSON.stringify(rows)}`;
          });
      expect(failure ?? after).toMatch(/account.*clinic-x/);

      await withClient(url, async (c) => {
        expect(await appliedMigrations(c)).toBe(LAST_BEFORE_VIALS + 1);
        expect(await tableExists(c, 'lot_stock')).toBe(true);
      });
    } finally {
      await dropDatabase(name);
    }
  }, 180_000);
});
