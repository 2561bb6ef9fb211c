import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { createTestApp, type TestApp } from '../support/app.js';
import { abandonDownload, checkedOutAfter } from '../support/downloads.js';
import { consentBody, patientBody, procedureBody, releasedLot, uniq } from '../support/fixtures.js';

/**
 * The printable lot dossier: GET /v1/reports/lot-traceability/{id} with Accept: application/pdf or text/html.
 * PDFs are read back with pdf.js (each page's text), as a reader would see them.
 */
let t: TestApp;
let supplier: string;
let inspector: string;
const reader: Record<string, string> = {};
let lotId: string;
let lotNumber: string;
/** clinic-a's 50 recipients' MRNs, clinic-b's one. */
const mrnsA: string[] = [];
const MRN_B = 'MRN-B-777';
/** Free text a clinic typed: markup, quotes and Cyrillic. */
const DESCRIPTION = '<script>alert("x")</script> Отёк колена & "swelling"';
/** 666 numbered words, 3,996 characters. */
const LONG_DESCRIPTION = Array.from({ length: 666 }, (_, i) => `w${String(i + 1).padStart(4, '0')}`).join(' ');

const require = createRequire(import.meta.url);
const STANDARD_FONTS = `${path.join(path.dirname(require.resolve('pdfjs-dist/package.json')), 'standard_fonts')}/`;

/** Each page's text as pdf.js extracts it (items joined by spaces, line ends kept). */
async function pdfPages(data: Buffer): Promise<string[]> {
  const doc = await getDocument({ data: new Uint8Array(data), standardFontDataUrl: STANDARD_FONTS, verbosity: 0 }).promise;
  const pages: string[] = [];
  for (let i = 1; i <= doc.numPages; i++) {
    const content = await (await doc.getPage(i)).getTextContent();
    pages.push(content.items.map((item) => ('str' in item ? `${item.str}${item.hasEOL ? '\n' : ' '}` : '')).join(''));
  }
  await doc.destroy();
  return pages;
}

/** Text with every run of white space as one space (pdf.js puts several between a label and its value). */
const flat = (s: string) => s.replace(/\s+/g, ' ');

const get = (path: string, token: string, accept: string) => t.http.get(path).set('authorization', `Bearer ${token}`).set('accept', accept);
const pdf = (id: string, token: string) =>
  get(`/v1/reports/lot-traceability/${id}`, token, 'application/pdf')
    .buffer(true)
    .parse((res, done) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(null, Buffer.concat(chunks)));
    });
const html = (id: string, token: string) => get(`/v1/reports/lot-traceability/${id}`, token, 'text/html');
const exports = async (format: string | null) =>
  (await t.pool.query("SELECT id, actor_sub, details FROM audit_events WHERE action = 'export' AND resource_id = $1 AND ($2::text IS NULL OR details->>'format' = $2) ORDER BY id", [lotId, format]))
    .rows as { id: number; actor_sub: string; details: { recipients: number } }[];

beforeAll(async () => {
  t = await createTestApp();
  supplier = await t.token({ scope: 'lots:read lots:write reports:read', clinic: null, sub: 'qa-unit' });
  inspector = await t.token({ scope: 'reports:read audit:read', clinic: null, sub: 'inspector' });
  const clinical: Record<string, string> = {};
  for (const c of ['clinic-a', 'clinic-b']) {
    clinical[c] = await t.token({ scope: 'patients:read patients:write clinical:read clinical:write lots:read', clinic: c, sub: `dr-${c}` });
    reader[c] = await t.token({ scope: 'reports:read audit:read', clinic: c, sub: `auditor-${c}` });
  }
  // A lot number with markup in it: it goes into the HTML's text, its CSS page header, and the PDF.
  lotNumber = `EVX-${uniq()}"</style><script>1</script>`;
  lotId = (await releasedLot(t.http, supplier, { lotNumber })).lot.id;
  for (const [c, vials] of [['clinic-a', 60], ['clinic-b', 5]] as const) {
    const s = await t.http.post(`/v1/lots/${lotId}/shipments`).set('authorization', `Bearer ${supplier}`).send({ clinicId: c, vials, shippedAt: '2026-03-02T08:00:00Z' });
    expect(s.status).toBe(201);
  }
  const recipient = async (c: string, mrn: string, performedAt: string) => {
    const p = await t.http.post('/v1/patients').set('authorization', `Bearer ${clinical[c]}`).send(patientBody({ mrn }));
    await t.http.post(`/v1/patients/${p.body.id}/consents`).set('authorization', `Bearer ${clinical[c]}`).send(consentBody({ signedAt: '2026-02-15T09:00:00Z' }));
    const proc = await t.http.post('/v1/procedures').set('authorization', `Bearer ${clinical[c]}`).send(procedureBody(p.body.id, lotId, { performedAt }));
    expect(proc.status, JSON.stringify(proc.body)).toBe(201);
    return proc.body.id as string;
  };
  const procedures: string[] = [];
  for (let i = 0; i < 50; i++) {
    const mrn = `MRN-A-${String(i).padStart(3, '0')}`;
    mrnsA.push(mrn);
    procedures.push(await recipient('clinic-a', mrn, `2026-03-10T${String(8 + (i % 10)).padStart(2, '0')}:00:00Z`));
  }
  const procB = await recipient('clinic-b', MRN_B, '2026-03-11T10:00:00Z');
  // Pain scores of five clinic-a recipients: baseline 8, week 6 from 3 to 7 (mean change −3, SD 1.58).
  for (let i = 0; i < 5; i++) {
    const score = (timepoint: string, value: number, assessedAt: string) =>
      t.http.post('/v1/outcomes').set('authorization', `Bearer ${clinical['clinic-a']}`).send({ procedureId: procedures[i], instrument: 'nrs-pain', score: value, assessedAt, timepoint });
    expect((await score('baseline', 8, '2026-03-05T10:00:00Z')).status).toBe(201);
    expect((await score('week-6', 3 + i, '2026-04-21T10:00:00Z')).status).toBe(201);
  }
  // A serious, unexpected, probably related event at clinic-a: due 15 days after awareness, never reported.
  const ae = await t.http.post('/v1/adverse-events').set('authorization', `Bearer ${clinical['clinic-a']}`).send({
    procedureId: procedures[0],
    onsetAt: '2026-03-11T08:00:00Z',
    awareAt: '2026-03-12T08:00:00Z',
    term: 'Other, specify',
    description: DESCRIPTION,
    severityGrade: 3,
    serious: true,
    seriousnessCriteria: ['hospitalization'],
    relatedness: 'probable',
    outcome: 'recovering',
  });
  expect(ae.status, JSON.stringify(ae.body)).toBe(201);
  // The longest description there can be (4,000 characters): it runs over more than a page of its table.
  const long = await t.http.post('/v1/adverse-events').set('authorization', `Bearer ${clinical['clinic-a']}`).send({
    procedureId: procedures[1],
    onsetAt: '2026-03-13T08:00:00Z',
    description: LONG_DESCRIPTION,
    severityGrade: 1,
    serious: false,
    relatedness: 'possible',
    outcome: 'resolved',
  });
  expect(long.status, JSON.stringify(long.body)).toBe(201);
  const aeB = await t.http.post('/v1/adverse-events').set('authorization', `Bearer ${clinical['clinic-b']}`).send({
    procedureId: procB,
    onsetAt: '2026-03-12T08:00:00Z',
    description: 'Mild effusion at clinic B',
    severityGrade: 1,
    serious: false,
    relatedness: 'possible',
    outcome: 'resolved',
  });
  expect(aeB.status, JSON.stringify(aeB.body)).toBe(201);
}, 120_000);
afterAll(() => t.close());

describe('the lot dossier as PDF', () => {
  let pages: string[];
  let all: string;
  beforeAll(async () => {
    const res = await pdf(lotId, inspector);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-disposition']).toBe(`inline; filename="lot-dossier-${lotId}.pdf"`);
    expect((res.body as Buffer).subarray(0, 5).toString()).toBe('%PDF-');
    // DOSSIER_SAMPLE=<file> keeps this PDF to look at (pdftoppm); the test reads it either way.
    if (process.env.DOSSIER_SAMPLE) writeFileSync(process.env.DOSSIER_SAMPLE, res.body as Buffer);
    pages = (await pdfPages(res.body as Buffer)).map(flat);
    all = pages.join(' ');
  });

  it('has every section, the lot and its donor, and says how many recipients it lists', () => {
    for (const heading of [
      '1. Lot',
      '2. Release and recall record',
      '3. Donors, screening and eligibility',
      '4. Vial accounting',
      '5. Outcomes and safety',
      '6. Adverse events and their reporting clocks',
      '7. Recipients: 51 procedures',
      '8. Review and signature',
    ]) {
      expect(all, heading).toContain(heading);
    }
    expect(pages[0]).toContain(`Lot ${lotNumber}`);
    expect(all).toContain('Recipient procedures 51 (51 patients at 2 clinics)');
    expect(all).toContain('hiv-1-nat');
    expect(all).toMatch(/Eligibility eligible, determined by Dr\. Director/);
  });

  it('accounts for vials per clinic and, one by one, for each vial no recipient got (runs of consecutive vials)', () => {
    expect(all).toContain('clinic-a 60 50 0 0 0 0 10 clinic-b 5 1 0 0 0 0 4 all clinics 65 51 0 0 0 0 14');
    expect(all).toContain('Vials given to no recipient (49)');
    // Shipments took the lowest sequences (clinic-a 1–60, clinic-b 61–65), procedures each clinic's lowest.
    expect(all).toMatch(/51–60 10 \S+-0051 … \S+-0060 at-clinic clinic-a shipped 2026-03-02 08:00/);
    expect(all).toMatch(/62–65 4 \S+-0062 … \S+-0065 at-clinic clinic-b shipped/);
    expect(all).toMatch(/66–100 35 \S+-0066 … \S+-0100 in-stock supplier released/);
  });

  it('lists every recipient of every clinic once, with clinic, MRN, route, site and dose', () => {
    // Once as a recipient, and once more for each adverse event (clinic-a's first two recipients, clinic-b's one).
    const withEvent = new Set([mrnsA[0], mrnsA[1], MRN_B]);
    for (const mrn of [...mrnsA, MRN_B]) expect(all.split(mrn).length - 1, mrn).toBe(withEvent.has(mrn) ? 2 : 1);
    expect(all).toMatch(/intra-articular knee-joint right 2,500,000,000 0\.01/);
  });

  it('puts the lot number in every page header and "page x / y" in every footer', () => {
    expect(pages.length).toBeGreaterThan(3);
    pages.forEach((text, i) => {
      expect(text, `page ${i + 1}`).toContain(`Lot traceability dossier · Lot ${lotNumber}`);
      expect(text.replace(/\s+/g, ' '), `page ${i + 1}`).toContain(`page ${i + 1} / ${pages.length}`);
    });
  });

  it('names on page 1 when it was made, for whom, and the audit chain head that covers its own entry', async () => {
    const first = pages[0]!.replace(/\s+/g, ' ');
    expect(first).toMatch(/Generated at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z \(UTC\)/);
    expect(first).toContain('Requested by inspector (no clinic: supplier or inspector)');
    expect(first).toContain('Recipients shown every clinic');
    const head = /Audit chain head sequence (\d+) \(audit entry (\d+), sealed/.exec(first);
    const hash = /Head hash \(SHA-256\) ([0-9a-f]{64})/.exec(first);
    expect(head).not.toBeNull();
    expect(hash).not.toBeNull();
    // The log says the same of that link, and the dossier's own export entry is at or before it in the chain.
    const entries = await auditEntries();
    const link = entries.find((e) => e.id === Number(head![2]));
    expect(link?.chain).toEqual({ seq: Number(head![1]), hash: hash![1] });
    const own = entries.filter((e) => e.action === 'export' && e.resourceId === lotId && e.details?.format === 'pdf' && e.actor.sub === 'inspector').at(-1);
    expect(own?.chain?.seq).toBeLessThanOrEqual(Number(head![1]));
    const verify = await t.http.get('/v1/audit-events/verify').set('authorization', `Bearer ${inspector}`);
    expect(verify.body.valid).toBe(true);
  });

  it('shows adverse events with their clock: the serious unexpected one is overdue', () => {
    const text = all.replace(/\s+/g, ' ');
    expect(text).toContain('Other, specify: <script>alert("x")</script> Отёк колена');
    expect(text).toMatch(/2026-03-12 08:00 2026-03-27 08:00 OVERDUE/);
    expect(text).toContain('Safety reports overdue 1');
    expect(text).toContain('Mild effusion at clinic B');
  });

  it('prints the whole of a 4,000-character description, over as many pages as it takes', () => {
    const words = new Set(all.match(/\bw\d{4}\b/g));
    expect(words.size).toBe(666);
    const pagesWithIt = pages.filter((p) => /\bw\d{4}\b/.test(p)).length;
    expect(pagesWithIt).toBeGreaterThan(1);
  });

  it('charts mean change from baseline with its 95 % t-interval, tabulated beside it', () => {
    const text = all.replace(/\s+/g, ' ');
    expect(text).toContain('Mean change from baseline by timepoint, with 95 % t-intervals');
    // n = 5, mean −3, SD √2.5 = 1.58: −3 ± 2.776 × 1.58 / √5 = −4.96 to −1.04 (t(0.975, 4) = 2.776).
    expect(text).toMatch(/Pain severity 0-10 \(NRS\) week-6 5 -3 1\.58 -4\.96 to -1\.04 80\.0 %/);
    // The chart's own labels (SVG drawn into the page).
    expect(text).toContain('Change (points)');
    expect(text).toContain('n = 5');
  });

  it('gives a clinic only its own recipients and events: no other clinic\'s MRN anywhere', async () => {
    const res = await pdf(lotId, reader['clinic-b']!);
    expect(res.status).toBe(200);
    const text = flat((await pdfPages(res.body as Buffer)).join(' '));
    expect(text).toContain(MRN_B);
    for (const mrn of mrnsA) expect(text).not.toContain(mrn);
    expect(text).not.toContain('Отёк');
    expect(text).toContain('7. Recipients: 1 procedure ');
    expect(text).toContain('Recipient procedures 1 (1 patient at 1 clinic)');
    expect(text).toContain('Requested by auditor-clinic-b, clinic clinic-b');
    expect(text).toContain('Recipients shown clinic clinic-b only');
  });

  it('is one export audit entry per dossier, naming the format and how many recipients it held', async () => {
    const before = await exports(null);
    expect((await pdf(lotId, reader['clinic-a']!)).status).toBe(200);
    const after = await exports(null);
    // One entry in all: the safety figures it prints are not a second export.
    expect(after).toHaveLength(before.length + 1);
    expect(after.at(-1)).toMatchObject({ actor_sub: 'auditor-clinic-a', details: { report: 'lot-traceability', format: 'pdf', recipients: 50 } });
  });
});

describe('the lot dossier as HTML', () => {
  it('is one printable page with every value escaped, and forbids scripts', async () => {
    const res = await html(lotId, inspector);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    const body = res.text;
    expect(body).not.toMatch(/<script/i);
    expect(body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Отёк колена &amp; &quot;swelling&quot;');
    // The lot number in the CSS page header is a CSS escape, so it cannot close the style element.
    expect(body.match(/<\/style>/g)).toHaveLength(1);
    expect(body).toContain(`Lot ${lotNumber.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')}`);
    expect(body).toContain('counter(page) " / " counter(pages)');
    expect(body).toContain('<h2 class="new-page">7. Recipients: 51 procedures</h2>');
    const recipients = body.slice(body.indexOf('7. Recipients'), body.indexOf('8. Review'));
    expect(recipients.match(/<tr>/g)).toHaveLength(52); // header + 51
    expect(body).toMatch(/<svg[^>]*>/);
  });

  it('gives a clinic its own recipients only, and is audited as html', async () => {
    const before = await exports('html');
    const res = await html(lotId, reader['clinic-a']!);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(MRN_B);
    for (const mrn of mrnsA) expect(res.text).toContain(mrn);
    expect(await exports('html')).toHaveLength(before.length + 1);
  });
});

describe('negotiation and errors', () => {
  it('still answers 406 for a type it cannot make, naming the four it can, and exports nothing', async () => {
    const before = (await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export'")).rows[0].n;
    for (const accept of ['image/png', 'application/pdf;q=0, text/html;q=0, application/json;q=0, text/csv;q=0']) {
      const res = await get(`/v1/reports/lot-traceability/${lotId}`, inspector, accept);
      expect(res.status).toBe(406);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.detail).toContain('application/json or text/csv or application/pdf or text/html');
    }
    expect((await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export'")).rows[0].n).toBe(before);
  });

  it('answers 404 problem+json for an unknown lot, as PDF or HTML, and writes no export', async () => {
    const unknown = '01900000-0000-7000-8000-000000000000';
    for (const accept of ['application/pdf', 'text/html']) {
      const res = await get(`/v1/reports/lot-traceability/${unknown}`, reader['clinic-a']!, accept);
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const n = (await t.pool.query("SELECT count(*)::int AS n FROM audit_events WHERE action = 'export' AND resource_id = $1", [unknown])).rows[0].n;
    expect(n).toBe(0);
  });

  it('gives a clinic the dossier of a lot it never received without anyone\'s recipients (the JSON report\'s tenancy)', async () => {
    const other = (await releasedLot(t.http, supplier)).lot.id;
    const res = await pdf(other, reader['clinic-a']!);
    expect(res.status).toBe(200);
    const text = flat((await pdfPages(res.body as Buffer)).join(' '));
    expect(text).toContain('7. Recipients: 0 procedures');
    expect(text).toContain('No recipient.');
  });

  it('needs reports:read', async () => {
    const clinician = await t.token({ scope: 'patients:read clinical:read lots:read', clinic: 'clinic-a' });
    expect((await get(`/v1/reports/lot-traceability/${lotId}`, clinician, 'application/pdf')).status).toBe(403);
  });
});

interface AuditItem {
  id: number;
  action: string;
  resourceId: string | null;
  actor: { sub: string };
  details: Record<string, unknown> | null;
  chain: { seq: number; hash: string } | null;
}

/** Every audit entry, through GET /v1/audit-events (page by page). */
async function auditEntries(): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let cursor: string | null = null;
  do {
    const res = await t.http.get('/v1/audit-events').query({ limit: 200, ...(cursor ? { cursor } : {}) }).set('authorization', `Bearer ${inspector}`);
    expect(res.status).toBe(200);
    items.push(...(res.body.items as AuditItem[]));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return items;
}

describe('an abandoned dossier download', () => {
  it('stops drawing and gives its database connection back to the pool, as PDF or HTML', async () => {
    // 3,000 more recipients (copies of one procedure): the document outgrows the socket buffers, the client leaves early.
    const { rows } = await t.pool.query("SELECT id FROM procedures WHERE lot_id = $1 AND clinic_id = 'clinic-a' LIMIT 1", [lotId]);
    await t.pool.query(
      `INSERT INTO procedures (id, clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, created_by)
       SELECT gen_random_uuid(), clinic_id, patient_id, lot_id, performed_at, performer, indication, route, imaging_guidance, dose_particles, dose_volume_ml, vials_used, 'bulk'
       FROM procedures p, generate_series(1, 3000) WHERE p.id = $1`,
      [rows[0].id],
    );
    const { port } = (await t.app.listen({ port: 0, host: '127.0.0.1' }).then(() => t.app.server.address())) as { port: number };
    for (const accept of ['application/pdf', 'text/html']) {
      await abandonDownload(port, `/v1/reports/lot-traceability/${lotId}`, { authorization: `Bearer ${inspector}`, accept });
      expect(await checkedOutAfter(t.pool), accept).toBe(0);
    }
    // And the next one is whole.
    const res = await pdf(lotId, inspector);
    expect(res.status).toBe(200);
    expect(flat((await pdfPages(res.body as Buffer)).join(' '))).toContain('7. Recipients: 3,051 procedures');
  }, 60_000);
});
