import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  // Every module owns its tables; drizzle-kit reads them where they live (no file imports them all).
  schema: ['./src/modules/*/*.table.ts', './src/db/*.table.ts'],
  out: './migrations',
});
