export const SCOPES = [
  'patients:read',
  'patients:write',
  'clinical:read',
  'clinical:write',
  'lots:read',
  'lots:write',
  'reports:read',
  'audit:read',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Who acts: from a verified token. `clinicId` is the tenant; null for supplier or inspector tokens. */
export interface Principal {
  sub: string;
  clinicId: string | null;
  scopes: ReadonlySet<string>;
}

/** What every service call carries: the principal and the request it came from (for the audit log). */
export interface Actor extends Principal {
  requestId: string;
}
