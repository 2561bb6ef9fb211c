import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Scope } from '../../auth/principal.js';
import { FHIR_JSON, FhirResource } from '../../http/problem.js';
import type { FhirResource as Resource } from './fhir.mappers.js';

/** What the facade accepts in Accept: FHIR's JSON media type and plain JSON (both answered as application/fhir+json). */
export const FHIR_MEDIA_TYPES = [FHIR_JSON, 'application/json', 'application/json+fhir'] as const;

/**
 * `_format` (R4 §3.1.0.1.10): the JSON forms (`json`, `application/json`, `application/fhir+json`, and the DSTU2
 * `application/json+fhir`, with their parameters) ask for JSON; `xml`, `ttl`, `html` and anything else ask for a form this server does
 * not produce (406).
 */
export const FHIR_FORMAT = {
  name: '_format',
  toMediaRange(value: string): string | undefined {
    const type = value.split(';')[0]!.trim().toLowerCase();
    if (type === 'json') return 'application/json';
    // A media type keeps its parameters, so fhirVersion=3.0 is refused as it is in Accept.
    if (type === 'application/json' || type === FHIR_JSON || type === 'application/json+fhir') return value;
    return undefined;
  },
};

/** The facade's base URL as the client reached it. */
export const fhirBase = (req: FastifyRequest) => `${req.protocol}://${req.host}/fhir/R4`;

/** Route config of the facade: the scopes it needs, errors as OperationOutcome. */
export const fhirConfig = (scope: Scope | Scope[]) => ({ scope, errorFormat: 'fhir' as const });

/** OpenAPI responses shared by the facade's routes. */
export const okResponse = { description: 'OK', content: { [FHIR_JSON]: { schema: FhirResource } } };
export const notModifiedResponse = { 304: z.null().meta({ description: 'Not Modified: If-None-Match names the current version (no body)' }) };

/**
 * Answers `body` as `application/fhir+json` whichever JSON form Accept (or `_format`) asked for (contract "FHIR
 * R4: search": JSON forms and `*\/*` → application/fhir+json; R4 http.html names it the formal MIME type). XML and
 * other forms were refused with 406 by http/negotiation.ts.
 */
export function sendFhir(reply: FastifyReply, body: Resource) {
  return reply.type(`${FHIR_JSON}; charset=utf-8`).send(body);
}

/** Weak comparison (RFC 9110 §8.8.3.2) of one If-None-Match entry with a version: `*`, `W/"2"` and `"2"` match 2. */
function matchesVersion(tag: string, versionId: string): boolean {
  return tag === '*' || tag.replace(/^W\//, '') === `"${versionId}"`;
}

/**
 * A read or vread (FHIR R4 §3.1.0.4.1 "Conditional read"): `ETag: W/"<versionId>"` and `Last-Modified` from the
 * resource's meta; an `If-None-Match` naming that version (or `*`) is answered 304 with no body.
 */
export function sendRead(req: FastifyRequest, reply: FastifyReply, body: Resource) {
  const meta = (body as { meta?: { versionId?: string; lastUpdated?: string } }).meta;
  if (meta?.versionId) reply.header('ETag', `W/"${meta.versionId}"`);
  if (meta?.lastUpdated) reply.header('Last-Modified', new Date(meta.lastUpdated).toUTCString());
  const ifNoneMatch = req.headers['if-none-match'];
  if (meta?.versionId && ifNoneMatch && ifNoneMatch.split(',').some((tag) => matchesVersion(tag.trim(), meta.versionId!))) return reply.code(304).send();
  return sendFhir(reply, body);
}

/** `Prefer: handling=strict` (RFC 7240, R4 §3.1.1.5.x): unsupported parameters are refused instead of ignored. */
export function handlingOf(req: FastifyRequest): 'strict' | 'lenient' {
  const prefer = req.headers.prefer;
  const text = Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '');
  // Preferences are comma-separated, each `token[=value]` then `;parameters`; the first `handling` counts (RFC 7240 §2).
  for (const preference of text.split(',')) {
    const [name, value] = preference.split(';')[0]!.split('=').map((x) => x.trim());
    if (name?.toLowerCase() !== 'handling') continue;
    return value?.replace(/^"(.*)"$/, '$1').toLowerCase() === 'strict' ? 'strict' : 'lenient';
  }
  return 'lenient';
}
