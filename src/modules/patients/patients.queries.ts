import { and, asc, eq, gt, sql, type SQL } from 'drizzle-orm';
import type { Executor, Tx } from '../../db/client.js';
import { pgCode, pgConstraint } from '../../db/errors.js';
import { fromRaw } from '../../db/raw.js';
import { builder, part, presentEqualities, setKeys, shapedPart } from '../../db/statement.js';
import { searchable } from '../../db/search.js';
import type { Match } from '../../shared/search.js';
import type { PageRequest } from '../../shared/paging.js';
import { Conflict } from '../../shared/errors.js';
import { consents, patients } from './patients.table.js';
import type { IdentifierToken, PatientFilters } from './patients.schemas.js';

export type PatientRow = typeof patients.$inferSelect;
export type ConsentRow = typeof consents.$inferSelect;

function mapUniqueViolation(err: unknown): never {
  if (pgCode(err) === '23505' && pgConstraint(err) === 'patients_clinic_mrn_uq') {
    throw new Conflict('A patient with this MRN already exists in your clinic.', 'duplicate-mrn');
  }
  if (pgCode(err) === '23505' && pgConstraint(err) === 'patient_identifiers_pk') {
    throw new Conflict('An identifier (system and value) in this request already names a patient of your clinic, or is listed twice.', 'duplicate-identifier');
  }
  throw err;
}

export async function insertPatient(tx: Tx, row: typeof patients.$inferInsert): Promise<PatientRow> {
  try {
    const [created] = await tx.insert(patients).values(row).returning();
    return created!;
  } catch (err) {
    return mapUniqueViolation(err);
  }
}

/** One patient of the clinic, as a named query (AuditLog.readStatement audits it). */
export const byId = part<{ clinicId: string; id: string }>({ clinicId: true, id: true }, (p) =>
  builder
    .select()
    .from(patients)
    .where(and(eq(patients.id, p.id), eq(patients.clinicId, p.clinicId)))
    .limit(1),
);

/** A patients row as PostgreSQL returns it from raw SQL. */
export const patientFromRaw = (r: Record<string, unknown>): PatientRow => fromRaw(patients, r);

export async function findPatient(exec: Executor, clinicId: string, id: string): Promise<PatientRow | undefined> {
  const [row] = await exec
    .select()
    .from(patients)
    .where(and(eq(patients.id, id), eq(patients.clinicId, clinicId)))
    .limit(1);
  return row;
}

export async function findPatientAnyClinic(exec: Executor, id: string): Promise<PatientRow | undefined> {
  const [row] = await exec.select().from(patients).where(eq(patients.id, id)).limit(1);
  return row;
}

const likePrefix = (s: string) => s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`) + '%';

/** A search's values as the SQL takes them: the family name as a LIKE prefix, the identifier as a jsonb probe. */
export interface PatientSearchValues {
  clinicId: string;
  mrn?: string;
  birthDate?: string;
  familyNamePrefix?: string;
  identifierProbe?: string;
  after?: string;
  limit: number;
}

/** The jsonb containment probe of an identifier search: the members given must all match one element. */
function identifierProbe(identifier: string | IdentifierToken): string {
  if (typeof identifier === 'string') {
    const bar = identifier.indexOf('|');
    return JSON.stringify([{ system: identifier.slice(0, bar), value: identifier.slice(bar + 1) }]);
  }
  // A null system matches no stored identifier (each has one), as FHIR's `|code` asks.
  return JSON.stringify([{ ...(identifier.system !== undefined ? { system: identifier.system } : {}), ...(identifier.code !== undefined ? { value: identifier.code } : {}) }]);
}

export function patientSearchValues(clinicId: string, f: PatientFilters, page?: PageRequest): PatientSearchValues {
  return {
    clinicId,
    mrn: f.mrn,
    birthDate: f.birthDate,
    familyNamePrefix: f.familyName ? likePrefix(f.familyName) : undefined,
    identifierProbe: f.identifier !== undefined ? identifierProbe(f.identifier) : undefined,
    after: page?.after,
    limit: (page?.limit ?? 0) + 1,
  };
}

/** The conditions of a search: one per value `present` names. */
function patientWhere(p: PatientSearchValues, present: ReadonlySet<string>): (SQL | undefined)[] {
  return [
    eq(patients.clinicId, p.clinicId),
    ...presentEqualities(p, present, { mrn: patients.mrn, birthDate: patients.birthDate }),
    present.has('familyNamePrefix') ? sql`lower(${patients.familyName}) like ${p.familyNamePrefix}` : undefined,
    present.has('identifierProbe') ? sql`${patients.identifiers} @> ${p.identifierProbe}::jsonb` : undefined,
  ];
}

/** The clinic's patients by filters, in id order, as a named query (AuditLog.searchStatement audits it). */
export const search = shapedPart<PatientSearchValues>(
  { clinicId: true, mrn: true, birthDate: true, familyNamePrefix: true, identifierProbe: true, after: true, limit: true },
  (p, present) =>
    builder
      .select()
      .from(patients)
      .where(and(...patientWhere(p, present), present.has('after') ? gt(patients.id, p.after!) : undefined))
      .orderBy(asc(patients.id))
      .limit(p.limit),
);

/** What a patient can be searched by (shared/search.ts criteria), and how each is written in SQL. */
export type PatientField = 'id' | 'family' | 'given' | 'birthDate' | 'sex' | 'identifier' | 'mrn' | 'updatedAt';
export type PatientSort = 'updatedAt';

const tokenOnly = (m: Match) => {
  if (m.kind !== 'token') throw new Error(`a ${m.kind} match on a token field`);
  return m;
};

/** The clinic's patients as search criteria see them (db/search.ts). */
export const patientSearch = searchable<PatientField, PatientSort>({
  table: patients,
  id: patients.id,
  clinic: patients.clinicId,
  fields: {
    id: { type: 'value', column: patients.id },
    family: { type: 'string', column: patients.familyName },
    given: { type: 'string', column: patients.givenName },
    birthDate: { type: 'day', column: patients.birthDate },
    sex: { type: 'value', column: patients.sex },
    // An identifier token as a jsonb containment probe (patients_identifiers_gin).
    identifier: { type: 'custom', build: (m) => sql`${patients.identifiers} @> ${identifierProbe(tokenOnly(m))}::jsonb` },
    // The MRN as a token of the clinic's MRN system: `system|` is any MRN (every patient has one).
    mrn: { type: 'custom', build: (m) => (tokenOnly(m).code === undefined ? sql`true` : eq(patients.mrn, tokenOnly(m).code!)) },
    updatedAt: { type: 'instant', column: patients.updatedAt },
  },
  sortColumns: { updatedAt: patients.updatedAt },
});

export async function countPatients(exec: Executor, clinicId: string, f: PatientFilters): Promise<number> {
  const v = patientSearchValues(clinicId, f);
  const [row] = await exec.select({ n: sql<number>`count(*)::int` }).from(patients).where(and(...patientWhere(v, setKeys(v))));
  return row?.n ?? 0;
}

/** Compare-and-set on `version`: undefined when the row is missing or the version moved on. */
export async function updatePatient(
  tx: Tx,
  clinicId: string,
  id: string,
  expectedVersion: number,
  changes: Partial<typeof patients.$inferInsert>,
): Promise<PatientRow | undefined> {
  try {
    const [row] = await tx
      .update(patients)
      .set({ ...changes, version: sql`${patients.version} + 1` })
      .where(and(eq(patients.id, id), eq(patients.clinicId, clinicId), eq(patients.version, expectedVersion)))
      .returning();
    return row;
  } catch (err) {
    return mapUniqueViolation(err);
  }
}

export async function insertConsent(tx: Tx, row: typeof consents.$inferInsert): Promise<ConsentRow> {
  const [created] = await tx.insert(consents).values(row).returning();
  return created!;
}

export async function findConsent(exec: Executor, clinicId: string, patientId: string, id: string): Promise<ConsentRow | undefined> {
  const [row] = await exec
    .select()
    .from(consents)
    .where(and(eq(consents.id, id), eq(consents.patientId, patientId), eq(consents.clinicId, clinicId)))
    .limit(1);
  return row;
}

export async function lockConsent(tx: Tx, clinicId: string, patientId: string, id: string): Promise<ConsentRow | undefined> {
  const [row] = await tx
    .select()
    .from(consents)
    .where(and(eq(consents.id, id), eq(consents.patientId, patientId), eq(consents.clinicId, clinicId)))
    .for('update')
    .limit(1);
  return row;
}

export async function listConsents(exec: Executor, clinicId: string, patientId: string, page: PageRequest): Promise<ConsentRow[]> {
  return exec
    .select()
    .from(consents)
    .where(and(eq(consents.patientId, patientId), eq(consents.clinicId, clinicId), page.after ? gt(consents.id, page.after) : undefined))
    .orderBy(asc(consents.id))
    .limit(page.limit + 1);
}

export async function withdrawConsent(
  tx: Tx,
  id: string,
  w: { withdrawnAt: Date; withdrawnBy: string; withdrawalReason: string },
): Promise<ConsentRow> {
  const [row] = await tx
    .update(consents)
    .set({ status: 'withdrawn', ...w, version: sql`${consents.version} + 1` })
    .where(eq(consents.id, id))
    .returning();
  return row!;
}

/** Holds when the patient had an investigational-treatment consent signed and not withdrawn at `at`. */
export const consentInForceAt = (clinicId: string, patientId: string, at: Date) =>
  sql<boolean>`exists (
    select 1 from ${consents} c where c.patient_id = ${patientId} and c.clinic_id = ${clinicId}
      and c.kind = 'investigational-treatment' and c.signed_at <= ${at} and (c.withdrawn_at is null or c.withdrawn_at > ${at}))`;

/** The clinic's patient and whether consent was in force at `at`, unexecuted (rows map with withConsentFromRaw). */
export function selectWithConsentAt(exec: Executor, clinicId: string, patientId: string, at: Date) {
  return exec
    .select({ patient: patients, consentInForce: consentInForceAt(clinicId, patientId, at).as('consent_in_force') })
    .from(patients)
    .where(and(eq(patients.id, patientId), eq(patients.clinicId, clinicId)))
    .limit(1);
}

type ConsentAt = { clinicId: string; patientId: string; at: Date };
const CONSENT_AT = { clinicId: true, patientId: true, at: true } as const;

/** selectWithConsentAt as a named part for another module's statement. */
export const withConsentAtPart = part<ConsentAt>(CONSENT_AT, (p) => selectWithConsentAt(builder, p.clinicId, p.patientId, p.at));

/** consentInForceAt as a guard part of a change written in one statement. */
export const consentInForceAtPart = part<ConsentAt>(CONSENT_AT, (p) => consentInForceAt(p.clinicId, p.patientId, p.at));

export const withConsentFromRaw = (raw: Record<string, unknown>) => ({ patient: patientFromRaw(raw), consentInForce: raw.consent_in_force === true });


