import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeOutput, FreeText, Uuid, Version, pageOf } from '../../shared/schemas.js';
import { EventTypeSchema } from '../events/events.schemas.js';

/**
 * A receiver URL exactly as it will be used: stored as sent, so it is refused rather than cleaned up when the URL
 * parser would change what the client sent (white space or control characters, which it strips; no host between
 * `//` and the path, where it would take the path for the host; port 0). Printable ASCII only: an IDN host is
 * sent in its ASCII (punycode) form.
 */
const Url = z
  .string()
  .max(2000)
  .regex(/^[!-~]+$/, 'printable ASCII only, no space or control character (send an IDN host as punycode, a space as %20)')
  .regex(/^https?:\/\/[^/?#@]+(?:[/?][^#]*)?$/i, 'an http(s) URL with a host after //, no user name or password, no fragment')
  .refine((u) => URL.canParse(u), 'not a URL')
  .refine((u) => !URL.canParse(u) || new URL(u).port !== '0', 'port 0 is not a port anything listens on')
  .meta({ description: 'The receiver: https, resolving to a public address (WEBHOOK_ALLOW_PRIVATE_URLS relaxes this for development)', example: 'https://ehr.example.org/hooks/exosome' });
const Types = z
  .array(EventTypeSchema)
  .min(1)
  .max(50)
  .refine((t) => new Set(t).size === t.length, 'each type once')
  .meta({ description: 'The event types to receive' });
const SubscriptionStatus = z.enum(['active', 'paused', 'disabled']);

export const SubscriptionCreate = z
  .strictObject({
    url: Url,
    types: Types,
    description: FreeText(500).optional(),
    parallel: z.boolean().optional().meta({ description: 'Deliver without waiting for the previous event (default false: in order, one at a time)' }),
  })
  .meta({ id: 'WebhookSubscriptionCreate', example: { url: 'https://ehr.example.org/hooks/exosome', types: ['procedure.created', 'lot.recalled', 'recall-notice.created'], description: 'EHR inbox' } });

export const SubscriptionPatch = z
  .strictObject({
    url: Url.optional(),
    types: Types.optional(),
    description: FreeText(500).nullable().optional(),
    parallel: z.boolean().optional(),
    status: z.enum(['active', 'paused']).optional().meta({ description: '`paused` holds deliveries (nothing is lost); `active` resumes, also after the service disabled it' }),
  })
  .meta({ id: 'WebhookSubscriptionPatch', example: { status: 'paused' } });

export const Subscription = z
  .object({
    id: Uuid,
    url: z.string(),
    types: z.array(EventTypeSchema),
    description: z.string().nullable(),
    parallel: z.boolean(),
    status: SubscriptionStatus,
    disabledReason: z.string().nullable().meta({ description: 'Why the service disabled it (410 Gone, or failing for 3 days)' }),
    failingSince: DateTimeOutput.nullable().meta({ description: 'The first failed attempt since the last success' }),
    clinicId: z.string().nullable().meta({ description: 'The owning clinic: it receives only what that clinic may see; null receives every event' }),
    previousSecretExpiresAt: DateTimeOutput.nullable().meta({ description: 'After a rotation, until when the old secret signs too' }),
    version: Version,
    createdAt: DateTimeOutput,
    createdBy: z.string(),
    updatedAt: DateTimeOutput,
  })
  .meta({ id: 'WebhookSubscription' });
export type SubscriptionDto = z.infer<typeof Subscription>;

export const SubscriptionWithSecret = Subscription.extend({
  secret: z.string().meta({ description: 'The signing secret (`whsec_` + base64), shown this once', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }),
}).meta({ id: 'WebhookSubscriptionWithSecret' });

export const SubscriptionPage = pageOf(Subscription).meta({ id: 'WebhookSubscriptionPage' });

export const Attempt = z
  .object({
    attempt: z.int().min(1),
    at: DateTimeOutput,
    statusCode: z.int().nullable().meta({ description: 'The receiver\'s HTTP status; null when none came (timeout, refused connection)' }),
    latencyMs: z.int(),
    error: z.string().nullable(),
    succeeded: z.boolean(),
  })
  .meta({ id: 'WebhookAttempt' });

export const Delivery = z
  .object({
    id: Uuid,
    subscriptionId: Uuid,
    eventId: Uuid.meta({ description: 'Also the `webhook-id` header of every attempt' }),
    eventType: EventTypeSchema,
    cause: z.enum(['event', 'replay', 'retry']),
    status: z.enum(['pending', 'succeeded', 'failed']),
    nextAttemptAt: DateTimeOutput.nullable(),
    createdAt: DateTimeOutput,
    completedAt: DateTimeOutput.nullable(),
    attempts: z.array(Attempt),
  })
  .meta({ id: 'WebhookDelivery' });
export type DeliveryDto = z.infer<typeof Delivery>;
export const DeliveryPage = pageOf(Delivery).meta({ id: 'WebhookDeliveryPage' });

export const SubscriptionParams = z.strictObject({ id: Uuid });
export const DeliveryParams = z.strictObject({ id: Uuid, deliveryId: Uuid });
export const SubscriptionListQuery = z.strictObject(pageQuery);
export const DeliveryListQuery = z.strictObject({ ...pageQuery, status: z.enum(['pending', 'succeeded', 'failed']).optional() });
export const ReplayQuery = z.strictObject({ after: Uuid.optional().meta({ description: 'An event id: replay the events after it' }) });
/** Optional: Fastify validates an absent body as `null`, so a POST with only `?after=` must accept null too. */
/** A POST that takes no body: none, or `{}` (anything else is 400). */
export const EmptyBody = z.strictObject({}).nullish().meta({ id: 'EmptyBody', description: 'No body, or `{}`', example: {} });
export const ReplayBody = z
  .strictObject({ after: Uuid })
  .nullish()
  .meta({ id: 'WebhookReplayRequest', example: { after: '01a22ae2-8782-7388-a305-42f124ea6628' } });
export const ReplayResult = z
  .object({
    replayed: z.int().meta({ description: 'Deliveries queued, in feed order' }),
    lastEventId: Uuid.nullable().meta({ description: 'The last event queued; when `replayed` reached the limit, replay again after it' }),
    limit: z.int(),
  })
  .meta({ id: 'WebhookReplay' });
