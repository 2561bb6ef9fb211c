import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateOnly, DateTimeInput, DateTimeOutput, NonEmpty, Uuid, Version, pageOf, FreeText } from '../../shared/schemas.js';
import { BODY_SITE_CODES, ICD10CM_SYSTEM, IMAGING_GUIDANCE, LATERALITY_CODES, ROUTE_CODES } from './vocabulary.js';

export const Indication = z
  .strictObject({
    system: z.literal(ICD10CM_SYSTEM).default(ICD10CM_SYSTEM),
    code: z
      .string()
      .regex(/^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$/, 'an ICD-10-CM code, e.g. M17.11')
      .meta({ example: 'M17.11' }),
    display: NonEmpty(300).optional().meta({ example: 'Unilateral primary osteoarthritis, right knee' }),
  })
  .meta({ description: 'ICD-10-CM coding of the reason for the procedure' });

const Site = z.strictObject({ bodySite: z.enum(BODY_SITE_CODES), laterality: z.enum(LATERALITY_CODES).optional() });

export const ProcedureCreate = z
  .strictObject({
    patientId: Uuid,
    lotId: Uuid,
    performedAt: DateTimeInput,
    performer: NonEmpty(200).meta({ example: 'Dr. Rivera (NPI 1234567890)' }),
    indication: Indication,
    route: z.enum(ROUTE_CODES),
    site: Site.optional().meta({ description: 'Required for every route but intravenous and intranasal' }),
    imagingGuidance: z.enum(IMAGING_GUIDANCE).default('none'),
    dose: z.strictObject({
      particles: z
        .int()
        .min(1)
        .max(Number.MAX_SAFE_INTEGER)
        .meta({ description: 'Whole number of vesicles (1e9 to 1.5e10 is usual for a knee); exceeds 2^31', example: 2500000000 }),
      volumeMl: z.number().positive().max(1000).meta({ example: 0.01 }),
    }),
    vialsUsed: z.int().min(1).max(1000).optional().meta({ description: 'How many vials were given; with vialIds or vialBarcodes it must equal their number (it may be left out)' }),
    vialIds: z.array(Uuid).min(1).max(1000).refine((xs) => new Set(xs).size === xs.length, 'each vial once').optional()
      .meta({ description: 'The vials given, by id: each of this lot, at the patient\'s clinic and unused' }),
    vialBarcodes: z.array(NonEmpty(100)).min(1).max(1000).refine((xs) => new Set(xs).size === xs.length, 'each barcode once').optional()
      .meta({ description: 'The vials given, by label barcode as scanned at the point of care: each of this lot, at the patient\'s clinic and unused' }),
    doseDeviationReason: FreeText(1000).optional().meta({ description: 'Why the dose differs from volumeMl × particlesPerMl by more than 10 %' }),
    notes: z.string().max(4000).optional().meta({ description: 'Free text, kept exactly as sent' }),
  })
  .superRefine((p, ctx) => {
    if (p.vialIds && p.vialBarcodes) ctx.addIssue({ code: 'custom', path: ['vialBarcodes'], message: 'give vialIds or vialBarcodes, not both' });
    const named = p.vialIds ?? p.vialBarcodes;
    if (!named && p.vialsUsed === undefined) ctx.addIssue({ code: 'custom', path: ['vialsUsed'], message: 'give vialsUsed, vialIds or vialBarcodes' });
    if (named && p.vialsUsed !== undefined && p.vialsUsed !== named.length) {
      ctx.addIssue({ code: 'custom', path: ['vialsUsed'], message: `${named.length} vial(s) named; vialsUsed must match` });
    }
  })
  .meta({
    id: 'ProcedureCreate',
    example: {
      patientId: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12',
      lotId: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f13',
      performedAt: '2026-11-02T09:30:00+01:00',
      performer: 'Dr. Rivera',
      indication: { system: ICD10CM_SYSTEM, code: 'M17.11', display: 'Unilateral primary osteoarthritis, right knee' },
      route: 'intra-articular',
      site: { bodySite: 'knee-joint', laterality: 'right' },
      imagingGuidance: 'ultrasound',
      dose: { particles: 2500000000, volumeMl: 0.01 },
      vialsUsed: 1,
    },
  });
export type ProcedureInput = z.output<typeof ProcedureCreate>;

export const Procedure = z
  .object({
    id: Uuid,
    clinicId: z.string(),
    patientId: Uuid,
    lotId: Uuid,
    performedAt: DateTimeOutput,
    performer: z.string(),
    indication: z.object({ system: z.string(), code: z.string(), display: z.string().optional() }),
    route: z.enum(ROUTE_CODES),
    site: z.object({ bodySite: z.enum(BODY_SITE_CODES), laterality: z.enum(LATERALITY_CODES).optional() }).nullable(),
    imagingGuidance: z.enum(IMAGING_GUIDANCE),
    dose: z.object({ particles: z.int(), volumeMl: z.number() }),
    vialsUsed: z.int(),
    vials: z
      .array(z.object({ id: Uuid, barcode: z.string() }))
      .optional()
      .meta({ description: 'The vials the procedure uses, in sequence order (absent only from versions recorded before vials had identities)' }),
    doseDeviationReason: z.string().nullable(),
    notes: z.string().nullable(),
    status: z.enum(['completed', 'entered-in-error']),
    enteredInError: z
      .object({ reason: z.string(), at: DateTimeOutput, by: z.string(), vialsReturned: z.int() })
      .nullable(),
    version: Version,
    createdAt: DateTimeOutput,
  })
  .meta({ id: 'Procedure' });
export type ProcedureDto = z.infer<typeof Procedure>;

export const ProcedurePage = pageOf(Procedure).meta({ id: 'ProcedurePage' });
export const ProcedureHistory = pageOf(z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: Procedure })).meta({
  id: 'ProcedureHistory',
});
export const ProcedureHistoryQuery = z.strictObject(pageQuery);
export const ProcedureSearch = z.strictObject({
  ...pageQuery,
  patientId: Uuid.optional(),
  lotId: Uuid.optional(),
  performedFrom: DateOnly.optional().meta({ description: 'Performed on or after this date (UTC)' }),
  performedTo: DateOnly.optional().meta({ description: 'Performed on or before this date (UTC)' }),
});
export type ProcedureFilters = Omit<z.infer<typeof ProcedureSearch>, 'limit' | 'cursor'>;
export const ProcedureParams = z.strictObject({ id: Uuid });

export const EnteredInErrorRequest = z
  .strictObject({
    reason: FreeText(2000).meta({ example: 'Recorded against the wrong patient' }),
    vialsReturned: z
      .int()
      .min(0)
      .optional()
      .meta({ description: 'How many of its vials were not actually used and go back to the clinic (highest sequences first unless named); by default none: they stay counted as used' }),
    returnedVialIds: z.array(Uuid).min(1).max(1000).refine((xs) => new Set(xs).size === xs.length, 'each vial once').optional()
      .meta({ description: 'The vials not actually used, by id: each one this procedure used' }),
    returnedBarcodes: z.array(NonEmpty(100)).min(1).max(1000).refine((xs) => new Set(xs).size === xs.length, 'each barcode once').optional()
      .meta({ description: 'The vials not actually used, by barcode: each one this procedure used' }),
  })
  .superRefine((r, ctx) => {
    if (r.returnedVialIds && r.returnedBarcodes) ctx.addIssue({ code: 'custom', path: ['returnedBarcodes'], message: 'give returnedVialIds or returnedBarcodes, not both' });
    const named = r.returnedVialIds ?? r.returnedBarcodes;
    if (named && r.vialsReturned !== undefined && r.vialsReturned !== named.length) {
      ctx.addIssue({ code: 'custom', path: ['vialsReturned'], message: `${named.length} vial(s) named; vialsReturned must match` });
    }
  })
  .meta({ example: { reason: 'Recorded against the wrong patient', vialsReturned: 0 }, id: 'EnteredInErrorRequest' });
