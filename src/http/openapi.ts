import fp from 'fastify-plugin';
import type { FastifyInstance, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { operationOutcomeResponses, problemResponses } from './problem.js';

export const API_VERSION = '1.0.0';

type RouteSchema = NonNullable<RouteOptions['schema']> & {
  response?: Record<string, unknown>;
  security?: unknown;
  description?: string;
};

/**
 * Each operation's OpenAPI entry is completed from what the route declares: a scoped route gets bearer
 * security, its scope in the description, and the problems every authenticated call can answer (401, 403,
 * 429, 503); input gets 400; a body gets 413 and 415. Routes list only their own problems (404, 409, 422...).
 */
const completed = new WeakSet<object>();

function completeOperation(route: RouteOptions): void {
  const schema = route.schema as RouteSchema | undefined;
  // A GET's schema object is shared by the HEAD route fastify adds beside it: complete each schema once.
  if (!schema || (schema as { hide?: boolean }).hide || completed.has(schema)) return;
  completed.add(schema);
  const statuses: number[] = [];
  const scope = route.config?.scope;
  if (!route.config?.public) {
    schema.security ??= [{ bearerAuth: [] }];
    statuses.push(401, 403, 429, 503);
    const scopes = typeof scope === 'string' ? [scope] : (scope ?? []);
    if (scopes.length) schema.description = `${schema.description ? `${schema.description}\n\n` : ''}Requires scope ${scopes.map((s) => `\`${s}\``).join(' and ')}.`;
  } else {
    schema.security ??= [];
  }
  if (schema.body || schema.querystring || schema.params || schema.headers) statuses.push(400);
  if (schema.body) statuses.push(413, 415);
  if (route.config?.errorFormat === 'oauth') return; // its schema names its own errors (RFC 6749 §5.2 JSON)
  const errors = route.config?.errorFormat === 'fhir' ? operationOutcomeResponses(...statuses) : problemResponses(...statuses);
  schema.response = { ...errors, ...schema.response };
}

type OpenApiDoc = {
  paths?: Record<string, Record<string, { responses?: Record<string, { description?: string }>; requestBody?: { content?: Record<string, { schema?: unknown }> } }>>;
  components?: { schemas?: Record<string, unknown> };
};

type JsonSchema = { $ref?: string; type?: unknown; properties?: Record<string, JsonSchema>; required?: string[]; items?: JsonSchema; anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; allOf?: JsonSchema[] };

/**
 * In a POST body `null` for an optional member means absent (http/input.ts drops it before validation), so
 * the document says so: every optional member of a POST body's objects, nested ones and referenced
 * components included, also admits null. PATCH bodies keep their own meaning (merge patch) and are untouched.
 */
function optionalMembersAdmitNull(doc: OpenApiDoc): void {
  const schemas = (doc.components?.schemas ?? {}) as Record<string, JsonSchema>;
  const seen = new Set<JsonSchema>();
  const visit = (node: JsonSchema | undefined): void => {
    if (!node || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (node.$ref?.startsWith('#/components/schemas/')) return visit(schemas[node.$ref.slice('#/components/schemas/'.length)]);
    for (const sub of [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? []), node.items]) visit(sub);
    for (const [name, member] of Object.entries(node.properties ?? {})) {
      visit(member);
      if (node.required?.includes(name) || member.anyOf?.some((m) => m.type === 'null')) continue;
      node.properties![name] = { anyOf: [member, { type: 'null' }] };
    }
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (method !== 'post') continue;
      for (const media of Object.values(op.requestBody?.content ?? {})) visit(media.schema as JsonSchema);
    }
  }
}

const SUCCESS_TEXT: Record<string, string> = { '200': 'OK', '201': 'Created', '202': 'Accepted', '204': 'No Content' };

/**
 * zod components appear twice (`X` and `XInput`) whether used or not: keep only those the operations
 * reference (transitively), and name success responses instead of "Default Response".
 */
function tidyDocument<T extends OpenApiDoc>(doc: T): T {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        if (response.description === 'Default Response') response.description = SUCCESS_TEXT[status] ?? 'Success';
      }
    }
  }
  optionalMembersAdmitNull(doc);
  const schemas = doc.components?.schemas;
  if (!schemas) return doc;
  const used = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
        const name = v.slice('#/components/schemas/'.length);
        if (!used.has(name)) {
          used.add(name);
          visit(schemas[name]);
        }
      } else visit(v);
    }
  };
  visit(doc.paths);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
  // A request-only schema keeps its own name: `PatientCreate`, not `PatientCreateInput`.
  const renames = Object.keys(schemas).filter((n) => n.endsWith('Input') && !(n.slice(0, -5) in schemas));
  if (renames.length === 0) return doc;
  let text = JSON.stringify(doc);
  for (const n of renames) text = text.split(`"#/components/schemas/${n}"`).join(`"#/components/schemas/${n.slice(0, -5)}"`);
  const renamed = JSON.parse(text) as T;
  const out = renamed.components!.schemas!;
  for (const n of renames) {
    out[n.slice(0, -5)] = out[n];
    delete out[n];
  }
  return renamed;
}

export const openapiPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRoute', completeOperation);
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Exosome therapy records API',
          version: API_VERSION,
          description:
            'Treatment records and traceability for clinics administering exosome (extracellular vesicle) therapies: ' +
            'patients and consent, donors and product lots, procedures, outcomes, adverse events, traceability reports, ' +
            'an audit log and a FHIR R4 read facade. Errors are RFC 9457 problem details.\n\n' +
            'Input rules for every route and field: bodies are UTF-8 JSON (another charset is 415, bytes that are not UTF-8 are 400); ' +
            'every string is normalized to Unicode NFC before it is validated, stored, compared or searched; U+0000 and other C0 ' +
            'controls are 400 naming the field (tab, line feed and carriage return pass in free-text fields only); single-line ' +
            'fields are refused, not trimmed, when they begin or end with white space; in a POST body `null` for an optional ' +
            'member means absent, while a PATCH (JSON merge patch) refuses null for a member that cannot be cleared; dates and ' +
            'instants lie between 1900-01-01 and 9999-12-31.',
          license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
        },
        servers: [{ url: '/', description: 'This server' }],
        tags: [
          { name: 'patients', description: 'Patients of the caller\'s clinic, their EHR identifiers and consents' },
          { name: 'donors', description: 'Donors by ISBT 128 DIN, screening tests and eligibility (supplier records, shared by all clinics)' },
          { name: 'lots', description: 'Exosome product lots: characterization, release tests, quarantine, release and recall' },
          { name: 'vials', description: 'Vial distribution: shipments to clinics, discards, inventory per clinic' },
          { name: 'procedures', description: 'Administrations of a product lot to a patient, with every safety gate' },
          { name: 'outcomes', description: 'Follow-up outcome scores (pain, WOMAC, KOOS...) with change from baseline' },
          { name: 'adverse-events', description: 'Adverse events: CTCAE grade, ICH E2A seriousness, WHO-UMC relatedness, outcome' },
          { name: 'reports', description: 'Traceability for auditors and quality units: lot → recipients, donor → lots → recipients, patient → lots → donors' },
          { name: 'audit', description: 'The append-only, hash-chained audit log of every read and write of patient data' },
          { name: 'fhir', description: 'Read-only FHIR R4 facade (application/fhir+json; errors are OperationOutcome)' },
          { name: 'health', description: 'Liveness and readiness' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An RS256, ES256 or EdDSA JWT with `scope` and `clinic_id` claims' },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: (doc) => tidyDocument(jsonSchemaTransformObject(doc) as OpenApiDoc),
    });

    // Everything in this context (the docs page and its assets) is public.
    await app.register(async (docs) => {
      docs.addHook('onRoute', (route) => {
        route.config = { ...route.config, public: true };
      });
      await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true, tryItOutEnabled: true } });
    });

    app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'openapi' },
);
