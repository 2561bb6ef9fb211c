import { Readable } from 'node:stream';
import type { Actor } from '../../auth/principal.js';
import type { Clock } from '../../shared/clock.js';
import type { AuditLogService } from '../audit/audit-log.service.js';
import type { LotDossierData, TraceabilityService } from '../traceability/traceability.service.js';
import { TIMEPOINT_CODES, INSTRUMENTS, type InstrumentCode } from '../outcomes/instruments.js';
import { changeChart, loadCharts, rateChart, type ChangePoint } from './charts.js';
import { PAGE_WIDTH, type DossierDocument } from './document.js';
import { renderHtml } from './html.js';
import { tInterval } from './interval.js';
import { loadPdf, renderPdf } from './pdf.js';
import { buildDossier, type ChangeFigure, type DossierInput, type LotSafetyFigures } from './sections.js';

export interface DossierDeps {
  clock: Clock;
  /** The lot report and the dossier's extra figures, audited as one export (modules/traceability). */
  reports: Pick<TraceabilityService, 'lotDossier'>;
  /** The lot safety report's figures (modules/safety `lotFigures`, not audited apart: the dossier is the export). */
  safety: { lotFigures(actor: Actor, lotId: string): Promise<LotSafetyFigures> };
  /** The audit chain's head once the dossier's own entry is sealed. */
  auditLog: Pick<AuditLogService, 'sealedHead'>;
}

export type DossierService = ReturnType<typeof createDossierService>;

/** Follow-up timepoints in time order: the change chart's x axis (baseline is its zero line, unscheduled has no place). */
const CHART_TIMEPOINTS = TIMEPOINT_CODES.filter((t) => t !== 'baseline' && t !== 'unscheduled');
const TIMEPOINT_ORDER = new Map<string, number>(TIMEPOINT_CODES.map((t, i) => [t, i]));
/** A chart panel's title: the instrument and which way is better (a fall in pain is a gain in KOOS). */
const panelTitle = (instrument: string): [string, string] => {
  const info = INSTRUMENTS[instrument as InstrumentCode];
  return info ? [info.display, `${info.better} is better`] : [instrument, ''];
};

/**
 * The printable dossier of a lot, the document an auditor signs: the lot traceability report with the donors'
 * screening, release and recall, vial accounting (per clinic and per unused vial), every recipient procedure,
 * adverse events with their 21 CFR 312.32 clocks, charts of mean change from baseline (95 % t-intervals) and of
 * the lot's adverse-event rate against the pool, and the audit chain head at generation. Same tenancy as the
 * JSON report (a clinic token's dossier holds its own recipients only); each dossier is one export audit entry
 * (format `pdf` or `html`), sealed into the chain before the head is read, so the head printed covers it.
 */
export function createDossierService({ clock, reports, safety, auditLog }: DossierDeps) {
  /** The dossier's document, drawn from the lot report's figures (`data`), its charts and the audit chain head. */
  async function draw(actor: Actor, lotId: string, data: LotDossierData, generatedAt: string, libraries: Promise<unknown>) {
    const figures = await safety.lotFigures(actor, lotId);
    const head = await auditLog.sealedHead();
    await libraries;
    const changes: ChangeFigure[] = data.changeFromBaseline
      .map((c) => ({ ...c, interval: tInterval(c.n, c.mean, c.sd) }))
      .sort((a, b) => a.instrument.localeCompare(b.instrument) || TIMEPOINT_ORDER.get(a.timepoint)! - TIMEPOINT_ORDER.get(b.timepoint)!);
    const points: ChangePoint[] = changes
      .filter((c) => (CHART_TIMEPOINTS as string[]).includes(c.timepoint))
      .map((c) => ({ instrument: c.instrument, title: panelTitle(c.instrument), timepoint: c.timepoint, n: c.n, mean: c.mean, lower: c.interval?.lower ?? null, upper: c.interval?.upper ?? null }));
    const [change, rate] = await Promise.all([
      points.length ? changeChart(points, CHART_TIMEPOINTS, PAGE_WIDTH) : null,
      figures
        ? rateChart(
            [
              { group: `This lot (${data.lot.lotNumber})`, ...figures.rate },
              { group: `Pool: ${figures.pool.lots} other lots of the product`, ...figures.pool.rate },
            ],
            PAGE_WIDTH,
          )
        : null,
    ]);
    const input: DossierInput = { data, safety: figures, head, generatedAt, changes, charts: { change, rate } };
    return buildDossier(input);
  }

  /**
   * The dossier rendered by `render` as a stream. The lot report's recipients are a cursor holding a connection
   * until read: they are let go when drawing or rendering fails before the first byte, and when the stream ends,
   * however it ends (read to the end, the client gone, an error).
   */
  async function dossier(actor: Actor, lotId: string, format: 'pdf' | 'html', render: (document: DossierDocument) => Readable | Promise<Readable>) {
    const generatedAt = clock.now().toISOString();
    // The first dossier of a process loads the libraries (a second or more): meanwhile the database works.
    const libraries = Promise.all([loadCharts(), format === 'pdf' ? loadPdf() : null]);
    libraries.catch(() => undefined); // awaited below; a lot that is not found must not leave it unhandled
    // The lot first: an unknown lot is a 404 before anything else is asked.
    const data = await reports.lotDossier(actor, lotId, format);
    try {
      const out = await render(await draw(actor, lotId, data, generatedAt, libraries));
      out.once('close', () => data.recipients.abandon());
      return out;
    } catch (err) {
      data.recipients.abandon();
      throw err;
    }
  }

  return {
    /** The dossier as PDF, streamed as it is drawn (pdf.ts). Errors before the first byte (404) are thrown. */
    async pdf(actor: Actor, lotId: string): Promise<Readable> {
      return dossier(actor, lotId, 'pdf', renderPdf);
    },

    /** The dossier as one self-contained, printable HTML page (html.ts), streamed as it is written. */
    async html(actor: Actor, lotId: string): Promise<Readable> {
      return dossier(actor, lotId, 'html', (document) => Readable.from(renderHtml(document), { objectMode: false }));
    },
  };
}
