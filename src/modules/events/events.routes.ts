import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { actorOf } from '../../http/auth.js';
import { problemResponses } from '../../http/problem.js';
import { EventListQuery, EventPage } from './events.schemas.js';
import type { EventFeed } from './events.service.js';

/** The event feed (contract "Events and webhooks"): what changed, in order, for clients that poll. */
export function eventsRoutes(app: FastifyInstance, { feed }: { feed: EventFeed }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/events', {
    config: { scope: 'events:read' },
    schema: {
      operationId: 'listEvents',
      tags: ['events'],
      summary: 'The event feed, in order, from where the client stopped',
      description:
        'Events in commit order: an event is listed once every transaction that began before it has ended, so a position ' +
        'once passed is never filled in later, and reading from `after` never skips one. A clinic token sees its clinic\'s ' +
        'events and the supplier events about lots shipped to it; a token without clinic_id sees all. Keep `nextCursor` and ' +
        'send it as `after` on the next call. Events carry ids and codes only: fetch the records they name (audited).',
      querystring: EventListQuery,
      response: { 200: EventPage, ...problemResponses(400) },
    },
  }, async (req) => feed.list(actorOf(req), req.query));
}
