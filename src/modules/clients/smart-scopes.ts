import { SCOPES, type Scope } from '../../auth/principal.js';

/**
 * SMART App Launch 2.x system scopes (read and search: `.rs`) this service grants, and the service scopes each
 * stands for. A Group is a lot's recipients (a report), so `system/Group.rs` is `reports:read`.
 */
export const SMART_SCOPE_MAP = {
  'system/Patient.rs': ['patients:read'],
  'system/Procedure.rs': ['clinical:read'],
  'system/Observation.rs': ['clinical:read'],
  'system/AdverseEvent.rs': ['clinical:read'],
  'system/BiologicallyDerivedProduct.rs': ['lots:read'],
  'system/Group.rs': ['reports:read'],
  'system/*.rs': ['patients:read', 'clinical:read', 'lots:read', 'reports:read'],
} as const satisfies Record<string, readonly Scope[]>;

export type SmartScope = keyof typeof SMART_SCOPE_MAP;
export const SMART_SCOPES = Object.keys(SMART_SCOPE_MAP) as SmartScope[];

/** Every scope a client may be registered for or ask for: the SMART ones and the service's own. */
export const CLIENT_SCOPES = [...SMART_SCOPES, ...SCOPES] as const;

/** The service scopes a SMART or service scope stands for; undefined for a scope this service does not know. */
export function serviceScopesOf(scope: string): readonly Scope[] | undefined {
  if (Object.hasOwn(SMART_SCOPE_MAP, scope)) return SMART_SCOPE_MAP[scope as SmartScope];
  return (SCOPES as readonly string[]).includes(scope) ? [scope as Scope] : undefined;
}

/** The service scopes a list of scopes stands for, together. */
export function expandScopes(scopes: readonly string[]): Set<Scope> {
  return new Set(scopes.flatMap((s) => serviceScopesOf(s) ?? []));
}

/**
 * Whether a registration allows a requested scope. A SMART scope: registered as such, or `system/*.rs` is, or
 * every service scope it stands for is registered as a service scope (`system/Observation.rs` is not allowed by
 * `system/Procedure.rs` alone, though both read clinical records). A service scope: registered, or stood for by
 * a registered SMART scope (`patients:read` by `system/Patient.rs`).
 */
export function permits(registered: readonly string[], requested: string): boolean {
  if (registered.includes(requested)) return true;
  if (Object.hasOwn(SMART_SCOPE_MAP, requested)) {
    return registered.includes('system/*.rs') || SMART_SCOPE_MAP[requested as SmartScope].every((s) => registered.includes(s));
  }
  return expandScopes(registered).has(requested as Scope);
}
