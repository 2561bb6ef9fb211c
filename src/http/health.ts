import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { z } from 'zod';
import { ServiceUnavailable } from '../shared/errors.js';
import { problemResponses } from './problem.js';

const READY_TIMEOUT_MS = 1500;

export function healthRoutes(app: FastifyInstance, { pool }: { pool: pg.Pool }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const Status = z.object({ status: z.literal('ok') });

  r.get('/health/live', {
    config: { public: true },
    schema: { operationId: 'live', tags: ['health'], summary: 'The process is up', response: { 200: Status } },
  }, async () => ({ status: 'ok' as const }));

  r.get('/health/ready', {
    config: { public: true },
    schema: {
      operationId: 'ready',
      tags: ['health'],
      summary: 'The service can reach its database',
      response: { 200: Status, ...problemResponses(503) },
    },
  }, async (_req, reply) => {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      pool.query('SELECT 1').then(() => true, () => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!ok) throw new ServiceUnavailable('The database does not answer.');
    reply.header('Cache-Control', 'no-store');
    return { status: 'ok' as const };
  });
}
