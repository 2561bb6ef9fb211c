import fs from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_FILE } from '../src/cli/openapi.js';
import { createTestApp, type TestApp } from './support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(() => t.close());

type Operation = {
  operationId?: string;
  tags?: string[];
  summary?: string;
  description?: string;
  security?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, unknown> }>;
};

describe('the OpenAPI document', () => {
  it('in openapi/openapi.json is exactly what the service serves (run `npm run openapi` after changing a route)', async () => {
    const served = await t.http.get('/openapi.json');
    expect(served.status).toBe(200);
    const committed = JSON.parse(await fs.readFile(OPENAPI_FILE, 'utf8'));
    expect(served.body).toEqual(committed);
  });

  it('is OpenAPI 3.1 and every operation has an operationId, a tag, a summary, a success and its problem responses', async () => {
    const doc = (await t.http.get('/openapi.json')).body as {
      openapi: string;
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, { example?: unknown }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    const ids = new Set<string>();
    let count = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        count++;
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.operationId, where).toBeTruthy();
        expect(ids.has(op.operationId!), `${where} duplicate operationId`).toBe(false);
        ids.add(op.operationId!);
        expect(op.tags?.length, where).toBeGreaterThan(0);
        expect(op.summary, where).toBeTruthy();
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => s.startsWith('2')), `${where} success response`).toBe(true);
        const isPublic = Array.isArray(op.security) && op.security.length === 0;
        if (!isPublic) {
          for (const s of ['401', '403']) expect(statuses, `${where} ${s}`).toContain(s);
          // Each scoped operation names its scope once (a GET's HEAD twin shares its schema object).
          expect(op.description?.match(/Requires scope/g)?.length ?? 0, `${where} names its scope once`).toBeLessThanOrEqual(1);
        }
        if (op.requestBody) {
          for (const s of ['400', '413', '415']) expect(statuses, `${where} ${s}`).toContain(s);
          // JSON everywhere but the OAuth token endpoint (RFC 6749: a form).
          const content = (op.requestBody as { content: Record<string, { schema: { $ref?: string; example?: unknown } }> }).content;
          const schema = (content['application/json'] ?? content['application/x-www-form-urlencoded'])!.schema;
          const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!]! : schema;
          expect(resolved.example, `${where} has an example body`).toBeDefined();
        }
        // The OAuth token endpoint answers RFC 6749 §5.2 JSON errors, not problem details.
        const errorType = path.startsWith('/fhir/') ? 'application/fhir+json' : path === '/auth/token' ? 'application/json' : 'application/problem+json';
        for (const s of statuses.filter((x) => x.startsWith('4') || x.startsWith('5'))) {
          expect(Object.keys(op.responses[s]!.content ?? {}), `${where} ${s}`).toEqual([errorType]);
        }
      }
    }
    expect(count).toBeGreaterThan(8);
  });

  it('validates against the OpenAPI 3.1 schema', async () => {
    const doc = (await t.http.get('/openapi.json')).body;
    const result = await new Validator().validate(doc);
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('is served with the interactive docs page', async () => {
    const res = await t.http.get('/docs/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
  });
});
