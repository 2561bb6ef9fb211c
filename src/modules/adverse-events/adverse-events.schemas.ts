import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeInput, DateTimeOutput, FreeText, Uuid, Version, pageOf } from '../../shared/schemas.js';
import { AE_OUTCOMES, RELATEDNESS, SERIOUSNESS_CRITERIA } from './vocabulary.js';

const fields = {
  onsetAt: DateTimeInput,
  description: FreeText(4000).meta({ example: 'Knee effusion and warmth 24 h after injection' }),
  severityGrade: z.int().meta({ description: 'CTCAE v5 grade: 1 mild · 2 moderate · 3 severe · 4 life-threatening · 5 death', example: 2 }),
  serious: z.boolean(),
  seriousnessCriteria: z.array(z.enum(SERIOUSNESS_CRITERIA)).max(6).default([]).meta({ description: 'ICH E2A criteria; serious is true exactly when one holds' }),
  relatedness: z.enum(RELATEDNESS).meta({ description: 'WHO-UMC causality, or not-related' }),
  outcome: z.enum(AE_OUTCOMES),
};

export const AdverseEventCreate = z
  .strictObject({ procedureId: Uuid, ...fields })
  .meta({
    id: 'AdverseEventCreate',
    example: {
      procedureId: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12',
      onsetAt: '2026-11-03T08:00:00+01:00',
      description: 'Knee effusion and warmth 24 h after injection',
      severityGrade: 2,
      serious: false,
      seriousnessCriteria: [],
      relatedness: 'probable',
      outcome: 'recovering',
    },
  });

export const AdverseEventPatch = z
  .strictObject({
    onsetAt: fields.onsetAt.optional(),
    description: fields.description.optional(),
    severityGrade: fields.severityGrade.optional(),
    serious: fields.serious.optional(),
    seriousnessCriteria: z
      .array(z.enum(SERIOUSNESS_CRITERIA))
      .max(6)
      .nullable()
      .transform((v) => v ?? [])
      .optional()
      .meta({ description: 'The whole list replaces the old one; null (merge patch) clears it' }),
    relatedness: fields.relatedness.optional(),
    outcome: fields.outcome.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), { message: 'name at least one field to change' })
  .meta({ example: {"outcome": "resolved"}, id: 'AdverseEventPatch', description: 'Follow-up: the fields that changed (JSON merge patch).' });

export const AdverseEvent = z
  .object({
    id: Uuid,
    clinicId: z.string(),
    procedureId: Uuid,
    patientId: Uuid,
    lotId: Uuid,
    onsetAt: DateTimeOutput,
    description: z.string(),
    severityGrade: z.int(),
    serious: z.boolean(),
    seriousnessCriteria: z.array(z.enum(SERIOUSNESS_CRITERIA)),
    relatedness: z.enum(RELATEDNESS),
    outcome: z.enum(AE_OUTCOMES),
    version: Version,
    createdAt: DateTimeOutput,
    updatedAt: DateTimeOutput,
  })
  .meta({ id: 'AdverseEvent' });
export type AdverseEventDto = z.infer<typeof AdverseEvent>;

export const AdverseEventPage = pageOf(AdverseEvent).meta({ id: 'AdverseEventPage' });
export const AdverseEventSearch = z.strictObject({
  ...pageQuery,
  procedureId: Uuid.optional(),
  lotId: Uuid.optional(),
  serious: z.enum(['true', 'false']).optional(),
});
export const AdverseEventParams = z.strictObject({ id: Uuid });
export const AdverseEventHistory = pageOf(z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: AdverseEvent })).meta({
  id: 'AdverseEventHistory',
});
