import { z } from 'zod';
import { pageQuery } from '../../http/pagination.js';
import { DateTimeInput, DateTimeOutput, Uuid, pageOf } from '../../shared/schemas.js';
import { INSTRUMENT_CODES, TIMEPOINT_CODES } from './instruments.js';

export const OutcomeCreate = z
  .strictObject({
    procedureId: Uuid,
    instrument: z.enum(INSTRUMENT_CODES),
    score: z.number().meta({ description: 'Within the instrument\'s range (e.g. nrs-pain 0..10, womac 0..96, koos-* 0..100)', example: 4 }),
    assessedAt: DateTimeInput,
    timepoint: z.enum(TIMEPOINT_CODES),
  })
  .meta({
    id: 'OutcomeCreate',
    example: { procedureId: '0193a5b2-7c1e-7d3a-9f10-2b4c6d8e0f12', instrument: 'nrs-pain', score: 4, assessedAt: '2026-12-14T10:00:00+01:00', timepoint: 'week-6' },
  });

export const Outcome = z
  .object({
    id: Uuid,
    procedureId: Uuid,
    patientId: Uuid,
    instrument: z.enum(INSTRUMENT_CODES),
    score: z.number(),
    assessedAt: DateTimeOutput,
    timepoint: z.enum(TIMEPOINT_CODES),
    daysAfterProcedure: z.int(),
    inWindow: z.boolean().nullable().meta({ description: 'Whether the assessment falls in its timepoint\'s window; null for unscheduled' }),
    changeFromBaseline: z.number().nullable().meta({ description: 'Score minus the procedure\'s baseline on the same instrument; null without one' }),
    responder: z.boolean().nullable().meta({ description: 'Improvement ≥ the instrument\'s MCID in its better direction; null without a baseline or MCID' }),
    recordedAt: DateTimeOutput,
    recordedBy: z.string(),
  })
  .meta({ id: 'Outcome' });
export type OutcomeDto = z.infer<typeof Outcome>;
/** A score as recorded, without the fields derived from its procedure and baseline. */
export type OutcomeScore = Omit<OutcomeDto, 'daysAfterProcedure' | 'inWindow' | 'changeFromBaseline' | 'responder'>;

export const OutcomePage = pageOf(Outcome).meta({ id: 'OutcomePage' });
export const OutcomeListQuery = z.strictObject(pageQuery);
export const IdParams = z.strictObject({ id: Uuid });
