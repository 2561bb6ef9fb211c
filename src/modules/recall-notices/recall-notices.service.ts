import type { Db, Tx } from '../../db/client.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import { clinicOf, type Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import { NotFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { toPage, type PageRequest } from '../../shared/paging.js';
import type { AuditLog } from '../audit/audit.service.js';
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
  clock: Clock;
  /** Whether a lot exists (404 otherwise). */
  lots: Pick<LotsService, 'counts'>;
}

export type RecallNoticesService = ReturnType<typeof createRecallNoticesService>;

/** A recall's notices: one per clinic that received vials of the lot, each acknowledged by that clinic. */
export function createRecallNoticesService({ db, uow, audit, clock, lots }: RecallNoticesDeps) {
  return {
    /**
     * The reaction to a recall, in its transaction: one notice per clinic that received vials of the lot (never
     * twice). Answers how many clinics were notified.
     */
    createForRecall(tx: Tx, lotId: string, reason: string, recalledAt: Date): Promise<number> {
      return nq.createNotices(tx, lotId, reason, recalledAt, newId);
    },

    /** Recalled vials that reached a clinic after the recall: on the clinic's notice (made if it had none). */
    addToNotice(tx: Tx, lotId: string, clinicId: string, barcodes: string[]) {
      return nq.addToNotice(tx, lotId, clinicId, barcodes, newId());
    },

    /** The lot's notices (404 for an unknown lot); a clinic token sees its own clinic's only. */
    async list(actor: Actor, lotId: string, page: PageRequest) {
      await lots.counts(lotId);
      return toPage((await nq.listNotices(db, lotId, actor.clinicId, page)).map(toNoticeDto), page.limit);
    },

    /** The notified clinic acknowledges its notice (who, when); acknowledging again changes nothing. */
    async acknowledge(actor: Actor, lotId: string, noticeId: string) {
      const clinicId = clinicOf(actor);
      return uow.run(async (tx) => {
        const result = await nq.acknowledge(tx, lotId, noticeId, clinicId, actor.sub, clock.now());
        if (!result) throw new NotFound('recall notice');
        if (!result.already) {
          await audit.record(tx, actor, { action: 'state-change', resourceType: 'recall-notice', resourceId: noticeId, clinicId, details: { lotId, acknowledged: true } });
        }
        return toNoticeDto(result.row);
      });
    },
  };
}
