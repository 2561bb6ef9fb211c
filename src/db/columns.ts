import { timestamp } from 'drizzle-orm/pg-core';

/** An instant: `timestamptz`, a JS Date in code, UTC `Z` in the API. Every time column of the schema is one. */
export const instant = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
