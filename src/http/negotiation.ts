import fp from 'fastify-plugin';
import Negotiator from 'negotiator';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { AppError } from '../shared/errors.js';
import { problemResponses } from './problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The media types this route answers with, its default first; `Accept` chooses one (default: JSON only). */
    produces?: readonly string[];
  }
  interface FastifyRequest {
    /** The media type `Accept` chose from the route's `produces` (RFC 9110 §12.5.1). */
    negotiatedType: string;
  }
}

export const JSON_ONLY: readonly string[] = ['application/json'];

/**
 * What each offer satisfies beyond its bare type, so that `application/json; charset=utf-8` or
 * `text/csv; header=present` (RFC 4180 §3) is not refused: our text is UTF-8 and our CSV has a header row.
 */
function matcherOf(type: string): string {
  if (type === 'text/csv') return `${type}; charset=utf-8; header=present`;
  // FHIR R4 is fhirVersion 4.0 (FHIR §3.1.0.2.2): a client asking for another version is refused.
  if (type === 'application/fhir+json') return `${type}; fhirVersion=4.0; charset=utf-8`;
  return type === 'application/json' || type.startsWith('text/') ? `${type}; charset=utf-8` : type;
}

const matchers = new WeakMap<readonly string[], string[]>();

/**
 * The offer `accept` prefers, or undefined when it accepts none: q-values (`q=0` is "not acceptable"),
 * wildcards, and the most specific matching range deciding an offer's q. No Accept (or an empty one) takes the
 * default; the commonest values skip the parse.
 */
export function negotiate(accept: string | undefined, offers: readonly string[]): string | undefined {
  if (accept === undefined || accept === '*/*' || accept === offers[0]) return offers[0];
  if (accept.trim() === '') return offers[0];
  let m = matchers.get(offers);
  if (!m) {
    m = offers.map(matcherOf);
    matchers.set(offers, m);
  }
  const chosen = new Negotiator({ headers: { accept } }).mediaType(m);
  return chosen === undefined ? undefined : offers[m.indexOf(chosen)];
}

/** Adds Accept to Vary, keeping what is there. */
export function varyOnAccept(reply: FastifyReply): void {
  const current = reply.getHeader('vary');
  if (current === undefined) {
    reply.header('Vary', 'Accept');
    return;
  }
  const list = String(current);
  if (list.trim() === '*' || list.split(',').some((v) => v.trim().toLowerCase() === 'accept')) return;
  reply.header('Vary', `${list}, Accept`);
}

export interface NegotiationOptions {
  /** What a route offers when its `config.produces` says nothing (JSON only by default). */
  produces?: readonly string[];
  /** The OpenAPI entry of the 406 answer (problem+json by default; OperationOutcome for FHIR). */
  notAcceptableResponse?: Record<number, unknown>;
  /**
   * A query parameter that, when present, stands in for Accept (FHIR's `_format`, R4 §3.1.0.1.10): the
   * function maps its value to the media range it asks for, or undefined for a value this context cannot
   * answer (→ 406).
   */
  formatParameter?: { name: string; toMediaRange(value: string): string | undefined };
}

/**
 * Content negotiation for the routes of the context it is registered in (the /v1 API with JSON, the FHIR facade
 * with application/fhir+json and application/json): each route offers `config.produces` (else the context's default). A request whose Accept allows none of them is refused with 406
 * before any work, whatever the route, and every answer says `Vary: Accept`. Errors stay problem+json
 * whatever Accept says (RFC 9110 §15.5.7 allows it, and a client must always learn why it was refused).
 */
/** The Accept the request means: the format parameter's media range when given (last one wins), else the header. */
function acceptOf(req: FastifyRequest, format: NegotiationOptions['formatParameter']): string | undefined {
  if (!format) return req.headers.accept;
  const raw = (req.query as Record<string, string | string[] | undefined> | undefined)?.[format.name];
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  if (value === undefined || value === '') return req.headers.accept;
  // A value that names nothing this context answers must not fall back to a form it did not ask for.
  return format.toMediaRange(value) ?? 'application/x-unsupported-format';
}

const formatGiven = (req: FastifyRequest, format: NegotiationOptions['formatParameter']) =>
  format !== undefined && acceptOf(req, format) !== req.headers.accept;

export const negotiationPlugin = fp(
  async (app: FastifyInstance, opts: NegotiationOptions) => {
    const defaults = opts.produces ?? JSON_ONLY;
    const notAcceptable = opts.notAcceptableResponse ?? problemResponses(406);
    if (!app.hasRequestDecorator('negotiatedType')) app.decorateRequest('negotiatedType', '');
    // Every operation under negotiation can answer 406: say so in its OpenAPI responses.
    app.addHook('onRoute', (route: RouteOptions) => {
      const schema = route.schema as (RouteOptions['schema'] & { response?: Record<string, unknown>; hide?: boolean }) | undefined;
      if (!schema || schema.hide) return;
      schema.response = { ...notAcceptable, ...schema.response };
    });
    // Every answer of the context says so, those refused before this hook ran (401, 403) included.
    app.addHook('onSend', (_req, reply, payload, done) => {
      varyOnAccept(reply);
      done(null, payload);
    });
    app.addHook('onRequest', (req, reply, done) => {
      if (req.routeOptions.url === undefined) return done(); // the 404 handler
      const offers = req.routeOptions.config.produces ?? defaults;
      const chosen = negotiate(acceptOf(req, opts.formatParameter), offers);
      if (chosen === undefined) {
        return done(
          new AppError(406, 'not-acceptable', 'Not Acceptable', `This resource is available as ${offers.join(' or ')}; ${formatGiven(req, opts.formatParameter) ? `the ${opts.formatParameter!.name} parameter names` : 'the Accept header allows'} none of them.`),
        );
      }
      req.negotiatedType = chosen;
      done();
    });
  },
  { name: 'negotiation' },
);
