import type { Db, Pool } from '../../db/client.js';
import { newId } from '../../shared/ids.js';
import { toAdverseEventDto } from '../adverse-events/adverse-events.service.js';
import { toFhirAdverseEvent, toFhirObservation, toFhirPatient, toFhirProcedure, type FhirResource } from '../fhir/fhir.mappers.js';
import { toOutcomeScore } from '../outcomes/outcomes.service.js';
import { toPatientDto } from '../patients/patients.service.js';
import { toProcedureDto } from '../procedures/procedures.service.js';
import { createPoller } from '../../shared/poller.js';
import * as q from './bulk.queries.js';

/** How this instance runs export jobs (BULK_* settings). */
export interface BulkOptions {
  /** How often an idle instance looks for a job (ms); 0: this instance runs none (others do). Default 0 (tests drive `tick`). */
  pollIntervalMs?: number;
  /** Jobs running at once across every instance (BULK_MAX_CONCURRENT_JOBS). Default 2. */
  maxConcurrentJobs?: number;
  /** A running job's lease (ms): renewed every third of it; a dead runner's job is taken over after it. Default 30 s. */
  leaseMs?: number;
  /** How long a finished job's files are kept (ms). Default 24 h. */
  retentionMs?: number;
  /** The most bytes of NDJSON a stored chunk holds. Default 1 MiB (tests set a few bytes to write many chunks). */
  chunkBytes?: number;
}

export const DEFAULT_RETENTION_MS = 24 * 3_600_000;
/**
 * Rows fetched from a cursor at a time. Small, so a row is read, mapped and written before the next young-
 * generation GC or the one after: a row alive at two scavenges is promoted to the old generation, and at 1,000
 * rows a batch that promoted garbage let V8 grow the heap by ~45 MB more during a 2 M-row export (issue 17).
 */
const BATCH = 100;
const CHUNK_BYTES = 1024 * 1024;
/** Attempts a job gets (a runner that died, or failed on a transient error) before it is failed. */
const MAX_ATTEMPTS = 3;
const SWEEP_EVERY_MS = 60_000;

/** Maps one type's rows to FHIR exactly as the facade's reads do (same module DTO mappers, same FHIR mappers). */
const MAPPERS: { [T in q.RowType]: (row: q.ExportRows[T]) => FhirResource } = {
  Patient: (r) => toFhirPatient(toPatientDto(r)),
  Procedure: (r) => toFhirProcedure(toProcedureDto(r)),
  Observation: (r) => toFhirObservation(toOutcomeScore(r)),
  // reportOverdue (judged at now) is not part of the FHIR resource.
  AdverseEvent: (r) => toFhirAdverseEvent(toAdverseEventDto(r, new Date())),
};

export interface BulkWorker {
  /** One pass: housekeeping now and then, then claim and start jobs while there is room. Answers the jobs started. */
  tick(): Promise<number>;
  /** Resolves when the jobs this instance runs have ended. */
  idle(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

interface Log {
  warn(obj: object, msg: string): void;
}

class Aborted extends Error {}

/**
 * An NDJSON file stored as chunks of whole lines, each at most `chunkBytes` (a longer line is a chunk of its
 * own). Lines are encoded into one of two chunk buffers allocated with the file, one filling while the other is
 * being written: no line is kept as a string once encoded, and no buffer is allocated per chunk (issue 17: the
 * strings kept for a chunk, joined, then copied into a new Buffer, cost ~75 MB of RSS in a 2 M-row export).
 */
class FileWriter {
  private filling: Buffer;
  /** The other buffer, once its write has ended (undefined before the first chunk is written, and while it is). */
  private spare: Buffer | undefined;
  private used = 0;
  private seq = 0;
  private pending: Promise<void> = Promise.resolve();
  count = 0;
  bytes = 0;

  constructor(
    private readonly db: Db,
    readonly id: string,
    private readonly chunkBytes: number,
  ) {
    this.filling = Buffer.allocUnsafe(chunkBytes);
  }

  async line(json: string): Promise<void> {
    const length = Buffer.byteLength(json, 'utf8') + 1;
    if (this.used + length > this.filling.length) {
      await this.flush();
      if (length > this.filling.length) {
        await this.write(Buffer.from(`${json}\n`, 'utf8'));
        this.count++;
        return;
      }
    }
    this.used += this.filling.write(json, this.used, 'utf8');
    this.filling[this.used++] = 0x0a;
    this.count++;
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.filling;
    const data = full.subarray(0, this.used);
    this.used = 0;
    // One write in flight while the next chunk fills: the buffer that was being written fills next.
    await this.pending;
    this.filling = this.spare ?? Buffer.allocUnsafe(this.chunkBytes);
    this.spare = undefined;
    this.start(data, () => (this.spare = full));
  }

  /** A line longer than a chunk: written alone, after the chunk before it. */
  private async write(data: Buffer): Promise<void> {
    await this.pending;
    this.start(data, () => undefined);
  }

  private start(data: Buffer, done: () => void): void {
    this.bytes += data.length;
    this.pending = q.insertChunk(this.db, this.id, this.seq++, data).then(done);
    this.pending.catch(() => undefined); // awaited at the next flush or at close
  }

  async close(): Promise<void> {
    await this.flush();
    await this.pending;
    await q.finishFile(this.db, this.id, { count: this.count, bytes: this.bytes, chunks: this.seq });
  }
}

/**
 * Runs export jobs from any instance (contract "Bulk Data"). A job is claimed in PostgreSQL (SKIP LOCKED,
 * at most `maxConcurrentJobs` holding a live lease across instances), read from one REPEATABLE READ snapshot
 * through cursors, and written as NDJSON chunks; the lease is renewed while it runs. A process killed mid-job
 * leaves a lease that runs out: another instance (or this one, restarted) claims the job again and starts it
 * over as the next attempt, deleting the dead attempt's files; readers only ever see a completed attempt's.
 */
export function createBulkWorker(deps: { db: Db; pool: Pool; log: Log; products: (ids: string[]) => Promise<FhirResource[]> }, opts: BulkOptions): BulkWorker {
  const { db, pool, log } = deps;
  const pollMs = opts.pollIntervalMs ?? 0;
  const max = opts.maxConcurrentJobs ?? 2;
  const leaseMs = opts.leaseMs ?? 30_000;
  const retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
  const chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
  const running = new Set<Promise<void>>();
  let lastSweep = 0;
  /** Set by stop(): running jobs end at their next batch and go back to the queue for another instance. */
  let stopping = false;

  async function run(job: q.JobRow): Promise<void> {
    const token = job.leaseToken!;
    let lost = false;
    let progress: string | null = 'starting';
    const beat = async () => {
      try {
        if (!(await q.heartbeat(db, job.id, token, leaseMs, progress))) lost = true;
      } catch (err) {
        log.warn({ err: { code: (err as { code?: string }).code } }, 'bulk export heartbeat failed');
      }
    };
    let beating: Promise<void> = Promise.resolve();
    const heartbeat = setInterval(() => {
      beating = beat();
    }, Math.max(50, Math.floor(leaseMs / 3)));
    heartbeat.unref();
    const check = () => {
      if (lost || stopping) throw new Aborted();
    };
    try {
      // A dead attempt's files go first: only this attempt's will be listed.
      await q.deleteFiles(db, job.id, { except: job.attempt });
      const filter: q.ExportFilter = { clinicId: job.clinicId, since: job.since, lotId: job.kind === 'group' ? job.groupId : null };
      const snapshot = await q.openSnapshot(pool);
      try {
        if (!(await q.setTransactionTime(db, job.id, token, snapshot.transactionTime))) throw new Aborted();
        const totals = new Map<string, number>();
        for (const type of job.types) totals.set(type, await snapshot.count(type as q.RowType, filter));
        const total = [...totals.values()].reduce((a, b) => a + b, 0);
        let done = 0;
        const say = (type: string) => {
          progress = `${total ? Math.floor((done / total) * 100) : 100}% (${type}: ${done.toLocaleString('en')} of ${total.toLocaleString('en')} resources)`;
        };
        let seq = 0;
        let errors: FileWriter | undefined;
        const problem = async (type: string, id: string, err: unknown) => {
          if (!errors) {
            errors = new FileWriter(db, newId(), chunkBytes);
            await q.insertFile(db, { id: errors.id, jobId: job.id, attempt: job.attempt, seq: 10_000, kind: 'error', type: 'OperationOutcome' });
          }
          const outcome = {
            resourceType: 'OperationOutcome',
            issue: [{ severity: 'error', code: 'exception', diagnostics: `${type}/${id} could not be exported (${(err as { name?: string }).name ?? 'error'}).` }],
          };
          await errors.line(JSON.stringify(outcome));
        };
        for (const type of job.types) {
          check();
          say(type);
          const file = new FileWriter(db, newId(), chunkBytes);
          await q.insertFile(db, { id: file.id, jobId: job.id, attempt: job.attempt, seq: seq++, kind: 'output', type });
          if (type === 'BiologicallyDerivedProduct') {
            for await (const ids of snapshot.lotIds(filter, 200)) {
              check();
              for (const resource of await deps.products(ids)) await file.line(JSON.stringify(resource));
              done += ids.length;
              say(type);
            }
          } else {
            const rowType = type as q.RowType;
            const map = MAPPERS[rowType] as (row: unknown) => FhirResource;
            let read = 0;
            for await (const rows of snapshot.rows(rowType, filter, BATCH)) {
              read += rows.length;
              check();
              for (const row of rows) {
                let json: string | undefined;
                try {
                  json = JSON.stringify(map(row));
                } catch (err) {
                  await problem(type, (row as { id: string }).id, err);
                }
                if (json !== undefined) await file.line(json);
              }
              done += rows.length;
              say(type);
            }
            // Never a complete manifest of an incomplete file: the snapshot's own count must match what was read.
            const expected = totals.get(type);
            if (read !== expected) throw new Error(`the ${type} cursor ended after ${read} of ${expected} rows`);
          }
          await file.close();
        }
        if (errors) await errors.close();
      } finally {
        await snapshot.close();
      }
      check();
      await beating;
      if (!(await q.finishJob(db, job.id, token, { status: 'completed', ttlMs: retentionMs }))) throw new Aborted();
    } catch (err) {
      await beating;
      if (err instanceof Aborted || lost) {
        // Cancelled, taken over, or this instance is stopping: this attempt's files go (a takeover deletes them too).
        if (lost) await q.deleteFiles(db, job.id, { attempt: job.attempt }).catch(() => undefined);
        else await q.finishJob(db, job.id, token, { status: 'queued', ttlMs: retentionMs }).catch(() => undefined);
        return;
      }
      log.warn({ err: { code: (err as { code?: string }).code, name: (err as Error).name }, jobId: job.id, attempt: job.attempt }, 'bulk export attempt failed');
      const again = job.attempt < MAX_ATTEMPTS;
      await q.deleteFiles(db, job.id, { attempt: job.attempt }).catch(() => undefined);
      await q
        .finishJob(db, job.id, token, { status: again ? 'queued' : 'failed', error: again ? undefined : 'The export failed; start it again.', ttlMs: retentionMs })
        .catch(() => undefined);
    } finally {
      clearInterval(heartbeat);
    }
  }

  function launch(job: q.JobRow) {
    const p: Promise<void> = run(job)
      .catch((err: unknown) => log.warn({ err: { code: (err as { code?: string }).code } }, 'bulk export job ended badly; its lease will run out'))
      .finally(() => {
        running.delete(p);
        kick();
      });
    running.add(p);
  }

  async function tick(): Promise<number> {
    if (Date.now() - lastSweep >= SWEEP_EVERY_MS) {
      lastSweep = Date.now();
      await q.sweep(db, MAX_ATTEMPTS);
    }
    let started = 0;
    while (running.size < max) {
      const job = await db.transaction((tx) => q.claimJob(tx, max, leaseMs));
      if (!job) break;
      launch(job);
      started++;
    }
    return started;
  }

  const poller = createPoller(
    async () => {
      await tick();
    },
    { intervalMs: pollMs, log, failure: 'bulk export poll failed; will retry' },
  );
  // A job ended: a slot is free, look for a queued job now.
  const kick = () => poller.kick();

  return {
    tick,
    async idle() {
      while (running.size) await Promise.all([...running]);
    },
    start: () => poller.start(),
    async stop() {
      stopping = true;
      await poller.stop();
      // Running jobs stop at their next batch; their leases run out and another instance takes them over.
      while (running.size) await Promise.all([...running]);
    },
  };
}
