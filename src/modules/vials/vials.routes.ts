import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { IdempotencyHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { decodeCursor, pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { LotParams } from '../lots/lots.schemas.js';
import {
  CustodyPage,
  CustodyQuery,
  Discard,
  DiscardCreate,
  DiscardPage,
  Inventory,
  LotVialsQuery,
  MovementListQuery,
  ReceiptRequest,
  ReturnCreate,
  Shipment,
  ShipmentCreate,
  ShipmentPage,
  Vial,
  VialListQuery,
  VialPage,
  VialParams,
  VialReturn,
  VialReturnPage,
} from './vials.schemas.js';
import type { VialsService } from './vials.service.js';

const vialTags = ['vials'];

/** Custody lists are ordered by entry, so their cursor is the last entry's number. */
const custodyPage = (q: { limit: number; cursor?: string }) => ({ limit: q.limit, after: decodeCursor(q.cursor, (s) => (/^[1-9]\d{0,17}$/.test(s) ? Number(s) : undefined)) });

/**
 * A lot's vials, one by one (ISBT 128 chain of identity, 21 CFR 1271.290 tracking): shipments to clinics,
 * receipts, discards, returns, the scan of a label, a vial's custody, and the inventory derived from them.
 */
export function vialsRoutes(app: FastifyInstance, { vials }: { vials: VialsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/lots/:id/shipments', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'shipVials',
      tags: vialTags,
      summary: 'Ship vials to a clinic: named (vialIds, barcodes) or a number (lowest sequences in stock)',
      description:
        'Only a released, unexpired lot ships. A named vial that is not in stock in this lot is refused with 422 `vial-not-available` naming it; a number larger than the vials in stock with 422 `insufficient-vials`. The answer lists the vials shipped.',
      headers: IdempotencyHeaders,
      params: LotParams,
      body: ShipmentCreate,
      response: { 201: Shipment, ...problemResponses(403, 404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await vials.ship(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.get('/lots/:id/shipments', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listShipments', tags: vialTags, summary: 'Shipments of a lot, with their vials', params: LotParams, querystring: MovementListQuery, response: { 200: ShipmentPage, ...problemResponses(404) } },
  }, async (req) => pageBody(await vials.shipments(actorOf(req), req.params.id, pageRequest(req.query))));

  r.post('/lots/:id/discards', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'discardVials',
      tags: vialTags,
      summary: 'Record vials a clinic wasted: named (vialIds, barcodes) or a number (lowest sequences it holds)',
      description: 'Each named vial must be of this lot, at that clinic and unused (422 `vial-not-available` naming it); a number never more than the clinic holds (422 `insufficient-vials`).',
      headers: IdempotencyHeaders,
      params: LotParams,
      body: DiscardCreate,
      response: { 201: Discard, ...problemResponses(403, 404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await vials.discard(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.get('/lots/:id/discards', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listDiscards', tags: vialTags, summary: 'Discards of a lot, with their vials', params: LotParams, querystring: MovementListQuery, response: { 200: DiscardPage, ...problemResponses(404) } },
  }, async (req) => pageBody(await vials.discards(actorOf(req), req.params.id, pageRequest(req.query))));

  r.post('/lots/:id/returns', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'returnVials',
      tags: vialTags,
      summary: 'Send unused vials back to the manufacturer (named by vialIds or barcodes)',
      description: 'Each vial must be of this lot, at that clinic and unused, recalled ones included (422 `vial-not-available` naming it).',
      headers: IdempotencyHeaders,
      params: LotParams,
      body: ReturnCreate,
      response: { 201: VialReturn, ...problemResponses(403, 404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await vials.returnVials(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.get('/lots/:id/returns', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listVialReturns', tags: vialTags, summary: 'Returns of a lot, with their vials', params: LotParams, querystring: MovementListQuery, response: { 200: VialReturnPage, ...problemResponses(404) } },
  }, async (req) => pageBody(await vials.returns(actorOf(req), req.params.id, pageRequest(req.query))));

  r.get('/lots/:id/vials', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'listLotVials',
      tags: vialTags,
      summary: 'The vials of a lot, in sequence order (?status=, ?clinicId=)',
      description: 'A clinic token sees the vials its clinic holds or held only.',
      params: LotParams,
      querystring: LotVialsQuery,
      response: { 200: VialPage, ...problemResponses(404) },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await vials.ofLot(actorOf(req), req.params.id, filters, pageRequest({ limit, cursor })));
  });

  r.get('/lots/:id/inventory', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getLotInventory',
      tags: vialTags,
      summary: 'Vial accounting per clinic, derived from the vials: shipped, administered, discarded, returned, recalled, expired, on hand',
      params: LotParams,
      response: { 200: Inventory, ...problemResponses(404) },
    },
  }, async (req) => vials.inventory(actorOf(req), req.params.id));

  r.get('/vials', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'listVials',
      tags: vialTags,
      summary: 'Find vials: ?barcode= is the scan at the point of care (also ?lotId=, ?status=, ?clinicId=)',
      description: 'A barcode is unique per manufacturer, so a scan answers one vial, or one per manufacturer using that text. A clinic token sees the vials its clinic holds or held only.',
      querystring: VialListQuery,
      response: { 200: VialPage },
    },
  }, async (req) => {
    const { limit, cursor, ...filters } = req.query;
    return pageBody(await vials.list(actorOf(req), filters, pageRequest({ limit, cursor })));
  });

  r.get('/vials/:id', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'getVial', tags: vialTags, summary: 'One vial (404 when it is not at, or used by, the caller\'s clinic)', params: VialParams, response: { 200: Vial, ...problemResponses(404) } },
  }, async (req) => vials.get(actorOf(req), req.params.id));

  r.get('/vials/:id/custody', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getVialCustody',
      tags: vialTags,
      summary: 'The vial\'s chain of custody, oldest entry first (append-only)',
      params: VialParams,
      querystring: CustodyQuery,
      response: { 200: CustodyPage, ...problemResponses(404) },
    },
  }, async (req) => pageBody(await vials.custody(actorOf(req), req.params.id, custodyPage(req.query))));

  r.post('/vials/:id/receipt', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'receiveVial',
      tags: vialTags,
      summary: 'The clinic confirms the vial arrived (custody `received`)',
      description: 'Needs a clinic token. 409 `vial-already-received` the second time; 409 `vial-not-at-clinic` once it was used, discarded or returned.',
      params: VialParams,
      body: ReceiptRequest.nullish().meta({ description: 'Optional: without a body the vial arrived now', example: { receivedAt: '2026-03-03T10:15:00Z' } }),
      response: { 200: Vial, ...problemResponses(403, 404, 409, 422) },
    },
  }, async (req) => vials.receive(actorOf(req), req.params.id, req.body ?? {}));
}
