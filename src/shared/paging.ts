/**
 * Paging as a value: what a list asks for and what it answers, with the key of the last item (an id, a version)
 * where the next page starts. Only http/ turns keys into the opaque cursors clients see (http/pagination.ts).
 */

/** `limit` items after the one whose key is `after` (none: from the start). */
export interface PageRequest<K = string> {
  limit: number;
  after?: K;
}

/** A page of items and the key of its last item when more follow (null on the last page). */
export interface Page<T> {
  items: T[];
  nextKey: string | null;
}

/** Queries fetch limit + 1 rows; the extra row says whether there is a next page, keyed by its last item. */
export function toPage<T>(rows: T[], limit: number, keyOf: (row: T) => string = (r) => (r as { id: string }).id): Page<T> {
  if (rows.length <= limit) return { items: rows, nextKey: null };
  const items = rows.slice(0, limit);
  return { items, nextKey: keyOf(items[items.length - 1]!) };
}
