import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { ifMatchVersion, setEtag } from '../../http/etag.js';
import { IdempotencyHeaders, IfMatchHeaders } from '../../http/headers.js';
import { idempotencyOf } from '../../http/idempotency.js';
import { decodeCursor, pageBody, pageRequest } from '../../http/pagination.js';
import { problemResponses } from '../../http/problem.js';
import { BadRequest } from '../../shared/errors.js';
import {
  Delivery,
  DeliveryListQuery,
  DeliveryPage,
  DeliveryParams,
  EmptyBody,
  ReplayBody,
  ReplayQuery,
  ReplayResult,
  Subscription,
  SubscriptionCreate,
  SubscriptionListQuery,
  SubscriptionPage,
  SubscriptionParams,
  SubscriptionPatch,
  SubscriptionWithSecret,
} from './webhooks.schemas.js';
import type { WebhooksService } from './webhooks.service.js';

const tags = ['webhooks'];

/** Webhook subscriptions and their deliveries (contract "Events and webhooks"; Standard Webhooks signatures). */
export function webhooksRoutes(app: FastifyInstance, { webhooks }: { webhooks: WebhooksService }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/webhook-subscriptions', {
    config: { scope: 'webhooks:write' },
    schema: {
      operationId: 'createWebhookSubscription',
      tags,
      summary: 'Subscribe a receiver to event types; the signing secret is in this answer only',
      description:
        'Deliveries follow Standard Webhooks: `webhook-id` (the event id, the same on every retry), `webhook-timestamp`, ' +
        '`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`; body `{ type, timestamp, data, subject, clinicId }`. ' +
        'At least once, in order unless `parallel`; retried with backoff for more than 24 h, then `failed`. A 410 answer disables the ' +
        'subscription, as do 3 days of failures. A clinic token\'s subscription receives only what that clinic may see. ' +
        'The URL must be https and resolve to a public address (422 `webhook-url-refused`), checked again at every connection.',
      headers: IdempotencyHeaders,
      body: SubscriptionCreate,
      response: { 201: SubscriptionWithSecret, ...problemResponses(409, 422) },
    },
  }, async (req, reply) => {
    const dto = await webhooks.create(actorOf(req), req.body, idempotencyOf(req));
    setEtag(reply, dto.version);
    return reply.code(201).header('Location', `/v1/webhook-subscriptions/${dto.id}`).send(dto);
  });

  r.get('/webhook-subscriptions', {
    config: { scope: 'webhooks:read' },
    schema: {
      operationId: 'listWebhookSubscriptions',
      tags,
      summary: 'The caller\'s clinic\'s subscriptions (every one, for a token without clinic_id)',
      querystring: SubscriptionListQuery,
      response: { 200: SubscriptionPage },
    },
  }, async (req) => pageBody(await webhooks.list(actorOf(req), pageRequest(req.query))));

  r.get('/webhook-subscriptions/:id', {
    config: { scope: 'webhooks:read' },
    schema: {
      operationId: 'getWebhookSubscription',
      tags,
      summary: 'One subscription (never its secret)',
      params: SubscriptionParams,
      response: { 200: Subscription, ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const dto = await webhooks.get(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.patch('/webhook-subscriptions/:id', {
    config: { scope: 'webhooks:write' },
    schema: {
      operationId: 'updateWebhookSubscription',
      tags,
      summary: 'Pause, resume, or change the URL or types (If-Match)',
      headers: IfMatchHeaders,
      params: SubscriptionParams,
      body: SubscriptionPatch,
      response: { 200: Subscription, ...problemResponses(403, 404, 412, 422, 428) },
    },
  }, async (req, reply) => {
    const dto = await webhooks.update(actorOf(req), req.params.id, ifMatchVersion(req), req.body);
    setEtag(reply, dto.version);
    return dto;
  });

  r.post('/webhook-subscriptions/:id/rotate-secret', {
    config: { scope: 'webhooks:write' },
    schema: {
      operationId: 'rotateWebhookSecret',
      tags,
      summary: 'A new signing secret (shown once); the old one keeps signing beside it for 24 h',
      params: SubscriptionParams,
      body: EmptyBody,
      response: { 200: SubscriptionWithSecret, ...problemResponses(403, 404) },
    },
  }, async (req, reply) => {
    const dto = await webhooks.rotateSecret(actorOf(req), req.params.id);
    setEtag(reply, dto.version);
    return dto;
  });

  r.get('/webhook-subscriptions/:id/deliveries', {
    config: { scope: 'webhooks:read' },
    schema: {
      operationId: 'listWebhookDeliveries',
      tags,
      summary: 'The subscription\'s deliveries, newest first, with every attempt (time, status code, latency, error)',
      params: SubscriptionParams,
      querystring: DeliveryListQuery,
      response: { 200: DeliveryPage, ...problemResponses(404) },
    },
  }, async (req) => {
    const { status, limit, cursor } = req.query;
    // Deliveries are listed newest first by their sequence, so the cursor is the last sequence seen.
    const after = decodeCursor(cursor, (s) => (/^[1-9]\d{0,15}$/.test(s) ? Number(s) : undefined));
    return pageBody(await webhooks.deliveries(actorOf(req), req.params.id, status, { limit, after }));
  });

  r.post('/webhook-subscriptions/:id/deliveries/:deliveryId/retry', {
    config: { scope: 'webhooks:write' },
    schema: {
      operationId: 'retryWebhookDelivery',
      tags,
      summary: 'Send one delivery\'s event again now (a new delivery with the same webhook-id)',
      headers: IdempotencyHeaders,
      params: DeliveryParams,
      body: EmptyBody,
      response: { 202: Delivery, ...problemResponses(403, 404, 422) },
    },
  }, async (req, reply) => reply.code(202).send(await webhooks.retry(actorOf(req), req.params.id, req.params.deliveryId, idempotencyOf(req))));

  r.post('/webhook-subscriptions/:id/replay', {
    config: { scope: 'webhooks:write' },
    schema: {
      operationId: 'replayWebhookEvents',
      tags,
      summary: 'Send again, in order, the events after an event id (`?after=` or `{ "after": ... }`)',
      headers: IdempotencyHeaders,
      params: SubscriptionParams,
      querystring: ReplayQuery,
      body: ReplayBody,
      response: { 202: ReplayResult, ...problemResponses(400, 403, 404, 422) },
    },
  }, async (req, reply) => {
    const after = req.query.after ?? req.body?.after;
    if (!after) throw new BadRequest('Name the event to replay after: ?after=<event id> or { "after": "<event id>" }.', [{ path: 'query.after', message: 'required' }]);
    if (req.query.after && req.body?.after && req.query.after !== req.body.after) {
      throw new BadRequest('?after= and the body\'s after differ; send one.', [{ path: 'body.after', message: 'differs from query.after' }]);
    }
    return reply.code(202).send(await webhooks.replay(actorOf(req), req.params.id, after, idempotencyOf(req)));
  });
}
