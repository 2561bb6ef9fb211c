import { z } from 'zod';

/** Common zod schemas shared by every module's request and response schemas. */

/** A UUID (RFC 9562): read in either case, always held and compared in lower case (as the server writes them). */
export const Uuid = z
  .uuid()
  .overwrite((s) => s.toLowerCase())
  .meta({ description: 'Server-chosen UUID', example: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12' });

/**
 * Every date and instant of this domain lies in [1900-01-01, 9999-12-31] (contract: "Dates and instants"):
 * earlier years are typing slips (0099 for 1999), and PostgreSQL and JavaScript disagree about years below
 * 100. Impossible calendar dates (2023-02-30) are refused by the ISO formats themselves.
 */
export const EARLIEST_DATE = '1900-01-01';
export const LATEST_DATE = '9999-12-31';
const EARLIEST_MS = Date.parse(`${EARLIEST_DATE}T00:00:00Z`);
const LATEST_MS = Date.parse(`${LATEST_DATE}T23:59:59.999Z`);
const RANGE = `must lie between ${EARLIEST_DATE} and ${LATEST_DATE}`;

/** RFC 3339 with an offset in requests; normalised to UTC `Z` in responses. */
export const DateTimeInput = z.iso
  .datetime({ offset: true })
  .refine((s) => {
    const ms = Date.parse(s);
    return ms >= EARLIEST_MS && ms <= LATEST_MS;
  }, RANGE)
  // Instants are kept to the millisecond: finer digits would be dropped, so they are refused unless zero.
  .refine((s) => !/\.\d{3}\d*[1-9]/.test(s), 'is more precise than a millisecond, which is what is stored')
  .meta({ description: `RFC 3339 with an offset, between ${EARLIEST_DATE} and ${LATEST_DATE}, to the millisecond at most`, example: '2026-11-02T09:30:00+01:00' });
export const DateTimeOutput = z.iso.datetime().meta({ example: '2026-11-02T08:30:00.000Z' });

export const DateOnly = z.iso
  .date()
  .refine((s) => s >= EARLIEST_DATE && s <= LATEST_DATE, RANGE)
  .meta({ description: `YYYY-MM-DD, between ${EARLIEST_DATE} and ${LATEST_DATE}`, example: '1961-04-17' });

/**
 * Single-line text (names, codes, identifiers, who did it): what is sent is what is stored, so it is refused,
 * never trimmed, when it begins or ends with white space or holds a tab or line break. (NUL and the other C0
 * controls never get this far: http/input.ts refuses them for every field.)
 */
export const NonEmpty = (max = 200) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\t\n\r\u2028\u2029]*$/, 'must be a single line (no tab, line feed, carriage return or line separator)')
    .regex(/^\S(?:[\s\S]*\S)?$/, 'must not begin or end with white space');

/** Free text (`notes`, `description`, `reason`...): kept exactly as sent, line breaks and tabs included; not blank. */
export const FreeText = (max = 4000) => z.string().min(1).max(max).regex(/\S/, 'must not be blank');

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
