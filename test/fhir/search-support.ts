import { expect } from 'vitest';
import type { TestApp } from '../support/app.js';
import { consentBody, patientBody, procedureBody } from '../support/fixtures.js';
import { validateR4 } from './validator.js';

/** Helpers shared by the FHIR search test files (search, search-properties, everything). */

export type Entry = {
  fullUrl: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- FHIR resources are checked by the validator, not by types
  resource: Record<string, any>;
  search?: { mode: string };
};
export type Bundle = { resourceType: string; type: string; total?: number; link: { relation: string; url: string }[]; entry?: Entry[] };

export const auth = (token: string) => ['authorization', `Bearer ${token}`] as const;
export const pathOf = (url: string) => new URL(url).pathname + new URL(url).search;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The FHIR escape of a search value (R4 §3.1.1.5.7): a backslash before each of \ | , $. */
export const esc = (v: string) => v.replace(/[\\|,$]/g, (c) => `\\${c}`);

/** A query string from [name, value] pairs; names are kept as written (`family:exact`, `patient.identifier`), values percent-encoded. */
export const qs = (...pairs: [string, string][]) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

export const sorted = (xs: readonly string[]) => [...xs].sort();

/** Ids of the `match` entries, in Bundle order. */
export const matchIds = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id as string);
export const includeEntries = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode === 'include');
export const nextOf = (b: Bundle) => b.link.find((l) => l.relation === 'next')?.url;
export const selfOf = (b: Bundle) => new URL(b.link.find((l) => l.relation === 'self')!.url);

export function fhir(t: TestApp) {
  const get = (path: string, token: string) => t.http.get(`/fhir/R4${path}`).set(...auth(token));

  /** A search that must answer 200 with a searchset Bundle that validates. */
  async function search(path: string, token: string): Promise<Bundle> {
    const res = await get(path, token);
    expect(res.status, `${path}: ${JSON.stringify(res.body).slice(0, 500)}`).toBe(200);
    expect(res.headers['content-type'], path).toMatch(/^application\/fhir\+json/);
    expect(res.body, path).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    validateR4(res.body);
    return res.body as Bundle;
  }

  /** Every page of a search, following `next` links from the first. */
  async function walk(path: string, token: string, maxPages = 60): Promise<Bundle[]> {
    const pages: Bundle[] = [];
    let url: string | undefined = `/fhir/R4${path}`;
    while (url) {
      const res = await t.http.get(url).set(...auth(token));
      expect(res.status, `${url}: ${JSON.stringify(res.body).slice(0, 500)}`).toBe(200);
      validateR4(res.body);
      const b = res.body as Bundle;
      pages.push(b);
      expect(pages.length, `${path}: too many pages`).toBeLessThanOrEqual(maxPages);
      const next = nextOf(b);
      url = next ? pathOf(next) : undefined;
    }
    return pages;
  }

  /** A 4xx answered as an OperationOutcome that validates, with the issue's expression when given. */
  async function refused(path: string, token: string, status: number, expression?: string[], headers: Record<string, string> = {}) {
    let req = get(path, token);
    for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
    const res = await req;
    expect(res.status, `${path}: ${JSON.stringify(res.body).slice(0, 500)}`).toBe(status);
    expect(res.headers['content-type'], path).toMatch(/^application\/fhir\+json/);
    expect(res.body.resourceType, path).toBe('OperationOutcome');
    validateR4(res.body);
    if (expression) expect(res.body.issue[0].expression, path).toEqual(expression);
    return res;
  }

  return { get, search, walk, refused };
}

/** Writers through the /v1 API, as a clinic's software records things. */
export function writer(t: TestApp, clinician: string) {
  async function patient(overrides: Record<string, unknown> = {}, opts: { consent?: boolean } = {}) {
    const res = await t.http.post('/v1/patients').set(...auth(clinician)).send(patientBody(overrides));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    if (opts.consent) {
      const c = await t.http
        .post(`/v1/patients/${res.body.id}/consents`)
        .set(...auth(clinician))
        .send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
      expect(c.status, JSON.stringify(c.body)).toBe(201);
    }
    return res.body as { id: string; mrn: string; identifiers: { system: string; value: string }[]; familyName: string; givenName: string };
  }
  async function procedure(patientId: string, lotId: string, performedAt: string, overrides: Record<string, unknown> = {}) {
    const res = await t.http.post('/v1/procedures').set(...auth(clinician)).send(procedureBody(patientId, lotId, { performedAt, ...overrides }));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  }
  async function outcome(procedureId: string, instrument: string, assessedAt: string, score = 3) {
    const res = await t.http.post('/v1/outcomes').set(...auth(clinician)).send({ procedureId, instrument, timepoint: 'unscheduled', score, assessedAt });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  }
  async function adverseEvent(procedureId: string, onsetAt: string, serious = false) {
    const res = await t.http
      .post('/v1/adverse-events')
      .set(...auth(clinician))
      .send({
        procedureId,
        onsetAt,
        description: 'Knee effusion',
        severityGrade: serious ? 3 : 1,
        serious,
        seriousnessCriteria: serious ? ['hospitalization'] : [],
        relatedness: 'possible',
        outcome: 'recovering',
      });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  }
  return { patient, procedure, outcome, adverseEvent };
}
