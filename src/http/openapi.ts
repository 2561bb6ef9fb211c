import fp from 'fastify-plugin';
import type { FastifyInstance, RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { problemResponses } from './problem.js';

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
function completeOperation(route: RouteOptions): void {
  const schema = route.schema as RouteSchema | undefined;
  if (!schema || (schema as { hide?: boolean }).hide) return;
  const statuses: number[] = [];
  const scope = route.config?.scope;
  if (!route.config?.public) {
    schema.security ??= [{ bearerAuth: [] }];
    statuses.push(401, 403, 429, 503);
    if (scope) schema.description = `${schema.description ? `${schema.description}\n\n` : ''}Requires scope \`${scope}\`.`;
  } else {
    schema.security ??= [];
  }
  if (schema.body || schema.querystring || schema.params || schema.headers) statuses.push(400);
  if (schema.body) statuses.push(413, 415);
  schema.response = { ...problemResponses(...statuses), ...schema.response };
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
            'an audit log and a FHIR R4 read facade. Errors are RFC 9457 problem details.',
          license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
        },
        servers: [{ url: '/', description: 'This server' }],
        tags: [
          { name: 'patients', description: 'Patients of the caller\'s clinic, their EHR identifiers and consents' },
          { name: 'health', description: 'Liveness and readiness' },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An RS256, ES256 or EdDSA JWT with `scope` and `clinic_id` claims' },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
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
