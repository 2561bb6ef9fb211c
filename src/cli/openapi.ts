import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildApp } from '../app.js';
import { createLogger } from '../shared/logger.js';
import { Unauthorized } from '../shared/errors.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url));

/** The document exactly as the service serves it at /openapi.json. */
export async function renderOpenapi(): Promise<string> {
  // The pool never connects: building the app and generating the document touch no database.
  const pool = new pg.Pool({ connectionString: 'postgres://unused@127.0.0.1:1/unused' });
  const app = await buildApp({
    pool,
    logger: createLogger('silent'),
    verifyToken: () => Promise.reject(new Unauthorized()),
  });
  await app.ready();
  const doc = `${JSON.stringify(app.swagger(), null, 2)}\n`;
  await app.close();
  await pool.end();
  return doc;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const doc = await renderOpenapi();
  await fs.writeFile(OPENAPI_FILE, doc);
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`);
}
