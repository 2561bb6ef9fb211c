import { randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BadRequest } from '../../shared/errors.js';
import type { SearchKey } from '../../shared/search.js';
import type { FhirResource } from './fhir.mappers.js';
import { fhirBase } from './fhir.http.js';
import type { FhirSearchPage } from './fhir.search.js';
import type { ParsedSearch } from './search-params.js';

/** A link's query: the parameters as they were applied, in order, percent-encoded. */
export function queryOf(params: [string, string][]): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

const sortSignature = (sort: ParsedSearch['sort']) => (sort ? `${sort.descending ? '-' : ''}${sort.name}` : '');

const CursorBody = z.strictObject({ s: z.string(), k: z.string().nullable(), i: z.uuid() });

/**
 * The `_cursor` of a next link: where the page resumes (the last row's sort key and id) and the order it was
 * taken in, base64url JSON. Opaque to clients; a cursor of another order or not ours is a 400.
 */
export function encodeCursor(key: SearchKey, sort: ParsedSearch['sort'], extra: Record<string, unknown> = {}): string {
  return Buffer.from(JSON.stringify({ s: sortSignature(sort), k: key.key, i: key.id, ...extra }), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, sort: ParsedSearch['sort']): SearchKey | undefined {
  if (cursor === undefined) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    body = undefined;
  }
  const parsed = CursorBody.safeParse(body);
  if (!parsed.success || parsed.data.s !== sortSignature(sort) || (parsed.data.s !== '' && parsed.data.k === null)) {
    throw new BadRequest('The cursor is not one this server gave out for this search; follow the next link as it was given.', [{ path: 'querystring._cursor', message: 'invalid cursor' }]);
  }
  return { key: parsed.data.k, id: parsed.data.i };
}

const entryOf = (req: FastifyRequest, resource: FhirResource, mode: 'match' | 'include') => ({
  fullUrl: `${fhirBase(req)}/${resource.resourceType}/${(resource as { id: string }).id}`,
  resource,
  search: { mode },
});

/**
 * A `searchset` Bundle (R4 §3.1.1.2): `self` shows exactly the parameters applied (unsupported ones are not
 * there), `next` the same with the cursor of the following page; matches have `search.mode = match`, resources
 * added by _include/_revinclude `include`, and a warning about them an OperationOutcome with mode `outcome`.
 * `total` is there unless `_total=none`; a count-only search has no entries.
 */
export function searchsetBundle(req: FastifyRequest, path: string, parsed: ParsedSearch, page: FhirSearchPage): FhirResource {
  const self = `${fhirBase(req)}/${path}?${queryOf(parsed.applied)}`;
  const link = [{ relation: 'self', url: self }];
  if (page.next && !parsed.countOnly) {
    link.push({ relation: 'next', url: `${fhirBase(req)}/${path}?${queryOf([...parsed.applied, ['_cursor', encodeCursor(page.next, parsed.sort)]])}` });
  }
  const entry = parsed.countOnly
    ? []
    : [
        ...page.matches.map((r) => entryOf(req, r, 'match')),
        ...page.includes.map((r) => entryOf(req, r, 'include')),
        ...(page.warning
          ? [
              {
                fullUrl: `urn:uuid:${randomUUID()}`,
                resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'warning', code: 'too-costly', diagnostics: page.warning }] },
                search: { mode: 'outcome' },
              },
            ]
          : []),
      ];
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(page.total !== undefined ? { total: page.total } : {}),
    link,
    ...(entry.length ? { entry } : {}),
  };
}
