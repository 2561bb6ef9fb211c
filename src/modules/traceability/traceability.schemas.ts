import { z } from 'zod';
import { DateTimeOutput, Uuid } from '../../shared/schemas.js';
import { Donor } from '../donors/donors.schemas.js';
import { Lot } from '../lots/lots.schemas.js';
import { ClinicStock } from '../vials/vials.schemas.js';
import { INSTRUMENT_CODES, TIMEPOINT_CODES } from '../outcomes/instruments.js';

export const ReportParams = z.strictObject({ id: Uuid });

const RequestedBy = z.object({ sub: z.string(), clinicId: z.string().nullable().meta({ description: 'null: every clinic is shown' }) });

export const Recipient = z.object({
  procedureId: Uuid,
  clinicId: z.string(),
  patientId: Uuid,
  mrn: z.string(),
  performedAt: DateTimeOutput,
  route: z.string(),
  site: z.object({ bodySite: z.string(), laterality: z.string().nullable() }).nullable(),
  imagingGuidance: z.string(),
  dose: z.object({ particles: z.int(), volumeMl: z.number() }),
  vialsUsed: z.int(),
  vialBarcodes: z.array(z.string()).meta({ description: 'The barcodes of the vials given, in sequence order' }),
  status: z.enum(['completed', 'entered-in-error']),
});

export const ReportAdverseEvent = z.object({
  id: Uuid,
  procedureId: Uuid,
  patientId: Uuid,
  clinicId: z.string(),
  onsetAt: DateTimeOutput,
  severityGrade: z.int(),
  serious: z.boolean(),
  seriousnessCriteria: z.array(z.string()),
  relatedness: z.string(),
  outcome: z.string(),
});

export const OutcomeSummary = z.object({
  instrument: z.enum(INSTRUMENT_CODES),
  timepoint: z.enum(TIMEPOINT_CODES),
  n: z.int().meta({ description: 'Scores at this timepoint' }),
  withBaseline: z.int(),
  meanChangeFromBaseline: z.number().nullable(),
  responderRate: z.number().nullable().meta({ description: 'Responders / scores with a baseline, for instruments with an MCID' }),
});

export const LotTraceability = z
  .object({
    generatedAt: DateTimeOutput,
    requestedBy: RequestedBy,
    lot: Lot,
    donors: z.array(Donor),
    vialAccounting: z.array(ClinicStock),
    recipients: z.array(Recipient),
    adverseEvents: z.array(ReportAdverseEvent),
    outcomeSummary: z.array(OutcomeSummary),
  })
  .meta({ id: 'LotTraceabilityReport' });

export const DonorLookback = z
  .object({
    generatedAt: DateTimeOutput,
    requestedBy: RequestedBy,
    donor: Donor,
    lots: z.array(z.object({ lot: Lot, recipients: z.array(Recipient), adverseEvents: z.array(ReportAdverseEvent) })),
  })
  .meta({ id: 'DonorLookbackReport' });

export const PatientExposures = z
  .object({
    generatedAt: DateTimeOutput,
    requestedBy: RequestedBy,
    patient: z.object({ id: Uuid, clinicId: z.string(), mrn: z.string() }),
    exposures: z.array(
      z.object({
        procedureId: Uuid,
        performedAt: DateTimeOutput,
        route: z.string(),
        site: z.object({ bodySite: z.string(), laterality: z.string().nullable() }).nullable(),
        dose: z.object({ particles: z.int() }),
        vialsUsed: z.int(),
        vialBarcodes: z.array(z.string()),
        status: z.enum(['completed', 'entered-in-error']),
        lot: Lot,
        donors: z.array(Donor),
      }),
    ),
  })
  .meta({ id: 'PatientExposuresReport' });

export const CsvText = z.string().meta({ description: 'RFC 4180 CSV, one row per recipient procedure, streamed' });

export const DossierPdf = z.string().meta({ format: 'binary', description: 'The lot dossier as PDF (A4 landscape), streamed' });
export const DossierHtml = z.string().meta({ description: 'The lot dossier as one self-contained, printable HTML page (no script)' });
