import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The layer rules of eslint.config.js fire (issue 14, docs/adr/0003): routes speak HTTP, services hold rules,
 * queries hold SQL, and no module reaches into another's queries. The fixtures break each rule once.
 */
describe('layer rules', () => {
  it('refuse SQL in services and routes, HTTP in services and queries, another module\'s queries anywhere, and drizzle\'s private session', async () => {
    const eslint = new ESLint({ ignore: false });
    const results = await eslint.lintFiles(['test/lint/fixtures/modules/demo/*.ts']);
    // [line, the rule's own message] per fixture file.
    const fired = Object.fromEntries(
      results.map((r) => [
        r.filePath.split('/').pop(),
        r.messages
          .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
          .map((m) => [m.line, m.ruleId === 'no-restricted-imports' ? m.message.split('by a pattern. ')[1] : m.message]),
      ]),
    );
    const OTHER_QUERIES = "Ask the other module's service for a value or a named part (db/statement.ts), not its queries file.";
    expect(fired).toEqual({
      'demo.service.ts': [
        [2, "Services hold rules: SQL and tables live in the module's *.queries.ts."],
        [3, "Services hold rules: SQL and tables live in the module's *.queries.ts."],
        [4, OTHER_QUERIES],
        [5, 'Services do not speak HTTP.'],
      ],
      'demo.queries.ts': [
        [2, OTHER_QUERIES],
        [3, 'Queries do not speak HTTP.'],
      ],
      'demo.mappers.ts': [
        [2, OTHER_QUERIES],
        [5, 'No private drizzle fields: run statements through db/statement.ts.'],
      ],
      'demo.routes.ts': [
        [2, 'Routes call services; SQL lives in *.queries.ts.'],
        [3, 'Routes call services; SQL lives in *.queries.ts.'],
      ],
    });
  }, 60_000);
});
