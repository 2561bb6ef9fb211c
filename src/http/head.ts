import fp from 'fastify-plugin';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { AppError } from '../shared/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * This GET exports data: it writes an `export` audit entry (a report) or starts an export job (Bulk Data
     * kick-off). HEAD must change nothing (RFC 9110 §9.2.1) and Fastify answers it by running the GET handler, so
     * on such a route HEAD is refused: 405 with `Allow: GET`, after authentication, nothing built or recorded.
     */
    exportsData?: boolean;
  }
}

/** HEAD on a route marked `config.exportsData` answers 405 (see there); every other HEAD is the GET without its body. */
export const headPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRoute', (route: RouteOptions) => {
      if (route.method !== 'HEAD' || !route.config?.exportsData) return;
      route.handler = async (_req, reply) => {
        reply.header('Allow', 'GET');
        throw new AppError(405, 'method-not-allowed', 'Method Not Allowed', 'A HEAD request would export this resource; send GET.');
      };
    });
  },
  { name: 'head' },
);
