import { z } from 'zod';
import { BadRequest } from '../shared/errors.js';
import type { Page, PageRequest } from '../shared/paging.js';

/** `?limit=` (1..200, default 50) and an opaque `?cursor=`. */
export const pageQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ description: 'Page size, 1..200' }),
  cursor: z.string().max(200).optional().meta({ description: 'The `nextCursor` of the previous page' }),
};

export type { PageRequest } from '../shared/paging.js';

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

/** A service's page as the API answers it: the next page's key becomes the opaque `nextCursor`. */
export function pageBody<T>(page: Page<T>): { items: T[]; nextCursor: string | null } {
  return { items: page.items, nextCursor: encodeCursor(page.nextKey) };
}

/** The opaque cursor of a page key (base64url of its text), null for none. */
export function encodeCursor(key: string | null): string | null {
  return key === null ? null : Buffer.from(key, 'utf8').toString('base64url');
}

/** History lists are ordered by version, so their cursor is the last version seen. */
export function versionPageRequest(q: { limit: number; cursor?: string }): PageRequest<number> {
  return { limit: q.limit, after: decodeCursor(q.cursor, (s) => (/^[1-9]\d{0,8}$/.test(s) ? Number(s) : undefined)) };
}
