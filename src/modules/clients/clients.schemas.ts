import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeOutput, NonEmpty, Uuid, Version, pageOf } from '../../shared/schemas.js';
import { CLIENT_SCOPES } from './smart-scopes.js';

const B64URL = /^[A-Za-z0-9_-]+$/;
const b64url = (max: number) => z.string().min(1).max(max).regex(B64URL, 'must be base64url');
/** Bytes of an unpadded base64url text, ignoring leading zero bytes (an RSA modulus may carry one). */
const bitsOf = (s: string) => {
  const bytes = Buffer.from(s, 'base64url');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return (bytes.length - i) * 8;
};

const keyCommon = {
  kid: NonEmpty(200).optional(),
  use: z.literal('sig').optional(),
  key_ops: z.array(z.literal('verify')).min(1).max(1).optional(),
  ext: z.boolean().optional(),
  x5c: z.array(z.string().max(16_000).regex(/^[A-Za-z0-9+/=]+$/)).max(10).optional(),
  x5t: b64url(100).optional(),
  'x5t#S256': b64url(100).optional(),
};
const RsaKey = z.strictObject({
  kty: z.literal('RSA'),
  alg: z.literal('RS384').optional(),
  n: b64url(2100).refine((n) => bitsOf(n) >= 2048, 'an RSA modulus of at least 2048 bits'),
  e: b64url(12),
  ...keyCommon,
});
const EcKey = z.strictObject({
  kty: z.literal('EC'),
  alg: z.literal('ES384').optional(),
  crv: z.literal('P-384'),
  x: b64url(64),
  y: b64url(64),
  ...keyCommon,
});
export const PublicJwk = z
  .discriminatedUnion('kty', [RsaKey, EcKey])
  .meta({ id: 'ClientPublicJwk', description: 'A public key that can verify RS384 (RSA, 2048 bits or more) or ES384 (EC P-384) signatures. Private members (d, p, q, dp, dq, qi, oth, k) and other unknown members are refused (400, naming the member)' });
export type PublicJwkInput = z.infer<typeof PublicJwk>;

export const Jwks = z
  .strictObject({ keys: z.array(PublicJwk).min(1).max(10) })
  .meta({ id: 'ClientJwks', description: 'A JWK Set (RFC 7517) of the client\'s public keys' });

const JwksUri = z
  .string()
  .max(2000)
  .regex(/^https?:\/\/[!-~]+$/, 'an http(s) URL in printable ASCII')
  .refine((u) => URL.canParse(u), 'not a URL')
  .meta({
    description: 'Where the client publishes its JWK Set: https on a public address (422 `jwks-uri-refused` otherwise; WEBHOOK_ALLOW_PRIVATE_URLS relaxes this for development), fetched when it asks for a token',
    example: 'https://backend.example.org/.well-known/jwks.json',
  });

const ClientScopes = z
  .array(z.enum(CLIENT_SCOPES))
  .min(1)
  .max(CLIENT_SCOPES.length)
  .refine((s) => new Set(s).size === s.length, 'each scope once')
  .meta({ description: 'What the client may ask for: SMART v2 system scopes (`system/Patient.rs`...) and service scopes (`patients:read`...)' });

const ClientStatus = z.enum(['active', 'disabled']);

export const ClientCreate = z
  .strictObject({
    name: NonEmpty(200),
    jwksUri: JwksUri.optional(),
    jwks: Jwks.optional(),
    scopes: ClientScopes,
    clinicId: NonEmpty(64)
      .nullable()
      .optional()
      .meta({ description: 'The clinic the client acts for (its tokens carry this clinic_id). A clinic token registers for its own clinic only; absent: the token\'s clinic, or none' }),
  })
  .meta({
    id: 'ClientCreate',
    description: 'Exactly one of `jwksUri` and `jwks`.',
    example: {
      name: 'Registry export job',
      jwks: { keys: [{ kty: 'EC', crv: 'P-384', x: 'KFNhc0rGxlBv7_Zq0Jwib3UkvOHqLrvR3jpNWsr1Ufvvcvow-YwrTyBm_TtXu4yc', y: 'zYh1S3LyJMY1AsxIXT85oJ_T85l9jnqgChp_Em6mEgMOoiqFUyb0clU0H-Hl8wBd', kid: 'k1' }] },
      scopes: ['system/Patient.rs', 'system/Procedure.rs'],
      clinicId: 'clinic-a',
    },
  });

export const ClientPatch = z
  .strictObject({
    name: NonEmpty(200).optional(),
    jwksUri: JwksUri.optional().meta({ description: 'Replaces the keys with this URL (the inline `jwks` is cleared)' }),
    jwks: Jwks.optional().meta({ description: 'Replaces the keys with these (the `jwksUri` is cleared)' }),
    scopes: ClientScopes.optional(),
    status: ClientStatus.optional().meta({ description: '`disabled`: no new token, and the issued ones stop working within seconds (and expire within 5 min); `active` again re-enables' }),
  })
  .meta({ id: 'ClientPatch', example: { status: 'disabled' } });

export const Client = z
  .object({
    clientId: Uuid.meta({ description: 'The `iss` and `sub` of the client\'s assertions' }),
    name: z.string(),
    clinicId: z.string().nullable(),
    jwksUri: z.string().nullable(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).nullable(),
    scopes: z.array(z.string()),
    status: ClientStatus,
    version: Version,
    createdAt: DateTimeOutput,
    createdBy: z.string(),
    updatedAt: DateTimeOutput,
    updatedBy: z.string(),
  })
  .meta({ id: 'Client' });
export type ClientDto = z.infer<typeof Client>;

export const ClientPage = pageOf(Client).meta({ id: 'ClientPage' });
export const ClientParams = z.strictObject({ id: Uuid });
export const ClientListQuery = z.strictObject(pageQuery);

// ---- POST /auth/token (RFC 6749 §4.4, RFC 7523 §2.2, SMART App Launch 2.x Backend Services) ----

/** Each parameter once (RFC 6749 §3.2: a repeated one is invalid_request, as the validation of this schema makes it). */
export const TokenRequest = z
  .object({
    grant_type: z.string().max(200).optional().meta({ description: '`client_credentials`' }),
    client_assertion_type: z.string().max(200).optional().meta({ description: '`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`' }),
    client_assertion: z.string().max(16_000).optional().meta({ description: 'A JWT signed with RS384 or ES384 by a registered key: iss = sub = client id, aud = this token URL, exp at most 5 min ahead, a jti never used before' }),
    scope: z.string().max(2000).optional().meta({ description: 'Space-separated: SMART v2 system scopes (`system/Patient.rs`...) or service scopes', example: 'system/Patient.rs system/Procedure.rs' }),
    client_id: z.string().max(200).optional().meta({ description: 'Optional; when sent, it must be the assertion\'s issuer' }),
    client_secret: z.string().max(2000).optional().meta({ description: 'Refused (invalid_request): clients authenticate with client_assertion only (RFC 6749 §2.3, one method per request)' }),
  })
  .meta({
    id: 'TokenRequest',
    example: {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: 'eyJhbGciOiJFUzM4NCIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJpc3MiOiIuLi4ifQ.c2lnbmF0dXJl',
      scope: 'system/Patient.rs system/Procedure.rs',
    },
  });
export type TokenRequestBody = z.infer<typeof TokenRequest>;

export const TokenResponse = z
  .object({
    access_token: z.string(),
    token_type: z.literal('bearer'),
    expires_in: z.int().meta({ description: 'Seconds; at most 300' }),
    scope: z.string().meta({ description: 'What was granted, in the form asked for' }),
  })
  .meta({ id: 'TokenResponse' });
export type TokenResponseBody = z.infer<typeof TokenResponse>;

export const OAuthErrorBody = z
  .object({
    error: z.enum(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'server_error', 'temporarily_unavailable']),
    error_description: z.string().optional(),
  })
  .meta({ id: 'OAuthError', description: 'RFC 6749 §5.2' });

export const SmartConfiguration = z
  .object({
    issuer: z.string(),
    jwks_uri: z.string(),
    token_endpoint: z.string(),
    token_endpoint_auth_methods_supported: z.array(z.string()),
    token_endpoint_auth_signing_alg_values_supported: z.array(z.string()),
    grant_types_supported: z.array(z.string()),
    scopes_supported: z.array(z.string()),
    capabilities: z.array(z.string()),
  })
  .meta({ id: 'SmartConfiguration', description: 'SMART App Launch 2.x discovery (Backend Services only)' });

export const JwkSet = z
  .object({ keys: z.array(z.record(z.string(), z.unknown())) })
  .meta({ id: 'JwkSet', description: 'The public keys that sign this service\'s own access tokens' });
