import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateOnly, DateTimeInput, DateTimeOutput, NonEmpty, Uuid, Version, pageOf, FreeText } from '../../shared/schemas.js';
import { ISOLATION_METHODS, LOT_STATUSES, RELEASE_TEST_RESULTS, SIZE_METHODS } from './vocabulary.js';

const Positive = (max: number) => z.number().positive().max(max);
const Marker = NonEmpty(50);

export const CharacterizationInput = z
  .strictObject({
    particlesPerMl: Positive(1e16).meta({ description: 'Particle concentration (particles/mL)', example: 2.5e11 }),
    meanSizeNm: Positive(10_000).meta({ example: 112 }),
    modeSizeNm: Positive(10_000).optional(),
    d10Nm: Positive(10_000).optional(),
    d90Nm: Positive(10_000).optional(),
    sizeMethod: z.enum(SIZE_METHODS),
    proteinUgPerMl: z.number().min(0).max(1e7).optional(),
    positiveMarkers: z.array(Marker).max(50).refine((xs) => new Set(xs).size === xs.length, 'each marker once').default([]).meta({ example: ['CD9', 'CD63', 'CD81', 'TSG101'] }),
    negativeMarkers: z.array(Marker).max(50).refine((xs) => new Set(xs).size === xs.length, 'each marker once').default([]).meta({ example: ['calnexin', 'GM130', 'APOA1'] }),
  })
  .meta({ id: 'CharacterizationInput' });

export const ReleaseTestsInput = z
  .strictObject({
    sterility: z.enum(RELEASE_TEST_RESULTS).default('pending'),
    mycoplasma: z.enum(RELEASE_TEST_RESULTS).default('pending'),
    endotoxinEuPerMl: z.number().min(0).max(1e6).nullable().default(null).meta({ example: 0.12 }),
  })
  .meta({ id: 'ReleaseTestsInput' });

export const LotCreate = z
  .strictObject({
    lotNumber: NonEmpty(64).meta({ example: 'EVX-2026-0142' }),
    manufacturer: NonEmpty(200).meta({ example: 'Vesicle Biologics Inc.' }),
    productName: NonEmpty(200).meta({ example: 'MSC-EV knee injection 2.5e11/mL' }),
    donorIds: z.array(Uuid).min(1).max(50).refine((ids) => new Set(ids).size === ids.length, 'each donor once'),
    poolingJustification: FreeText(2000).optional().meta({ description: 'Required for more than one donor (21 CFR 1271.220)' }),
    isolationMethod: z.enum(ISOLATION_METHODS),
    characterization: CharacterizationInput.optional(),
    releaseTests: ReleaseTestsInput.default({ sterility: 'pending', mycoplasma: 'pending', endotoxinEuPerMl: null }),
    manufacturedOn: DateOnly,
    expiresOn: DateOnly,
    storageTempC: z.number().min(-200).max(40).meta({ example: -80 }),
    vialVolumeMl: Positive(1000).meta({ example: 1 }),
    vialCount: z.int().min(1).max(1_000_000),
    vialBarcodes: z
      .array(NonEmpty(100))
      .min(1)
      .max(100_000)
      .optional()
      .meta({
        description:
          'The label barcode of each vial, in sequence order (e.g. ISBT 128 product code + division): as many as vialCount, each once, unique per manufacturer. Default: `{lotNumber}-{sequence, 4 digits}`.',
      }),
  })
  .superRefine((l, ctx) => {
    if (l.vialBarcodes) {
      if (l.vialBarcodes.length !== l.vialCount) ctx.addIssue({ code: 'custom', path: ['vialBarcodes'], message: `${l.vialBarcodes.length} barcodes for ${l.vialCount} vials` });
      const seen = new Set<string>();
      l.vialBarcodes.forEach((b, i) => {
        if (seen.has(b)) ctx.addIssue({ code: 'custom', path: ['vialBarcodes', i], message: 'a barcode given twice' });
        seen.add(b);
      });
    }
    if (l.expiresOn <= l.manufacturedOn) ctx.addIssue({ code: 'custom', path: ['expiresOn'], message: 'must be after manufacturedOn' });
  })
  .meta({ example: {"lotNumber": "EVX-2026-0142", "manufacturer": "Vesicle Biologics Inc.", "productName": "MSC-EV knee injection 2.5e11/mL", "donorIds": ["0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12"], "isolationMethod": "tangential-flow-filtration", "characterization": {"particlesPerMl": 250000000000, "meanSizeNm": 112, "sizeMethod": "nta", "positiveMarkers": ["CD63", "CD81", "TSG101"], "negativeMarkers": ["calnexin"]}, "releaseTests": {"sterility": "pass", "mycoplasma": "pass", "endotoxinEuPerMl": 0.12}, "manufacturedOn": "2026-02-01", "expiresOn": "2028-02-01", "storageTempC": -80, "vialVolumeMl": 1, "vialCount": 100}, id: 'LotCreate' });

/** A merge patch of an object schema: every member optional and nullable (null removes it), nothing defaulted. */
const patchOf = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(
    Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, (v as z.ZodType).nullable().optional()])) as unknown as { [K in keyof S]: z.ZodOptional<z.ZodNullable<S[K]>> },
  );

const unwrapDefaults = <S extends z.ZodRawShape>(shape: S) =>
  Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, v instanceof z.ZodDefault ? (v.unwrap() as z.ZodType) : v])) as S;

/**
 * Only the members sent change (RFC 7396): `{"releaseTests":{"endotoxinEuPerMl":0.05}}` keeps sterility and
 * mycoplasma as they were. null removes a member (an optional size, the endotoxin result, a marker list); the
 * merged whole must still be a valid characterization or set of release tests.
 */
export const LotPatch = z
  .strictObject({
    characterization: patchOf(unwrapDefaults(CharacterizationInput.shape)).optional(),
    releaseTests: patchOf(unwrapDefaults(ReleaseTestsInput.shape)).optional(),
  })
  .refine((p) => p.characterization !== undefined || p.releaseTests !== undefined, { message: 'name characterization or releaseTests' })
  .meta({ example: {"releaseTests": {"sterility": "pass", "mycoplasma": "pass", "endotoxinEuPerMl": 0.12}}, id: 'LotPatch', description: 'Results that arrive while the lot is in quarantine.' });

export const Characterization = z.object({
  particlesPerMl: z.number(),
  meanSizeNm: z.number(),
  modeSizeNm: z.number().optional(),
  d10Nm: z.number().optional(),
  d90Nm: z.number().optional(),
  sizeMethod: z.enum(SIZE_METHODS),
  proteinUgPerMl: z.number().optional(),
  positiveMarkers: z.array(z.string()),
  negativeMarkers: z.array(z.string()),
});

export const StatusChange = z.object({
  status: z.enum(LOT_STATUSES),
  effectiveAt: DateTimeOutput,
  reason: z.string().nullable(),
  cause: z.enum(['created', 'manual', 'donor-ineligible']),
  changedBy: z.string(),
  recordedAt: DateTimeOutput,
});

export const Lot = z
  .object({
    id: Uuid,
    lotNumber: z.string(),
    manufacturer: z.string(),
    productName: z.string(),
    donorIds: z.array(Uuid),
    poolingJustification: z.string().nullable(),
    isolationMethod: z.enum(ISOLATION_METHODS),
    characterization: Characterization.nullable(),
    releaseTests: z.object({ sterility: z.enum(RELEASE_TEST_RESULTS), mycoplasma: z.enum(RELEASE_TEST_RESULTS), endotoxinEuPerMl: z.number().nullable() }),
    manufacturedOn: DateOnly,
    expiresOn: DateOnly,
    storageTempC: z.number(),
    vialVolumeMl: z.number(),
    vialCount: z.int(),
    vialsShipped: z.int(),
    status: z.enum(LOT_STATUSES),
    statusChanges: z.array(StatusChange).meta({ description: 'Every status change, in effective order' }),
    version: Version,
    createdAt: DateTimeOutput,
    updatedAt: DateTimeOutput,
  })
  .meta({ id: 'Lot' });
export type LotDto = z.infer<typeof Lot>;
/** A lot without its status history: what labels and FHIR products show. */
export type LotSummary = Omit<LotDto, 'statusChanges'>;

export const LotPage = pageOf(Lot).meta({ id: 'LotPage' });
export const LotSearch = z.strictObject({
  ...pageQuery,
  status: z.enum(LOT_STATUSES).optional(),
  manufacturer: NonEmpty(200).optional(),
  lotNumber: NonEmpty(64).optional(),
  donorId: Uuid.optional(),
});
export type LotFilters = Omit<z.infer<typeof LotSearch>, 'limit' | 'cursor'>;
export const LotParams = z.strictObject({ id: Uuid });

export const LotHistory = pageOf(z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: Lot })).meta({ id: 'LotHistory' });

export const ReleaseRequest = z
  .strictObject({
    releasedAt: DateTimeInput.optional().meta({ description: 'Effective time; defaults to now' }),
    reason: FreeText(2000).optional().meta({ description: 'A note for the release record', example: 'QA review of batch record complete' }),
  })
  .meta({ example: {"releasedAt": "2026-03-01T09:00:00Z", "reason": "QA review of batch record complete"}, id: 'ReleaseRequest' });

export const QuarantineRequest = z
  .strictObject({ reason: FreeText(2000), effectiveAt: DateTimeInput.optional() })
  .meta({ example: {"reason": "Temperature excursion in transit", "effectiveAt": "2026-04-01T00:00:00Z"}, id: 'QuarantineRequest' });

export const RecallRequest = z
  .strictObject({ reason: FreeText(2000).meta({ example: 'Endotoxin excursion found on retained sample' }), recalledAt: DateTimeInput.optional() })
  .meta({ example: {"reason": "Endotoxin excursion found on retained sample"}, id: 'RecallRequest' });

export const RecallResult = Lot.extend({
  affectedRecipients: z.int().meta({ description: 'Distinct patients who received the lot' }),
  affectedClinics: z.int().meta({ description: 'Clinics that received vials of the lot' }),
}).meta({ id: 'RecallResult' });

export const ListQuery = z.strictObject(pageQuery);

