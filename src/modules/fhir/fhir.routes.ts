import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Actor, Scope } from '../../auth/principal.js';
import type { FhirResource } from './fhir.mappers.js';
import { actorOf } from '../../http/auth.js';
import { operationOutcomeResponses } from '../../http/problem.js';
import { CapabilityRegistry } from './capability.js';
import { decodeCursor, searchsetBundle } from './bundle.js';
import { fhirConfig, handlingOf, notModifiedResponse, okResponse, sendFhir, sendRead } from './fhir.http.js';
import { SEARCH_DEFS, checkIncludeScopes, type FhirSearch, type SearchType } from './fhir.search.js';
import type { FhirService } from './fhir.service.js';
import { EVERYTHING_TYPES } from './fhir.service.js';
import { operationOutcomeErrors } from './operation-outcome.js';
import { parseEverything, parseSearch } from './search-params.js';
import { fhirVersionRoutes } from './fhir.versions.js';
import type { FhirVersions } from './fhir.versions.service.js';

const tags = ['fhir'];
const IdParams = z.strictObject({ id: z.uuid() });

/** A query parameter as it may arrive: once, or repeated (repeats are ANDed, R4 §3.1.1.5). */
const Repeatable = z.union([z.string(), z.array(z.string())]);

/** Result parameters every search takes (R4 §3.1.1.5), documented once; they are read by parseSearch. */
const RESULT_PARAM_DOCS: Record<string, string> = {
  _count: 'Page size, 0..200 (default 50); 0 answers the total only',
  _summary: '`count`: the total only, no entries; `false`: whole resources (the default)',
  _total: '`accurate` (the default; `estimate` is answered accurately) or `none` (no total, one query fewer)',
  _sort: 'The order, where the resource offers one (see the CapabilityStatement): `date`, `-date`, `_lastUpdated`, `-_lastUpdated`; then by id',
  _include: 'Adds the patients of the matches (`Procedure:patient`, `Observation:patient`) as entries with search.mode include',
  _revinclude: 'On Patient, `Procedure:patient` adds the matched patients\' procedures as entries with search.mode include',
  _format: '`json`, `application/json` or `application/fhir+json`; other formats are 406',
  _cursor: 'Where the page starts: from the Bundle\'s next link, as given',
};

export function fhirRoutes(
  app: FastifyInstance,
  { fhir, search, versions, capability = new CapabilityRegistry() }: { fhir: FhirService; search: FhirSearch; versions: FhirVersions; capability?: CapabilityRegistry },
) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  operationOutcomeErrors(app);

  /** `GET /{type}/{id}`: a read with ETag and Last-Modified, 304 for a matching If-None-Match (fhir.http.ts sendRead). */
  const read = (type: string, path: string, scope: Scope, summary: string, operationId: string, load: (actor: Actor, id: string) => Promise<FhirResource>) => {
    capability.resource(type).interactions.add('read');
    r.get(path, {
      config: fhirConfig(scope),
      schema: { operationId, tags, summary, params: IdParams, response: { 200: okResponse, ...notModifiedResponse, ...operationOutcomeResponses(404) } },
    }, async (req, reply) => sendRead(req, reply, await load(actorOf(req), req.params.id)));
  };

  /**
   * `GET /{type}?…` (R4 §3.1.1): the parameters of SEARCH_DEFS[type], ANDed across repeats and ORed within a
   * comma list; a searchset Bundle of one page, its self link showing exactly what was applied.
   */
  const searchRoute = (type: SearchType, scope: Scope, summary: string) => {
    const def = SEARCH_DEFS[type];
    const e = capability.resource(type);
    e.interactions.add('search-type');
    e.searchParams.push(...def.params.map((p) => ({ name: p.name, type: p.type === 'id' ? ('token' as const) : p.type, documentation: p.documentation })));
    e.searchInclude.push(...def.includes);
    e.searchRevInclude.push(...def.revIncludes);
    if (def.sorts.length) e.documentation = `_sort: ${def.sorts.flatMap((s) => [s, `-${s}`]).join(', ')}`;
    const documented: Record<string, z.ZodType> = Object.fromEntries([
      ...def.params.map((p): [string, z.ZodType] => [p.name, Repeatable.optional().meta({ description: `${p.type}: ${p.documentation}` })]),
      ...Object.entries(RESULT_PARAM_DOCS).map(([name, description]): [string, z.ZodType] => [name, Repeatable.optional().meta({ description })]),
    ]);
    r.get(`/${type}`, {
      config: fhirConfig(scope),
      schema: { operationId: `fhirSearch${type}`, tags, summary, querystring: z.looseObject(documented), response: { 200: okResponse } },
    }, async (req, reply) => {
      const handling = handlingOf(req);
      const parsed = parseSearch(def, req.query as Record<string, string | string[]>, handling === 'strict');
      const actor = actorOf(req);
      checkIncludeScopes(actor, parsed);
      const page = await search.search(type, actor, parsed, decodeCursor(parsed.cursor, type, parsed));
      reply.header('Preference-Applied', `handling=${handling}`);
      return sendFhir(reply, searchsetBundle(req, type, parsed, page));
    });
  };

  // Patient
  read('Patient', '/Patient/:id', 'patients:read', 'Read a Patient', 'fhirReadPatient', (actor, id) => fhir.patient(actor, id));
  searchRoute('Patient', 'patients:read', 'Search Patients (searchset Bundle)');

  capability.resource('Patient').operations.push({ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' });
  r.get('/Patient/:id/$everything', {
    config: fhirConfig(['patients:read', 'clinical:read']),
    schema: {
      operationId: 'fhirPatientEverything',
      tags,
      summary: 'The patient, then its procedures, observations and adverse events, a page at a time, with the product lots used (search.mode include)',
      params: IdParams,
      querystring: z.looseObject({
        _count: z.string().optional().meta({ description: 'Resources per page (matches; the lots they used come as includes), 1..200, default 50' }),
        _since: z.string().optional().meta({ description: 'Only resources last updated at or after this instant (or date: the UTC day\'s start)' }),
        _type: Repeatable.optional().meta({ description: `Comma-separated (or repeated) types: of ${EVERYTHING_TYPES.join(', ')}, and BiologicallyDerivedProduct (the lots used, as includes); another type is a 400` }),
        _cursor: z.string().optional().meta({ description: 'From the Bundle\'s next link' }),
        _format: z.string().optional().meta({ description: RESULT_PARAM_DOCS._format! }),
      }),
      response: { 200: okResponse, ...operationOutcomeResponses(400, 404) },
    },
  }, async (req, reply) => {
    const parsed = parseEverything(req.query as Record<string, string | string[]>, handlingOf(req) === 'strict');
    const after = decodeCursor(parsed.cursor, `Patient/${req.params.id}/$everything`, parsed);
    const page = await fhir.everything(actorOf(req), req.params.id, { count: parsed.count, since: parsed.since, types: parsed.types, after });
    return sendFhir(reply, searchsetBundle(req, `Patient/${req.params.id}/$everything`, parsed, page));
  });

  // Procedure, Observation, AdverseEvent
  read('Procedure', '/Procedure/:id', 'clinical:read', 'Read a Procedure (lot, route, guidance and dose as extensions)', 'fhirReadProcedure', (actor, id) => fhir.procedure(actor, id));
  searchRoute('Procedure', 'clinical:read', 'Search Procedures (searchset Bundle)');
  read('Observation', '/Observation/:id', 'clinical:read', 'Read an Observation (an outcome score; immutable, its one version is 1)', 'fhirReadObservation', (actor, id) => versions.read(actor, 'Observation', id));
  read('AdverseEvent', '/AdverseEvent/:id', 'clinical:read', 'Read an AdverseEvent', 'fhirReadAdverseEvent', (actor, id) => versions.read(actor, 'AdverseEvent', id));
  searchRoute('Observation', 'clinical:read', 'Search outcome scores as survey Observations (searchset Bundle)');
  searchRoute('AdverseEvent', 'clinical:read', 'Search AdverseEvents (searchset Bundle)');

  // BiologicallyDerivedProduct
  read('BiologicallyDerivedProduct', '/BiologicallyDerivedProduct/:id', 'lots:read', 'Read a product lot as a BiologicallyDerivedProduct', 'fhirReadProduct', (_actor, id) => fhir.product(id));
  searchRoute('BiologicallyDerivedProduct', 'lots:read', 'Search product lots by id or identifier (lot number, donor DIN)');

  // vread and history of every type read above (fhir.versions.ts)
  fhirVersionRoutes(app, { versions, capability });

  // CapabilityStatement: built from the registrations above, so it lists exactly what is served.
  r.get('/metadata', {
    config: { public: true, errorFormat: 'fhir' },
    schema: { operationId: 'fhirCapabilities', tags, summary: 'The CapabilityStatement: exactly what this FHIR endpoint supports', response: { 200: okResponse } },
  }, async (req, reply) => sendFhir(reply, capability.statement(req)));

}
