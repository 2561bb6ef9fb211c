import type { Executor } from '../../db/client.js';
import type { Actor } from '../../auth/principal.js';
import { auditEvents } from './audit.table.js';

export type AuditAction = 'create' | 'read' | 'search' | 'update' | 'state-change' | 'export';

export interface AuditEntry {
  action: AuditAction;
  resourceType: string;
  resourceId?: string | null;
  /** The clinic the record belongs to (null for supplier records such as donors and lots). */
  clinicId?: string | null;
  outcome?: 'success';
  details?: Record<string, unknown>;
}

export interface AuditLog {
  /** Appends entries with the caller's executor, so they commit or roll back with the change they describe. */
  record(exec: Executor, actor: Actor, ...entries: AuditEntry[]): Promise<void>;
}

export function createAuditLog(): AuditLog {
  return {
    async record(exec, actor, ...entries) {
      if (entries.length === 0) return;
      await exec.insert(auditEvents).values(
        entries.map((e) => ({
          actorSub: actor.sub,
          actorClinicId: actor.clinicId,
          action: e.action,
          resourceType: e.resourceType,
          resourceId: e.resourceId ?? null,
          clinicId: e.clinicId ?? null,
          requestId: actor.requestId,
          outcome: e.outcome ?? 'success',
          details: e.details ?? null,
        })),
      );
    },
  };
}
