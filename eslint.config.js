// @ts-check
import tseslint from 'typescript-eslint';

const CROSS_MODULE_QUERIES = {
  group: ['../*/*.queries.js', '**/modules/*/*.queries.js'],
  message: 'Ask the other module\'s service for a value or a named part (db/statement.ts), not its queries file.',
};
const NO_HTTP = (layer) => ({ group: ['fastify', 'fastify/*', '@fastify/*', '**/http/*'], message: `${layer} do not speak HTTP.` });

export default tseslint.config(
  // test/lint/fixtures break the layer rules on purpose: test/lint/layers.test.ts lints them and expects the errors.
  { ignores: ['eslint.config.js', 'dist/**', 'node_modules/**', 'coverage/**', '.data/**', 'migrations/**', 'openapi/**', 'test/lint/fixtures/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    // A library's private fields are not an API (docs/adr/0003): drizzle's `_.session` is how a statement
    // mechanism reached into it before; statements go through db/statement.ts on public APIs only.
    files: ['src/**/*.ts', 'bench/**/*.ts', 'test/lint/fixtures/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "MemberExpression[property.name='session'][object.type='MemberExpression'][object.property.name='_']",
        message: 'No private drizzle fields: run statements through db/statement.ts.',
      }],
    },
  },
  {
    // Layers (docs/adr/0003, issue 14): a module asks another module's service, never its queries.
    files: ['**/modules/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [CROSS_MODULE_QUERIES] }],
    },
  },
  {
    // Routes speak HTTP and call services: no SQL, no drizzle, no queries files.
    files: ['**/modules/**/*.routes.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['drizzle-orm', 'drizzle-orm/*', 'pg', '**/*.queries.js', '**/*.table.js'], message: 'Routes call services; SQL lives in *.queries.ts.' }] }],
    },
  },
  {
    // Queries hold SQL and do not speak HTTP.
    files: ['**/modules/**/*.queries.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [NO_HTTP('Queries'), CROSS_MODULE_QUERIES] }],
    },
  },
  {
    // Services hold rules: no SQL, no drizzle, no tables, no HTTP. Another module's data comes from its
    // service, as a value or a named part (db/statement.ts) that this module's queries compose.
    files: ['**/modules/**/*.service.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        NO_HTTP('Services'),
        CROSS_MODULE_QUERIES,
        { group: ['drizzle-orm', 'drizzle-orm/*', 'pg', '**/*.table.js'], message: 'Services hold rules: SQL and tables live in the module\'s *.queries.ts.' },
      ] }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
