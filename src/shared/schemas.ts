import { z } from 'zod';

/** Common zod schemas shared by every module's request and response schemas. */

export const Uuid = z.uuid().meta({ description: 'Server-chosen UUID', example: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12' });

/** RFC 3339 with an offset in requests; normalised to UTC `Z` in responses. */
export const DateTimeInput = z.iso.datetime({ offset: true }).meta({ example: '2026-11-02T09:30:00+01:00' });
export const DateTimeOutput = z.iso.datetime().meta({ example: '2026-11-02T08:30:00.000Z' });

export const DateOnly = z.iso.date().meta({ example: '1961-04-17' });

export const NonEmpty = (max = 200) => z.string().trim().min(1).max(max);

export const Version = z.int().min(1).meta({ description: 'Increments on every change; the ETag carries it.' });

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.string(),
    code: z.string().meta({ description: 'Stable machine-readable reason, e.g. `insufficient-vials`.' }),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details' });
export type ProblemBody = z.infer<typeof Problem>;

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
  });
}
