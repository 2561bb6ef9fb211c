import { getTableColumns, type Column, type Table } from 'drizzle-orm';

/** Each table's columns as [property, column] pairs, listed once (fromRaw runs for every row read). */
const columnsOf = new WeakMap<Table, [string, Column][]>();

/** Maps a row from raw SQL (PostgreSQL column names, driver values) to the table's typed row, as drizzle would. */
export function fromRaw<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  let columns = columnsOf.get(table);
  if (!columns) {
    columns = Object.entries(getTableColumns(table));
    columnsOf.set(table, columns);
  }
  const out: Record<string, unknown> = {};
  for (const [key, column] of columns) {
    const value = raw[column.name];
    out[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return out;
}
