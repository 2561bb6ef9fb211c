import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor, Principal, Scope } from '../auth/principal.js';
import type { TokenVerifier } from '../auth/verifier.js';
import { Forbidden, Unauthorized } from '../shared/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope (or every scope of a list) a route requires. A route with neither `scope` nor `public` refuses everyone. */
    scope?: Scope | readonly Scope[];
    public?: boolean;
    /**
     * How this route's errors are rendered: problem+json (default), a FHIR OperationOutcome, or OAuth 2.0 JSON
     * (RFC 6749 §5.2; the route's own error handler renders them and its schema lists every error response).
     */
    errorFormat?: 'problem' | 'fhir' | 'oauth';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * Authentication and scope, declared per route (`config.scope`), deny by default. The token is verified
 * before the body is read, so an anonymous caller learns nothing from validation errors.
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { verify: TokenVerifier }) => {
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (req) => {
      const config = req.routeOptions.config;
      if (config.public || req.routeOptions.url === undefined) return; // public, or the 404 handler
      const principal = await opts.verify(req.headers.authorization);
      req.principal = principal;
      if (!config.scope) throw new Forbidden('This operation is not open to tokens.');
      const missing = (typeof config.scope === 'string' ? [config.scope] : config.scope).filter((s) => !principal.scopes.has(s));
      if (missing.length) throw new Forbidden(`The token lacks the scope ${missing.join(' and ')}.`, 'insufficient-scope');
    });
  },
  { name: 'auth' },
);

/** The acting principal with the request id, for services and the audit log. */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.principal) throw new Unauthorized();
  return { ...req.principal, requestId: String(req.id) };
}
