import { getTableColumns, type Table } from 'drizzle-orm';

/** Maps a row from raw SQL (PostgreSQL column names, driver values) to the table's typed row, as drizzle would. */
export function fromRaw<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    const value = raw[column.name];
    out[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return out;
}
