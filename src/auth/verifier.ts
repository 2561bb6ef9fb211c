import { errors as joseErrors, jwtVerify } from 'jose';
import { Unauthorized } from '../shared/errors.js';
import { ALLOWED_ALGORITHMS, type VerificationKey } from './keys.js';
import type { Principal } from './principal.js';

export interface TokenVerifierOptions {
  key: VerificationKey;
  issuer: string;
  audience: string;
  clockToleranceSec?: number;
}

export type TokenVerifier = (authorization: string | undefined) => Promise<Principal>;

/** Verifies `Authorization: Bearer <JWT>`: asymmetric algorithms only, iss/aud/exp required. */
export function createTokenVerifier(opts: TokenVerifierOptions): TokenVerifier {
  return async (authorization) => {
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
      return {
        sub: payload.sub!,
        clinicId: clinic ?? null,
        scopes: new Set(scope.split(' ').filter(Boolean)),
      };
    } catch (err) {
      if (err instanceof Unauthorized) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new Unauthorized('The token has expired.');
      if (err instanceof joseErrors.JOSEError) throw new Unauthorized('The token was not accepted (signature, algorithm, issuer or audience).');
      throw err;
    }
  };
}
