import pg from 'pg';
import type { ServiceProcess } from '../support/process.js';
import { clinicSetup, patientBody, procedureBody } from '../support/fixtures.js';
import type { Cluster } from './harness.js';

/**
 * Steady traffic against service processes while the database is made to fail under it: reads, writes,
 * audit verifies (which seal) and full streaming CSV downloads, every answer recorded.
 */
export interface Outcome {
  kind: 'read' | 'write' | 'verify' | 'csv';
  /** The service process asked (its origin). */
  origin: string;
  /** HTTP status; 0 when no answer came at all (refused, reset before the status line, timed out). */
  status: number;
  contentType?: string;
  code?: string;
  /** For a 200 CSV: the whole body arrived, or the transfer was cut (an incomplete chunked body). */
  body?: 'complete' | 'cut' | 'short';
  error?: string;
  ms: number;
}

export interface Workload {
  patientId: string;
  lotId: string;
  /** Rows of the lot's CSV (procedures of the lot). */
  csvRows: number;
  tokens: { clinician: string; inspector: string; auditor: string };
}

/** A lot with `rows` recipient procedures (one made through the API, the rest copied in SQL) and a patient. */
export async function prepareWorkload(cluster: Cluster, svc: ServiceProcess, rows: number): Promise<Workload> {
  const api = cluster.client(svc);
  const s = await clinicSetup(api, { vials: 5 });
  const procedure = await api.http.post('/v1/procedures').set('authorization', `Bearer ${s.clinician}`).send(procedureBody(s.patientId, s.lot.id));
  if (procedure.status !== 201) throw new Error(`procedure: ${procedure.status} ${JSON.stringify(procedure.body)}`);
  const db = new pg.Client({ connectionString: cluster.databaseUrl });
  db.on('error', () => undefined);
  await db.connect();
  try {
    await db.query(
      `INSERT INTO procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, created_by)
       SELECT gen_random_uuid(), clinic_id, patient_id, lot_id, performed_at + make_interval(secs => g), performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, 'bulk'
       FROM procedures p, generate_series(1, $2::int) g WHERE p.id = $1`,
      [procedure.body.id, rows - 1],
    );
  } finally {
    await db.end();
  }
  return {
    patientId: s.patientId,
    lotId: s.lot.id,
    csvRows: rows,
    tokens: {
      clinician: s.clinician,
      inspector: await cluster.signer.token({ scope: 'reports:read', clinic: null, sub: 'inspector' }),
      auditor: await cluster.signer.token({ scope: 'audit:read', clinic: null, sub: 'auditor' }),
    },
  };
}

const REQUEST_LIMIT_MS = 15_000;

async function one(kind: Outcome['kind'], url: string, init: RequestInit, expectLines?: number): Promise<Outcome> {
  const t0 = Date.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_LIMIT_MS) });
    const contentType = res.headers.get('content-type') ?? undefined;
    let body: Outcome['body'];
    let code: string | undefined;
    try {
      const text = await res.text();
      if (kind === 'csv' && res.status === 200) body = text.split('\r\n').length - 1 === (expectLines ?? 0) ? 'complete' : 'short';
      else if (contentType?.includes('json')) code = (JSON.parse(text) as { code?: string }).code;
    } catch (err) {
      if (res.status !== 200 || kind !== 'csv') throw err;
      body = 'cut';
    }
    return { kind, origin: new URL(url).origin, status: res.status, contentType, code, body, ms: Date.now() - t0 };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    return { kind, origin: new URL(url).origin, status: 0, error: `${e.name}: ${e.message}${e.cause ? ` (${e.cause.code ?? e.cause.message})` : ''}`, ms: Date.now() - t0 };
  }
}

/** Runs `concurrency` loops per service process until stopped; each loop cycles read, write, verify, CSV. */
export function startLoad(services: ServiceProcess[], w: Workload, concurrency = 3): { stop(): Promise<Outcome[]> } {
  const outcomes: Outcome[] = [];
  let running = true;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const loop = async (svc: ServiceProcess, offset: number) => {
    for (let i = offset; running; i++) {
      switch (i % 4) {
        case 0:
          outcomes.push(await one('read', `${svc.url}/v1/patients/${w.patientId}`, { headers: auth(w.tokens.clinician) }));
          break;
        case 1:
          outcomes.push(
            await one('write', `${svc.url}/v1/patients`, {
              method: 'POST',
              headers: { ...auth(w.tokens.clinician), 'content-type': 'application/json' },
              body: JSON.stringify(patientBody()),
            }),
          );
          break;
        case 2:
          outcomes.push(await one('verify', `${svc.url}/v1/audit-events/verify`, { headers: auth(w.tokens.auditor) }));
          break;
        default:
          outcomes.push(
            await one('csv', `${svc.url}/v1/reports/lot-traceability/${w.lotId}`, { headers: { ...auth(w.tokens.inspector), accept: 'text/csv' } }, w.csvRows + 1),
          );
      }
    }
  };
  const loops = services.flatMap((svc) => Array.from({ length: concurrency }, (_, k) => loop(svc, k)));
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** What a test prints and asserts on: counts by kind and status (and CSV body), and the slowest answer. */
export function summarize(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = `${o.kind} ${o.status}${o.body ? `/${o.body}` : ''}${o.error ? ` ${o.error}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const slowest = Math.max(0, ...outcomes.map((o) => o.ms));
  return `${[...counts].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}; slowest ${slowest} ms`;
}

/** Outcomes that break the promise: anything but a success or a 503 problem+json, a CSV that ended short. */
/**
 * A 503 that tells the client to come back: the database is unavailable, or (a report download) the instance
 * already streams as many reports as its share of the pool allows.
 */
export const isRetryLater = (o: Outcome) => o.code === 'database-unavailable' || (o.kind === 'csv' && o.code === 'report-downloads-busy');

export function brokenPromises(outcomes: Outcome[]): Outcome[] {
  return outcomes.filter((o) => {
    if (o.status === 503) return !(o.contentType?.startsWith('application/problem+json') && isRetryLater(o));
    if (o.kind === 'csv' && o.status === 200) return o.body === 'short';
    return !(o.status === 200 || o.status === 201);
  });
}

/** The marks a crashed or wedged process leaves in its output. */
export const CRASH_SIGNS = /Emitted 'error' event|Unhandled 'error' event|"level":60|"msg":"unhandled error"/;
