import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, PreconditionRequired } from '../shared/errors.js';

/** Strong ETag of a record version: `"3"`. */
export const etagOf = (version: number) => `"${version}"`;

export function setEtag(reply: FastifyReply, version: number): void {
  reply.header('ETag', etagOf(version));
}

/** The version named by `If-Match`; 428 when it is missing. A weak tag (W/"3") is accepted as its version. */
export function ifMatchVersion(req: FastifyRequest): number {
  const header = req.headers['if-match'];
  if (header === undefined || header === '') throw new PreconditionRequired();
  const match = /^\s*(?:W\/)?"(\d{1,9})"\s*$/.exec(String(header));
  if (!match) throw new BadRequest('If-Match must be the ETag you read, e.g. "3".', [{ path: 'headers.if-match', message: 'not an ETag of this API' }]);
  return Number(match[1]);
}
