import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { IdempotencyHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { LotParams } from '../lots/lots.schemas.js';
import { Discard, DiscardCreate, DiscardPage, Inventory, Shipment, ShipmentCreate, ShipmentPage, VialListQuery } from './vials.schemas.js';
import type { VialsService } from './vials.service.js';

const vialTags = ['vials'];

/** A lot's vials: shipments to clinics, discards, and the inventory per clinic (the lot's sub-resources). */
export function vialsRoutes(app: FastifyInstance, { vials }: { vials: VialsService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/lots/:id/shipments', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'shipVials',
      tags: vialTags,
      summary: 'Record vials shipped to a clinic',
      description: 'Only a released, unexpired lot ships, and never more vials than remain unshipped (422 `insufficient-vials`).',
      headers: IdempotencyHeaders,
      params: LotParams,
      body: ShipmentCreate,
      response: { 201: Shipment, ...problemResponses(404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await vials.ship(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.get('/lots/:id/shipments', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listShipments', tags: vialTags, summary: 'Shipments of a lot', params: LotParams, querystring: VialListQuery, response: { 200: ShipmentPage, ...problemResponses(404) } },
  }, async (req) => pageBody(await vials.shipments(actorOf(req), req.params.id, pageRequest(req.query))));

  r.post('/lots/:id/discards', {
    config: { scope: 'lots:write' },
    schema: {
      operationId: 'discardVials',
      tags: vialTags,
      summary: 'Record vials a clinic wasted',
      description: 'Never more than the clinic has on hand (422 `insufficient-vials`).',
      headers: IdempotencyHeaders,
      params: LotParams,
      body: DiscardCreate,
      response: { 201: Discard, ...problemResponses(404, 422) },
    },
  }, async (req, reply) => reply.code(201).send(await vials.discard(actorOf(req), req.params.id, req.body, idempotencyOf(req))));

  r.get('/lots/:id/discards', {
    config: { scope: 'lots:read' },
    schema: { operationId: 'listDiscards', tags: vialTags, summary: 'Discards of a lot', params: LotParams, querystring: VialListQuery, response: { 200: DiscardPage, ...problemResponses(404) } },
  }, async (req) => pageBody(await vials.discards(actorOf(req), req.params.id, pageRequest(req.query))));

  r.get('/lots/:id/inventory', {
    config: { scope: 'lots:read' },
    schema: {
      operationId: 'getLotInventory',
      tags: vialTags,
      summary: 'Vial accounting per clinic: shipped, administered, discarded, on hand',
      params: LotParams,
      response: { 200: Inventory, ...problemResponses(404) },
    },
  }, async (req) => vials.inventory(actorOf(req), req.params.id));
}
