import type { LotDossierData } from '../traceability/traceability.service.js';
import { INSTRUMENTS, type InstrumentCode } from '../outcomes/instruments.js';
import type { Block, DossierDocument, Field } from './document.js';
import { counted, decimal, grouped, PAGE_WIDTH, percent } from './document.js';
import type { MeanInterval } from './interval.js';
import { adverseEvents, donors, recipients, releaseAndRecall, table, vialAccounting } from './record-sections.js';

/** A rate with its exact interval, as the lot safety report gives it (contract: Safety). */
export interface RateFigure {
  value: number | null;
  lower: number | null;
  upper: number | null;
}

/** What the dossier prints of the lot safety report (`lotSafety`, contract: Safety). */
export interface LotSafetyFigures {
  procedures: number;
  adverseEvents: { total: number; serious: number };
  rate: RateFigure;
  pool: { lots: number; procedures: number; proceduresWithEvent: number; rate: RateFigure };
  signal: { flagged: boolean; pValue: number | null };
}

/** The chain's last link when the dossier was made (modules/audit sealedHead). */
export interface ChainHead {
  seq: number;
  hash: string;
  auditEventId: number;
  sealedAt: Date;
}

/** Change from baseline of one instrument at one timepoint with its 95 % t-interval (null below n = 2). */
export interface ChangeFigure {
  instrument: string;
  timepoint: string;
  n: number;
  sd: number | null;
  interval: MeanInterval | null;
  mean: number;
}

export interface DossierInput {
  data: LotDossierData;
  /** null: the safety report could not be had (said in the dossier). */
  safety: LotSafetyFigures | null;
  head: ChainHead | null;
  generatedAt: string;
  changes: ChangeFigure[];
  charts: { change: string | null; rate: string | null };
}

const display = (instrument: string) => INSTRUMENTS[instrument as InstrumentCode]?.display ?? instrument;

function generation(input: DossierInput): Field[] {
  const { data, head, generatedAt } = input;
  const who = data.requestedBy;
  return [
    { label: 'Generated at', value: `${generatedAt} (UTC)` },
    { label: 'Requested by', value: who.clinicId ? `${who.sub}, clinic ${who.clinicId}` : `${who.sub} (no clinic: supplier or inspector)` },
    { label: 'Recipients shown', value: who.clinicId ? `clinic ${who.clinicId} only (the requester's clinic)` : 'every clinic' },
    head
      ? { label: 'Audit chain head', value: `sequence ${head.seq} (audit entry ${head.auditEventId}, sealed ${head.sealedAt.toISOString()}); this dossier's own audit entry is in the chain up to here` }
      : { label: 'Audit chain head', value: 'no entry sealed yet' },
    ...(head ? [{ label: 'Head hash (SHA-256)', value: head.hash, mono: true }] : []),
    {
      label: 'To verify',
      value: 'GET /v1/audit-events/verify recomputes the chain; the link of this sequence must still carry this hash (GET /v1/audit-events lists each entry with its link).',
    },
  ];
}

function lotFields(data: LotDossierData): Field[] {
  const l = data.lot;
  const c = l.characterization;
  const fields: Field[] = [
    { label: 'Lot number', value: l.lotNumber },
    { label: 'Lot id', value: l.id, mono: true },
    { label: 'Product', value: l.productName },
    { label: 'Manufacturer', value: l.manufacturer },
    { label: 'Status', value: l.status },
    { label: 'Isolation method', value: l.isolationMethod },
    { label: 'Manufactured on / expires on', value: `${l.manufacturedOn} / ${l.expiresOn}` },
    { label: 'Storage', value: `${decimal(l.storageTempC, 1)} °C` },
    { label: 'Vials', value: `${grouped(l.vialCount)} of ${decimal(l.vialVolumeMl, 3)} mL; ${grouped(l.vialsShipped)} shipped` },
    { label: 'Release tests', value: `sterility ${l.releaseTests.sterility}, mycoplasma ${l.releaseTests.mycoplasma}, endotoxin ${l.releaseTests.endotoxinEuPerMl === null ? 'pending' : `${decimal(l.releaseTests.endotoxinEuPerMl, 3)} EU/mL`}` },
  ];
  if (c) {
    fields.push({
      label: 'Characterization',
      value: `${c.particlesPerMl.toExponential(2)} particles/mL (${c.sizeMethod}), mean size ${decimal(c.meanSizeNm, 1)} nm; positive markers ${c.positiveMarkers.join(', ') || 'none'}; negative markers ${c.negativeMarkers.join(', ') || 'none'}`,
    });
  }
  if (l.poolingJustification) fields.push({ label: 'Pooling justification', value: l.poolingJustification });
  return fields;
}

function summary(input: DossierInput): Field[] {
  const { data } = input;
  const { procedures, patients, clinics, entered_in_error: inError } = data.recipientCounts;
  const events = data.adverseEventDetails;
  const overdue = events.filter((a) => a.report_overdue).length;
  return [
    { label: 'Donors', value: String(data.donors.length) },
    { label: 'Recipient procedures', value: `${grouped(procedures)} (${counted(patients, 'patient')} at ${counted(clinics, 'clinic')}${inError ? `; ${inError} entered in error` : ''})` },
    { label: 'Adverse events', value: `${events.length} (${events.filter((a) => a.serious).length} serious)` },
    { label: 'Safety reports overdue', value: String(overdue), alert: overdue > 0 },
  ];
}

function outcomesAndSafety(input: DossierInput): Block[] {
  const { data, safety, changes, charts } = input;
  const responders = new Map(data.outcomeSummary.map((o) => [`${o.instrument}|${o.timepoint}`, o.responderRate]));
  const blocks: Block[] = [
    { kind: 'heading', text: '5. Outcomes and safety', newPage: true },
    { kind: 'subheading', text: 'Mean change from baseline by timepoint, with 95 % t-intervals' },
  ];
  if (charts.change) blocks.push({ kind: 'chart', svg: charts.change, width: PAGE_WIDTH, height: 0, alt: 'Mean change from baseline by timepoint per instrument, with 95 % intervals' });
  blocks.push(
    table(
      [
        { header: 'Instrument', width: 220 },
        { header: 'Timepoint', width: 80 },
        { header: 'n', width: 60, align: 'right' },
        { header: 'Mean change', width: 90, align: 'right' },
        { header: 'SD', width: 70, align: 'right' },
        { header: '95 % interval', width: 140, align: 'right' },
        { header: 'Responders (MCID)', width: 110, align: 'right' },
      ],
      changes.length,
      (i) => {
        const c = changes[i]!;
        const rate = responders.get(`${c.instrument}|${c.timepoint}`);
        return [display(c.instrument), c.timepoint, grouped(c.n), decimal(c.mean), decimal(c.sd), c.interval ? `${decimal(c.interval.lower)} to ${decimal(c.interval.upper)}` : 'n < 2', rate === null || rate === undefined ? '' : percent(rate)];
      },
      'No follow-up score with a baseline.',
    ),
    { kind: 'subheading', text: 'Adverse-event rate per procedure: this lot against the pool of the product\'s other lots' },
  );
  if (!safety) {
    blocks.push({ kind: 'paragraph', tone: 'alert', text: 'The lot safety report was not available when this dossier was made; the rate against the pool is not shown.' });
    return blocks;
  }
  const interval = (r: RateFigure) => (r.value === null ? 'no procedures' : `${percent(r.value)} (95 % CI ${percent(r.lower)} to ${percent(r.upper)}, Clopper–Pearson)`);
  blocks.push({
    kind: 'fields',
    fields: [
      { label: 'This lot', value: `${interval(safety.rate)}; ${counted(safety.procedures, 'procedure')}, ${counted(safety.adverseEvents.total, 'adverse event')} (${safety.adverseEvents.serious} serious)` },
      { label: 'Pool', value: `${interval(safety.pool.rate)}; ${counted(safety.pool.lots, 'other lot')}, ${counted(safety.pool.procedures, 'procedure')}, ${grouped(safety.pool.proceduresWithEvent)} with an event` },
      {
        label: 'Signal',
        alert: safety.signal.flagged,
        value: `${safety.signal.flagged ? 'FLAGGED' : 'none'}: Fisher's exact test (one-sided, lot higher than pool) p = ${safety.signal.pValue === null ? 'n/a' : safety.signal.pValue.toPrecision(3)}; a signal needs p < 0.01 and at least 3 events`,
      },
    ],
  });
  if (charts.rate) blocks.push({ kind: 'chart', svg: charts.rate, width: PAGE_WIDTH, height: 0, alt: 'Adverse-event rate of the lot against the pool, with 95 % exact intervals' });
  return blocks;
}

/** The dossier of a lot, section by section (numbered as its table of contents on page 1 says). */
export function buildDossier(input: DossierInput): DossierDocument {
  const { data } = input;
  const lotNumber = data.lot.lotNumber;
  return {
    lotNumber,
    title: `Lot traceability dossier: lot ${lotNumber}`,
    generatedAt: input.generatedAt,
    footer: `Lot ${lotNumber} · generated ${input.generatedAt} · contains patient identifiers: confidential`,
    blocks: [
      { kind: 'title', title: 'Lot traceability dossier', subtitle: `Lot ${lotNumber} · ${data.lot.productName}` },
      { kind: 'fields', fields: generation(input) },
      { kind: 'heading', text: '1. Lot' },
      { kind: 'fields', fields: lotFields(data) },
      { kind: 'subheading', text: 'Summary' },
      { kind: 'fields', fields: summary(input) },
      {
        kind: 'paragraph',
        tone: 'note',
        text: 'Sections: 1 Lot · 2 Release and recall record · 3 Donors, screening and eligibility · 4 Vial accounting · 5 Outcomes and safety · 6 Adverse events · 7 Recipients · 8 Review and signature.',
      },
      ...releaseAndRecall(data),
      ...donors(data),
      ...vialAccounting(data),
      ...outcomesAndSafety(input),
      ...adverseEvents(data),
      ...recipients(data),
      { kind: 'heading', text: '8. Review and signature', newPage: true },
      {
        kind: 'paragraph',
        text: `I have reviewed this dossier of lot ${lotNumber} as generated at ${input.generatedAt} (UTC) and found it complete and consistent with the records it names.`,
      },
      {
        kind: 'fields',
        fields: [
          { label: 'Dossier of', value: `lot ${lotNumber} (${data.lot.id}), ${grouped(data.recipientCounts.procedures)} recipient procedures` },
          { label: 'Generated at', value: `${input.generatedAt} (UTC) for ${data.requestedBy.sub}${data.requestedBy.clinicId ? `, clinic ${data.requestedBy.clinicId}` : ''}` },
          ...(input.head ? [{ label: 'Audit chain head', value: `sequence ${input.head.seq}, hash ${input.head.hash}`, mono: true }] : []),
        ],
      },
      { kind: 'signatures', roles: ['Reviewed by (name, role)', 'Approved by (name, role)'] },
    ],
  };
}

