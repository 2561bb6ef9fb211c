import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, BadRequest, type FieldError } from '../shared/errors.js';
import { normalizeInput } from '../shared/text.js';
import { firstRepeatedMember } from './json-members.js';

/**
 * The input boundary (contract: "Input and output rules"): everything a request carries passes here before
 * validation, so no module has to remember it.
 *
 * - Bodies are JSON in UTF-8 (RFC 8259 §8.1): a declared charset other than utf-8 is 415; bytes that are not
 *   UTF-8 are 400 (Fastify's own parser would decode them into U+FFFD and store that for good).
 * - Every string of the body, the query and the path becomes NFC; NUL, C0 and C1 controls, DEL and lone
 *   surrogates are 400 naming the field (shared/text.ts). In a POST body `null` means absent; a PATCH keeps merge-patch nulls (RFC 7396).
 * - A query string whose escapes do not decode to UTF-8 (`%E9`) is 400 rather than searched as typed.
 * - A member named twice in one object (`{"serious": false, "serious": true}`) is 400 naming it (json-members.ts):
 *   parsers disagree on which one counts (RFC 8259 §4), so the service takes neither.
 */
export const JSON_MEDIA_TYPES = ['application/json', 'application/merge-patch+json'] as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The `charset` parameter of a Content-Type header, lower-cased, or undefined when there is none. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    return param
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
  }
  return undefined;
}

class UnsupportedCharset extends AppError {
  constructor(charset: string) {
    super(415, 'unsupported-charset', 'Unsupported Media Type', `JSON bodies are UTF-8 (RFC 8259 §8.1); this one declares charset=${charset.slice(0, 40).replace(/[^\w.:-]/g, '?')}. Send it as UTF-8.`);
  }
}

/**
 * Query strings parsed strictly: `+` is a space, `%XX` escapes must decode to UTF-8, a repeated key gives an
 * array (as Fastify's default parser does). A value that does not decode keeps its raw text and its key is
 * listed under INVALID, for the preValidation hook to refuse with the field's name.
 */
const INVALID = Symbol('undecodable query keys');
type ParsedQuery = Record<string, string | string[]> & { [INVALID]?: string[] };

export function parseQueryString(text: string): ParsedQuery {
  const out = Object.create(null) as ParsedQuery;
  if (!text) return out;
  for (const part of text.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const key = decode(rawKey);
    const value = decode(rawValue);
    const name = key ?? rawKey;
    if (key === undefined || value === undefined) (out[INVALID] ??= []).push(name);
    const v = value ?? rawValue;
    const prior = out[name];
    out[name] = prior === undefined ? v : Array.isArray(prior) ? [...prior, v] : [prior, v];
  }
  return out;
}

function decode(s: string): string | undefined {
  const spaced = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!spaced.includes('%')) return spaced;
  try {
    return decodeURIComponent(spaced);
  } catch {
    return undefined;
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** The 400 for refused text, in the shape the validation errors of the error mapper take. */
function invalid(where: string, errors: FieldError[]): BadRequest {
  return new BadRequest(`The request ${where} is invalid: ${errors.map((e) => e.path).join(', ')}.`, errors, 'validation-failed');
}

function refuse(where: string, errors: FieldError[]): never {
  throw invalid(where, errors);
}

/** Largest form body (`application/x-www-form-urlencoded`) a route that takes one reads. */
export const FORM_BODY_LIMIT_BYTES = 64 * 1024;

/** A body's text: its charset must be UTF-8 if named (else 415) and its bytes UTF-8 (else 400 `invalid-utf8`). */
function utf8Body(req: FastifyRequest, body: Buffer, notUtf8: string): string | Error {
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return new UnsupportedCharset(charset);
  try {
    return utf8.decode(body);
  } catch {
    return new BadRequest(notUtf8, undefined, 'invalid-utf8');
  }
}

/**
 * `application/x-www-form-urlencoded` (for the routes that take it, e.g. the OAuth token endpoint, registered in
 * their own encapsulated context): the same rules as JSON bodies and query strings. UTF-8 only (another charset is
 * 415, bytes that are not UTF-8 are 400), escapes must decode to UTF-8, text NFC, no control characters. A repeated
 * parameter becomes an array (the route's schema decides whether that is allowed).
 */
export function addUrlEncodedParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT_BYTES }, (req: FastifyRequest, body: Buffer, done) => {
    const text = utf8Body(req, body, 'The body is not valid UTF-8.');
    if (text instanceof Error) return done(text, undefined);
    const parsed = parseQueryString(text);
    const errors: FieldError[] = (parsed[INVALID] ?? []).map((key) => ({ path: `body.${key}`, message: 'is not percent-encoded UTF-8' }));
    if (errors.length) return done(invalid('body', errors), undefined);
    const value = normalizeInput({ ...parsed }, 'body', { allowLineBreaks: false, nullIsAbsent: false }, errors);
    if (errors.length) return done(invalid('body', errors), undefined);
    done(null, value);
  });
}

export const inputPlugin = fp(
  async (app: FastifyInstance) => {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('text/plain');
    app.removeContentTypeParser('application/json');
    for (const type of JSON_MEDIA_TYPES) {
      app.addContentTypeParser(type, { parseAs: 'buffer' }, (req: FastifyRequest, body: Buffer, done) => {
        const text = utf8Body(req, body, 'The body is not valid UTF-8 (RFC 8259 §8.1).');
        if (text instanceof Error) return done(text, undefined);
        // The default parser answers through its callback (synchronously); its return value is nothing to await.
        void parseJson(req, text, (err, parsed) => {
          if (err) return done(err, undefined);
          const repeated = firstRepeatedMember(text);
          if (repeated !== null) return done(invalid('body', [{ path: `body.${repeated}`, message: 'is given more than once (RFC 8259 §4): send each member once' }]), undefined);
          const errors: FieldError[] = [];
          const value = normalizeInput(parsed, 'body', { allowLineBreaks: true, nullIsAbsent: req.method === 'POST' }, errors);
          if (errors.length) return done(invalid('body', errors), undefined);
          done(null, value);
        });
      });
    }

    // Callback style and an early return for the common request with no query and no path parameter: this
    // runs on every request.
    app.addHook('preValidation', (req, _reply, done) => {
      try {
        const query = req.query as ParsedQuery | undefined;
        const errors: FieldError[] = [];
        if (query && typeof query === 'object' && (query[INVALID] || hasKeys(query))) {
          for (const key of query[INVALID] ?? []) errors.push({ path: `querystring.${key}`, message: 'is not percent-encoded UTF-8' });
          if (errors.length) refuse('query', errors);
          req.query = normalizeInput(query, 'querystring', { allowLineBreaks: false, nullIsAbsent: false }, errors);
          if (errors.length) refuse('query', errors);
        }
        const params = req.params as Record<string, unknown> | undefined;
        if (params && typeof params === 'object' && hasKeys(params)) {
          req.params = normalizeInput(params, 'params', { allowLineBreaks: false, nullIsAbsent: false }, errors);
          if (errors.length) refuse('path', errors);
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    });
  },
  { name: 'input' },
);
