import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeInput, DateTimeOutput, FreeText, NonEmpty, Uuid, Version, pageOf } from '../../shared/schemas.js';
import { AE_OUTCOMES, CTCAE_TERMS, EXPECTEDNESS, RELATEDNESS, SERIOUSNESS_CRITERIA } from './vocabulary.js';

const fields = {
  onsetAt: DateTimeInput,
  description: FreeText(4000).meta({ example: 'Knee effusion and warmth 24 h after injection' }),
  severityGrade: z.int().meta({ description: 'CTCAE v5 grade: 1 mild · 2 moderate · 3 severe · 4 life-threatening · 5 death', example: 2 }),
  serious: z.boolean(),
  seriousnessCriteria: z.array(z.enum(SERIOUSNESS_CRITERIA)).max(6).refine((xs) => new Set(xs).size === xs.length, 'each criterion once').default([]).meta({ description: 'ICH E2A criteria; serious is true exactly when one holds' }),
  relatedness: z.enum(RELATEDNESS).meta({ description: 'WHO-UMC causality, or not-related' }),
  outcome: z.enum(AE_OUTCOMES),
  term: z.enum(CTCAE_TERMS).meta({
    description: 'CTCAE v5 term (domain.md); with `Other, specify` the description says what. Judges expectedness against the lot\'s product\'s list',
    example: 'Joint effusion',
  }),
  awareAt: DateTimeInput.meta({
    description: 'When the sponsor became aware of the event: the 21 CFR 312.32 clock starts here. Not in the future, not before onsetAt; default: when recorded (or the onset, if later)',
  }),
};

export const AdverseEventCreate = z
  .strictObject({ procedureId: Uuid, ...fields, term: fields.term.optional(), awareAt: fields.awareAt.optional() })
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
      term: 'Joint effusion',
      awareAt: '2026-11-03T10:15:00+01:00',
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
      .refine((xs) => new Set(xs).size === xs.length, 'each criterion once')
      .nullable()
      .transform((v) => v ?? [])
      .optional()
      .meta({ description: 'The whole list replaces the old one; null (merge patch) clears it' }),
    relatedness: fields.relatedness.optional(),
    outcome: fields.outcome.optional(),
    term: fields.term.nullable().optional().meta({ description: 'A new term re-judges expectedness against the product\'s list in force now; null clears it (unexpected)' }),
    awareAt: fields.awareAt.optional().meta({ description: 'Corrects when the sponsor became aware (the clock restarts from it); cannot be cleared' }),
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
    term: z.enum(CTCAE_TERMS).nullable().meta({ description: 'CTCAE v5 term, null when none was given' }),
    expectedness: z.enum(EXPECTEDNESS).meta({
      description: 'expected exactly when the term is on the lot\'s product\'s expected-reaction list in force when the event (or its term) was recorded',
    }),
    awareAt: DateTimeOutput.meta({ description: 'When the sponsor became aware; the reporting clock starts here' }),
    reportDueAt: DateTimeOutput.nullable().meta({
      description:
        'IND safety report due (21 CFR 312.32(c)): awareAt + 15 × 24 h for a serious, unexpected event whose relatedness is not unlikely or not-related; + 7 × 24 h when fatal or life-threatening (grade 4 or 5, outcome fatal, criterion death or life-threatening). null: no report due',
    }),
    reportedAt: DateTimeOutput.nullable().meta({ description: 'When the IND safety report was submitted (POST .../reported)' }),
    reportReference: z.string().nullable().meta({ description: 'The submission\'s reference (e.g. the safety report number)' }),
    reportOverdue: z.boolean().meta({ description: 'A report was due and is still missing after reportDueAt, or was submitted after it' }),
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
  reportDueBefore: DateTimeInput.optional().meta({
    description: 'Only events with a reporting clock, not yet reported, due before this instant; ordered by due time (then id)',
  }),
});
export const AdverseEventParams = z.strictObject({ id: Uuid });
/** A stored version: versions recorded before issue 18 (migration 0021) lack the safety fields. */
export const AdverseEventVersion = AdverseEvent.partial({ term: true, expectedness: true, awareAt: true, reportDueAt: true, reportedAt: true, reportReference: true, reportOverdue: true }).meta({
  id: 'AdverseEventVersion',
  description: 'An adverse event as a version recorded it; versions recorded before expectedness and reporting clocks existed lack those fields',
});

export const AdverseEventReported = z
  .strictObject({
    reportedAt: DateTimeInput.meta({ description: 'When the IND safety report was submitted: not in the future, not before awareAt' }),
    reportReference: NonEmpty(200).meta({ description: 'The submission\'s reference (safety report number, FDA acknowledgment...)', example: 'IND-123456-SR-0007' }),
  })
  .meta({ id: 'AdverseEventReported', example: { reportedAt: '2026-11-10T16:00:00+01:00', reportReference: 'IND-123456-SR-0007' } });

export const AdverseEventHistory = pageOf(z.object({ version: Version, recordedAt: DateTimeOutput, recordedBy: z.string(), resource: AdverseEventVersion })).meta({
  id: 'AdverseEventHistory',
});
