import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeOutput, Uuid, pageOf } from '../../shared/schemas.js';

export const RecallNotice = z
  .object({
    id: Uuid,
    lotId: Uuid,
    clinicId: z.string(),
    recallReason: z.string(),
    recalledAt: DateTimeOutput,
    createdAt: DateTimeOutput,
    acknowledged: z.boolean(),
    acknowledgedAt: DateTimeOutput.nullable(),
    acknowledgedBy: z.string().nullable(),
    barcodes: z.array(z.string()).meta({ description: 'The clinic\'s unused vials the recall marked, to quarantine (as the clinic was told at the recall)' }),
  })
  .meta({ id: 'RecallNotice' });
export const RecallNoticePage = pageOf(RecallNotice).meta({ id: 'RecallNoticePage' });
export const NoticeParams = z.strictObject({ id: Uuid, noticeId: Uuid });
export const NoticeListQuery = z.strictObject(pageQuery);
