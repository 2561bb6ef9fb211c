import { z } from 'zod';
import { DateTimeOutput, Uuid } from '../../shared/schemas.js';
import { INSTRUMENT_CODES, TIMEPOINT_CODES } from '../outcomes/instruments.js';

export const LotSafetyParams = z.strictObject({ id: Uuid });

const RequestedBy = z.object({
  sub: z.string(),
  clinicId: z.string().nullable().meta({ description: "null: every clinic's procedures are counted; a clinic: only its own, on both sides of every comparison" }),
});

export const Rate = z
  .object({
    value: z.number().nullable().meta({ description: 'x / n; null with no procedures' }),
    lower: z.number().nullable(),
    upper: z.number().nullable(),
    method: z.literal('clopper-pearson'),
    confidence: z.literal(0.95),
  })
  .meta({ id: 'SafetyRate', description: 'A proportion with its exact (Clopper-Pearson) 95 % interval' });

const count = z.int().min(0);

export const SafetyPool = z
  .object({
    lots: count.meta({ description: "The product's other lots with at least one counted procedure" }),
    procedures: count,
    proceduresWithEvent: count,
    rate: Rate,
  })
  .meta({ id: 'SafetyPool', description: 'Every other lot of the same productName, pooled' });

export const SafetySignal = z
  .object({
    flagged: z.boolean().meta({ description: 'p < 0.01 and at least 3 procedures with an event' }),
    pValue: z.number().meta({ description: "One-sided Fisher's exact test: the lot's rate greater than the pool's" }),
    test: z.literal('fisher-exact-greater'),
  })
  .meta({ id: 'SafetySignal' });

const grades = z.object({ 1: count, 2: count, 3: count, 4: count, 5: count });

export const LotSafetyReport = z
  .object({
    generatedAt: DateTimeOutput,
    requestedBy: RequestedBy,
    lotId: Uuid,
    lotNumber: z.string(),
    productName: z.string(),
    procedures: count.meta({ description: "The lot's procedures not entered in error" }),
    proceduresWithEvent: count.meta({ description: 'Of those, the procedures with at least one adverse event not judged not-related' }),
    adverseEvents: z.object({
      total: count.meta({ description: "Adverse events of the lot's procedures not entered in error" }),
      serious: count,
      byGrade: grades.meta({ description: 'CTCAE grade; every grade is present' }),
      byRelatedness: z.record(z.string(), count).meta({ description: 'WHO-UMC category (and not-related); every category is present' }),
      reportsOverdue: count.meta({ description: 'IND safety reports (21 CFR 312.32) due and not made by now, or made after their due time' }),
    }),
    rate: Rate,
    pool: SafetyPool,
    signal: SafetySignal,
    responders: z.array(
      z.object({
        instrument: z.enum(INSTRUMENT_CODES),
        timepoint: z.enum(TIMEPOINT_CODES),
        n: count.meta({ description: 'Procedures with a score at this timepoint and a baseline (the latest of each)' }),
        responders: count.meta({ description: 'Of those, improved from baseline by at least the MCID' }),
        rate: Rate,
        pool: z.object({ n: count, responders: count, rate: Rate }),
      }),
    ).meta({ description: 'Instruments with an MCID only (a responder is undefined without one)' }),
  })
  .meta({ id: 'LotSafetyReport' });

export const SafetySignals = z
  .object({
    generatedAt: DateTimeOutput,
    requestedBy: RequestedBy,
    items: z.array(
      z.object({
        lotId: Uuid,
        lotNumber: z.string(),
        productName: z.string(),
        procedures: count,
        proceduresWithEvent: count,
        rate: Rate,
        pool: SafetyPool,
        signal: SafetySignal,
      }),
    ).meta({ description: 'Every flagged lot, smallest p first, then the higher rate' }),
  })
  .meta({ id: 'SafetySignalsReport' });

export type LotSafety = z.infer<typeof LotSafetyReport>;
export type SafetySignalsDto = z.infer<typeof SafetySignals>;
