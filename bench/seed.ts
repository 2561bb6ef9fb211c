import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { dinCheckCharacter } from '../src/modules/donors/din.js';
import { ALWAYS_REQUIRED } from '../src/modules/donors/vocabulary.js';
import { migrateDatabase } from '../src/db/migrate.js';
import { openDatabase } from './database.js';

/**
 * Fills a database with a realistic data set, inside PostgreSQL (generate_series, set-based SQL), valid by
 * the rules of domain.md: eligible donors with in-window tests, released lots, consents before procedures,
 * vials shipped before they are used, doses exactly volume x concentration, outcomes in their windows,
 * audit rows for every record, sealed into the hash chain.
 * Scale 1: 10 clinics, 100,000 patients, 150 donors, 200 lots, 1,000,000 procedures, 3,000,000 outcomes,
 * 20,000 adverse events; one lot with 10,000 recipients.
 */
export interface SeedPlan {
  scale: number;
  clinics: number;
  patients: number;
  donors: number;
  lots: number;
  procedures: number;
  bigLotRecipients: number;
  adverseEventEvery: number;
}

export function planFor(scale: number): SeedPlan {
  const patients = Math.max(1000, Math.round(100_000 * scale));
  return {
    scale,
    clinics: 10,
    patients,
    donors: Math.max(8, Math.round(150 * scale)),
    lots: Math.max(10, Math.round(200 * scale)),
    procedures: Math.max(5000, Math.round(1_000_000 * scale)),
    bigLotRecipients: Math.min(10_000, patients),
    adverseEventEvery: 50,
  };
}

export const SEED_MANUFACTURER = 'Seed Biologics Inc.';
export const PARTICLES_PER_ML = 250_000_000_000;
export const SPARE_VIALS = 400;

type Step = { name: string; sql: string | ((p: SeedPlan) => string) };

const clinicExpr = (n: string, clinics: number) => `'clinic-' || lpad(((${n} - 1) % ${clinics} + 1)::text, 2, '0')`;

function donorRows(p: SeedPlan): string {
  const rows: string[] = [];
  for (let i = 1; i <= p.donors; i++) {
    const din = `S0001${'24'}${String(i).padStart(6, '0')}`;
    rows.push(`(${i}, '${din}', '${dinCheckCharacter(din)}')`);
  }
  return rows.join(',\n');
}

const steps: Step[] = [
  {
    name: 'donors, screening tests, eligibility',
    sql: (p) => `
      create temp table s_donors as
        select n, gen_random_uuid() as id, din, chk from (values ${donorRows(p)}) v(n, din, chk);
      insert into donors (id, din, din_check_character, source_tissue, sex, age_at_donation_years, collected_on, version, created_at, created_by, updated_at)
        select id, din, chk, (array['umbilical-cord','adipose','placenta','amniotic-membrane'])[1 + n % 4], (array['female','male'])[1 + n % 2],
               20 + n % 25, date '2024-01-10', ${ALWAYS_REQUIRED.length + 2}, timestamptz '2024-01-10', 'seed', timestamptz '2024-01-20'
        from s_donors;
      insert into donor_tests (id, donor_id, marker, method, result, tested_on, laboratory, recorded_at, recorded_by)
        select gen_random_uuid(), d.id, m, case when m like '%nat' then 'nat' else 'serology' end, 'non-reactive', date '2024-01-09', 'Seed Central Lab', timestamptz '2024-01-15', 'seed'
        from s_donors d cross join unnest(array[${ALWAYS_REQUIRED.map((m) => `'${m}'`).join(',')}]) m;
      insert into donor_eligibility (id, donor_id, status, determined_by, determined_at, reason, recorded_at, recorded_by)
        select gen_random_uuid(), id, 'eligible', 'Dr. Seed Director', timestamptz '2024-01-20T10:00:00Z', null, timestamptz '2024-01-20T10:00:00Z', 'seed' from s_donors;`,
  },
  {
    name: 'lots (one recalled), release history',
    sql: (p) => `
      create temp table s_lots as select n, gen_random_uuid() as id, 1 + (n - 1) % ${p.donors} as donor_n from generate_series(1, ${p.lots}) n;
      insert into lots (id, lot_number, manufacturer, product_name, isolation_method, characterization, release_tests, manufactured_on, expires_on,
                        storage_temp_c, vial_volume_ml, vial_count, vials_shipped, status, version, created_at, created_by, updated_at, updated_by)
        select l.id, 'SEED-' || lpad(l.n::text, 5, '0'), '${SEED_MANUFACTURER}', 'MSC-EV 2.5e11/mL',
               (array['tangential-flow-filtration','ultracentrifugation','size-exclusion-chromatography'])[1 + l.n % 3],
               jsonb_build_object('particlesPerMl', ${PARTICLES_PER_ML}, 'meanSizeNm', 100 + l.n % 30, 'sizeMethod', 'nta',
                                  'positiveMarkers', jsonb_build_array('CD63','CD81','TSG101'), 'negativeMarkers', jsonb_build_array('calnexin')),
               jsonb_build_object('sterility','pass','mycoplasma','pass','endotoxinEuPerMl', 0.05 + (l.n % 10) / 100.0),
               date '2024-01-25', date '2030-01-25', -80, 1, 1, 0,
               case when l.n = ${p.lots} then 'recalled' else 'released' end, case when l.n = ${p.lots} then 3 else 2 end,
               timestamptz '2024-01-25', 'seed', timestamptz '2024-02-01', 'seed'
        from s_lots l;
      insert into lot_donors (lot_id, donor_id) select l.id, d.id from s_lots l join s_donors d on d.n = l.donor_n;
      insert into lot_status_changes (id, lot_id, status, effective_at, reason, cause, changed_by, recorded_at)
        select gen_random_uuid(), id, 'quarantine', timestamptz '2024-01-25', 'Lot recorded; quarantined until release', 'created', 'seed', timestamptz '2024-01-25' from s_lots
        union all
        select gen_random_uuid(), id, 'released', timestamptz '2024-02-01T09:00:00Z', 'QA review complete', 'manual', 'seed', timestamptz '2024-02-01T09:00:00Z' from s_lots
        union all
        select gen_random_uuid(), id, 'recalled', timestamptz '2026-06-01T00:00:00Z', 'Seeded recall drill', 'manual', 'seed', timestamptz '2026-06-01T00:00:00Z' from s_lots where n = ${p.lots};`,
  },
  {
    name: 'patients and consents',
    sql: (p) => `
      create temp table s_patients as select n, gen_random_uuid() as id, ${clinicExpr('n', p.clinics)} as clinic_id from generate_series(1, ${p.patients}) n;
      create index on s_patients (n);
      analyze s_patients;
      insert into patients (id, clinic_id, mrn, identifiers, given_name, family_name, birth_date, sex, version, created_at, created_by, updated_at, updated_by)
        select id, clinic_id, 'S-' || lpad(n::text, 7, '0'),
               jsonb_build_array(jsonb_build_object('system', 'https://ehr.' || clinic_id || '.example.org/patient-id', 'value', 'EHR-' || n)),
               (array['Maria','James','Aiko','Olu','Sofia','Liam','Priya','Noah','Elena','Kwame'])[1 + n % 10],
               (array['Lopez','Smith','Tanaka','Adeyemi','Rossi','Nguyen','Patel','Muller','Kowalski','Mensah','Garcia','Brown'])[1 + (n / 10) % 12] || n % 997,
               date '1940-01-01' + (n * 37 % 20000), (array['female','male','female','male','other'])[1 + n % 5], 1,
               timestamptz '2024-01-10', 'seed', timestamptz '2024-01-10', 'seed'
        from s_patients;
      insert into consents (id, patient_id, clinic_id, kind, signed_at, document_version, irb_protocol, status, version, created_at, created_by)
        select gen_random_uuid(), id, clinic_id, 'investigational-treatment', timestamptz '2024-01-15T09:00:00Z', 'ICF-EV v3.1', 'IRB-2024-0100', 'active', 1, timestamptz '2024-01-15', 'seed'
        from s_patients;`,
  },
  {
    name: 'procedures',
    sql: (p) => `
      create temp table s_procedures as
        select n, gen_random_uuid() as id,
               case when n <= ${p.bigLotRecipients} then n else 1 + (n::bigint * 7919) % ${p.patients} end as patient_n,
               case when n <= ${p.bigLotRecipients} then 1 else 2 + (n::bigint * 104729) % ${p.lots - 2} end as lot_n,
               timestamptz '2024-03-01T08:00:00Z' + make_interval(days => (n * 37 % 900)::int, mins => (n % 600)::int) as performed_at,
               (array[0.01, 0.02, 0.04, 0.06])[1 + n % 4]::numeric as volume,
               case when n % 10 = 0 then 'intravenous' else 'intra-articular' end as route
        from generate_series(1, ${p.procedures}) n;
      create index on s_procedures (id);
      analyze s_procedures;
      analyze s_lots;
      analyze s_donors;
      insert into procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, body_site, laterality, imaging_guidance,
                              dose_particles, dose_volume_ml, vials_used, status, version, created_at, created_by, updated_at)
        select sp.id, pt.clinic_id, pt.id, l.id, sp.performed_at, 'Dr. Seed',
               case when sp.route = 'intravenous' then '{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"M17.0"}'::jsonb
                    else '{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"M17.11","display":"Unilateral primary osteoarthritis, right knee"}'::jsonb end,
               sp.route,
               case when sp.route = 'intravenous' then null else 'knee-joint' end,
               case when sp.route = 'intravenous' then null else (array['left','right','bilateral'])[1 + sp.n % 3] end,
               case when sp.route = 'intravenous' then 'none' else (array['ultrasound','none','fluoroscopy'])[1 + sp.n % 3] end,
               (sp.volume * ${PARTICLES_PER_ML})::bigint, sp.volume, 1, 'completed', 1, sp.performed_at + interval '1 hour', 'seed', sp.performed_at + interval '1 hour'
        from s_procedures sp join s_patients pt on pt.n = sp.patient_n join s_lots l on l.n = sp.lot_n;`,
  },
  {
    name: 'vials, shipments, custody',
    sql: (p) => `
      -- Per lot: one vial per procedure (administered), ${SPARE_VIALS} spare at each clinic, 100 in stock; sequences by clinic.
      create temp table s_vials as
        select x.lot_id, x.clinic_id, x.procedure_id, x.performed_at,
               row_number() over (partition by x.lot_id order by x.clinic_id nulls last, x.procedure_id nulls last) as sequence
        from (
          select lot_id, clinic_id, id as procedure_id, performed_at from procedures where lot_id in (select id from s_lots)
          union all
          select l.id, ${clinicExpr('c.n', p.clinics)}, null::uuid, null::timestamptz from s_lots l cross join generate_series(1, ${p.clinics}) c(n) cross join generate_series(1, ${SPARE_VIALS}) g
          union all
          select l.id, null, null, null from s_lots l cross join generate_series(1, 100) g
        ) x;
      -- ids as the service makes them: the lot's base uuid with the sequence in its last 20 bits (vials.queries vialIdSql)
      alter table s_vials add column id uuid;
      update s_vials v set id = overlay(b.base placing lpad(to_hex(v.sequence), 5, '0') from 32 for 5)::uuid
        from (select id, gen_random_uuid()::text as base from s_lots) b where b.id = v.lot_id;
      create temp table s_shipments as
        select gen_random_uuid() as id, lot_id, clinic_id, array_agg(id order by sequence) as vial_ids from s_vials where clinic_id is not null group by lot_id, clinic_id;
      insert into vials (id, lot_id, manufacturer, sequence, barcode, status, clinic_id, procedure_id, shipped_at, moved_action, moved_at, moved_by, movement_id)
        select v.id, v.lot_id, '${SEED_MANUFACTURER}', v.sequence, 'SEED-' || lpad(l.n::text, 5, '0') || '-' || lpad(v.sequence::text, greatest(4, length(v.sequence::text)), '0'),
               case when v.procedure_id is not null then 'administered' when l.n = ${p.lots} then 'recalled' when v.clinic_id is null then 'in-stock' else 'at-clinic' end,
               v.clinic_id, v.procedure_id, case when v.clinic_id is not null then timestamptz '2024-02-02T08:00:00Z' end,
               case when v.procedure_id is not null then 'administered' when l.n = ${p.lots} then 'recalled' when v.clinic_id is null then 'released' else 'shipped' end,
               case when v.procedure_id is not null then v.performed_at when l.n = ${p.lots} then timestamptz '2026-06-01T00:00:00Z'
                    when v.clinic_id is null then timestamptz '2024-02-01T09:00:00Z' else timestamptz '2024-02-02T08:00:00Z' end,
               'seed', v.procedure_id
        from s_vials v join s_lots l on l.id = v.lot_id;
      insert into shipments (id, lot_id, clinic_id, vials, vial_ids, shipped_at, recorded_by, recorded_at)
        select id, lot_id, clinic_id, cardinality(vial_ids), vial_ids, timestamptz '2024-02-02T08:00:00Z', 'seed', timestamptz '2024-02-02T08:00:00Z' from s_shipments;
      insert into vial_custody (vial_id, at, action, clinic_id, by, procedure_id, shipment_id, reason)
        select v.id, timestamptz '2024-02-01T09:00:00Z', 'released', null, 'seed', null::uuid, null::uuid, null::text from s_vials v
        union all
        select u.vial_id, timestamptz '2024-02-02T08:00:00Z', 'shipped', s.clinic_id, 'seed', null, s.id, null from s_shipments s cross join unnest(s.vial_ids) u(vial_id)
        union all
        select v.id, v.performed_at, 'administered', v.clinic_id, 'seed', v.procedure_id, null, null from s_vials v where v.procedure_id is not null
        union all
        select v.id, timestamptz '2026-06-01T00:00:00Z', 'recalled', v.clinic_id, 'seed', null, null, 'Seeded recall drill'
        from s_vials v join s_lots l on l.id = v.lot_id where l.n = ${p.lots} and v.procedure_id is null;
      update lots l set vial_count = s.total, vials_shipped = s.shipped
        from (select lot_id, count(*)::int as total, count(clinic_id)::int as shipped from s_vials group by lot_id) s
        where s.lot_id = l.id;`,
  },
  {
    name: 'outcome scores (baseline, week 6, month 3)',
    sql: () => `
      insert into outcomes (id, clinic_id, procedure_id, patient_id, instrument, score, assessed_at, timepoint, recorded_at, recorded_by)
        select gen_random_uuid(), p.clinic_id, p.id, p.patient_id,
               case when sp.n % 4 = 0 then 'koos-qol' else 'nrs-pain' end,
               case when sp.n % 4 = 0 then 30 + sp.n % 30 + t.k * (sp.n % 9)
                    else greatest(0, 5 + sp.n % 5 - t.k * (sp.n % 3)) end,
               p.performed_at + make_interval(days => (array[-3, 42, 90])[t.k + 1]),
               (array['baseline', 'week-6', 'month-3'])[t.k + 1],
               p.performed_at + make_interval(days => (array[-3, 42, 90])[t.k + 1]) + interval '1 hour', 'seed'
        from s_procedures sp join procedures p on p.id = sp.id cross join (values (0), (1), (2)) t(k);`,
  },
  {
    name: 'adverse events',
    sql: (p) => `
      insert into adverse_events (id, clinic_id, procedure_id, patient_id, lot_id, onset_at, description, severity_grade, serious, seriousness_criteria,
                                  relatedness, outcome, version, created_at, created_by, updated_at, updated_by,
                                  expectedness, aware_at, report_due_at)
        select gen_random_uuid(), p.clinic_id, p.id, p.patient_id, p.lot_id, p.performed_at + interval '1 day',
               (array['Knee effusion','Injection site pain','Transient fever','Joint stiffness'])[1 + sp.n % 4],
               1 + (sp.n / ${p.adverseEventEvery}) % 3, (sp.n / ${p.adverseEventEvery}) % 3 = 2,
               case when (sp.n / ${p.adverseEventEvery}) % 3 = 2 then '["hospitalization"]'::jsonb else '[]'::jsonb end,
               (array['probable','possible','unlikely','not-related'])[1 + sp.n % 4], (array['resolved','recovering','resolved'])[1 + sp.n % 3],
               1, p.performed_at + interval '2 days', 'seed', p.performed_at + interval '2 days', 'seed',
               -- No term: unexpected; aware when recorded; the serious ones (grade 3, hospitalization) that are suspected
               -- reactions are due 15 days later (src/modules/adverse-events/rules.ts reportDueAt).
               'unexpected', p.performed_at + interval '2 days',
               case when (sp.n / ${p.adverseEventEvery}) % 3 = 2 and sp.n % 4 < 2 then p.performed_at + interval '2 days' + make_interval(hours => 360) end
        from s_procedures sp join procedures p on p.id = sp.id where sp.n % ${p.adverseEventEvery} = 0;`,
  },
  {
    name: 'record versions',
    sql: () => `
      insert into record_versions (resource_type, resource_id, version, clinic_id, body, recorded_at, recorded_by)
        select 'patient', p.id, 1, p.clinic_id,
               jsonb_build_object('id', p.id, 'clinicId', p.clinic_id, 'mrn', p.mrn, 'identifiers', p.identifiers, 'givenName', p.given_name,
                                  'familyName', p.family_name, 'birthDate', p.birth_date, 'sex', p.sex, 'version', 1,
                                  'createdAt', to_char(p.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                  'updatedAt', to_char(p.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
               p.created_at, 'seed'
        from patients p join s_patients s on s.id = p.id;
      insert into record_versions (resource_type, resource_id, version, clinic_id, body, recorded_at, recorded_by)
        select 'procedure', p.id, 1, p.clinic_id,
               jsonb_build_object('id', p.id, 'clinicId', p.clinic_id, 'patientId', p.patient_id, 'lotId', p.lot_id, 'route', p.route,
                                  'dose', jsonb_build_object('particles', p.dose_particles, 'volumeMl', p.dose_volume_ml), 'vialsUsed', p.vials_used, 'status', p.status, 'version', 1),
               p.created_at, 'seed'
        from procedures p join s_procedures s on s.id = p.id;`,
  },
  {
    // Written around the service, so the event feed does not tell them: the safety monitor rebuilds every lot's counts.
    name: 'safety counts to rebuild',
    sql: () => `insert into lot_safety_recount (lot_id) select id from lots on conflict do nothing;`,
  },
  {
    name: 'audit entries (one per record written)',
    sql: () => `
      -- queued set-based below instead of by the per-row trigger: same result, far fewer round trips inside
      alter table audit_events disable trigger audit_events_enqueue;
      insert into audit_events (occurred_at, actor_sub, actor_clinic_id, action, resource_type, resource_id, clinic_id, request_id, outcome, details)
        select created_at, 'seed', null::text, 'create', 'donor', id::text, null::text, 'seed', 'success', null::jsonb from donors where id in (select id from s_donors)
        union all select created_at, 'seed', null, 'create', 'lot', id::text, null, 'seed', 'success', null from lots where id in (select id from s_lots)
        union all select created_at, 'seed', clinic_id, 'create', 'patient', id::text, clinic_id, 'seed', 'success', null from patients where id in (select id from s_patients)
        union all select created_at, 'seed', clinic_id, 'create', 'procedure', id::text, clinic_id, 'seed', 'success', jsonb_build_object('patientId', patient_id, 'lotId', lot_id)
          from procedures where id in (select id from s_procedures)
        union all select recorded_at, 'seed', clinic_id, 'create', 'outcome', id::text, clinic_id, 'seed', 'success', jsonb_build_object('patientId', patient_id)
          from outcomes where procedure_id in (select id from s_procedures)
        union all select created_at, 'seed', clinic_id, 'create', 'adverse-event', id::text, clinic_id, 'seed', 'success', jsonb_build_object('patientId', patient_id)
          from adverse_events where procedure_id in (select id from s_procedures)
        order by 1;
      alter table audit_events enable trigger audit_events_enqueue;
      insert into audit_unsealed (event_id)
        select a.id from audit_events a
        where a.actor_sub = 'seed' and not exists (select 1 from audit_chain c where c.event_id = a.id)
        on conflict do nothing;`,
  },
];

export async function seed(url: string, plan: SeedPlan, log: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  await migrateDatabase(url);
  const client = new pg.Client({ connectionString: url, application_name: 'exosome-records-seed' });
  await client.connect();
  const started = performance.now();
  try {
    await client.query('create table if not exists seed_info (scale numeric not null, plan jsonb not null, seconds numeric not null, seeded_at timestamptz not null default now())');
    const { rowCount } = await client.query('select 1 from seed_info');
    if (rowCount) throw new Error('This database is already seeded (table seed_info); seed an empty one.');
    await client.query("set synchronous_commit = off; set maintenance_work_mem = '512MB'; set work_mem = '256MB'; select setseed(0.42)");
    const total = steps.length + 2;
    const bar = (i: number) => `[${'#'.repeat(i).padEnd(total, '.')}]`;
    await client.query('begin');
    for (const [i, step] of steps.entries()) {
      const t0 = performance.now();
      await client.query(typeof step.sql === 'string' ? step.sql : step.sql(plan));
      log(`${bar(i + 1)} ${step.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    await client.query('commit');
    let t0 = performance.now();
    let sealed = 0;
    for (;;) {
      const { rows } = await client.query<{ n: number }>('select audit_seal(200000) as n');
      if (rows[0]!.n <= 0) break;
      sealed += rows[0]!.n;
      log(`${bar(steps.length + 1)} sealing the audit chain: ${sealed.toLocaleString('en')} entries, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    t0 = performance.now();
    await client.query('vacuum analyze');
    log(`${bar(total)} vacuum analyze: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const seconds = (performance.now() - started) / 1000;
    await client.query('insert into seed_info (scale, plan, seconds) values ($1, $2, $3)', [plan.scale, JSON.stringify(plan), seconds]);
    return seconds;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: '1' }, 'data-dir': { type: 'string' } } });
  const plan = planFor(Number(values.scale));
  const db = await openDatabase(values['data-dir']);
  try {
    process.stdout.write(
      `Seeding scale ${plan.scale}: ${plan.clinics} clinics, ${plan.patients.toLocaleString('en')} patients, ${plan.donors} donors, ${plan.lots} lots, ` +
        `${plan.procedures.toLocaleString('en')} procedures, ${(plan.procedures * 3).toLocaleString('en')} outcomes, ` +
        `${Math.floor(plan.procedures / plan.adverseEventEvery).toLocaleString('en')} adverse events (one lot with ${plan.bigLotRecipients.toLocaleString('en')} recipients)\n`,
    );
    const seconds = await seed(db.url, plan);
    process.stdout.write(`Seeded in ${seconds.toFixed(0)} s\n`);
  } finally {
    await db.close();
  }
}
