import { z } from 'zod';
import { BadRequest } from '../../shared/errors.js';
import type { FieldError } from '../../shared/errors.js';
import { DATE_PREFIXES, type DateMatch, type DatePrefix, type StringMatch, type TokenMatch } from '../../shared/search.js';
import { parseToken, splitUnescaped, unescapeValue } from './search-values.js';

/**
 * FHIR R4 search (§3.1.1) as this facade reads it: the parameters a resource type supports, and the parsing of
 * a query into typed values, every refusal a 400 naming `querystring.<parameter>`.
 */

export type ParamType = 'token' | 'string' | 'date' | 'reference' | 'id';

export interface ParamDef {
  name: string;
  type: ParamType;
  documentation: string;
  /** date: the field is a date without a time (a birth date): values must be dates too. */
  dateOnly?: boolean;
  /** reference: the chains accepted (`patient.identifier`). */
  chains?: readonly string[];
}

export type ReferenceValue = { kind: 'id'; id: string } | { kind: 'chain'; chain: string; token: TokenMatch };
export type ParamValue = TokenMatch | StringMatch | DateMatch | ReferenceValue | { kind: 'value'; value: string };

/** One occurrence of a parameter: its values are ORed; occurrences are ANDed. */
export interface ParamUse {
  def: ParamDef;
  values: ParamValue[];
}

export interface ResourceSearchDef {
  params: readonly ParamDef[];
  sorts: readonly string[];
  includes: readonly string[];
  revIncludes: readonly string[];
}

export interface ParsedSearch {
  uses: ParamUse[];
  /** Page size; 0 with `_summary=count`. */
  count: number;
  countOnly: boolean;
  total: boolean;
  sort: { name: string; descending: boolean } | null;
  include: string[];
  revInclude: string[];
  cursor?: string;
  /** The parameters applied, as sent (name with modifier, raw value): the Bundle's self link. */
  applied: [string, string][];
}

/** Result parameters this facade applies (R4 §3.1.1.5); `_format` is applied by negotiation. */
const RESULT_PARAMS = new Set(['_count', '_summary', '_total', '_sort', '_include', '_revinclude', '_format', '_cursor']);
const STRING_MODIFIERS = new Set(['exact', 'contains']);
const MAX_VALUES = 50;

const isUuid = (s: string) => z.uuid().safeParse(s).success;

class Problems {
  readonly errors: FieldError[] = [];
  add(param: string, message: string) {
    this.errors.push({ path: `querystring.${param}`, message });
  }
}

/**
 * Reads `query` (name → value or values, as the query parser gives them) for a resource type: the values of every
 * supported parameter, the result parameters, and what was applied. A parameter this type does not support is
 * ignored, or refused when `strict` (`Prefer: handling=strict`); a supported parameter with an unsupported
 * modifier or chain, or a value that is not one, is always a 400.
 */
export function parseSearch(def: ResourceSearchDef, query: Record<string, string | string[] | undefined>, strict: boolean): ParsedSearch {
  const problems = new Problems();
  const out: ParsedSearch = { uses: [], count: 50, countOnly: false, total: true, sort: null, include: [], revInclude: [], applied: [] };
  const byName = new Map(def.params.map((p) => [p.name, p]));

  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    // A result parameter given twice takes its last value (and the self link shows that one); _include adds up.
    const values = Array.isArray(raw) ? (RESULT_PARAMS.has(key) && key !== '_include' && key !== '_revinclude' ? raw.slice(-1) : raw) : [raw];
    for (const value of values) {
      if (RESULT_PARAMS.has(key)) {
        if (readResultParam(def, key, value, out, problems, strict)) out.applied.push([key, value]);
        continue;
      }
      const [nameAndChain, ...modifiers] = key.split(':');
      const [name, ...chain] = nameAndChain!.split('.');
      const param = byName.get(name!);
      if (!param) {
        if (strict) problems.add(key, 'this server does not support this search parameter here (see /metadata); without Prefer: handling=strict it is ignored');
        continue;
      }
      if (value === '') continue; // R4 §3.1.1.5: an empty value is ignored
      const modifier = modifiers.length ? modifiers.join(':') : undefined; // `family:` has an empty, unsupported one
      const use = readParam(param, key, modifier, chain.join('.') || undefined, value, problems);
      if (use) {
        out.uses.push(use);
        out.applied.push([key, value]);
      }
    }
  }
  if (problems.errors.length) throw new BadRequest('The search parameters are not valid.', problems.errors);
  return out;
}

function readResultParam(def: ResourceSearchDef, key: string, value: string, out: ParsedSearch, problems: Problems, strict: boolean): boolean {
  switch (key) {
    case '_count': {
      if (!/^\d{1,3}$/.test(value) || Number(value) > 200) {
        problems.add(key, 'a whole number from 0 to 200 (0: the total only)');
        return false;
      }
      out.count = Number(value);
      if (out.count === 0) out.countOnly = true;
      return true;
    }
    case '_summary':
      if (value === 'count') out.countOnly = true;
      else if (value !== 'false') {
        problems.add(key, '`count` (the total only) or `false` (whole resources); other summaries are not offered');
        return false;
      }
      return true;
    case '_total':
      if (value === 'none') out.total = false;
      else if (value !== 'accurate' && value !== 'estimate') {
        problems.add(key, '`accurate`, `estimate` (answered accurately) or `none`');
        return false;
      }
      return true;
    case '_sort': {
      const keys = value.split(',');
      const [first] = keys;
      const name = first?.replace(/^-/, '');
      if (keys.length !== 1 || !name || !def.sorts.includes(name)) {
        // An order this server cannot give is not applied (the self link shows none), or refused when strict.
        if (strict) problems.add(key, def.sorts.length ? `one of ${def.sorts.flatMap((s) => [s, `-${s}`]).join(', ')}` : 'no sort is offered on this resource');
        return false;
      }
      out.sort = { name, descending: first!.startsWith('-') };
      return true;
    }
    case '_include':
    case '_revinclude': {
      const offered = key === '_include' ? def.includes : def.revIncludes;
      // `Procedure:patient` or with its target type, `Procedure:patient:Patient`.
      const normalized = value.replace(/:Patient$/, '');
      if (!offered.includes(normalized)) {
        if (strict) problems.add(key, offered.length ? `only ${offered.join(', ')}` : `no ${key} is offered on this resource`);
        return false;
      }
      (key === '_include' ? out.include : out.revInclude).push(normalized);
      return true;
    }
    case '_cursor':
      out.cursor = value;
      return false; // a page of the search, not part of it: the self link leaves it out
    default:
      return true; // _format: applied by negotiation (http/negotiation.ts)
  }
}

function readParam(param: ParamDef, key: string, modifier: string | undefined, chain: string | undefined, raw: string, problems: Problems): ParamUse | undefined {
  if (chain !== undefined && !(param.type === 'reference' && param.chains?.includes(chain))) {
    problems.add(key, param.chains?.length ? `the only chain offered is ${param.name}.${param.chains.join(`, ${param.name}.`)}` : 'no chain is offered on this parameter');
    return undefined;
  }
  const modifierOk =
    modifier === undefined ||
    (param.type === 'string' && STRING_MODIFIERS.has(modifier)) ||
    (param.type === 'reference' && modifier === 'Patient');
  if (!modifierOk) {
    problems.add(key, `the modifier :${modifier} is not supported on ${param.name}${param.type === 'string' ? ' (:exact and :contains are)' : ''}`);
    return undefined;
  }
  const parts = splitUnescaped(raw, ',');
  if (parts.length > MAX_VALUES) {
    problems.add(key, `at most ${MAX_VALUES} values separated by commas`);
    return undefined;
  }
  const values: ParamValue[] = [];
  for (const part of parts) {
    const value = readValue(param, modifier, chain, part);
    if (typeof value === 'string') {
      problems.add(key, value);
      return undefined;
    }
    values.push(value);
  }
  return { def: param, values };
}

/** One value (no comma) of `param`, or why it is not one. */
function readValue(param: ParamDef, modifier: string | undefined, chain: string | undefined, part: string): ParamValue | string {
  const ESCAPES = 'escape | , $ \\ in a value with a backslash';
  if (part === '') return 'an empty value in a list of values';
  if (chain !== undefined || param.type === 'token') {
    const token = parseToken(part);
    if (!token) return `a token: system|code, system|, |code or code (${ESCAPES})`;
    const match: TokenMatch = { kind: 'token', ...token };
    return chain !== undefined ? { kind: 'chain', chain, token: match } : match;
  }
  const text = unescapeValue(part);
  if (text === undefined) return `a backslash may only ${ESCAPES}`;
  switch (param.type) {
    case 'string':
      return { kind: 'string', mode: (modifier as 'exact' | 'contains' | undefined) ?? 'prefix', value: text };
    case 'id':
      return isUuid(text) ? { kind: 'value', value: text.toLowerCase() } : 'an id of this server (a UUID)';
    case 'reference': {
      const id = text.startsWith('Patient/') ? text.slice('Patient/'.length) : text;
      return isUuid(id) ? { kind: 'id', id: id.toLowerCase() } : 'a Patient id or Patient/{id}';
    }
    case 'date':
      return parseDate(text, param.dateOnly === true);
  }
}

const DATE = /^(?<prefix>[a-z]{2})?(?<year>\d{4})(?:-(?<month>\d{2})(?:-(?<day>\d{2})(?:T(?<hour>\d{2}):(?<minute>\d{2})(?::(?<second>\d{2})(?:\.(?<fraction>\d{1,3}))?)?(?<zone>Z|[+-]\d{2}:\d{2}))?)?)?$/;
const MAX_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A date search value (R4 §3.1.1.4.2): an optional prefix, then `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or
 * `YYYY-MM-DDThh:mm[:ss[.fff]]` with `Z` or an offset; the range it covers is its precision (a day is the UTC
 * day). Dates lie between 1900-01-01 and 9999-12-31; impossible ones (2023-02-30) are refused.
 */
export function parseDate(text: string, dateOnly: boolean): DateMatch | string {
  const m = DATE.exec(text);
  const shape = 'a date: [prefix]YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]] with Z or ±hh:mm; prefixes eq ne lt gt le ge sa eb';
  if (!m?.groups) return shape;
  const g = m.groups;
  const prefix = (g.prefix ?? 'eq') as DatePrefix;
  if (!(DATE_PREFIXES as readonly string[]).includes(prefix)) return `the prefix ${g.prefix} is not supported (eq ne lt gt le ge sa eb are)`;
  const year = Number(g.year);
  const month = g.month === undefined ? 1 : Number(g.month);
  const day = g.day === undefined ? 1 : Number(g.day);
  if (year < 1900) return 'a date from 1900-01-01 to 9999-12-31';
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return 'not a calendar date';
  if (g.hour !== undefined) {
    if (dateOnly) return 'a date without a time: this parameter is a date';
    const [hour, minute, second] = [Number(g.hour), Number(g.minute), Number(g.second ?? 0)];
    if (hour > 23 || minute > 59 || second > 59) return 'not a time of day';
    const zone = g.zone!;
    const [zoneHours, zoneMinutes] = zone === 'Z' ? [0, 0] : [Number(zone.slice(1, 3)), Number(zone.slice(4, 6))];
    const offset = (zone.startsWith('-') ? -1 : 1) * (zoneHours * 60 + zoneMinutes);
    if (zoneMinutes > 59 || Math.abs(offset) > 14 * 60) return 'a time zone offset from -14:00 to +14:00';
    const fraction = g.fraction ?? '';
    const start = Date.UTC(year, month - 1, day, hour, minute, second, Number(fraction.padEnd(3, '0'))) - offset * 60_000;
    const unit = g.second === undefined ? 60_000 : fraction ? 10 ** (3 - fraction.length) : 1000;
    return { kind: 'date', prefix, start: instant(start), end: instant(start + unit), dayAligned: false };
  }
  const start = Date.UTC(year, month - 1, day);
  const end = g.day !== undefined ? Date.UTC(year, month - 1, day + 1) : g.month !== undefined ? Date.UTC(year, month, 1) : Date.UTC(year + 1, 0, 1);
  return { kind: 'date', prefix, start: instant(start), end: instant(end), dayAligned: true };
}

/** ISO 8601 UTC text, or `infinity` past 9999-12-31 (nothing stored lies there). */
const instant = (ms: number) => (ms > MAX_INSTANT ? 'infinity' : new Date(ms).toISOString());

/** `$everything`'s parameters (R4 Patient-everything): a ParsedSearch for its Bundle plus what the operation takes. */
export interface ParsedEverything extends ParsedSearch {
  since?: string;
  types?: string[];
}

const EVERYTHING_PARAMS = new Set(['_count', '_since', '_type', '_cursor', '_format']);
const EVERYTHING_TYPE_NAMES = ['Patient', 'Procedure', 'Observation', 'AdverseEvent', 'BiologicallyDerivedProduct'];

/**
 * Reads `$everything`'s query: `_count` 1..200 (default 50), `_since` an instant or a date (its UTC day's start),
 * `_type` a comma-separated or repeated list of the types served there (another is a 400; an empty value is
 * ignored). Other parameters are ignored and left out of the self link, or a 400 under `Prefer: handling=strict`.
 */
export function parseEverything(query: Record<string, string | string[] | undefined>, strict: boolean): ParsedEverything {
  const problems = new Problems();
  const out: ParsedEverything = { uses: [], count: 50, countOnly: false, total: false, sort: null, include: [], revInclude: [], applied: [] };
  const last = (v: string | string[]) => (Array.isArray(v) ? v[v.length - 1]! : v);
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    if (!EVERYTHING_PARAMS.has(key)) {
      if (strict) problems.add(key, '$everything takes _count, _since, _type (and _cursor, _format); without Prefer: handling=strict others are ignored');
      continue;
    }
    const value = last(raw);
    switch (key) {
      case '_count':
        if (!/^\d{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 200) problems.add(key, 'a whole number from 1 to 200');
        else {
          out.count = Number(value);
          out.applied.push([key, value]);
        }
        break;
      case '_since': {
        const since = /^\d/.test(value) ? parseDate(value, false) : 'an instant: YYYY-MM-DDThh:mm:ss[.fff] with Z or ±hh:mm, or a date';
        if (typeof since === 'string') problems.add(key, since);
        else {
          out.since = since.start;
          out.applied.push([key, value]);
        }
        break;
      }
      case '_type': {
        const types = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
        const unknown = types.filter((t) => !EVERYTHING_TYPE_NAMES.includes(t));
        if (unknown.length) problems.add(key, `types served by $everything: ${EVERYTHING_TYPE_NAMES.join(', ')}`);
        else if (types.length) {
          out.types = [...new Set(types)];
          out.applied.push([key, out.types.join(',')]);
        }
        break;
      }
      case '_cursor':
        out.cursor = value;
        break;
      default:
        out.applied.push([key, value]); // _format: applied by negotiation
    }
  }
  if (problems.errors.length) throw new BadRequest('The $everything parameters are not valid.', problems.errors);
  return out;
}
