import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { instant } from '../../db/columns.js';

/**
 * A registered SMART Backend Services client (contract "SMART Backend Services"): a system that gets tokens with a
 * signed assertion (RFC 7523) from POST /auth/token. Its public keys are inline (`jwks`) or fetched (`jwks_uri`),
 * never both. Never deleted: a client is disabled, and then gets no token (its issued ones expire within 5 min).
 */
export const clients = pgTable(
  'clients',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    /** The clinic the client acts for (its tokens carry `clinic_id`); null acts for none (supplier-wide). */
    clinicId: text('clinic_id'),
    jwksUri: text('jwks_uri'),
    /** `{ keys: [...] }`, public members only. */
    jwks: jsonb('jwks').$type<{ keys: Record<string, unknown>[] }>(),
    /** The service scopes the client may be granted (SMART scopes map onto these). */
    scopes: text('scopes').array().notNull(),
    status: text('status').notNull(),
    version: integer('version').notNull().default(1),
    createdAt: instant('created_at').notNull(),
    createdBy: text('created_by').notNull(),
    updatedAt: instant('updated_at').notNull(),
    updatedBy: text('updated_by').notNull(),
  },
  (t) => [
    index('clients_clinic_idx').on(t.clinicId, t.id),
    check('clients_status_ck', sql`${t.status} in ('active','disabled')`),
    check('clients_keys_ck', sql`(${t.jwksUri} is null) <> (${t.jwks} is null)`),
  ],
);

/**
 * Every client assertion's `jti` until its `exp` has passed (RFC 7523 §3 item 7): the insert of a pair already
 * present is the replay. Shared by every instance; rows past `expires_at` may be deleted.
 */
export const clientAssertionJtis = pgTable(
  'client_assertion_jtis',
  {
    clientId: uuid('client_id')
      .notNull()
      .references(() => clients.id),
    jti: text('jti').notNull(),
    expiresAt: instant('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.jti] }), index('client_assertion_jtis_expires_idx').on(t.expiresAt)],
);
