/** What an audit entry records (21 CFR 11.10(e)): who is in the entry's row; this is what they did to which record. */
export type AuditAction = 'create' | 'read' | 'search' | 'update' | 'state-change' | 'export';

export interface AuditEntry {
  action: AuditAction;
  resourceType: string;
  resourceId?: string | null;
  /** The clinic the record belongs to (null for supplier records such as donors and lots). */
  clinicId?: string | null;
  /** `incomplete`: an export whose download ended before its last row (its `success` entry was written first). */
  outcome?: 'success' | 'incomplete';
  details?: Record<string, unknown>;
}
