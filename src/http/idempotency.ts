import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { BadRequest } from '../shared/errors.js';
import { canonicalJson as canonical } from '../shared/canonical-json.js';
import type { IdempotencyRequest } from '../db/unit-of-work.js';

/**
 * The `Idempotency-Key` of a creating POST, scoped to the caller. The fingerprint covers the operation,
 * its path parameters and the body, so the same key on another request is recognised and refused.
 */
export function idempotencyOf(req: FastifyRequest): IdempotencyRequest | undefined {
  const header = req.headers['idempotency-key'];
  if (header === undefined) return undefined;
  const key = String(header);
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new BadRequest('Idempotency-Key must be 1..255 visible ASCII characters.', [{ path: 'headers.idempotency-key', message: 'invalid' }]);
  }
  const p = req.principal;
  const fingerprint = createHash('sha256')
    .update(`${req.method} ${req.routeOptions.url ?? ''}\n${canonical(req.params)}\n${canonical(req.body)}`)
    .digest('base64url');
  return { owner: `${p?.sub ?? ''}|${p?.clinicId ?? ''}`, key, fingerprint };
}
