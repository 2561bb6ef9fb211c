import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Problem, type ProblemBody } from '../shared/schemas.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export const titleFor = (status: number) => TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');

export function problemType(code: string): string {
  return `urn:exosome-records:problem:${code}`;
}

export function buildProblem(
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Partial<Pick<ProblemBody, 'errors' | 'title'>> = {},
): ProblemBody {
  return {
    type: problemType(code),
    title: extra.title ?? titleFor(status),
    status,
    detail,
    instance: req.url.split('?')[0] ?? req.url,
    code,
    requestId: String(req.id),
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
}

export function sendProblem(reply: FastifyReply, body: ProblemBody) {
  return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/** OpenAPI response entries for the problem statuses an operation can answer. */
export function problemResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: Record<string, { schema: typeof Problem }> }> = {};
  for (const s of statuses) {
    out[s] = { description: titleFor(s), content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } } };
  }
  return out;
}

export const FHIR_JSON = 'application/fhir+json';

/** A FHIR resource as the facade emits it (documented loosely: the R4 specification defines each one). */
export const FhirResource = z
  .looseObject({ resourceType: z.string() })
  .meta({ id: 'FhirResource', description: 'A FHIR R4 resource (see hl7.org/fhir/R4); validated against the base specification in tests' });

/** OpenAPI response entries for errors of the FHIR facade: OperationOutcome, application/fhir+json. */
export function operationOutcomeResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: Record<string, { schema: typeof FhirResource }> }> = {};
  for (const s of statuses) out[s] = { description: `${titleFor(s)} (OperationOutcome)`, content: { [FHIR_JSON]: { schema: FhirResource } } };
  return out;
}
