import type { Db, Tx } from '../../db/client.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import { clinicOf, type Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { toPage, type PageRequest } from '../../shared/paging.js';
import type { AuditLog } from '../audit/audit.service.js';
import type { EventLog, NewEvent } from '../events/events.service.js';
import type { LotsService } from '../lots/lots.service.js';
import * as nq from './recall-notices.queries.js';

const toNoticeDto = (n: nq.NoticeRow) => ({
  id: n.id,
  lotId: n.lotId,
  clinicId: n.clinicId,
  recallReason: n.recallReason,
  recalledAt: n.recalledAt.toISOString(),
  createdAt: n.createdAt.toISOString(),
  acknowledged: n.acknowledgedAt !== null,
  acknowledgedAt: n.acknowledgedAt?.toISOString() ?? null,
  acknowledgedBy: n.acknowledgedBy,
  barcodes: n.barcodes,
});

export interface RecallNoticesDeps {
  db: Db;
  uow: UnitOfWork;
  audit: AuditLog;
  /** A notice made tells `recall-notice.created`, its first acknowledgement `recall-notice.acknowledged`. */
  events: EventLog;
  clock: Clock;
  /** Whether a lot exists (404 otherwise). */
  lots: Pick<LotsService, 'counts'>;
}

export type RecallNoticesService = ReturnType<typeof createRecallNoticesService>;

/** A notice's event: the notified clinic's, with ids and barcodes only (never the recall reason text). */
function noticeEvent(type: 'recall-notice.created' | 'recall-notice.acknowledged', lotId: string, n: nq.NoticeMade, extra: { acknowledgedAt?: string } = {}): NewEvent {
  return {
    type,
    clinicId: n.clinicId,
    subject: { type: 'RecallNotice', id: n.id },
    lotIds: [lotId],
    data: { noticeId: n.id, lotId, clinicId: n.clinicId, barcodes: n.barcodes, ...extra },
  };
}

/** A recall's notices: one per clinic that received vials of the lot, each acknowledged by that clinic. */
export function createRecallNoticesService({ db, uow, audit, events, clock, lots }: RecallNoticesDeps) {
  return {
    /**
     * The reaction to a recall, in its transaction: one notice per clinic that received vials of the lot (never
     * twice), each told to its clinic (`recall-notice.created`). Answers how many clinics were notified.
     */
    async createForRecall(tx: Tx, lotId: string, reason: string, recalledAt: Date): Promise<number> {
      const { notified, created } = await nq.createNotices(tx, lotId, reason, recalledAt, newId);
      await events.emit(tx, ...created.map((n) => noticeEvent('recall-notice.created', lotId, n)));
      return notified;
    },

    /** Recalled vials that reached a clinic after the recall: on the clinic's notice (made, and told, if it had none). */
    async addToNotice(tx: Tx, lotId: string, clinicId: string, barcodes: string[]): Promise<void> {
      const made = await nq.addToNotice(tx, lotId, clinicId, barcodes, newId());
      if (made) await events.emit(tx, noticeEvent('recall-notice.created', lotId, made));
    },

    /** The lot's notices (404 for an unknown lot); a clinic token sees its own clinic's only. */
    async list(actor: Actor, lotId: string, page: PageRequest) {
      await lots.counts(lotId);
      return toPage((await nq.listNotices(db, lotId, actor.clinicId, page)).map(toNoticeDto), page.limit);
    },

    /** The notified clinic acknowledges its notice (who, when), told once; acknowledging again changes nothing. */
    async acknowledge(actor: Actor, lotId: string, noticeId: string) {
      const clinicId = clinicOf(actor);
      return uow.run(async (tx) => {
        const result = await nq.acknowledge(tx, lotId, noticeId, clinicId, actor.sub, clock.now());
        if (!result) throw new NotFound('recall notice');
        if (!result.already) {
          await audit.record(tx, actor, { action: 'state-change', resourceType: 'recall-notice', resourceId: noticeId, clinicId, details: { lotId, acknowledged: true } });
          await events.emit(tx, noticeEvent('recall-notice.acknowledged', lotId, result.row, { acknowledgedAt: result.row.acknowledgedAt!.toISOString() }));
        }
        return toNoticeDto(result.row);
      });
    },
  };
}
