import { describe, expect, it } from 'vitest';
import { JSON_ONLY, negotiate } from './negotiation.js';

const REPORT = ['application/json', 'text/csv'];

describe('negotiate (RFC 9110 §12.5.1)', () => {
  it.each([
    [undefined, 'application/json'], // no Accept: the default
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['text/csv', 'text/csv'],
    ['TEXT/CSV', 'text/csv'],
    ['text/*', 'text/csv'],
    ['application/*', 'application/json'],
    ['application/json, text/csv;q=0', 'application/json'], // q=0: not acceptable
    ['text/csv;q=0.5, application/json;q=0.9', 'application/json'],
    ['application/json;q=0.5, text/csv;q=0.9', 'text/csv'],
    ['text/csv, application/json', 'text/csv'], // equal q: the client's order
    ['*/*;q=0.1, text/csv', 'text/csv'],
    ['text/*;q=0.1, */*;q=0.5', 'application/json'],
    ['application/json; charset=utf-8', 'application/json'],
    ['text/csv; charset=UTF-8; header=present', 'text/csv'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/json'], // a browser
  ])('Accept %j → %s', (accept, chosen) => {
    expect(negotiate(accept, REPORT)).toBe(chosen);
  });

  it.each([
    'text/csv;q=0',
    'application/xml',
    'text/html',
    '*/*;q=0',
    'application/json;q=0, text/csv;q=0',
    'text/*;q=0, application/json;q=0',
    'text/csv; charset=iso-8859-1',
    'garbage',
    'text/csv;q=abc',
  ])('Accept %j → nothing acceptable', (accept) => {
    expect(negotiate(accept, REPORT)).toBeUndefined();
  });

  it('lets the most specific range decide: text/* allowed, text/csv refused', () => {
    expect(negotiate('text/*, text/csv;q=0', REPORT)).toBeUndefined();
    expect(negotiate('text/*, text/csv;q=0, */*;q=0.1', REPORT)).toBe('application/json');
    expect(negotiate('*/*, application/json;q=0', REPORT)).toBe('text/csv');
  });

  it('offers JSON only on a JSON route', () => {
    expect(negotiate('text/html', JSON_ONLY)).toBeUndefined();
    expect(negotiate('text/html, */*;q=0.1', JSON_ONLY)).toBe('application/json');
    expect(negotiate('application/problem+json', JSON_ONLY)).toBeUndefined();
  });
});
