import { createHash, randomUUID } from 'node:crypto';
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

const CursorBody = z.strictObject({ q: z.string(), k: z.string().max(64).nullable(), i: z.uuid() });

/** PostgreSQL's text of a timestamptz (the sort keys): what a cursor's key must look like. */
const TIMESTAMP_KEY = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/;

/**
 * What a cursor belongs to: the path and every parameter applied but the page size, the format and the cursor
 * itself (a client may change those between pages), hashed. A cursor used on another search is refused.
 */
function searchOf(path: string, parsed: Pick<ParsedSearch, 'applied'>): string {
  const applied = parsed.applied.filter(([k]) => k !== '_count' && k !== '_format' && k !== '_cursor');
  return createHash('sha256').update(`${path}?${queryOf(applied)}`).digest('base64url').slice(0, 16);
}

/**
 * The `_cursor` of a next link: the search it belongs to, and where the page resumes (the last row's sort key
 * and id), base64url JSON. Opaque to clients.
 */
export function encodeCursor(key: SearchKey, path: string, parsed: Pick<ParsedSearch, 'applied'>): string {
  return Buffer.from(JSON.stringify({ q: searchOf(path, parsed), k: key.key, i: key.id }), 'utf8').toString('base64url');
}

/**
 * Where the page resumes, from a `_cursor`; 400 for one this server did not give out for this very search
 * (another path or other parameters, a key that is not a sort key of its order).
 */
export function decodeCursor(cursor: string | undefined, path: string, parsed: Pick<ParsedSearch, 'applied' | 'sort'>): SearchKey | undefined {
  if (cursor === undefined) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    body = undefined;
  }
  const c = CursorBody.safeParse(body);
  const keyOk = (k: string | null) => (parsed.sort ? k !== null && validTimestampKey(k) : true);
  if (!c.success || c.data.q !== searchOf(path, parsed) || !keyOk(c.data.k)) {
    throw new BadRequest('The cursor is not one this server gave out for this search; follow the next link as it was given.', [{ path: 'querystring._cursor', message: 'invalid cursor' }]);
  }
  return { key: c.data.k, id: c.data.i };
}

function validTimestampKey(k: string): boolean {
  const m = TIMESTAMP_KEY.exec(k);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return year >= 1900 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate() && hour < 24 && minute < 60 && second < 60;
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
    link.push({ relation: 'next', url: `${fhirBase(req)}/${path}?${queryOf([...parsed.applied, ['_cursor', encodeCursor(page.next, path, parsed)]])}` });
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
