import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.js';
import { decodeCursor } from '../../http/pagination.js';
import { operationOutcomeResponses } from '../../http/problem.js';
import { BadRequest } from '../../shared/errors.js';
import { DateOnly, NonEmpty } from '../../shared/schemas.js';
import type { FhirResource as Resource } from './fhir.mappers.js';
import type { FhirService, SearchPage } from './fhir.service.js';
import { CapabilityRegistry, type SearchParamSpec } from './capability.js';
import { fhirBase, fhirConfig, notModifiedResponse, okResponse, sendFhir, sendRead } from './fhir.http.js';
import { operationOutcomeErrors } from './operation-outcome.js';
import { parseToken, splitUnescaped } from './search-values.js';

const tags = ['fhir'];

const Reference = (type: string) =>
  z
    .string()
    .transform((s, ctx) => {
      const id = s.startsWith(`${type}/`) ? s.slice(type.length + 1) : s;
      if (!z.uuid().safeParse(id).success) {
        ctx.addIssue({ code: 'custom', message: `a ${type} id or ${type}/{id}` });
        return z.NEVER;
      }
      return id;
    })
    .meta({ description: `${type}/{id} or the bare id` });

/**
 * A token search value: `system|code`, `system|`, `|code` or `code`, with FHIR's escapes (`\|`, `\,`, `\$`,
 * `\\`). A comma (OR of several values) is refused for now with a 400 that says so, never searched as text.
 */
const TokenParam = z
  .string()
  .max(460)
  .transform((raw, ctx) => {
    if (splitUnescaped(raw, ',').length > 1) {
      ctx.addIssue({ code: 'custom', message: 'several values (a comma, OR) are not supported on this parameter yet; escape a comma in a value as \\,' });
      return z.NEVER;
    }
    const token = parseToken(raw);
    if (!token) ctx.addIssue({ code: 'custom', message: 'a token: system|code, system|, |code or code, with \\| \\, \\$ \\\\ escaped' });
    return token ?? z.NEVER;
  })
  .meta({ description: 'A FHIR token: `system|code`, `system|`, `|code` or `code`; escape `|` `,` `$` `\\` with a backslash' });

const paging = {
  _count: z.coerce.number().int().min(0).max(200).default(50).meta({ description: 'Page size, 0..200; 0 answers the total only (FHIR R4 §3.1.1.5.6)' }),
  _summary: z.enum(['count', 'false']).optional().meta({ description: '`count`: the total only, no entries; `false`: whole resources (the default)' }),
  _cursor: z.string().max(200).optional().meta({ description: 'From the Bundle\'s next link' }),
};
const IdParams = z.strictObject({ id: z.uuid() });

export function fhirRoutes(app: FastifyInstance, { fhir }: { fhir: FhirService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const capability = new CapabilityRegistry();
  const entry = (type: string) => capability.resource(type);
  const ok = okResponse;
  const notModified = notModifiedResponse;
  const config = fhirConfig;
  const base = fhirBase;
  const send = sendFhir;
  operationOutcomeErrors(app);

  /** A search asks for its total only with `_count=0` or `_summary=count`: the Bundle then has no entry. */
  const countOnly = (q: { _count: number; _summary?: string }) => q._count === 0 || q._summary === 'count';

  function bundle(req: FastifyRequest, type: string, page: SearchPage): Resource {
    const query = new URLSearchParams(req.query as Record<string, string>);
    query.delete('_cursor');
    const link = [{ relation: 'self', url: `${base(req)}/${type}?${query.toString()}` }];
    if (countOnly(req.query as { _count: number; _summary?: string })) {
      return { resourceType: 'Bundle', type: 'searchset', total: page.total, link };
    }
    if (page.nextCursor) {
      query.set('_cursor', page.nextCursor);
      link.push({ relation: 'next', url: `${base(req)}/${type}?${query.toString()}` });
    }
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: page.total,
      link,
      entry: page.resources.map((resource) => ({ fullUrl: `${base(req)}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' } })),
    };
  }

  // A count-only search still runs (one row) through the audited search, so the read is recorded as any other.
  const cursor = (q: { _count: number; _cursor?: string; _summary?: string }) => ({
    limit: countOnly(q) ? 1 : q._count,
    after: decodeCursor(q._cursor, (s) => (z.uuid().safeParse(s).success ? s : undefined)),
  });

  // Patient
  entry('Patient').interactions.add('read');
  r.get('/Patient/:id', {
    config: config('patients:read'),
    schema: { operationId: 'fhirReadPatient', tags, summary: 'Read a Patient', params: IdParams, response: { 200: ok, ...notModified, ...operationOutcomeResponses(404) } },
  }, async (req, reply) => sendRead(req, reply, await fhir.patient(actorOf(req), req.params.id)));

  const patientParams: SearchParamSpec[] = [
    { name: 'identifier', type: 'token', documentation: 'system|code, system| (any code), |code (no system: matches none here, every identifier has one) or code (any system); \\| \\, \\$ \\\\ escape; the MRN too, under the clinic\'s MRN system. No OR (comma) yet.' },
    { name: 'family', type: 'string', documentation: 'Case-insensitive prefix of the family name' },
    { name: 'birthdate', type: 'date', documentation: 'A date, YYYY-MM-DD' },
  ];
  entry('Patient').interactions.add('search-type');
  entry('Patient').searchParams.push(...patientParams);
  r.get('/Patient', {
    config: config('patients:read'),
    schema: {
      operationId: 'fhirSearchPatient',
      tags,
      summary: 'Search Patients by identifier, family name or birth date (searchset Bundle)',
      querystring: z.looseObject({
        identifier: TokenParam.optional(),
        family: NonEmpty(100).optional(),
        birthdate: z
          .string()
          .transform((s) => s.replace(/^eq(?=\d)/, ''))
          .pipe(DateOnly)
          .optional()
          .meta({ description: 'A date, YYYY-MM-DD (or eqYYYY-MM-DD), between 1900-01-01 and 9999-12-31' }),
        ...paging,
      }),
      response: { 200: ok },
    },
  }, async (req, reply) => {
    const { identifier, family, birthdate } = req.query;
    if (!identifier && !family && !birthdate) throw new BadRequest('Search Patients by identifier, family or birthdate.');
    return send(reply, bundle(req, 'Patient', await fhir.searchPatients(actorOf(req), { identifier, family, birthdate }, cursor(req.query))));
  });

  entry('Patient').operations.push({ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' });
  r.get('/Patient/:id/$everything', {
    config: config(['patients:read', 'clinical:read']),
    schema: {
      operationId: 'fhirPatientEverything',
      tags,
      summary: 'The patient with every procedure, observation, adverse event and the product lots used',
      params: IdParams,
      response: { 200: ok, ...operationOutcomeResponses(404) },
    },
  }, async (req, reply) => {
    const { match, include } = await fhir.everything(actorOf(req), req.params.id);
    const entries = [
      ...match.map((resource) => ({ fullUrl: `${base(req)}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' } })),
      ...include.map((resource) => ({ fullUrl: `${base(req)}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'include' } })),
    ];
    return send(reply, { resourceType: 'Bundle', type: 'searchset', total: match.length, link: [{ relation: 'self', url: `${base(req)}/Patient/${req.params.id}/$everything` }], entry: entries });
  });

  // Procedure
  entry('Procedure').interactions.add('read');
  r.get('/Procedure/:id', {
    config: config('clinical:read'),
    schema: { operationId: 'fhirReadProcedure', tags, summary: 'Read a Procedure (lot, route, guidance and dose as extensions)', params: IdParams, response: { 200: ok, ...notModified, ...operationOutcomeResponses(404) } },
  }, async (req, reply) => sendRead(req, reply, await fhir.procedure(actorOf(req), req.params.id)));

  entry('Procedure').interactions.add('search-type');
  entry('Procedure').searchParams.push({ name: 'patient', type: 'reference', documentation: 'Patient/{id} or the id' });
  r.get('/Procedure', {
    config: config('clinical:read'),
    schema: { operationId: 'fhirSearchProcedure', tags, summary: 'A patient\'s Procedures', querystring: z.looseObject({ patient: Reference('Patient'), ...paging }), response: { 200: ok } },
  }, async (req, reply) => send(reply, bundle(req, 'Procedure', await fhir.searchProcedures(actorOf(req), req.query.patient, cursor(req.query)))));

  // Observation
  entry('Observation').interactions.add('search-type');
  entry('Observation').searchParams.push({ name: 'patient', type: 'reference', documentation: 'Patient/{id} or the id' });
  r.get('/Observation', {
    config: config('clinical:read'),
    schema: { operationId: 'fhirSearchObservation', tags, summary: 'A patient\'s outcome scores as survey Observations', querystring: z.looseObject({ patient: Reference('Patient'), ...paging }), response: { 200: ok } },
  }, async (req, reply) => send(reply, bundle(req, 'Observation', await fhir.searchObservations(actorOf(req), req.query.patient, cursor(req.query)))));

  // AdverseEvent
  entry('AdverseEvent').interactions.add('search-type');
  entry('AdverseEvent').searchParams.push({ name: 'subject', type: 'reference', documentation: 'Patient/{id} or the id' });
  r.get('/AdverseEvent', {
    config: config('clinical:read'),
    schema: { operationId: 'fhirSearchAdverseEvent', tags, summary: 'A patient\'s AdverseEvents', querystring: z.looseObject({ subject: Reference('Patient'), ...paging }), response: { 200: ok } },
  }, async (req, reply) => send(reply, bundle(req, 'AdverseEvent', await fhir.searchAdverseEvents(actorOf(req), req.query.subject, cursor(req.query)))));

  // BiologicallyDerivedProduct
  entry('BiologicallyDerivedProduct').interactions.add('read');
  r.get('/BiologicallyDerivedProduct/:id', {
    config: config('lots:read'),
    schema: { operationId: 'fhirReadProduct', tags, summary: 'Read a product lot as a BiologicallyDerivedProduct', params: IdParams, response: { 200: ok, ...notModified, ...operationOutcomeResponses(404) } },
  }, async (req, reply) => sendRead(req, reply, await fhir.product(req.params.id)));

  // CapabilityStatement: built from the registrations above, so it lists exactly what is served.
  r.get('/metadata', {
    config: { public: true, errorFormat: 'fhir' },
    schema: { operationId: 'fhirCapabilities', tags, summary: 'The CapabilityStatement: exactly what this FHIR endpoint supports', response: { 200: ok } },
  }, async (req, reply) => send(reply, capability.statement(req)));
}
