import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeJwt, decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { z } from 'zod';
import type { Actor } from '../../auth/principal.js';
import type { TokenIssuer } from '../../auth/signing-key.js';
import type { Db } from '../../db/client.js';
import type { IdempotencyRequest, UnitOfWork } from '../../db/unit-of-work.js';
import type { Clock } from '../../shared/clock.js';
import { AppError, BadRequest, Forbidden, NotFound, PreconditionFailed, RuleViolation, type FieldError } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { toPage, type PageRequest } from '../../shared/paging.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { ClientCreate, ClientDto, ClientPatch, PublicJwkInput, TokenRequestBody, TokenResponseBody } from './clients.schemas.js';
import * as q from './clients.queries.js';
import { expandScopes, permits, serviceScopesOf } from './smart-scopes.js';
import { AddressRefused, guardedGet, resolveChecked, urlRefusal } from '../webhooks/address.js';

const RESOURCE = 'client';
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The algorithms a client assertion may be signed with (SMART App Launch 2.x Backend Services). */
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384'] as const;
/** The longest an assertion may live: `exp` at most this far ahead (SMART: 5 minutes). */
export const MAX_ASSERTION_LIFETIME_SEC = 300;
/** Clock skew allowed on `exp`/`nbf` of an assertion. */
const CLOCK_TOLERANCE_SEC = 5;
/** How long an instance trusts a client's status for a token it issued (disabling reaches every instance within it). */
const STATUS_CACHE_MS = 10_000;

type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type' | 'invalid_scope' | 'temporarily_unavailable';

/**
 * A refusal of the token endpoint (RFC 6749 §5.2): `error` is the RFC's code; 401 for invalid_client, else 400
 * (503 temporarily_unavailable without a signing key). The token route renders it as `{ error, error_description }`.
 */
export class OAuthError extends AppError {
  constructor(
    readonly error: OAuthErrorCode,
    description: string,
    status: number = error === 'invalid_client' ? 401 : error === 'temporarily_unavailable' ? 503 : 400,
  ) {
    super(status, error.replace(/_/g, '-'), error, description);
  }
}

const toDto = (c: q.ClientRow): ClientDto => ({
  clientId: c.id,
  name: c.name,
  clinicId: c.clinicId,
  jwksUri: c.jwksUri,
  jwks: c.jwks,
  scopes: c.scopes,
  status: c.status as ClientDto['status'],
  version: c.version,
  createdAt: c.createdAt.toISOString(),
  createdBy: c.createdBy,
  updatedAt: c.updatedAt.toISOString(),
  updatedBy: c.updatedBy,
});

export interface ClientsDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  clock: Clock;
  /** Signs the access tokens; undefined when the service has no signing key (the token endpoint answers 503). */
  tokenIssuer?: TokenIssuer;
  /** WEBHOOK_ALLOW_PRIVATE_URLS: a jwksUri may be http or on a private address (development and tests only). */
  allowPrivateUrls?: boolean;
}

export type ClientsService = ReturnType<typeof createClientsService>;

/**
 * Why an RSA public key must not verify anything, or undefined when it is sound (NIST SP 800-56B / 800-89): a
 * modulus of at least 2048 bits that is odd, a public exponent that is odd and at least 65537. With e = 1 the
 * "signature" is the padded hash itself: anyone could sign for the client.
 */
export function rsaKeyProblem(jwk: { n?: unknown; e?: unknown }): string | undefined {
  if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'an RSA key needs n and e';
  const n = Buffer.from(jwk.n, 'base64url');
  const e = Buffer.from(jwk.e, 'base64url');
  const first = n.findIndex((b) => b !== 0);
  const bits = first < 0 ? 0 : (n.length - first - 1) * 8 + (32 - Math.clz32(n[first]!));
  if (bits < 2048) return 'an RSA modulus of at least 2048 bits';
  if ((n[n.length - 1]! & 1) === 0) return 'an RSA modulus must be odd';
  const exponent = e.reduce((v, b) => v * 256n + BigInt(b), 0n);
  if (exponent < 65537n || exponent % 2n === 0n) return 'an RSA public exponent must be odd and at least 65537';
  return undefined;
}

/** A fetch of a JWK Set that keeps only sound keys (rsaKeyProblem): a remote set is held to the registration's rules. */
function soundKeysOnly(fetchSet: (url: string, options: { headers?: Headers; signal?: AbortSignal }) => Promise<Response>) {
  return async (url: string, options: { headers?: Headers; signal?: AbortSignal }): Promise<Response> => {
    const res = await fetchSet(url, options);
    if (res.status !== 200) return res;
    const doc = (await res.json()) as { keys?: unknown };
    const keys = Array.isArray(doc.keys) ? doc.keys.filter((k: { kty?: unknown; d?: unknown }) => k && k.d === undefined && (k.kty !== 'RSA' || !rsaKeyProblem(k as { n?: unknown; e?: unknown }))) : [];
    return new Response(JSON.stringify({ keys }), { status: 200, headers: { 'content-type': 'application/json' } });
  };
}

/** SMART Backend Services: registered clients (contract "SMART Backend Services") and the token endpoint's rules. */
export function createClientsService({ db, uow, audit, clock, tokenIssuer, allowPrivateUrls = false }: ClientsDeps) {
  const remoteSets = new Map<string, { uri: string; set: JWTVerifyGetKey }>();
  const statusCache = new Map<string, { active: boolean; until: number }>();

  /**
   * 400 unless every key imports as a verification key for its algorithm (an EC point on the curve, an RSA key
   * that parses) and an RSA key is sound (rsaKeyProblem: a public exponent of 1 or 3 lets anyone forge).
   */
  async function checkKeys(keys: PublicJwkInput[]): Promise<void> {
    const errors: FieldError[] = [];
    for (const [i, jwk] of keys.entries()) {
      const weak = jwk.kty === 'RSA' ? rsaKeyProblem(jwk) : undefined;
      if (weak) {
        errors.push({ path: `body.jwks.keys.${i}`, message: weak });
        continue;
      }
      try {
        await importJWK({ ...jwk, key_ops: undefined }, jwk.kty === 'RSA' ? 'RS384' : 'ES384');
      } catch {
        errors.push({ path: `body.jwks.keys.${i}`, message: 'is not a usable public key' });
      }
    }
    const kids = keys.map((k) => k.kid).filter((k) => k !== undefined);
    if (new Set(kids).size !== kids.length) errors.push({ path: 'body.jwks.keys', message: 'each kid once' });
    if (errors.length) throw new BadRequest(`The request body is invalid: ${errors.map((e) => e.path).join(', ')}.`, errors, 'validation-failed');
  }

  /** A token may register a client only for scopes it holds itself: clients:write is not a way to more access. */
  function checkScopesHeld(actor: Actor, scopes: readonly string[]): void {
    const missing = [...expandScopes(scopes)].filter((s) => !actor.scopes.has(s));
    if (missing.length) throw new Forbidden(`A client may be given only scopes the registering token holds; this token lacks ${missing.join(', ')}.`, 'insufficient-scope');
  }

  function keysOf(c: q.ClientRow): JWTVerifyGetKey {
    if (c.jwks) return createLocalJWKSet(c.jwks);
    const cached = remoteSets.get(c.id);
    if (cached && cached.uri === c.jwksUri) return cached.set;
    // Fetched under the webhook rules (public https addresses, checked as the socket connects, no redirects).
    const set = createRemoteJWKSet(new URL(c.jwksUri!), {
      timeoutDuration: 5000,
      cooldownDuration: 30_000,
      cacheMaxAge: 10 * 60_000,
      [customFetch]: soundKeysOnly(guardedGet(allowPrivateUrls)),
    });
    remoteSets.set(c.id, { uri: c.jwksUri!, set });
    return set;
  }

  /** 422 `jwks-uri-refused` unless the jwksUri is https and resolves only to public addresses (webhooks/address.ts). */
  async function checkJwksUri(uri: string | undefined): Promise<void> {
    if (uri === undefined || allowPrivateUrls) return;
    const url = new URL(uri);
    let refused = urlRefusal(url, false);
    if (!refused) {
      try {
        await resolveChecked(url.hostname, false);
      } catch (err) {
        if (!(err instanceof AddressRefused)) throw err;
        refused = err.reason;
      }
    }
    if (refused) throw new RuleViolation('jwks-uri-refused', `The jwksUri is refused: ${refused}.`, [{ path: 'body.jwksUri', message: refused }]);
  }

  async function owned(actor: Actor, id: string) {
    const row = await q.findClient(db, id, actor.clinicId);
    if (!row) throw new NotFound('client');
    return row;
  }

  /** Why jose refused an assertion, in words for error_description (nothing from the assertion is echoed). */
  function refusal(err: unknown): string {
    if (err instanceof joseErrors.JWTExpired) return 'The client assertion has expired.';
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      if (err.claim === 'aud') return 'The client assertion\'s aud must be this token endpoint\'s URL.';
      if (err.claim === 'sub' || err.claim === 'iss') return 'The client assertion\'s iss and sub must both be the client id.';
      if (err.claim === 'nbf') return 'The client assertion is not valid yet.';
      return `The client assertion lacks a valid ${err.claim} claim.`;
    }
    if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'The client assertion must be signed with RS384 or ES384.';
    if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      return 'The client assertion\'s signature does not verify with a key registered for the client.';
    }
    if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return 'The client\'s JWK Set could not be fetched.';
    return 'The client assertion was not accepted.';
  }

  return {
    async create(actor: Actor, input: z.output<typeof ClientCreate>, idem?: IdempotencyRequest): Promise<ClientDto> {
      if ((input.jwksUri === undefined) === (input.jwks === undefined)) {
        throw new BadRequest('Give the client\'s keys as either jwksUri or jwks, one of them.', [{ path: 'body.jwks', message: 'exactly one of jwksUri and jwks' }], 'validation-failed');
      }
      if (input.jwks) await checkKeys(input.jwks.keys);
      await checkJwksUri(input.jwksUri);
      let clinicId = input.clinicId === undefined ? actor.clinicId : input.clinicId;
      if (actor.clinicId !== null && clinicId !== actor.clinicId) {
        throw new Forbidden('A clinic token registers clients for its own clinic only.', 'clinic-mismatch');
      }
      clinicId ??= null;
      checkScopesHeld(actor, input.scopes);
      return uow.run(async (tx) => {
        const now = clock.now();
        const row = await q.insertClient(tx, {
          id: newId(),
          name: input.name,
          clinicId,
          jwksUri: input.jwksUri ?? null,
          jwks: input.jwks ?? null,
          scopes: input.scopes,
          status: 'active',
          createdAt: now,
          createdBy: actor.sub,
          updatedAt: now,
          updatedBy: actor.sub,
        });
        await audit.record(tx, actor, { action: 'create', resourceType: RESOURCE, resourceId: row.id, clinicId: row.clinicId, details: { scopes: row.scopes, keys: row.jwks ? 'jwks' : 'jwksUri' } });
        return toDto(row);
      }, idem);
    },

    async list(actor: Actor, page: PageRequest) {
      return toPage((await q.listClients(db, actor.clinicId, page)).map(toDto), page.limit);
    },

    /** 404 for another clinic's client. */
    async get(actor: Actor, id: string): Promise<ClientDto> {
      return toDto(await owned(actor, id));
    },

    /** Name, keys (jwksUri or jwks, replacing whichever was there), scopes, status; 412 unless `expectedVersion` is current. */
    async update(actor: Actor, id: string, expectedVersion: number, patch: z.output<typeof ClientPatch>): Promise<ClientDto> {
      if (patch.jwksUri !== undefined && patch.jwks !== undefined) {
        throw new BadRequest('Give the new keys as either jwksUri or jwks, not both.', [{ path: 'body.jwks', message: 'at most one of jwksUri and jwks' }], 'validation-failed');
      }
      if (patch.jwks) await checkKeys(patch.jwks.keys);
      await checkJwksUri(patch.jwksUri);
      if (patch.scopes) checkScopesHeld(actor, patch.scopes);
      const dto = await uow.run(async (tx) => {
        const current = await q.findClient(tx, id, actor.clinicId, true);
        if (!current) throw new NotFound('client');
        if (current.version !== expectedVersion) {
          throw new PreconditionFailed(`The client is at version ${current.version}, not ${expectedVersion}; read it again and reapply your change.`);
        }
        const changes: Partial<q.ClientRow> = {};
        if (patch.name !== undefined && patch.name !== current.name) changes.name = patch.name;
        if (patch.jwksUri !== undefined && patch.jwksUri !== current.jwksUri) Object.assign(changes, { jwksUri: patch.jwksUri, jwks: null });
        if (patch.jwks !== undefined && JSON.stringify(patch.jwks) !== JSON.stringify(current.jwks)) Object.assign(changes, { jwks: patch.jwks, jwksUri: null });
        if (patch.scopes !== undefined && JSON.stringify(patch.scopes) !== JSON.stringify(current.scopes)) changes.scopes = patch.scopes;
        if (patch.status !== undefined && patch.status !== current.status) changes.status = patch.status;
        if (Object.keys(changes).length === 0) return toDto(current);
        const row = await q.updateClient(tx, id, { ...changes, updatedAt: clock.now(), updatedBy: actor.sub });
        await audit.record(tx, actor, {
          action: changes.status ? 'state-change' : 'update',
          resourceType: RESOURCE,
          resourceId: id,
          clinicId: row.clinicId,
          details: { changedFields: Object.keys(changes), version: row.version, status: row.status, scopes: row.scopes },
        });
        return toDto(row);
      });
      statusCache.delete(id);
      remoteSets.delete(id);
      return dto;
    },

    /**
     * Whether a client's issued tokens still work: false once it is disabled. Remembered per instance for
     * STATUS_CACHE_MS, so a client disabled on one instance is refused on every instance within seconds.
     */
    async isActive(clientId: string): Promise<boolean> {
      const now = Date.now();
      const hit = statusCache.get(clientId);
      if (hit && hit.until > now) return hit.active;
      const active = (await q.clientStatus(db, clientId)) === 'active';
      if (statusCache.size >= 10_000) statusCache.delete(statusCache.keys().next().value!);
      statusCache.set(clientId, { active, until: now + STATUS_CACHE_MS });
      return active;
    },

    /**
     * The token endpoint (SMART App Launch 2.x Backend Services; RFC 6749 §4.4 with RFC 7523 §2.2 client
     * authentication). `tokenUrls` are the URLs by which this endpoint is known (the assertion's `aud` must be
     * one). Every failure of client authentication, a replayed jti included, is invalid_client (SMART: "the
     * authorization server SHALL respond with an invalid_client error"); a scope the client may not have is invalid_scope.
     */
    async token(body: TokenRequestBody, tokenUrls: string[], requestId: string): Promise<TokenResponseBody> {
      if (!tokenIssuer) throw new OAuthError('temporarily_unavailable', 'This service has no signing key (AUTH_SIGNING_KEY_FILE) and issues no tokens.');
      if (!body.grant_type) throw new OAuthError('invalid_request', 'grant_type is required.');
      if (body.grant_type !== 'client_credentials') throw new OAuthError('unsupported_grant_type', 'Only grant_type=client_credentials is supported.');
      if (body.client_assertion_type !== JWT_BEARER || !body.client_assertion) {
        throw new OAuthError('invalid_client', `Authenticate with client_assertion_type=${JWT_BEARER} and a client_assertion (private_key_jwt).`);
      }
      if (!body.scope?.trim()) throw new OAuthError('invalid_request', 'scope is required (e.g. system/Patient.rs).');
      const assertion = body.client_assertion;

      let iss: unknown;
      try {
        const header = decodeProtectedHeader(assertion);
        if (!(ASSERTION_ALGORITHMS as readonly unknown[]).includes(header.alg)) throw new OAuthError('invalid_client', 'The client assertion must be signed with RS384 or ES384.');
        // SMART Backend Services: the assertion's header names the key (kid), which the client's JWK Set holds.
        if (typeof header.kid !== 'string' || header.kid.length === 0) throw new OAuthError('invalid_client', 'The client assertion\'s header must name its key (kid).');
        iss = decodeJwt(assertion).iss;
      } catch (err) {
        if (err instanceof OAuthError) throw err;
        throw new OAuthError('invalid_client', 'The client assertion is not a signed JWT.');
      }
      if (typeof iss !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(iss)) {
        throw new OAuthError('invalid_client', 'The client assertion\'s iss must be a registered client id.');
      }
      const clientId = iss.toLowerCase();
      if (body.client_id !== undefined && body.client_id.toLowerCase() !== clientId) throw new OAuthError('invalid_client', 'client_id differs from the assertion\'s issuer.');
      const client = await q.findClient(db, clientId, null);
      if (!client) throw new OAuthError('invalid_client', 'No client is registered with that id.');
      if (client.status !== 'active') throw new OAuthError('invalid_client', 'The client is disabled.');

      const now = clock.now();
      let payload: { exp?: number; jti?: unknown };
      try {
        ({ payload } = await jwtVerify(assertion, keysOf(client), {
          algorithms: [...ASSERTION_ALGORITHMS],
          issuer: iss,
          subject: iss,
          audience: tokenUrls,
          requiredClaims: ['exp', 'jti'],
          clockTolerance: CLOCK_TOLERANCE_SEC,
          currentDate: now,
        }));
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) throw new OAuthError('invalid_client', refusal(err));
        // Only the key lookup reaches out (a jwksUri): whatever failed there, the client is not authenticated. Never a
        // 500, and no detail that would tell a port scan what it found.
        throw new OAuthError('invalid_client', 'The client\'s JWK Set could not be fetched or holds no usable key.');
      }
      const nowSec = Math.floor(now.getTime() / 1000);
      if (payload.exp! > nowSec + MAX_ASSERTION_LIFETIME_SEC + CLOCK_TOLERANCE_SEC) {
        throw new OAuthError('invalid_client', `The client assertion's exp is more than ${MAX_ASSERTION_LIFETIME_SEC / 60} minutes ahead.`);
      }
      if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 255) {
        throw new OAuthError('invalid_client', 'The client assertion\'s jti must be a string of 1..255 characters.');
      }
      // Spent as soon as the signature holds, whatever follows: an assertion is good for one request only.
      const expiresAt = new Date((payload.exp! + CLOCK_TOLERANCE_SEC) * 1000);
      if (!(await q.claimJti(db, client.id, payload.jti, expiresAt))) {
        throw new OAuthError('invalid_client', 'The client assertion\'s jti was used before (a replay).');
      }

      const requested = [...new Set(body.scope.split(' ').filter(Boolean))];
      const granted = new Set<string>();
      for (const scope of requested) {
        const services = serviceScopesOf(scope);
        if (!services) throw new OAuthError('invalid_scope', `${scope.slice(0, 80)} is not a scope of this service.`);
        if (!permits(client.scopes, scope)) throw new OAuthError('invalid_scope', `${scope} is beyond what the client is registered for.`);
        for (const s of services) granted.add(s);
      }
      const issued = await tokenIssuer.issue({ sub: client.id, scope: [...granted].join(' '), clinicId: client.clinicId }, now);
      // Who was given access to what, and until when (21 CFR 11.10(d)): the client is the actor; never the token.
      await audit.record(
        db,
        { sub: client.id, clinicId: client.clinicId, scopes: new Set<string>(), requestId },
        { action: 'create', resourceType: 'access-token', clinicId: client.clinicId, details: { clientId: client.id, scope: [...granted], expiresIn: issued.expiresIn } },
      );
      return { access_token: issued.token, token_type: 'bearer', expires_in: issued.expiresIn, scope: requested.join(' ') };
    },
  };
}
