import type { LotDossierData, ReportRecipient } from '../traceability/traceability.service.js';
import type { Block, Table } from './document.js';
import { counted, decimal, grouped, minute } from './document.js';

/**
 * The dossier's record sections (numbered as sections.ts lists them): release and recall, donors, vial accounting,
 * adverse events and recipients; each a few blocks, mostly tables of the records as they stand.
 */

/** A table of `count` rows made by `row` from their index. */
export const table = (columns: Table['columns'], count: number, row: (i: number) => string[], empty: string): Table => ({
  kind: 'table',
  columns,
  count,
  *rows() {
    for (let i = 0; i < count; i++) yield row(i);
  },
  empty,
});
export function releaseAndRecall(data: LotDossierData): Block[] {
  const changes = data.lot.statusChanges;
  const notices = data.recallNotices;
  return [
    { kind: 'heading', text: '2. Release and recall record' },
    table(
      [
        { header: 'Status', width: 70 },
        { header: 'Effective (UTC)', width: 80 },
        { header: 'Cause', width: 80 },
        { header: 'Reason', width: 300 },
        { header: 'Changed by', width: 130 },
        { header: 'Recorded (UTC)', width: 80 },
      ],
      changes.length,
      (i) => {
        const c = changes[i]!;
        return [c.status, minute(c.effectiveAt), c.cause, c.reason ?? '', c.changedBy, minute(c.recordedAt)];
      },
      'No status change recorded.',
    ),
    { kind: 'subheading', text: 'Recall notices' },
    table(
      [
        { header: 'Clinic', width: 100 },
        { header: 'Recalled (UTC)', width: 90 },
        { header: 'Notified (UTC)', width: 90 },
        { header: 'Vials to quarantine', width: 90, align: 'right' },
        { header: 'Acknowledged (UTC)', width: 100 },
        { header: 'Acknowledged by', width: 200 },
      ],
      notices.length,
      (i) => {
        const n = notices[i]!;
        return [n.clinic_id, minute(n.recalled_at), minute(n.created_at), String(n.barcodes), n.acknowledged_at ? minute(n.acknowledged_at) : 'not yet', n.acknowledged_by ?? ''];
      },
      data.lot.status === 'recalled' ? 'No clinic had vials of the lot when it was recalled.' : 'The lot has not been recalled.',
    ),
  ];
}

export function donors(data: LotDossierData): Block[] {
  const blocks: Block[] = [{ kind: 'heading', text: '3. Donors, screening and eligibility' }];
  for (const d of data.donors) {
    const e = d.eligibility;
    blocks.push(
      { kind: 'subheading', text: `Donor ${d.din} ${d.dinCheckCharacter}` },
      {
        kind: 'fields',
        fields: [
          { label: 'Source', value: `${d.sourceTissue}, ${d.sex}, ${d.ageAtDonationYears} years at donation, collected ${d.collectedOn}` },
          { label: 'Eligibility', value: e ? `${e.status}, determined by ${e.determinedBy} at ${minute(e.determinedAt)} UTC${e.reason ? `: ${e.reason}` : ''}` : 'not determined' },
          ...(d.determinations.length > 1 ? [{ label: 'Earlier determinations', value: d.determinations.slice(0, -1).map((x) => `${x.status} (${minute(x.determinedAt)}, ${x.determinedBy})`).join('; ') }] : []),
        ],
      },
      table(
        [
          { header: 'Marker', width: 120 },
          { header: 'Method', width: 80 },
          { header: 'Result', width: 90 },
          { header: 'Tested on', width: 70 },
          { header: 'Laboratory', width: 290 },
          { header: 'Recorded by', width: 110 },
        ],
        d.screeningTests.length,
        (i) => {
          const t = d.screeningTests[i]!;
          return [t.marker, t.method, t.result, t.testedOn, t.laboratory, t.recordedBy];
        },
        'No screening test recorded.',
      ),
    );
  }
  return blocks;
}

export function vialAccounting(data: LotDossierData): Block[] {
  const rows = data.vialAccounting;
  const keys = ['shipped', 'administered', 'discarded', 'returned', 'recalled', 'expired', 'onHand'] as const;
  const total = Object.fromEntries(keys.map((k) => [k, rows.reduce((s, r) => s + r[k], 0)])) as Record<(typeof keys)[number], number>;
  const unused = data.unusedVials;
  return [
    { kind: 'heading', text: '4. Vial accounting' },
    table(
      [{ header: 'Clinic', width: 130 }, ...keys.map((k) => ({ header: k === 'onHand' ? 'on hand' : k, width: 85, align: 'right' as const }))],
      rows.length + (rows.length > 1 ? 1 : 0),
      (i) => {
        const r = i < rows.length ? rows[i]! : { clinicId: 'all clinics', ...total };
        return [r.clinicId, ...keys.map((k) => grouped(r[k]))];
      },
      'No vial of the lot has been shipped.',
    ),
    {
      kind: 'subheading',
      text: `Vials given to no recipient (${grouped(unused.reduce((n, r) => n + r.vials, 0))}), by runs of consecutive vials in the same state; each administered vial is named on its procedure in section 7`,
    },
    table(
      [
        { header: 'Sequence', width: 70 },
        { header: 'Vials', width: 40, align: 'right' },
        { header: 'Barcodes', width: 200 },
        { header: 'Status', width: 60 },
        { header: 'Clinic', width: 60 },
        { header: 'Last movement', width: 70 },
        { header: 'At (UTC)', width: 70 },
        { header: 'Reason', width: 200 },
      ],
      unused.length,
      (i) => {
        const v = unused[i]!;
        const one = v.vials === 1;
        return [
          one ? String(v.first_sequence) : `${v.first_sequence}–${v.last_sequence}`,
          grouped(v.vials),
          one ? v.first_barcode : `${v.first_barcode} … ${v.last_barcode}`,
          v.status,
          v.clinic_id ?? 'supplier',
          v.moved_action ?? '',
          minute(v.moved_at),
          v.moved_reason ?? '',
        ];
      },
      'Every vial went to a recipient.',
    ),
  ];
}

export function adverseEvents(data: LotDossierData): Block[] {
  const events = data.adverseEventDetails;
  return [
    { kind: 'heading', text: '6. Adverse events and their reporting clocks (21 CFR 312.32)' },
    table(
      [
        { header: 'Onset (UTC)', width: 62 },
        { header: 'Clinic', width: 44 },
        { header: 'MRN', width: 72 },
        { header: 'Term: description', width: 130 },
        { header: 'Grade', width: 26, align: 'right' },
        { header: 'Serious', width: 56 },
        { header: 'Relatedness', width: 50 },
        { header: 'Outcome', width: 48 },
        { header: 'Expected', width: 48 },
        { header: 'Aware (UTC)', width: 62 },
        { header: 'Report due (UTC)', width: 62 },
        { header: 'Reported (UTC), ref.', width: 70 },
        { header: 'Overdue', width: 40, alert: true },
      ],
      events.length,
      (i) => {
        const a = events[i]!;
        return [
          minute(a.onset_at),
          a.clinic_id,
          a.mrn,
          a.term ? `${a.term}: ${a.description}` : a.description,
          String(a.severity_grade),
          a.serious ? `yes${a.seriousness_criteria.length ? `: ${a.seriousness_criteria.join(', ')}` : ''}` : 'no',
          a.relatedness,
          a.outcome,
          a.expectedness,
          minute(a.aware_at),
          a.report_due_at ? minute(a.report_due_at) : 'no clock',
          a.reported_at ? `${minute(a.reported_at)}${a.report_reference ? `, ${a.report_reference}` : ''}` : '',
          a.report_overdue ? 'OVERDUE' : '',
        ];
      },
      'No adverse event recorded.',
    ),
  ];
}

/** One recipient procedure as a row of section 7 (`n`: its place in the list). */
function recipientRow(r: ReportRecipient, n: number): string[] {
  return [
    String(n),
    minute(r.performedAt),
    r.clinicId,
    r.mrn,
    r.procedureId,
    r.route,
    r.site ? `${r.site.bodySite}${r.site.laterality ? ` ${r.site.laterality}` : ''}` : '',
    grouped(r.dose.particles),
    decimal(r.dose.volumeMl, 3),
    r.vialBarcodes.length ? r.vialBarcodes.join(' ') : `${r.vialsUsed} (unnamed)`,
    r.status === 'completed' ? 'completed' : 'in error',
  ];
}

export function recipients(data: LotDossierData): Block[] {
  const count = data.recipientCounts.procedures;
  return [
    { kind: 'heading', text: `7. Recipients: ${counted(count, 'procedure')}`, newPage: true },
    {
      kind: 'table',
      columns: [
        { header: '#', width: 26, align: 'right' },
        { header: 'Performed (UTC)', width: 62 },
        { header: 'Clinic', width: 44 },
        { header: 'MRN', width: 72 },
        { header: 'Procedure id', width: 140 },
        { header: 'Route', width: 58 },
        { header: 'Site', width: 78 },
        { header: 'Particles', width: 66, align: 'right' },
        { header: 'mL', width: 28, align: 'right' },
        { header: 'Vials', width: 152 },
        { header: 'Status', width: 44 },
      ],
      count,
      async *rows() {
        let n = 0;
        for await (const r of data.recipients) yield recipientRow(r, ++n);
      },
      empty: 'No recipient.',
    },
  ];
}
