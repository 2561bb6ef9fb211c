import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeInput, DateTimeOutput, NonEmpty, pageOf } from '../../shared/schemas.js';

export const AuditEvent = z
  .object({
    id: z.int(),
    occurredAt: DateTimeOutput,
    actor: z.object({ sub: z.string(), clinicId: z.string().nullable() }),
    action: z.string(),
    resourceType: z.string(),
    resourceId: z.string().nullable(),
    clinicId: z.string().nullable(),
    requestId: z.string().nullable(),
    outcome: z.string(),
    details: z.record(z.string(), z.unknown()).nullable(),
    chain: z.object({ seq: z.int(), hash: z.string() }).nullable().meta({ description: 'Its link in the hash chain; null until sealed (normally within a second)' }),
  })
  .meta({ id: 'AuditEvent' });
export type AuditEventDto = z.infer<typeof AuditEvent>;

export const AuditEventPage = pageOf(AuditEvent).meta({ id: 'AuditEventPage' });

export const AuditSearch = z.strictObject({
  ...pageQuery,
  resourceType: NonEmpty(64).optional(),
  resourceId: NonEmpty(64).optional(),
  actor: NonEmpty(200).optional().meta({ description: 'The token subject who acted' }),
  clinicId: NonEmpty(64).optional(),
  from: DateTimeInput.optional(),
  to: DateTimeInput.optional(),
});

export const VerifyQuery = z.strictObject({ from: DateTimeInput.optional(), to: DateTimeInput.optional() });

export const VerifyResult = z
  .object({
    valid: z.boolean(),
    checked: z.int().meta({ description: 'Links recomputed' }),
    firstInvalid: z
      .object({ chainSeq: z.int(), auditEventId: z.int(), reason: z.enum(['entry-altered', 'broken-link', 'sequence-gap', 'entry-missing']) })
      .nullable()
      .meta({ description: 'The first link that does not match, naming its audit entry' }),
    notInChain: z.int().meta({ description: 'Entries neither sealed nor queued for sealing: removed from the queue behind the service\'s back' }),
  })
  .meta({ id: 'AuditVerifyResult' });
