import { Readable } from 'node:stream';
import type { Actor, Scope } from '../../auth/principal.js';
import type { Db } from '../../db/client.js';
import { AppError, BadRequest, Forbidden, NotFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { DateTimeInput } from '../../shared/schemas.js';
import type { AuditLog } from '../audit/audit.service.js';
import { toFhirGroup, type FhirResource } from '../fhir/fhir.mappers.js';
import type { LotsService } from '../lots/lots.service.js';
import * as q from './bulk.queries.js';

/** What each exportable type needs of the token (the scope of the facade's read of that type). */
export const EXPORT_SCOPES = {
  Patient: 'patients:read',
  Procedure: 'clinical:read',
  Observation: 'clinical:read',
  AdverseEvent: 'clinical:read',
  BiologicallyDerivedProduct: 'lots:read',
} as const satisfies Record<string, Scope>;
export type ExportType = keyof typeof EXPORT_SCOPES;
export const EXPORT_TYPES = Object.keys(EXPORT_SCOPES) as ExportType[];

/** The NDJSON format and the abbreviations Bulk Data 2.0 asks servers to accept for it. */
export const NDJSON = 'application/fhir+ndjson';
const OUTPUT_FORMATS = new Set([NDJSON, 'application/ndjson', 'ndjson']);

export type ExportKind = 'system' | 'patient' | 'group';

export interface KickOff {
  kind: ExportKind;
  /** The lot of a group export. */
  groupId?: string;
  /** `_type` values as given (each may hold a comma list). */
  types: string[];
  since?: string;
  outputFormat?: string;
  /** The kick-off request's URL, as the manifest's `request`. */
  requestUrl: string;
}

/** A job's state as its status URL tells it. */
export type JobStatus =
  | { state: 'in-progress'; progress: string; retryAfterSeconds: number }
  | { state: 'completed'; transactionTime: Date; requestUrl: string; expiresAt: Date; files: { id: string; kind: 'output' | 'error'; type: string; count: number }[] }
  | { state: 'failed'; error: string };

export interface BulkDeps {
  db: Db;
  audit: AuditLog;
  lots: Pick<LotsService, 'get'>;
}

export type BulkService = ReturnType<typeof createBulkService>;

/** Exports one requester (token subject and clinic) may have queued or running at once. */
export const MAX_OPEN_JOBS = 5;

/** FHIR Bulk Data Access 2.0 kick-off, status, cancel and files; the jobs run in bulk.worker.ts. */
export function createBulkService({ db, audit, lots }: BulkDeps) {
  /** The types to export: `_type` (each checked against the token's scopes, 403 when one is missing), else every type the token may read. */
  function typesOf(actor: Actor, given: string[]): ExportType[] {
    const named = given.flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '');
    if (given.length > 0 && (named.length === 0 || given.flatMap((v) => v.split(',')).some((t) => t.trim() === ''))) {
      throw new BadRequest('_type names resource types, comma-separated, none empty.', [{ path: 'querystring._type', message: 'an empty type' }], 'unsupported-type');
    }
    if (named.length === 0) {
      const readable = EXPORT_TYPES.filter((t) => actor.scopes.has(EXPORT_SCOPES[t]));
      if (readable.length === 0) throw new Forbidden(`Exporting needs the read scope of at least one type (${[...new Set(Object.values(EXPORT_SCOPES))].join(', ')}).`, 'insufficient-scope');
      return readable;
    }
    const unknown = named.filter((t) => !(EXPORT_TYPES as string[]).includes(t));
    if (unknown.length) {
      throw new BadRequest(`This server exports ${EXPORT_TYPES.join(', ')}; not ${unknown.join(', ')}.`, [{ path: 'querystring._type', message: `unsupported type ${unknown.join(', ')}` }], 'unsupported-type');
    }
    const types = EXPORT_TYPES.filter((t) => named.includes(t)); // each once, in the server's order
    const missing = [...new Set(types.map((t) => EXPORT_SCOPES[t]).filter((s) => !actor.scopes.has(s)))];
    if (missing.length) throw new Forbidden(`Exporting ${types.join(', ')} needs the scope ${missing.join(' and ')}, which the token lacks.`, 'insufficient-scope');
    return types;
  }

  function sinceOf(since: string | undefined): Date | null {
    if (since === undefined) return null;
    const parsed = DateTimeInput.safeParse(since);
    if (!parsed.success) {
      throw new BadRequest('_since must be a FHIR instant: a date and time with seconds and a time zone (2026-11-02T09:30:00Z).', [{ path: 'querystring._since', message: 'not an instant' }]);
    }
    return new Date(parsed.data);
  }

  async function ownJob(actor: Actor, id: string): Promise<q.JobRow> {
    const job = await q.findOwnJob(db, id, actor.sub, actor.clinicId);
    if (!job) throw new NotFound('export job');
    return job;
  }

  return {
    /** Starts an export job (status `queued`), audited as an export naming who, what and for which clinic; answers its id. */
    async kickOff(actor: Actor, k: KickOff): Promise<string> {
      if (k.outputFormat !== undefined && !OUTPUT_FORMATS.has(k.outputFormat)) {
        throw new BadRequest(`_outputFormat ${k.outputFormat} is not offered; this server writes ${NDJSON}.`, [{ path: 'querystring._outputFormat', message: 'unsupported format' }], 'unsupported-format');
      }
      const types = typesOf(actor, k.types);
      const since = sinceOf(k.since);
      if (k.kind === 'group') await lots.get(k.groupId!); // 404 for an unknown lot
      const id = newId();
      await db.transaction(async (tx) => {
        // One requester cannot fill the queue: at most MAX_OPEN_JOBS of its jobs queued or running (serialized per
        // requester by an advisory lock, so the count holds on every instance).
        if ((await q.lockOwnerAndCountOpen(tx, actor.sub, actor.clinicId)) >= MAX_OPEN_JOBS) {
          throw new AppError(429, 'too-many-exports', 'Too Many Requests', `At most ${MAX_OPEN_JOBS} exports of one requester are queued or running at once; wait for one to finish or cancel one (DELETE its status URL).`);
        }
        await q.insertJob(tx, { id, ownerSub: actor.sub, clinicId: actor.clinicId, kind: k.kind, groupId: k.groupId ?? null, types, since, requestUrl: k.requestUrl });
        await audit.record(tx, actor, {
          action: 'export',
          resourceType: 'bulk-export',
          resourceId: id,
          clinicId: actor.clinicId,
          details: { report: 'fhir-bulk-export', kind: k.kind, types, ...(k.groupId ? { lotId: k.groupId } : {}), ...(since ? { since: since.toISOString() } : {}), clinicId: actor.clinicId },
        });
      });
      return id;
    },

    async status(actor: Actor, id: string): Promise<JobStatus> {
      const job = await ownJob(actor, id);
      if (job.status === 'queued') return { state: 'in-progress', progress: 'queued', retryAfterSeconds: 5 };
      if (job.status === 'running') return { state: 'in-progress', progress: job.progress ?? 'starting', retryAfterSeconds: 2 };
      if (job.status === 'failed') return { state: 'failed', error: job.error ?? 'The export failed.' };
      const files = await q.filesOf(db, job.id, job.attempt);
      return {
        state: 'completed',
        transactionTime: job.transactionTime!,
        requestUrl: job.requestUrl,
        expiresAt: job.expiresAt!,
        files: files.map((f) => ({ id: f.id, kind: f.kind as 'output' | 'error', type: f.type, count: f.count })),
      };
    },

    /** Cancels a job (queued, running or done): its files are deleted and its status URL answers 404 from then on. */
    async cancel(actor: Actor, id: string): Promise<void> {
      const job = await ownJob(actor, id);
      await db.transaction((tx) => q.cancelJob(tx, job.id));
    },

    /** A completed job's file for the token that started it, streamed a chunk at a time; 404 otherwise. */
    async file(actor: Actor, fileId: string): Promise<Readable> {
      const file = await q.findOwnFile(db, fileId, actor.sub, actor.clinicId);
      if (!file) throw new NotFound('export file');
      const chunks = file.chunks;
      async function* read() {
        for (let seq = 0; seq < chunks; seq++) {
          const data = await q.chunkOf(db, file!.id, seq);
          if (!data) throw new Error('export file chunk missing (the job was cancelled or expired)');
          yield data;
        }
      }
      return Readable.from(read(), { objectMode: false });
    },

    /** `Group/{lotId}`: the lot's recipients (procedures that stand) as an actual Group of persons; a clinic sees its own. */
    async group(actor: Actor, lotId: string): Promise<FhirResource> {
      const lot = await lots.get(lotId);
      const members = await q.lotRecipients(db, lotId, actor.clinicId);
      await audit.record(db, actor, { action: 'read', resourceType: 'lot', resourceId: lotId, clinicId: actor.clinicId, details: { fhir: 'Group', members: members.length } });
      return toFhirGroup(lot, members);
    },
  };
}
