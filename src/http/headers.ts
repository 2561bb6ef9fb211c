import { z } from 'zod';

// Header schemas document the headers in OpenAPI; unknown headers pass through untouched.
export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .optional()
    .meta({ description: 'Makes a retry safe: the same key and body return the first response and create nothing. Kept at least 24 h.' }),
});

export const IfMatchHeaders = z.looseObject({
  'if-match': z.string().optional().meta({ description: 'The ETag of the version you read (required; 428 without it)', example: '"1"' }),
});

export const OptionalIfMatchHeaders = z.looseObject({
  'if-match': z.string().optional().meta({ description: 'When given, the change applies only to this version', example: '"1"' }),
});
