import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Block, DossierDocument, Field, Table } from './document.js';
import { PAGE_WIDTH } from './document.js';
import { ALERT, BOTTOM, CHART_FONTS, FONT_DIR, GREY, LEFT, LINE, PAD, Pen, TABLE_SIZE, TOP, UNICODE, type Doc, type Face } from './pdf-pen.js';

/**
 * The dossier as PDF (pdfkit), streamed: each page is written out when the next begins, and drawing pauses
 * while the reader is behind, so memory holds a page or two, never the whole document (nor the recipients, read
 * from their cursor as their table is drawn). The pen (pdf-pen.ts) sets the text, header, footer and page count.
 */

/** Lines of a table row that are kept on one page (a row of more is sliced over pages). */
const MAX_ROW_LINES = Math.floor((BOTTOM - TOP - 40) / LINE);
/** Bytes the reader may fall behind by before drawing waits for it. */
const HIGH_WATER = 1 << 20;

type Libraries = { PDFDocument: new (options?: PDFKit.PDFDocumentOptions) => Doc; svgToPdf: (doc: Doc, svg: string, x: number, y: number, options: object) => void };
let libraries: Promise<Libraries> | undefined;
/** Loads pdfkit and svg-to-pdfkit (once); a dossier asks early, so that loading overlaps its database reads. */
export const loadPdf = () =>
  (libraries ??= Promise.all([import('pdfkit'), import('svg-to-pdfkit')]).then(([pdfkit, svg]) => ({
    PDFDocument: pdfkit.default as unknown as Libraries['PDFDocument'],
    svgToPdf: svg.default as unknown as Libraries['svgToPdf'],
  })));

/** Lets the event loop run, then waits while the reader is more than HIGH_WATER behind; false once the stream is gone. */
async function breathe(doc: Doc): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  while (!doc.destroyed && doc.readableLength > HIGH_WATER) {
    await new Promise<void>((resolve) => {
      const done = () => {
        doc.off('data', done);
        doc.off('close', done);
        resolve();
      };
      doc.once('data', done);
      doc.once('close', done);
    });
  }
  return !doc.destroyed;
}

function fields(pen: Pen, list: Field[]) {
  const labelWidth = 150;
  const all = list.map((f) => pen.lines(f.value, f.mono ? 'mono' : f.alert ? 'bold' : 'regular', 8.5, PAGE_WIDTH - labelWidth));
  // The block together when it fits what is left of the page, or on the next when it fits a page.
  pen.need(Math.min(all.reduce((h, lines) => h + lines.length * 11 + 2, 0), BOTTOM - TOP));
  for (const [i, f] of list.entries()) {
    const lines = all[i]!;
    // Kept on one page when it fits one; a longer value (free text) goes on over the next, line by line.
    pen.need(Math.min(lines.length * 11 + 2, BOTTOM - TOP));
    pen.put(f.label, LEFT, pen.y, 'bold', 8.5);
    for (const line of lines) {
      pen.need(11);
      pen.put(line, LEFT + labelWidth, pen.y, f.mono ? 'mono' : f.alert ? 'bold' : 'regular', 8.5, { color: f.alert ? ALERT : '#000000' });
      pen.y += 11;
    }
    pen.y += 2;
  }
  pen.y += 4;
}

async function table(pen: Pen, t: Table): Promise<boolean> {
  if (t.count === 0) {
    pen.need(14);
    pen.put(t.empty, LEFT, pen.y, 'regular', 8.5, { color: GREY });
    pen.y += 16;
    return true;
  }
  const stretch = PAGE_WIDTH / t.columns.reduce((s, c) => s + c.width, 0);
  const widths = t.columns.map((c) => c.width * stretch);
  const xs = widths.map((_, i) => LEFT + widths.slice(0, i).reduce((s, w) => s + w, 0));
  const faces = t.columns.map((c): Face => (c.mono ? 'mono' : c.alert ? 'bold' : 'regular'));
  const colors = t.columns.map((c) => (c.alert ? ALERT : '#000000'));
  const header = () => {
    const lines = t.columns.map((c, i) => pen.lines(c.header, 'bold', TABLE_SIZE, widths[i]! - 2 * PAD.x));
    const h = Math.max(...lines.map((l) => l.length)) * LINE + 2 * PAD.y;
    pen.band(LEFT, pen.y, PAGE_WIDTH, h, '#dde3ea');
    lines.forEach((ls, i) => ls.forEach((line, k) => pen.put(line, xs[i]! + PAD.x, pen.y + PAD.y + k * LINE, 'bold', TABLE_SIZE, t.columns[i]!.align === 'right' ? { right: xs[i]! + widths[i]! - PAD.x } : {})));
    pen.y += h;
  };
  pen.need(3 * LINE + 4 * PAD.y);
  header();
  let r = -1;
  for await (const cells of t.rows()) {
    r += 1;
    const lines = cells.map((cell, i) => (cell === '' ? [] : pen.lines(cell, faces[i]!, TABLE_SIZE, widths[i]! - 2 * PAD.x)));
    const count = Math.max(1, ...lines.map((l) => l.length));
    // A row taller than what is left of the page goes on over the next: whole when it fits a page, else in slices.
    let fresh = false;
    for (let from = 0; from < count; ) {
      const fit = Math.floor((BOTTOM - pen.y - 2 * PAD.y) / LINE);
      if (!fresh && fit < Math.min(count - from, MAX_ROW_LINES)) {
        pen.newPage();
        if (!(await breathe(pen.doc))) return false;
        header();
        fresh = true;
        continue;
      }
      fresh = false;
      const to = Math.min(count, from + Math.max(1, fit));
      const h = (to - from) * LINE + 2 * PAD.y;
      if (r % 2 === 1) pen.band(LEFT, pen.y, PAGE_WIDTH, h, '#f3f5f7');
      lines.forEach((ls, i) => {
        const opts = { color: colors[i]!, ...(t.columns[i]!.align === 'right' ? { right: xs[i]! + widths[i]! - PAD.x } : {}) };
        for (let k = from; k < Math.min(to, ls.length); k++) pen.put(ls[k]!, xs[i]! + PAD.x, pen.y + PAD.y + (k - from) * LINE, faces[i]!, TABLE_SIZE, opts);
      });
      pen.y += h;
      from = to;
    }
  }
  pen.y += 8;
  return true;
}

function chart(pen: Pen, svgToPdf: Libraries['svgToPdf'], block: Extract<Block, { kind: 'chart' }>) {
  const w = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(block.svg)?.[1] ?? block.width);
  const h = Number(/<svg[^>]*\sheight="([\d.]+)"/.exec(block.svg)?.[1] ?? 200);
  const scale = Math.min(1, block.width / w);
  pen.need(h * scale + 6);
  pen.flush();
  svgToPdf(pen.doc, block.svg, LEFT, pen.y, {
    width: w * scale,
    height: h * scale,
    assumePt: true,
    fontCallback: (_family: string, bold: boolean) => (bold ? CHART_FONTS.bold : CHART_FONTS.regular),
  });
  pen.reset();
  pen.y += h * scale + 8;
}

async function draw(pen: Pen, d: DossierDocument, svgToPdf: Libraries['svgToPdf']) {
  pen.newPage();
  for (const b of d.blocks) {
    switch (b.kind) {
      case 'title':
        pen.put(b.title, LEFT, pen.y, 'bold', 20);
        pen.put(b.subtitle, LEFT, pen.y + 26, 'regular', 12, { color: '#333333' });
        pen.y += 50;
        break;
      case 'heading':
        if (b.newPage && pen.y > TOP) pen.newPage();
        else pen.need(60);
        pen.y += pen.y > TOP ? 8 : 0;
        pen.put(b.text, LEFT, pen.y, 'bold', 12.5, { color: '#1f3b57' });
        pen.y += 20;
        break;
      case 'subheading':
        pen.need(40);
        pen.put(b.text, LEFT, pen.y + 2, 'bold', 9.5);
        pen.y += 16;
        break;
      case 'fields':
        fields(pen, b.fields);
        break;
      case 'paragraph': {
        const lines = pen.lines(b.text, 'regular', 8.5, PAGE_WIDTH);
        const color = b.tone === 'alert' ? ALERT : b.tone === 'note' ? GREY : '#000000';
        pen.need(Math.min(lines.length * 11, BOTTOM - TOP));
        for (const line of lines) {
          pen.need(11);
          pen.put(line, LEFT, pen.y, 'regular', 8.5, { color });
          pen.y += 11;
        }
        pen.y += 6;
        break;
      }
      case 'table':
        if (!(await table(pen, b))) return;
        break;
      case 'chart':
        chart(pen, svgToPdf, b);
        break;
      case 'signatures':
        for (const role of b.roles) {
          pen.need(60);
          pen.y += 24;
          const cols = [[role, 300], ['Signature', 250], ['Date', 140]] as const;
          let x = LEFT;
          for (const [label, width] of cols) {
            pen.rule(x, x + width - 20, pen.y, '#000000');
            pen.put(label, x, pen.y + 3, 'regular', 7.5, { color: GREY });
            x += width;
          }
          pen.y += 18;
        }
        break;
    }
    if (!(await breathe(pen.doc))) return;
  }
  pen.finish();
}

/**
 * Starts drawing `d` and answers the PDF as a stream at once; drawing goes on as the reader reads. A failure
 * while drawing destroys the stream with the error (the response is cut short); a reader that goes away
 * (the stream destroyed) stops the drawing.
 */
export async function renderPdf(d: DossierDocument): Promise<Readable> {
  const { PDFDocument, svgToPdf } = await loadPdf();
  const doc = new PDFDocument({
    autoFirstPage: false,
    compress: true,
    displayTitle: true,
    lang: 'en',
    info: { Title: d.title, Author: 'exosome-records', Subject: `Lot ${d.lotNumber}`, CreationDate: new Date(d.generatedAt) },
  });
  for (const font of [...Object.values(UNICODE), ...Object.values(CHART_FONTS)]) doc.registerFont(font, path.join(FONT_DIR, `${font}.ttf`));
  const pen = new Pen(doc, d);
  draw(pen, d, svgToPdf).catch((err: unknown) => doc.destroy(err instanceof Error ? err : new Error(String(err))));
  return doc;
}
