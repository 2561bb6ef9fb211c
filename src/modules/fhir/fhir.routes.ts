import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Scope } from '../../auth/principal.js';
import { actorOf } from '../../http/auth.js';
import { classifyError, problemHeaders } from '../../http/errors.js';
import { decodeCursor } from '../../http/pagination.js';
import { FHIR_JSON, FhirResource, buildProblem, operationOutcomeResponses } from '../../http/problem.js';
import { API_VERSION } from '../../http/openapi.js';
import { BadRequest } from '../../shared/errors.js';
import { DateOnly, NonEmpty } from '../../shared/schemas.js';
import type { ProblemBody } from '../../shared/schemas.js';
import type { FhirResource as Resource } from './fhir.mappers.js';
import type { FhirService, SearchPage } from './fhir.service.js';
import { parseToken, splitUnescaped } from './search-values.js';

const tags = ['fhir'];
const FHIR_CONTENT = `${FHIR_JSON}; charset=utf-8`;
/** What the facade answers with, by Accept: FHIR's JSON media type first (the default), then plain JSON. */
export const FHIR_MEDIA_TYPES = [FHIR_JSON, 'application/json'] as const;

const ISSUE_TYPE: Record<number, string> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  409: 'conflict',
  412: 'conflict',
  413: 'too-costly',
  415: 'not-supported',
  422: 'business-rule',
  429: 'throttled',
  503: 'transient',
};

/** The same problem the API would answer, rendered as an R4 OperationOutcome. */
export function toOperationOutcome(p: ProblemBody): Resource {
  const issue = (diagnostics: string, expression?: string[]) => ({
    severity: p.status >= 500 ? 'fatal' : 'error',
    code: ISSUE_TYPE[p.status] ?? 'exception',
    details: { coding: [{ system: 'urn:exosome-records:fhir:CodeSystem:problem', code: p.code }], text: p.title },
    diagnostics,
    ...(expression ? { expression } : {}),
  });
  return {
    resourceType: 'OperationOutcome',
    issue: p.errors?.length ? p.errors.map((e) => issue(`${e.path}: ${e.message}`, [e.path])) : [issue(p.detail)],
  };
}

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

type SearchParamSpec = { name: string; type: 'token' | 'string' | 'date' | 'reference'; documentation: string };
interface CapabilityEntry {
  type: string;
  interactions: Set<string>;
  searchParams: SearchParamSpec[];
  operations: { name: string; definition: string }[];
}

/** Weak comparison (RFC 9110 §8.8.3.2) of one If-None-Match entry with a version: `*`, `W/"2"` and `"2"` match 2. */
function matchesVersion(tag: string, versionId: string): boolean {
  return tag === '*' || tag.replace(/^W\//, '') === `"${versionId}"`;
}

export function fhirRoutes(app: FastifyInstance, { fhir }: { fhir: FhirService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const capability = new Map<string, CapabilityEntry>();
  const entry = (type: string) => {
    const e = capability.get(type) ?? { type, interactions: new Set<string>(), searchParams: [], operations: [] };
    capability.set(type, e);
    return e;
  };
  const ok = { description: 'OK', content: { [FHIR_JSON]: { schema: FhirResource } } };
  const notModified = { 304: z.null().meta({ description: 'Not Modified: If-None-Match names the current version (no body)' }) };
  const config = (scope: Scope | Scope[]) => ({ scope, errorFormat: 'fhir' as const });
  const base = (req: FastifyRequest) => `${req.protocol}://${req.host}/fhir/R4`;
  // Answered in the JSON form Accept chose (http/negotiation.ts); XML and anything else were refused with 406.
  const send = (reply: FastifyReply, body: Resource) => reply.type(`${reply.request.negotiatedType || FHIR_JSON}; charset=utf-8`).send(body);

  /**
   * A read (FHIR R4 §3.1.0.4.1 "Conditional read"): `ETag: W/"<versionId>"` and `Last-Modified` from the
   * resource's meta; an `If-None-Match` naming the current version (or `*`) is answered 304 with no body.
   */
  const sendRead = (req: FastifyRequest, reply: FastifyReply, body: Resource) => {
    const meta = (body as { meta?: { versionId?: string; lastUpdated?: string } }).meta;
    if (meta?.versionId) reply.header('ETag', `W/"${meta.versionId}"`);
    if (meta?.lastUpdated) reply.header('Last-Modified', new Date(meta.lastUpdated).toUTCString());
    const ifNoneMatch = req.headers['if-none-match'];
    if (meta?.versionId && ifNoneMatch && ifNoneMatch.split(',').some((tag) => matchesVersion(tag.trim(), meta.versionId!))) return reply.code(304).send();
    return send(reply, body);
  };

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

  // Errors in this context leave as OperationOutcome, with the status the API would give.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const problem = classifyError(err, req);
    problemHeaders(reply, problem);
    return reply.code(problem.status).type(FHIR_CONTENT).send(toOperationOutcome(problem));
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type(FHIR_CONTENT)
      .send(toOperationOutcome(buildProblem(req, 404, 'route-not-found', `This server does not support ${req.method} ${req.url.split('?')[0]}; see /fhir/R4/metadata.`))),
  );

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
  }, async (req, reply) =>
    send(reply, {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: '2026-11-21',
      publisher: 'Exosome therapy records',
      kind: 'instance',
      software: { name: 'exosome-records', version: API_VERSION },
      implementation: { description: 'Read-only FHIR R4 facade over the exosome therapy records API', url: base(req) },
      fhirVersion: '4.0.1',
      format: [FHIR_JSON, 'json'],
      rest: [
        {
          mode: 'server',
          documentation: 'Read-only. Authorization: Bearer JWT (RS256, ES256 or EdDSA) with scope and clinic_id claims; a clinic sees only its own patients.',
          security: { description: 'Bearer JWT; scopes patients:read, clinical:read, lots:read' },
          resource: [...capability.values()].map((e) => ({
            type: e.type,
            interaction: [...e.interactions].map((code) => ({ code })),
            // Reads answer ETag W/"<versionId>" and honour If-None-Match (sendRead); If-Modified-Since is not read.
            ...(e.interactions.has('read') ? { versioning: 'versioned', conditionalRead: 'not-match' } : {}),
            ...(e.searchParams.length ? { searchParam: e.searchParams } : {}),
            ...(e.operations.length ? { operation: e.operations } : {}),
          })),
        },
      ],
    }),
  );
}
