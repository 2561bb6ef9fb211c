import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateOnly, DateTimeInput, DateTimeOutput, NonEmpty, Uuid, Version, pageOf, FreeText } from '../../shared/schemas.js';
import { DIN_PATTERN, dinCheckCharacter } from './din.js';
import { DONOR_SEXES, ELIGIBILITY_STATUSES, MARKERS, SOURCE_TISSUES, TEST_METHODS, TEST_RESULTS } from './vocabulary.js';

export const Din = z
  .string()
  .regex(DIN_PATTERN, 'must be a 13-character ISBT 128 DIN in upper case, e.g. A999922123459')
  .meta({ description: 'ISBT 128 Donation Identification Number (facility 5, year 2, sequence 6)', example: 'A999922123459' });

export const DonorCreate = z
  .strictObject({
    din: Din,
    dinCheckCharacter: z
      .string()
      .regex(/^[0-9A-Z*]$/, 'one character 0-9, A-Z or *')
      .meta({ description: 'ISO/IEC 7064 MOD 37-2 check character over the DIN', example: 'H' }),
    sourceTissue: z.enum(SOURCE_TISSUES),
    sex: z.enum(DONOR_SEXES),
    ageAtDonationYears: z.int().min(0).max(120),
    collectedOn: DateOnly,
  })
  .superRefine((d, ctx) => {
    if (DIN_PATTERN.test(d.din) && /^[0-9A-Z*]$/.test(d.dinCheckCharacter) && dinCheckCharacter(d.din) !== d.dinCheckCharacter) {
      ctx.addIssue({ code: 'custom', path: ['dinCheckCharacter'], message: 'does not match the DIN (ISO 7064 MOD 37-2): check for a typing error' });
    }
  })
  .meta({ example: {"din": "A999922123459", "dinCheckCharacter": "H", "sourceTissue": "umbilical-cord", "sex": "female", "ageAtDonationYears": 29, "collectedOn": "2026-01-15"}, id: 'DonorCreate', description: 'A donor, identified by DIN only: no name, SSN or MRN is accepted.' });

export const ScreeningTestCreate = z
  .strictObject({
    marker: z.enum(MARKERS),
    method: z.enum(TEST_METHODS),
    result: z.enum(TEST_RESULTS),
    testedOn: DateOnly,
    laboratory: NonEmpty(200).meta({ example: 'Central Donor Testing Lab, CLIA 05D0000000' }),
  })
  .meta({ example: {"marker": "hiv-1-nat", "method": "nat", "result": "non-reactive", "testedOn": "2026-01-14", "laboratory": "Central Donor Testing Lab"}, id: 'ScreeningTestCreate' });

export const ScreeningTest = z
  .object({
    id: Uuid,
    donorId: Uuid,
    marker: z.enum(MARKERS),
    method: z.enum(TEST_METHODS),
    result: z.enum(TEST_RESULTS),
    testedOn: DateOnly,
    laboratory: z.string(),
    recordedAt: DateTimeOutput,
    recordedBy: z.string(),
  })
  .meta({ id: 'ScreeningTest' });
export type ScreeningTestDto = z.infer<typeof ScreeningTest>;

export const EligibilityCreate = z
  .strictObject({
    status: z.enum(ELIGIBILITY_STATUSES),
    determinedBy: NonEmpty(200).meta({ description: 'The responsible person (21 CFR 1271.50)', example: 'Dr. A. Medical Director' }),
    reason: FreeText(1000).optional().meta({ description: 'Required when ineligible' }),
    determinedAt: DateTimeInput.optional().meta({ description: 'When it was determined; defaults to now' }),
  })
  .superRefine((e, ctx) => {
    if (e.status === 'ineligible' && !e.reason) ctx.addIssue({ code: 'custom', path: ['reason'], message: 'required when ineligible' });
  })
  .meta({ example: {"status": "eligible", "determinedBy": "Dr. A. Medical Director", "determinedAt": "2026-01-20T10:00:00Z"}, id: 'EligibilityCreate' });

export const Eligibility = z
  .object({
    id: Uuid,
    donorId: Uuid,
    status: z.enum(ELIGIBILITY_STATUSES),
    determinedBy: z.string(),
    determinedAt: DateTimeOutput,
    reason: z.string().nullable(),
    recordedAt: DateTimeOutput,
    recordedBy: z.string(),
  })
  .meta({ id: 'Eligibility' });
export type EligibilityDto = z.infer<typeof Eligibility>;

export const EligibilityResult = Eligibility.extend({
  quarantinedLotIds: z.array(Uuid).meta({ description: 'Lots from this donor that this determination sent back to quarantine' }),
}).meta({ id: 'EligibilityResult' });

export const Donor = z
  .object({
    id: Uuid,
    din: z.string(),
    dinCheckCharacter: z.string(),
    sourceTissue: z.enum(SOURCE_TISSUES),
    sex: z.enum(DONOR_SEXES),
    ageAtDonationYears: z.int(),
    collectedOn: DateOnly,
    eligibility: Eligibility.nullable().meta({ description: 'The current (latest) determination; null before the first' }),
    screeningTests: z.array(ScreeningTest),
    determinations: z.array(Eligibility).meta({ description: 'Every determination, oldest first' }),
    version: Version,
    createdAt: DateTimeOutput,
  })
  .meta({ id: 'Donor' });
export type DonorDto = z.infer<typeof Donor>;

export const DonorPage = pageOf(Donor).meta({ id: 'DonorPage' });
export const DonorSearch = z.strictObject({ ...pageQuery, din: Din.optional() });
export const DonorParams = z.strictObject({ id: Uuid });
