// Every table, for drizzle's relational queries and drizzle-kit. Modules own their tables.
export * from '../modules/patients/patients.table.js';
export * from '../modules/history/history.table.js';
export * from '../modules/audit/audit.table.js';
export * from './idempotency.table.js';
export * from '../modules/donors/donors.table.js';
export * from '../modules/lots/lots.table.js';
export * from '../modules/procedures/procedures.table.js';
export * from '../modules/outcomes/outcomes.table.js';
export * from '../modules/adverse-events/adverse-events.table.js';
