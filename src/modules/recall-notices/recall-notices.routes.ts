import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { LotParams } from '../lots/lots.schemas.js';
import { NoticeListQuery, NoticeParams, RecallNotice, RecallNoticePage } from './recall-notices.schemas.js';
import type { RecallNoticesService } from './recall-notices.service.js';

const tags = ['lots'];

/** A recalled lot's notices to clinics, and their acknowledgement (the lot's sub-resource). */
export function recallNoticesRoutes(app: FastifyInstance, { notices }: { notices: RecallNoticesService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/lots/:id/recall-notices', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'listRecallNotices',
      tags,
      summary: 'One notice per clinic that received the recalled lot, with its acknowledgement',
      description: 'A clinic token sees its own clinic\'s notice; a token without clinic_id sees every clinic\'s, and so which have not yet acted.',
      params: LotParams,
      querystring: NoticeListQuery,
      response: { 200: RecallNoticePage, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await notices.list(actorOf(req), req.params.id, pageRequest(req.query))));

  r.post('/lots/:id/recall-notices/:noticeId/acknowledge', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'acknowledgeRecallNotice',
      tags,
      summary: 'The notified clinic acknowledges a recall notice (who, when)',
      params: NoticeParams,
      response: { 200: RecallNotice, ...problemResponses(404) },
    },
  }, async (req) => notices.acknowledge(actorOf(req), req.params.id, req.params.noticeId));
}
