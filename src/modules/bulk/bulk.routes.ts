import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.js';
import { FHIR_JSON, FhirResource, operationOutcomeResponses } from '../../http/problem.js';
import { AppError, BadRequest } from '../../shared/errors.js';
import type { CapabilityRegistry } from '../fhir/capability.js';
import { fhirBase, fhirConfig, handlingOf, okResponse, sendFhir } from '../fhir/fhir.http.js';
import { EXPORT_TYPES, NDJSON, type BulkService, type ExportKind } from './bulk.service.js';

const tags = ['fhir'];
const BULK = 'http://hl7.org/fhir/uv/bulkdata';
const IdParams = z.strictObject({ id: z.uuid() });
const Repeatable = z.union([z.string(), z.array(z.string())]);
/** The kick-off parameters this server applies; `_format` is read by the negotiation. */
const APPLIED = new Set(['_type', '_since', '_outputFormat', '_format']);
/** Bulk Data 2.0 kick-off parameters this server does not apply. */
const BULK_PARAMETERS = new Set(['_typeFilter', '_elements', 'patient', 'includeAssociatedData', 'organizeOutputBy', 'allowPartialManifests', '_until']);

/** Whether the request says Prefer: handling=lenient itself (the default of FHIR search is not enough here). */
function explicitlyLenient(req: FastifyRequest): boolean {
  const prefer = req.headers.prefer;
  const text = Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '');
  return /(^|,)\s*handling\s*=\s*"?lenient"?\s*(;|,|$)/i.test(text);
}

const KickOffQuery = z.looseObject({
  _type: Repeatable.optional().meta({ description: `Comma-separated (or repeated) resource types, of ${EXPORT_TYPES.join(', ')}; default: every one the token may read. Another type is a 400; a type whose read scope the token lacks, a 403` }),
  _since: z.string().optional().meta({ description: 'A FHIR instant: only resources changed after it' }),
  _outputFormat: z.string().optional().meta({ description: `${NDJSON} (also application/ndjson, ndjson); another format is a 400` }),
});

const ManifestFile = z.object({ type: z.string(), url: z.string(), count: z.int().optional() });
const Manifest = z
  .object({
    transactionTime: z.string(),
    request: z.string(),
    requiresAccessToken: z.boolean(),
    output: z.array(ManifestFile),
    deleted: z.array(ManifestFile),
    error: z.array(ManifestFile),
  })
  .meta({ id: 'BulkExportManifest', description: 'FHIR Bulk Data 2.0 complete-status manifest' });

const accepted = { description: 'Accepted: the job is queued; poll the status URL in Content-Location', content: { [FHIR_JSON]: { schema: FhirResource } } };
const inProgress = z.null().meta({ description: 'In progress: X-Progress tells how far, Retry-After when to poll again (no body)' });

/** `Prefer: respond-async` (RFC 7240): Bulk Data kick-offs are asynchronous only. */
function requireRespondAsync(req: FastifyRequest) {
  const prefer = req.headers.prefer;
  const text = Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '');
  const asked = text.split(',').some((p) => p.split(';')[0]!.trim().toLowerCase() === 'respond-async');
  if (!asked) throw new BadRequest('A bulk export runs asynchronously: send the header Prefer: respond-async.', [{ path: 'headers.prefer', message: 'respond-async required' }], 'respond-async-required');
}

/** The kick-off's query as the service takes it; a parameter this server does not apply is ignored, or a 400 with Prefer: handling=strict. */
function kickOffOf(req: FastifyRequest, kind: ExportKind, groupId?: string) {
  requireRespondAsync(req);
  const query = req.query as Record<string, string | string[] | undefined>;
  const unsupported = Object.keys(query).filter((k) => !APPLIED.has(k));
  // Bulk Data 2.0: a kick-off parameter the server does not support is an error unless the client asked for
  // Prefer: handling=lenient (an export silently wider than asked, _typeFilter or patient ignored, would hand out
  // more than was meant). Other parameters follow FHIR search: ignored unless handling=strict.
  const narrowing = unsupported.filter((k) => BULK_PARAMETERS.has(k));
  if (narrowing.length && !explicitlyLenient(req)) {
    throw new BadRequest(
      `This server does not support ${narrowing.join(', ')} on $export; send the export without it, or with Prefer: handling=lenient to have it ignored.`,
      narrowing.map((k) => ({ path: `querystring.${k}`, message: 'not supported' })),
      'unsupported-parameter',
    );
  }
  if (unsupported.length && handlingOf(req) === 'strict') {
    throw new BadRequest(`This server does not support ${unsupported.join(', ')} on $export.`, unsupported.map((k) => ({ path: `querystring.${k}`, message: 'not supported' })), 'unsupported-parameter');
  }
  const single = (name: string) => {
    const v = query[name];
    if (Array.isArray(v)) throw new BadRequest(`${name} may be given once.`, [{ path: `querystring.${name}`, message: 'repeated' }]);
    return v;
  };
  const type = query._type;
  return {
    kind,
    groupId,
    types: type === undefined ? [] : Array.isArray(type) ? type : [type],
    since: single('_since'),
    outputFormat: single('_outputFormat'),
    requestUrl: `${req.protocol}://${req.host}${req.url}`,
  };
}

const statusUrl = (req: FastifyRequest, id: string) => `${fhirBase(req)}/bulk-status/${id}`;

function sendAccepted(req: FastifyRequest, reply: FastifyReply, id: string) {
  reply.code(202).header('Content-Location', statusUrl(req, id));
  return sendFhir(reply, {
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'information', code: 'informational', diagnostics: `Export job ${id} accepted; poll ${statusUrl(req, id)}.` }],
  });
}

/**
 * FHIR Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/): the kick-offs, the status URL (poll, then
 * the manifest; DELETE cancels), the NDJSON files, and `Group/{lotId}` (a lot's recipients).
 */
export function bulkRoutes(app: FastifyInstance, { bulk, capability }: { bulk: BulkService; capability: CapabilityRegistry }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  capability.instantiates.push(`${BULK}/CapabilityStatement/bulk-data`);

  const kickOffSchema = (operationId: string, summary: string, withId: boolean) => ({
    operationId,
    tags,
    summary,
    ...(withId ? { params: IdParams } : {}),
    headers: z.looseObject({ prefer: z.string().optional().meta({ description: 'Must include respond-async' }) }),
    querystring: KickOffQuery,
    response: { 202: accepted, ...operationOutcomeResponses(400, 403, ...(withId ? [404] : [])) },
  });

  // A kick-off needs the read scope of each type it exports (checked by the service), so the route names none.
  capability.systemOperations.push({ name: 'export', definition: `${BULK}/OperationDefinition/export` });
  r.get('/$export', {
    config: { ...fhirConfig([]), exportsData: true },
    schema: kickOffSchema('fhirExport', 'Bulk Data kick-off: every resource of the exported types (a clinic token: its clinic\'s)', false),
  }, async (req, reply) => sendAccepted(req, reply, await bulk.kickOff(actorOf(req), kickOffOf(req, 'system'))));

  capability.resource('Patient').operations.push({ name: 'export', definition: `${BULK}/OperationDefinition/patient-export` });
  r.get('/Patient/$export', {
    config: { ...fhirConfig([]), exportsData: true },
    schema: kickOffSchema('fhirPatientExport', 'Bulk Data kick-off: every patient (a clinic token: its clinic\'s) and their records', false),
  }, async (req, reply) => sendAccepted(req, reply, await bulk.kickOff(actorOf(req), kickOffOf(req, 'patient'))));

  const group = capability.resource('Group');
  group.interactions.add('read');
  group.unversioned = true;
  group.documentation = 'A product lot\'s recipients (id = the lot\'s id): patients with a procedure of the lot that stands; a clinic token sees its own. $export exports them and their records (a recall cohort).';
  group.operations.push({ name: 'export', definition: `${BULK}/OperationDefinition/group-export` });
  r.get('/Group/:id/$export', {
    config: { ...fhirConfig('reports:read'), exportsData: true },
    schema: { ...kickOffSchema('fhirGroupExport', 'Bulk Data kick-off: the lot\'s recipients (a recall cohort) and their records', true), params: IdParams },
  }, async (req, reply) => sendAccepted(req, reply, await bulk.kickOff(actorOf(req), kickOffOf(req, 'group', req.params.id))));

  r.get('/Group/:id', {
    config: fhirConfig('reports:read'),
    schema: {
      operationId: 'fhirReadGroup',
      tags,
      summary: 'A lot\'s recipients as a Group (type person, actual); a clinic token sees its own patients only',
      params: IdParams,
      response: { 200: okResponse, ...operationOutcomeResponses(404) },
    },
  }, async (req, reply) => sendFhir(reply, await bulk.group(actorOf(req), req.params.id)));

  // The status URL and the files: for the token subject (and clinic) that started the job only; another's is a 404.
  r.get('/bulk-status/:id', {
    config: fhirConfig([]),
    schema: {
      operationId: 'fhirExportStatus',
      tags,
      summary: 'Bulk Data status: 202 with X-Progress while the job runs, then 200 with the manifest',
      params: IdParams,
      response: {
        200: { description: 'The manifest', content: { 'application/json': { schema: Manifest } } },
        202: inProgress,
        ...operationOutcomeResponses(404, 500),
      },
    },
  }, async (req, reply) => {
    const status = await bulk.status(actorOf(req), req.params.id);
    if (status.state === 'in-progress') {
      return reply.code(202).header('X-Progress', status.progress).header('Retry-After', String(status.retryAfterSeconds)).send(null);
    }
    if (status.state === 'failed') throw new AppError(500, 'export-failed', 'Internal Server Error', status.error);
    const entry = (f: (typeof status.files)[number]) => ({ type: f.type, url: `${fhirBase(req)}/bulk-files/${f.id}`, count: f.count });
    reply.header('Expires', status.expiresAt.toUTCString());
    return reply.type('application/json; charset=utf-8').send({
      transactionTime: status.transactionTime.toISOString(),
      request: status.requestUrl,
      requiresAccessToken: true,
      // Files with no resources are left out (Bulk Data: an empty export has an empty output array).
      output: status.files.filter((f) => f.kind === 'output' && f.count > 0).map(entry),
      deleted: [],
      error: status.files.filter((f) => f.kind === 'error' && f.count > 0).map(entry),
    });
  });

  r.delete('/bulk-status/:id', {
    config: fhirConfig([]),
    schema: { operationId: 'fhirExportCancel', tags, summary: 'Cancels the export job and deletes its files', params: IdParams, response: { 202: okResponse, ...operationOutcomeResponses(404) } },
  }, async (req, reply) => {
    await bulk.cancel(actorOf(req), req.params.id);
    reply.code(202);
    return sendFhir(reply, { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics: `Export job ${req.params.id} cancelled.` }] });
  });

  r.get('/bulk-files/:id', {
    config: { ...fhirConfig([]), produces: [NDJSON, 'application/ndjson'] },
    schema: {
      operationId: 'fhirExportFile',
      tags,
      summary: 'One NDJSON file of a completed export (one resource per line), for the token that started it',
      params: IdParams,
      response: { 200: { description: 'NDJSON', content: { [NDJSON]: { schema: z.string() } } }, ...operationOutcomeResponses(404) },
    },
  }, async (req, reply) => {
    const stream = await bulk.file(actorOf(req), req.params.id);
    // A stream is sent as it is read (no serializer): chunk by chunk from PostgreSQL.
    return (reply as FastifyReply).type(NDJSON).send(stream);
  });
}
