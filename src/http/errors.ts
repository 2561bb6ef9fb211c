import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type FieldError } from '../shared/errors.js';
import type { ProblemBody } from '../shared/schemas.js';
import { isDatabaseUnavailable } from '../db/errors.js';
import { buildProblem, sendProblem } from './problem.js';

type ValidationIssue = { instancePath: string; message?: string; keyword?: string; params?: Record<string, unknown> };

function fieldErrors(context: string | undefined, issues: ValidationIssue[]): FieldError[] {
  const prefix = context ?? 'body';
  const out: FieldError[] = [];
  for (const issue of issues) {
    const base = [prefix, ...issue.instancePath.split('/').filter(Boolean)].join('.');
    const keys = issue.keyword === 'unrecognized_keys' ? (issue.params?.keys as string[] | undefined) : undefined;
    if (keys?.length) {
      for (const k of keys) out.push({ path: `${base}.${k}`, message: 'unknown field' });
    } else {
      out.push({ path: base, message: issue.message ?? 'invalid' });
    }
  }
  return out;
}

/**
 * The one error classification: every failure becomes a problem (RFC 9457) here. Contexts render it their
 * way (problem+json for the API, OperationOutcome for FHIR). A 500 carries no internals; only a bug makes one.
 */
export function classifyError(err: FastifyError, req: FastifyRequest): ProblemBody {
  if (err instanceof AppError) {
    return buildProblem(req, err.status, err.code, err.message, { title: err.title, errors: err.errors });
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const errors = fieldErrors(err.validationContext, err.validation);
    const where = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'body');
    return buildProblem(req, 400, 'validation-failed', `The request ${where} is invalid: ${errors.map((e) => e.path).join(', ')}.`, { errors });
  }
  if (isDatabaseUnavailable(err)) {
    req.log.warn({ err, route: req.routeOptions.url ?? 'unmatched' }, 'database unavailable');
    return buildProblem(req, 503, 'database-unavailable', 'The database is unavailable; try again shortly.');
  }
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return buildProblem(req, status, fastifyCode(err.code, status), clientDetail(err, status));
  req.log.error({ err, route: req.routeOptions.url ?? 'unmatched' }, 'unhandled error');
  return buildProblem(req, 500, 'internal-error', `An unexpected error occurred. Quote request id ${String(req.id)} when reporting it.`);
}

/** Headers that go with a problem, whatever its rendering. */
export function problemHeaders(reply: FastifyReply, problem: ProblemBody): void {
  if (problem.status === 503) reply.header('Retry-After', '5');
  if (problem.status === 401) reply.header('WWW-Authenticate', 'Bearer');
}

export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setNotFoundHandler((req, reply) =>
      sendProblem(reply, buildProblem(req, 404, 'route-not-found', `No route ${req.method} ${req.url.split('?')[0]}.`)),
    );
    app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply) => {
      const problem = classifyError(err, req);
      problemHeaders(reply, problem);
      return sendProblem(reply, problem);
    });
  },
  { name: 'errors' },
);

function fastifyCode(code: string | undefined, status: number): string {
  switch (code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported-media-type';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body-too-large';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'malformed-json';
    default:
      if (status === 400 && code === undefined) return 'malformed-json';
      return status === 429 ? 'rate-limited' : `http-${status}`;
  }
}

function clientDetail(err: FastifyError, status: number): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Send the body as application/json.';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The request body is larger than 1 MiB.';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is empty; send a JSON document.';
    default:
      // JSON.parse messages carry no request data beyond a position; other 4xx from Fastify are generic.
      if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return 'The body is not valid JSON.';
      return status === 400 ? 'The request is malformed.' : err.message;
  }
}
