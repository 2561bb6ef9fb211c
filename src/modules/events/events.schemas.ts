import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeOutput, Uuid } from '../../shared/schemas.js';
import { EVENT_TYPES } from './vocabulary.js';

export const EventTypeSchema = z.enum(EVENT_TYPES).meta({ id: 'EventType' });

/** A comma-separated list of event types (`types=lot.recalled,recall-notice.created`); each must be known. */
export const EventTypesParam = z
  .string()
  .max(1000)
  .transform((s, ctx) => {
    const names = s.split(',').map((t) => t.trim());
    const unknown = names.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `unknown event type: ${unknown.join(', ')}` });
    return [...new Set(names)] as (typeof EVENT_TYPES)[number][];
  })
  .meta({ description: `Comma-separated event types: ${EVENT_TYPES.join(', ')}`, example: 'lot.recalled,recall-notice.created' });

export const Event = z
  .object({
    id: Uuid.meta({ description: 'The event id; the `webhook-id` of its deliveries; a feed position (`after=`)' }),
    type: EventTypeSchema,
    occurredAt: DateTimeOutput.meta({ description: 'When the change was recorded' }),
    clinicId: z.string().nullable().meta({ description: 'The clinic whose record changed; null for supplier events (lots, donors)' }),
    subject: z.object({ type: z.string().meta({ example: 'Lot' }), id: Uuid }),
    data: z.record(z.string(), z.unknown()).meta({ description: 'Ids, codes and statuses only: never names, birth dates or MRNs' }),
  })
  .meta({ id: 'Event' });
export type EventSchema = z.infer<typeof Event>;

export const EventPage = z
  .object({
    items: z.array(Event),
    nextCursor: Uuid.nullable().meta({ description: 'The last event returned (or `after` when nothing is new): send it as `after` next time' }),
  })
  .meta({ id: 'EventPage' });

export const EventListQuery = z.strictObject({
  after: Uuid.optional().meta({ description: 'An event id: the events after it (a `nextCursor`, or a webhook\'s `webhook-id`)' }),
  types: EventTypesParam.optional(),
  limit: pageQuery.limit,
});
