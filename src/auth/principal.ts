import { Forbidden } from '../shared/errors.js';

export const SCOPES = [
  'patients:read',
  'patients:write',
  'clinical:read',
  'clinical:write',
  'lots:read',
  'lots:write',
  'reports:read',
  'audit:read',
  'events:read',
  'webhooks:read',
  'webhooks:write',
  'clients:write',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Who acts: from a verified token. `clinicId` is the tenant; null for supplier or inspector tokens. */
export interface Principal {
  sub: string;
  clinicId: string | null;
  scopes: ReadonlySet<string>;
  /** Set for a token this service issued to a registered client (SMART Backend Services): that client's id (= sub). */
  clientId?: string;
}

/** What every service call carries: the principal and the request it came from (for the audit log). */
export interface Actor extends Principal {
  requestId: string;
}

/** The caller's clinic, for records that belong to one. Tokens without `clinic_id` cannot act on them (403 clinic-required). */
export function clinicOf(actor: Actor): string {
  if (!actor.clinicId) {
    throw new Forbidden('This operation acts on one clinic\'s records; the token has no clinic_id claim.', 'clinic-required');
  }
  return actor.clinicId;
}
