import { z } from 'zod';
import { BadRequest } from '../shared/errors.js';

/** `?limit=` (1..200, default 50) and an opaque `?cursor=`. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ description: 'Page size, 1..200' }),
  cursor: z.string().max(200).optional().meta({ description: 'The `nextCursor` of the previous page' }),
};

export interface PageRequest<K = string> {
  limit: number;
  after?: K;
}

const uuidKey = z.uuid();

/** Most lists are ordered by id (UUIDv7: creation order), so the cursor is the last id seen. */
export function pageRequest(q: { limit: number; cursor?: string }): PageRequest {
  return { limit: q.limit, after: decodeCursor(q.cursor, (s) => (uuidKey.safeParse(s).success ? s : undefined)) };
}

export function decodeCursor<K>(cursor: string | undefined, parse: (raw: string) => K | undefined): K | undefined {
  if (cursor === undefined) return undefined;
  const key = parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (key === undefined) {
    throw new BadRequest('The cursor is not one this API gave out.', [{ path: 'query.cursor', message: 'invalid cursor' }]);
  }
  return key;
}

/** Queries fetch limit + 1 rows; the extra row says whether there is a next page. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => string = (r) => (r as { id: string }).id) {
  if (rows.length <= limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, limit);
  return { items, nextCursor: Buffer.from(keyOf(items[items.length - 1]!), 'utf8').toString('base64url') };
}

/** History lists are ordered by version, so their cursor is the last version seen. */
export function versionPageRequest(q: { limit: number; cursor?: string }): PageRequest<number> {
  return { limit: q.limit, after: decodeCursor(q.cursor, (s) => (/^[1-9]\d{0,8}$/.test(s) ? Number(s) : undefined)) };
}
