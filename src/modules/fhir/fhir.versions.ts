import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Scope } from '../../auth/principal.js';
import { actorOf } from '../../http/auth.js';
import { decodeCursor, encodeCursor } from '../../http/pagination.js';
import { operationOutcomeResponses } from '../../http/problem.js';
import { BadRequest } from '../../shared/errors.js';
import type { CapabilityRegistry } from './capability.js';
import { fhirBase, fhirConfig, handlingOf, notModifiedResponse, okResponse, sendFhir, sendRead } from './fhir.http.js';
import type { FhirResource } from './fhir.mappers.js';
import type { FhirVersions, VersionHistoryPage, VersionedType } from './fhir.versions.service.js';

const tags = ['fhir'];

/** record_versions.version is a PostgreSQL integer. */
const MAX_VERSION = 2_147_483_647;
const isVersion = (s: string) => /^[1-9]\d{0,9}$/.test(s) && Number(s) <= MAX_VERSION;

/**
 * The `vid` of a vread: a positive integer (1, 2, ...; no sign, no leading zero) up to 2147483647. Anything else
 * is a 400 OperationOutcome naming `params.vid`: it cannot name a version of any resource here. A well-formed vid
 * the resource never had is a 404.
 */
const versionMessage = 'a version id: a positive integer (1, 2, ...) up to 2147483647';
const VersionId = z
  .string()
  .regex(/^[1-9]\d{0,9}$/, { message: versionMessage, abort: true })
  .refine((s) => Number(s) <= MAX_VERSION, versionMessage)
  .transform(Number)
  .meta({ description: 'The version (meta.versionId): a positive integer' });

const IdParams = z.strictObject({ id: z.uuid() });
const VersionParams = z.strictObject({ id: z.uuid(), vid: VersionId });

/** What a history interaction understands; `_format` is read by content negotiation (fhir.http.ts). */
const HISTORY_PARAMS = new Set(['_count', '_cursor', '_format']);
const HistoryQuery = z.looseObject({
  _count: z.coerce.number().int().min(1).max(200).default(50).meta({ description: 'Versions per page, 1..200' }),
  _cursor: z.string().max(200).optional().meta({ description: 'From the Bundle\'s next link' }),
});

interface TypeSpec {
  type: VersionedType;
  scope: Scope;
  summary: string;
}

const TYPES: TypeSpec[] = [
  { type: 'Patient', scope: 'patients:read', summary: 'a Patient' },
  { type: 'Procedure', scope: 'clinical:read', summary: 'a Procedure' },
  { type: 'Observation', scope: 'clinical:read', summary: 'an Observation (an outcome score; immutable, its one version is 1)' },
  { type: 'AdverseEvent', scope: 'clinical:read', summary: 'an AdverseEvent' },
  { type: 'BiologicallyDerivedProduct', scope: 'lots:read', summary: 'a BiologicallyDerivedProduct (a product lot)' },
];

/**
 * A `history` Bundle (R4 §3.1.0.4, Bundle invariants bdl-3, bdl-4, bdl-7, bdl-8): newest version first, each
 * entry with the version-independent fullUrl, the resource as it was, `request` (POST `{type}` for version 1, the
 * create; PUT `{type}/{id}` for each later version, an update) and `response` (`201 Created` / `200 OK`, the
 * version's weak ETag and lastModified). `self` is this page (the supported parameters only), `next` the older
 * versions.
 */
function historyBundle(req: FastifyRequest, type: string, id: string, page: VersionHistoryPage): FhirResource {
  const url = `${fhirBase(req)}/${type}/${id}/_history`;
  const sent = new URL(req.url, 'http://localhost').searchParams;
  const kept = new URLSearchParams();
  for (const [name, value] of sent) if (HISTORY_PARAMS.has(name) && !kept.has(name)) kept.set(name, value);
  const link = [{ relation: 'self', url: kept.size ? `${url}?${kept.toString()}` : url }];
  if (page.nextKey !== null) {
    kept.set('_cursor', encodeCursor(page.nextKey)!);
    link.push({ relation: 'next', url: `${url}?${kept.toString()}` });
  }
  return {
    resourceType: 'Bundle',
    type: 'history',
    link,
    entry: page.versions.map(({ version, resource }) => {
      const meta = resource.meta as { versionId?: string; lastUpdated?: string } | undefined;
      const created = version === 1;
      return {
        fullUrl: `${fhirBase(req)}/${type}/${id}`,
        resource,
        request: created ? { method: 'POST', url: type } : { method: 'PUT', url: `${type}/${id}` },
        response: {
          status: created ? '201 Created' : '200 OK',
          etag: `W/"${meta?.versionId ?? version}"`,
          ...(meta?.lastUpdated ? { lastModified: meta.lastUpdated } : {}),
        },
      };
    }),
  };
}

/**
 * The facade's version routes, under the same `/fhir/R4` context as fhirRoutes (which registers them and owns
 * `capability`), each recorded in the CapabilityStatement:
 * - `GET /{type}/{id}/_history/{vid}` (vread, R4 §3.1.0.3) for Patient, Procedure, Observation, AdverseEvent and
 *   BiologicallyDerivedProduct: that version as the resource, `ETag: W/"<vid>"`, `Last-Modified`, 304 when
 *   If-None-Match names it. 404 OperationOutcome for an unknown resource or version, or another clinic's record;
 *   400 for a vid that is not a positive integer.
 * - `GET /{type}/{id}/_history` (history-instance, R4 §3.1.0.4): a `history` Bundle, newest first, paged by
 *   `_count` (1..200, default 50) with a `next` link. `_since`, `_at` and other parameters are not supported:
 *   ignored (and left out of `self`), or a 400 with `Prefer: handling=strict`. 404 as for vread.
 * Scopes as for the reads: patients:read (Patient), clinical:read (Procedure, Observation, AdverseEvent),
 * lots:read (BiologicallyDerivedProduct); 403 OperationOutcome without it. Reads of versions are audited.
 */
export function fhirVersionRoutes(app: FastifyInstance, { versions, capability }: { versions: FhirVersions; capability: CapabilityRegistry }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  for (const { type, scope, summary } of TYPES) {
    const interactions = capability.resource(type).interactions;

    interactions.add('vread');
    r.get(`/${type}/:id/_history/:vid`, {
      config: fhirConfig(scope),
      schema: {
        operationId: `fhirVread${type}`,
        tags,
        summary: `Read one version of ${summary} (vread)`,
        params: VersionParams,
        response: { 200: okResponse, ...notModifiedResponse, ...operationOutcomeResponses(400, 404) },
      },
    }, async (req, reply) => sendRead(req, reply, await versions.vread(actorOf(req), type, req.params.id, req.params.vid)));

    interactions.add('history-instance');
    r.get(`/${type}/:id/_history`, {
      config: fhirConfig(scope),
      schema: {
        operationId: `fhirHistory${type}`,
        tags,
        summary: `Every version of ${summary}, newest first (a history Bundle)`,
        params: IdParams,
        querystring: HistoryQuery,
        response: { 200: okResponse, ...operationOutcomeResponses(400, 404) },
      },
    }, async (req, reply) => {
      const unsupported = Object.keys(req.query).filter((k) => !HISTORY_PARAMS.has(k));
      if (unsupported.length && handlingOf(req) === 'strict') {
        throw new BadRequest(
          `Not supported on history: ${unsupported.join(', ')}.`,
          unsupported.map((k) => ({ path: `querystring.${k}`, message: 'not supported on history (Prefer: handling=strict)' })),
        );
      }
      const before = decodeCursor(req.query._cursor, (s) => (isVersion(s) ? Number(s) : undefined));
      const page = await versions.history(actorOf(req), type, req.params.id, { limit: req.query._count, before });
      return sendFhir(reply, historyBundle(req, type, req.params.id, page));
    });
  }
}
