import { decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import { Unauthorized } from '../shared/errors.js';
import { NonEmpty } from '../shared/schemas.js';
import { nfc, textProblem } from '../shared/text.js';
import { ALLOWED_ALGORITHMS, type VerificationKey } from './keys.js';
import type { Principal } from './principal.js';

export interface TokenVerifierOptions {
  key: VerificationKey;
  issuer: string;
  audience: string;
  clockToleranceSec?: number;
  /**
   * Tokens this service issued itself (SMART Backend Services, auth/signing-key.ts): a token whose `iss` is this
   * issuer is checked against this key and algorithm only (never the external key), and its principal names the
   * client (`clientId`). Any other `iss` goes to the external key as before.
   */
  selfIssued?: { key: VerificationKey; issuer: string; algorithms: readonly string[] };
}

export type TokenVerifier = (authorization: string | undefined) => Promise<Principal>;

const CACHE_MAX = 10_000;
/** Claims follow the rules of any single-line field (shared/schemas.ts NonEmpty), with these lengths. */
const CLAIM = { sub: NonEmpty(255), clinic_id: NonEmpty(64) };
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
      // Which key: by the (not yet verified) issuer; the signature check below then binds the issuer to that key.
      const self = opts.selfIssued && decodeJwt(match[1]!).iss === opts.selfIssued.issuer ? opts.selfIssued : undefined;
      const { payload } = await jwtVerify(match[1]!, (self?.key ?? opts.key) as Parameters<typeof jwtVerify>[1], {
        issuer: self?.issuer ?? opts.issuer,
        audience: opts.audience,
        algorithms: [...(self?.algorithms ?? ALLOWED_ALGORITHMS)],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: opts.clockToleranceSec ?? 30,
      });
      const scope = typeof payload.scope === 'string' ? payload.scope : '';
      // Claims are incoming text like any other (they reach the audit log and the idempotency key): a string on
      // one line, with no surrounding white space and no control character, compared as NFC; `sub` 1..255
      // characters, `clinic_id` 1..64 (RFC 7519 makes sub a string; jose checks only that it is present).
      const sub: unknown = payload.sub;
      const clinic: unknown = payload.clinic_id;
      for (const [name, value, max] of [['sub', sub, 255], ['clinic_id', clinic, 64]] as const) {
        if (value === undefined && name === 'clinic_id') continue;
        if (typeof value !== 'string' || textProblem(value, false) || !CLAIM[name].safeParse(value).success) {
          throw new Unauthorized(`The ${name} claim must be a string of 1..${max} characters on one line, with no surrounding white space or control character.`);
        }
      }
      const principal: Principal = { sub: nfc(sub as string), clinicId: clinic === undefined ? null : nfc(clinic as string), scopes: new Set(scope.split(' ').filter(Boolean)) };
      if (self) principal.clientId = principal.sub;
      return {
        principal,
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
