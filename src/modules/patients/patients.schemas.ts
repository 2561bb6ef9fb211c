import { z } from 'zod';
import { DateOnly, DateTimeInput, DateTimeOutput, NonEmpty, Uuid, Version, pageOf, FreeText } from '../../shared/schemas.js';
import { pageQuery } from '../../http/pagination.js';

export const Sex = z.enum(['female', 'male', 'other', 'unknown']);

const UriLike = z
  .string()
  .max(255)
  // No `|`: RFC 3986 does not allow it unencoded, and `system|value` searches split at the first one.
  .regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^\s|]+$/, 'must be a URI (no white space or |), e.g. urn:oid:2.16.840.1.113883.4.1 or https://ehr.example.org/mrn');

export const Identifier = z.strictObject({
  system: UriLike.meta({ description: 'The identifier system (a URI)', example: 'https://ehr.example-clinic.org/patient-id' }),
  value: NonEmpty(200).meta({ example: 'EHR-0042-7781' }),
});

export const PatientCreate = z
  .strictObject({
    mrn: NonEmpty(64).meta({ description: 'Medical record number, unique within the clinic', example: 'MRN-100234' }),
    identifiers: z.array(Identifier).max(20).default([]),
    givenName: NonEmpty(100).meta({ example: 'Maria' }),
    familyName: NonEmpty(100).meta({ example: 'Lopez' }),
    birthDate: DateOnly,
    sex: Sex,
  })
  .meta({ example: {"mrn": "MRN-100234", "identifiers": [{"system": "https://ehr.example-clinic.org/patient-id", "value": "EHR-0042-7781"}], "givenName": "Maria", "familyName": "Lopez", "birthDate": "1961-04-17", "sex": "female"}, id: 'PatientCreate' });

export const PatientPatch = z
  .strictObject({
    mrn: PatientCreate.shape.mrn.optional(),
    identifiers: z
      .array(Identifier)
      .max(20)
      .nullable()
      .transform((v) => v ?? [])
      .optional()
      .meta({ description: 'The whole list replaces the old one; null (merge patch) clears it' }),
    givenName: PatientCreate.shape.givenName.optional(),
    familyName: PatientCreate.shape.familyName.optional(),
    birthDate: DateOnly.optional(),
    sex: Sex.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), { message: 'name at least one field to change' })
  .meta({ example: {"familyName": "Lopez-Garcia"}, id: 'PatientPatch', description: 'The fields to change; the others keep their values (JSON merge patch).' });

export const Patient = z
  .object({
    id: Uuid,
    clinicId: z.string(),
    mrn: z.string(),
    identifiers: z.array(z.object({ system: z.string(), value: z.string() })),
    givenName: z.string(),
    familyName: z.string(),
    birthDate: DateOnly,
    sex: Sex,
    version: Version,
    createdAt: DateTimeOutput,
    updatedAt: DateTimeOutput,
  })
  .meta({ id: 'Patient' });
export type PatientDto = z.infer<typeof Patient>;

export const PatientPage = pageOf(Patient).meta({ id: 'PatientPage' });

export const PatientHistory = pageOf(
  z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: Patient }),
).meta({ id: 'PatientHistory' });

export const PatientSearch = z.strictObject({
  ...pageQuery,
  identifier: z
    .string()
    .max(460)
    .regex(/^[^|]+\|.+$/, 'use system|value')
    .optional()
    .meta({ description: 'An EHR identifier as `system|value`' }),
  mrn: NonEmpty(64).optional(),
  familyName: NonEmpty(100).optional().meta({ description: 'Case-insensitive prefix of the family name' }),
  birthDate: DateOnly.optional(),
});
/**
 * An identifier to search by: the API's `system|value` text, or a FHIR token whose parts are already unescaped
 * (`system` null: an identifier with no system; absent: any system; `code` absent: any value in the system).
 */
export interface IdentifierToken {
  system?: string | null;
  code?: string;
}
export type PatientFilters = Omit<z.infer<typeof PatientSearch>, 'limit' | 'cursor' | 'identifier'> & { identifier?: string | IdentifierToken };

export const PatientParams = z.strictObject({ id: Uuid });

// Consents
export const ConsentKind = z.enum(['investigational-treatment']);

export const ConsentCreate = z
  .strictObject({
    kind: ConsentKind,
    signedAt: DateTimeInput,
    documentVersion: NonEmpty(100).meta({ example: 'ICF-EV-KNEE v3.1' }),
    indNumber: NonEmpty(50).optional().meta({ example: 'IND 029871' }),
    irbProtocol: NonEmpty(100).optional().meta({ example: 'IRB-2026-0147' }),
  })
  .meta({ example: {"kind": "investigational-treatment", "signedAt": "2026-10-01T09:00:00+02:00", "documentVersion": "ICF-EV-KNEE v3.1", "indNumber": "IND 029871", "irbProtocol": "IRB-2026-0147"}, id: 'ConsentCreate' });

export const ConsentWithdraw = z
  .strictObject({
    reason: FreeText(1000).meta({ example: 'Patient withdrew consent by phone' }),
    withdrawnAt: DateTimeInput.optional().meta({ description: 'When the patient withdrew; defaults to now' }),
  })
  .meta({ example: {"reason": "Patient withdrew consent by phone", "withdrawnAt": "2026-11-02T15:00:00+01:00"}, id: 'ConsentWithdraw' });

export const Consent = z
  .object({
    id: Uuid,
    patientId: Uuid,
    kind: ConsentKind,
    signedAt: DateTimeOutput,
    documentVersion: z.string(),
    indNumber: z.string().nullable(),
    irbProtocol: z.string().nullable(),
    status: z.enum(['active', 'withdrawn']),
    withdrawnAt: DateTimeOutput.nullable(),
    withdrawnBy: z.string().nullable(),
    withdrawalReason: z.string().nullable(),
    version: Version,
    createdAt: DateTimeOutput,
  })
  .meta({ id: 'Consent' });
export type ConsentDto = z.infer<typeof Consent>;

export const ConsentPage = pageOf(Consent).meta({ id: 'ConsentPage' });
export const ConsentParams = z.strictObject({ id: Uuid, consentId: Uuid });
export const ListQuery = z.strictObject(pageQuery);
export const HistoryQuery = z.strictObject(pageQuery);
