import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyInstance {
    /** PUBLIC_BASE_URL without a trailing slash, or null: then URLs are made from the request (protocol and Host). */
    publicBaseUrl: string | null;
  }
}

/** The origin (and path prefix) by which clients reach this service: the configured one, else the request's own. */
export const publicBase = (req: FastifyRequest): string => req.server.publicBaseUrl ?? `${req.protocol}://${req.host}`;
