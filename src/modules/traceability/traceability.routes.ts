import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Actor } from '../../auth/principal.js';
import { jsonBody } from '../../shared/json-stream.js';
import { actorOf } from '../../http/auth.js';
import { problemResponses } from '../../http/problem.js';
import { CsvText, DonorLookback, DossierHtml, DossierPdf, LotTraceability, PatientExposures, ReportParams } from './traceability.schemas.js';
import type { TraceabilityService } from './traceability.service.js';

const tags = ['reports'];
/** What the reports answer with, chosen by `Accept` (http/negotiation.ts); JSON when Accept allows any. */
const REPORT_TYPES = ['application/json', 'text/csv'] as const;
/** The lot report is also the printable dossier (modules/dossier): `Accept: application/pdf` or `text/html`. */
const LOT_REPORT_TYPES = [...REPORT_TYPES, 'application/pdf', 'text/html'] as const;
const wantsCsv = (req: FastifyRequest) => req.negotiatedType === 'text/csv';
const both = <T>(json: T) => ({
  description: 'The report; `Accept: text/csv` streams it as CSV (cells that a spreadsheet would read as a formula begin with `\'`)',
  content: { 'application/json': { schema: json }, 'text/csv': { schema: CsvText } },
});
const withDossier = <T>(json: T) => {
  const report = both(json);
  return {
    description: `${report.description}; \`Accept: application/pdf\` streams the printable dossier, \`text/html\` answers it as one self-contained page`,
    content: { ...report.content, 'application/pdf': { schema: DossierPdf }, 'text/html': { schema: DossierHtml } },
  };
};

/**
 * The HTML dossier runs nothing and loads nothing: its Content-Security-Policy says so, so that even a value that
 * escaped escaping could not run as script. Inline styles and SVG only.
 */
const HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Reports are assembled field by field by the service's mappers (no raw rows), so they are written with
 * JSON.stringify's rules (`jsonBody`): encoding 10,000 recipients through the zod schema again costs a third of
 * the response time. Their recipient lists are streamed as they are read from the database. The schema above still
 * documents them, and the tests check their shape.
 */
function sendJson(reply: FastifyReply, report: object) {
  return reply.type('application/json; charset=utf-8').send(jsonBody(report));
}

/** CSV goes out as it is produced (a stream) or at once (a string); it bypasses the JSON serializer. */
function sendCsv(reply: FastifyReply, filename: string, body: Readable | string) {
  return reply.type('text/csv; charset=utf-8').header('Content-Disposition', `attachment; filename="${filename}"`).send(body);
}

/** The dossier's PDF goes out as it is drawn (a stream); shown in the browser, saved under `filename`. */
function sendPdf(reply: FastifyReply, filename: string, body: Readable) {
  return reply.type('application/pdf').header('Content-Disposition', `inline; filename="${filename}"`).send(body);
}

/** The dossier's HTML goes out as it is written (a stream), under a policy that lets nothing run or load. */
function sendHtml(reply: FastifyReply, body: Readable) {
  return reply.type('text/html; charset=utf-8').header('Content-Security-Policy', HTML_POLICY).header('X-Content-Type-Options', 'nosniff').send(body);
}

/** The printable dossier (modules/dossier, which reads this module's report): streams of a lot's PDF or HTML; 404 before the first byte. */
export interface LotDossiers {
  pdf(actor: Actor, lotId: string): Promise<Readable>;
  html(actor: Actor, lotId: string): Promise<Readable>;
}

export function traceabilityRoutes(app: FastifyInstance, { reports, dossier }: { reports: TraceabilityService; dossier: LotDossiers }) {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/reports/lot-traceability/:id', {
    config: { scope: 'reports:read', produces: LOT_REPORT_TYPES, exportsData: true },
    schema: {
      operationId: 'lotTraceabilityReport',
      tags,
      summary: 'Lot → its donors, release and recall records, vial accounting, every recipient, adverse events and outcomes',
      description:
        'As JSON or CSV, or as the dossier an auditor signs (`Accept: application/pdf` or `text/html`): the same records with adverse-event ' +
        'reporting clocks, charts of mean change from baseline (95 % t-intervals) and of the adverse-event rate against the pool, page x / y, ' +
        'the time and requester, and the audit chain head at generation (covering the dossier\'s own audit entry). A clinic token sees its own recipients only.',
      params: ReportParams,
      response: { 200: withDossier(LotTraceability), ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const actor = actorOf(req);
    if (req.negotiatedType === 'application/pdf') {
      return sendPdf(reply, `lot-dossier-${req.params.id}.pdf`, await dossier.pdf(actor, req.params.id));
    }
    if (req.negotiatedType === 'text/html') {
      return sendHtml(reply, await dossier.html(actor, req.params.id));
    }
    if (wantsCsv(req)) {
      const stream = await reports.lotTraceabilityCsv(actor, req.params.id);
      return sendCsv(reply, `lot-traceability-${req.params.id}.csv`, stream);
    }
    return sendJson(reply, await reports.lotTraceability(actor, req.params.id));
  });

  r.get('/reports/donor-lookback/:id', {
    config: { scope: 'reports:read', produces: REPORT_TYPES, exportsData: true },
    schema: {
      operationId: 'donorLookbackReport',
      tags,
      summary: 'Donor → every lot made from it and everyone who received them',
      params: ReportParams,
      response: { 200: both(DonorLookback), ...problemResponses(404) },
    },
  }, async (req, reply) => {
    const actor = actorOf(req);
    if (wantsCsv(req)) {
      const stream = await reports.donorLookbackCsv(actor, req.params.id);
      return sendCsv(reply, `donor-lookback-${req.params.id}.csv`, stream);
    }
    return sendJson(reply, await reports.donorLookback(actor, req.params.id));
  });

  r.get('/reports/patient-exposures/:id', {
    config: { scope: 'reports:read', produces: REPORT_TYPES, exportsData: true },
    schema: {
      operationId: 'patientExposuresReport',
      tags,
      summary: 'Patient → every lot received and its donors with their screening tests',
      params: ReportParams,
      response: { 200: both(PatientExposures), ...problemResponses(404) },
    },
  }, async (req, reply) => {
    if (!wantsCsv(req)) return reply.type('application/json').send(await reports.patientExposures(actorOf(req), req.params.id));
    const csv = await reports.patientExposuresCsv(actorOf(req), req.params.id);
    return sendCsv(reply, `patient-exposures-${req.params.id}.csv`, csv);
  });
}
