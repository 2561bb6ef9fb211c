import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, IfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { addUrlEncodedParser } from '../../http/input.js';
import { pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { publicBase } from '../../http/public-url.js';
import { SCOPES } from '../../auth/principal.js';
import { SELF_ISSUER } from '../../auth/signing-key.js';
import { AppError } from '../../shared/errors.js';
import { isDatabaseUnavailable } from '../../db/errors.js';
import {
  Client,
  ClientCreate,
  ClientListQuery,
  ClientPage,
  ClientParams,
  ClientPatch,
  JwkSet,
  OAuthErrorBody,
  SmartConfiguration,
  TokenRequest,
  TokenResponse,
} from './clients.schemas.js';
import { ASSERTION_ALGORITHMS, OAuthError, type ClientsService } from './clients.service.js';
import { SMART_SCOPES } from './smart-scopes.js';

const tags = ['clients'];
export const TOKEN_PATH = '/auth/token';

/** Client registration for SMART Backend Services (contract "SMART Backend Services"), under /v1. */
export function clientsRoutes(app: FastifyInstance, { clients }: { clients: ClientsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/clients', {
    config: { scope: 'clients:write' },
    schema: {
      operationId: 'registerClient',
      tags,
      summary: 'Register a backend client: its public keys, the scopes it may ask for, the clinic it acts for',
      description:
        'The client then gets tokens from POST /auth/token with a signed assertion (RS384 or ES384; iss = sub = `clientId`). ' +
        'Keys: an https `jwksUri` or an inline `jwks` of public keys (RSA of 2048 bits or more, or EC P-384). A clinic token registers ' +
        'for its own clinic only (403 `clinic-mismatch`); a token may give the client only scopes it holds itself (403 `insufficient-scope`).',
      headers: IdempotencyHeaders,
      body: ClientCreate,
      response: { 201: Client, ...problemResponses(409) },
    },
  }, async (req, reply) => {
    const dto = await clients.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/clients/${dto.clientId}`).send(dto);
  });

  r.get('/clients', {
    config: { scope: 'clients:write' },
    schema: {
      operationId: 'listClients',
      tags,
      summary: 'The caller\'s clinic\'s clients (every one, for a token without clinic_id)',
      querystring: ClientListQuery,
      response: { 200: ClientPage },
    },
  }, async (req) => pageBody(await clients.list(actorOf(req), pageRequest(req.query))));

  r.get('/clients/:id', {
    config: { scope: 'clients:write' },
    schema: {
      operationId: 'getClient',
      tags,
      summary: 'One registered client',
      params: ClientParams,
      response: { 200: Client, ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const dto = await clients.get(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.patch('/clients/:id', {
    config: { scope: 'clients:write' },
    schema: {
      operationId: 'updateClient',
      tags,
      summary: 'Change the keys, scopes or name, or disable the client (If-Match)',
      description: 'A disabled client gets no token; the tokens it holds stop working within seconds and expire within 5 minutes anyway.',
      headers: IfMatchHeaders,
      params: ClientParams,
      body: ClientPatch,
      response: { 200: Client, ...problemResponses(404, 412, 428) },
    },
  }, async (req, reply) => {
    const dto = await clients.update(actorOf(req), req.params.id, ifMatchVersion(req), req.body);
    setEtag(reply, dto.version);
    return dto;
  });
}

/** The URLs by which the token endpoint is known: the configured public one, and the one this request used. */
function tokenUrls(req: FastifyRequest): string[] {
  const derived = `${req.protocol}://${req.host}${TOKEN_PATH}`;
  const configured = `${publicBase(req)}${TOKEN_PATH}`;
  return configured === derived ? [derived] : [configured, derived];
}

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/**
 * POST /auth/token and the discovery documents, at the root. The token endpoint speaks OAuth, not problem+json:
 * its own error handler (this encapsulated context only) renders every refusal as RFC 6749 §5.2
 * `{ error, error_description }`, and it alone takes form bodies. Neither the assertion nor the token is logged.
 */
export async function smartRoutes(app: FastifyInstance, { clients, jwks }: { clients: ClientsService; jwks: () => Record<string, unknown>[] }) {
  await app.register(async (t) => {
    addUrlEncodedParser(t);
    t.setErrorHandler((err: FastifyError, req, reply) => {
      let body: { error: string; error_description: string };
      let status: number;
      if (err instanceof OAuthError) {
        ({ status } = err);
        body = { error: err.error, error_description: err.message };
      } else if (hasZodFastifySchemaValidationErrors(err)) {
        status = 400;
        const names = [...new Set(err.validation.map((v) => v.instancePath.split('/').filter(Boolean)[0] ?? 'body'))];
        body = { error: 'invalid_request', error_description: `Invalid parameters (each once, as text): ${names.join(', ')}.` };
      } else if ((err instanceof AppError ? err.status : (err.statusCode ?? 500)) < 500) {
        // The form parser's refusals (charset 415, UTF-8, escapes, control characters 400, size 413), a body of another type (415).
        const given = err instanceof AppError ? err.status : err.statusCode!;
        status = given === 413 || given === 415 ? given : 400;
        body = { error: 'invalid_request', error_description: 'Send the parameters as application/x-www-form-urlencoded UTF-8 text (RFC 6749 §4.4).' };
      } else if (isDatabaseUnavailable(err)) {
        req.log.warn({ route: req.routeOptions.url }, 'database unavailable');
        status = 503;
        body = { error: 'temporarily_unavailable', error_description: 'The database is unavailable; try again shortly.' };
      } else {
        req.log.error({ err: { name: err.name, code: err.code }, route: req.routeOptions.url }, 'token endpoint failed');
        status = 500;
        body = { error: 'server_error', error_description: `Quote request id ${String(req.id)} when reporting it.` };
      }
      return reply.code(status).headers(NO_STORE).type('application/json').send(body);
    });

    t.withTypeProvider<ZodTypeProvider>().post(TOKEN_PATH, {
      config: { public: true, errorFormat: 'oauth' },
      schema: {
        operationId: 'requestToken',
        tags,
        summary: 'An access token for a registered backend client (SMART Backend Services, client_credentials with a signed assertion)',
        description:
          'RFC 6749 §4.4 with RFC 7523 client authentication: `grant_type=client_credentials`, ' +
          '`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, `client_assertion` (RS384 or ES384; ' +
          'iss = sub = client id; aud = this URL; exp at most 5 minutes ahead; a jti never used before), `scope`. Answers the scopes granted; ' +
          'the token lives at most 300 s. Errors are RFC 6749 §5.2 JSON: `invalid_request`, `invalid_client` (401: any failure of the ' +
          'assertion, a replayed jti, an unknown or disabled client), `unsupported_grant_type`, `invalid_scope` (a scope the registration does not allow).',
        consumes: ['application/x-www-form-urlencoded'],
        body: TokenRequest,
        response: {
          200: TokenResponse,
          400: OAuthErrorBody.meta({ description: 'invalid_request, unsupported_grant_type, invalid_scope' }),
          401: OAuthErrorBody.meta({ description: 'invalid_client' }),
          413: OAuthErrorBody.meta({ description: 'invalid_request: the form is larger than 64 KiB' }),
          415: OAuthErrorBody.meta({ description: 'invalid_request: not an application/x-www-form-urlencoded UTF-8 body' }),
          503: OAuthErrorBody.meta({ description: 'temporarily_unavailable (no signing key configured)' }),
        },
      },
    }, async (req, reply) => {
      const type = req.headers['content-type'];
      if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type ?? '')) {
        throw new OAuthError('invalid_request', 'Send the parameters as application/x-www-form-urlencoded (RFC 6749 §4.4).', type ? 415 : 400);
      }
      // RFC 6749 §2.3: one client authentication method per request; the assertion is this endpoint's.
      if (req.headers.authorization !== undefined || req.body?.client_secret !== undefined) {
        throw new OAuthError('invalid_request', 'Authenticate with the client_assertion only: no Authorization header, no client_secret.');
      }
      const answer = await clients.token(req.body ?? {}, tokenUrls(req), String(req.id));
      return reply.headers(NO_STORE).send(answer);
    });
  });

  const smartConfiguration = (req: FastifyRequest) => {
    const base = publicBase(req);
    return {
      issuer: SELF_ISSUER,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}${TOKEN_PATH}`,
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
      grant_types_supported: ['client_credentials'],
      scopes_supported: [...SMART_SCOPES, ...SCOPES],
      capabilities: ['client-confidential-asymmetric', 'permission-v2'],
    };
  };
  const r = app.withTypeProvider<ZodTypeProvider>();
  for (const [url, operationId] of [['/.well-known/smart-configuration', 'smartConfiguration'], ['/fhir/R4/.well-known/smart-configuration', 'fhirSmartConfiguration']] as const) {
    r.get(url, {
      config: { public: true },
      schema: {
        // The copy under the FHIR base (where SMART clients look) is the same document; listed once.
        hide: url.startsWith('/fhir/'),
        operationId,
        tags,
        summary: 'SMART App Launch 2.x discovery: the token endpoint, its authentication methods, algorithms and scopes',
        response: { 200: SmartConfiguration },
      },
    }, async (req) => smartConfiguration(req));
  }
  r.get('/.well-known/jwks.json', {
    config: { public: true },
    schema: {
      operationId: 'serviceJwks',
      tags,
      summary: 'The public keys that sign this service\'s own access tokens',
      response: { 200: JwkSet },
    },
  }, async () => ({ keys: jwks() }));
}
