import { errors as joseErrors, jwtVerify } from 'jose';
import { Unauthorized } from '../shared/errors.js';
import { nfc, textProblem } from '../shared/text.js';
import { ALLOWED_ALGORITHMS, type VerificationKey } from './keys.js';
import type { Principal } from './principal.js';

export interface TokenVerifierOptions {
  key: VerificationKey;
  issuer: string;
  audience: string;
  clockToleranceSec?: number;
}

export type TokenVerifier = (authorization: string | undefined) => Promise<Principal>;

const CACHE_MAX = 10_000;
const CACHE_TTL_MS = 60_000;

/**
 * Verifies `Authorization: Bearer <JWT>`: asymmetric algorithms only, iss/aud/exp required. A verified token
 * is remembered for at most a minute and never past its `exp`, keyed by the whole token string: a changed
 * token is a different key, so the cache cannot accept anything the verifier would refuse, except a token
 * whose signing key was withdrawn in the last minute. Per instance; nothing is shared.
 */
export function createTokenVerifier(opts: TokenVerifierOptions): TokenVerifier {
  const verify = createUncachedVerifier(opts);
  const cache = new Map<string, { principal: Principal; until: number }>();
  return async (authorization) => {
    const now = Date.now();
    const hit = authorization ? cache.get(authorization) : undefined;
    if (hit && hit.until > now) return hit.principal;
    if (hit) cache.delete(authorization!);
    const { principal, exp } = await verify(authorization);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(authorization!, { principal, until: Math.min(now + CACHE_TTL_MS, exp * 1000) });
    return principal;
  };
}

function createUncachedVerifier(opts: TokenVerifierOptions) {
  return async (authorization: string | undefined): Promise<{ principal: Principal; exp: number }> => {
    if (!authorization) throw new Unauthorized('An Authorization: Bearer token is required.');
    const match = /^Bearer[ ]+([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*)[ ]*$/i.exec(authorization);
    if (!match) throw new Unauthorized('The Authorization header must be "Bearer <JWT>".');
    try {
      const { payload } = await jwtVerify(match[1]!, opts.key as Parameters<typeof jwtVerify>[1], {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: [...ALLOWED_ALGORITHMS],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: opts.clockToleranceSec ?? 30,
      });
      const scope = typeof payload.scope === 'string' ? payload.scope : '';
      const clinic = payload.clinic_id;
      if (clinic !== undefined && (typeof clinic !== 'string' || clinic.length === 0 || clinic.length > 64)) {
        throw new Unauthorized('The clinic_id claim must be a non-empty string.');
      }
      // Claims are incoming text like any other (they reach the audit log and the idempotency key): one line of
      // 1..255 characters with no surrounding white space and no control character, compared as NFC.
      for (const [name, value] of [['sub', payload.sub!], ['clinic_id', clinic]] as const) {
        if (value === undefined) continue;
        if (textProblem(value, false) || !/^\S(?:.*\S)?$/.test(value) || value.length > 255) {
          throw new Unauthorized(`The ${name} claim must be 1..255 characters on one line, with no surrounding white space or control character.`);
        }
      }
      return {
        principal: { sub: nfc(payload.sub!), clinicId: clinic === undefined ? null : nfc(clinic), scopes: new Set(scope.split(' ').filter(Boolean)) },
        exp: payload.exp!,
      };
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('The token has expired.');
      if (err instanceof joseErrors.JOSEError) throw new Unauthorized('The token was not accepted (signature, algorithm, issuer or audience).');
      throw err;
    }
  };
}
