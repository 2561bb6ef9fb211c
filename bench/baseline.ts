import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

/**
 * The bare baseline: Fastify + pg with no auth, validation, audit or rules, doing the nearest equivalent SQL
 * of each benchmarked operation. The gap to it is what the service's guarantees cost.
 */
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_SIZE ?? 16) });
const app = Fastify({ logger: false });

app.get<{ Params: { id: string } }>('/v1/patients/:id', async (req, reply) => {
  const { rows } = await pool.query('select * from patients where id = $1', [req.params.id]);
  return rows[0] ?? reply.code(404).send({});
});

app.get<{ Querystring: { identifier: string } }>('/v1/patients', async (req) => {
  const bar = req.query.identifier.indexOf('|');
  const probe = JSON.stringify([{ system: req.query.identifier.slice(0, bar), value: req.query.identifier.slice(bar + 1) }]);
  const { rows } = await pool.query('select * from patients where identifiers @> $1::jsonb order by id limit 51', [probe]);
  return { items: rows, nextCursor: null };
});

type ProcedureBody = { patientId: string; lotId: string; performedAt: string; performer: string; indication: unknown; route: string; dose: { particles: number; volumeMl: number }; vialsUsed: number; clinicId: string };
app.post<{ Body: ProcedureBody }>('/v1/procedures', async (req, reply) => {
  const b = req.body;
  const { rows } = await pool.query(
    `insert into procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, created_by)
     values ($1, $2, $3, $4, $5, $6, $7, $8, 'none', $9, $10, $11, 'baseline') returning *`,
    [randomUUID(), b.clinicId, b.patientId, b.lotId, b.performedAt, b.performer, JSON.stringify(b.indication), b.route, b.dose.particles, b.dose.volumeMl, b.vialsUsed],
  );
  return reply.code(201).send(rows[0]);
});

type OutcomeBody = { procedureId: string; patientId: string; clinicId: string; instrument: string; score: number; assessedAt: string; timepoint: string };
app.post<{ Body: OutcomeBody }>('/v1/outcomes', async (req, reply) => {
  const b = req.body;
  const { rows } = await pool.query(
    `insert into outcomes (id, clinic_id, procedure_id, patient_id, instrument, score, assessed_at, timepoint, recorded_by)
     values ($1, $2, $3, $4, $5, $6, $7, $8, 'baseline') returning *`,
    [randomUUID(), b.clinicId, b.procedureId, b.patientId, b.instrument, b.score, b.assessedAt, b.timepoint],
  );
  return reply.code(201).send(rows[0]);
});

app.get('/health', async () => ({ ok: true }));

await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.on('SIGTERM', () => {
  void app.close().then(() => pool.end()).then(() => process.exit(0));
});
