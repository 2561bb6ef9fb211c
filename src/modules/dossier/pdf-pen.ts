import { createRequire } from 'node:module';
import path from 'node:path';
import type { DossierDocument } from './document.js';

/**
 * The PDF dossier's pen (pdf.ts draws with it): text at a place in a face and size, measured and broken into lines,
 * rules and bands, the page header and footer, and "page x / y". The page count is a form XObject (ISO 32000-1
 * §8.10) drawn in every footer and written once at the end, when the count is known, so pages can go out as they
 * are finished.
 *
 * Text is set in the PDF standard fonts (Helvetica, Courier: nothing to embed, no shaping) when it fits their
 * WinAnsi encoding, else in DejaVu (embedded, subset by pdfkit), so any patient name or free text prints.
 */
export type Doc = PDFKit.PDFDocument;
export type Face = 'regular' | 'bold' | 'mono';

const require = createRequire(import.meta.url);
export const FONT_DIR = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
export const STANDARD: Record<Face, string> = { regular: 'Helvetica', bold: 'Helvetica-Bold', mono: 'Courier' };
export const UNICODE: Record<Face, string> = { regular: 'DejaVuSans', bold: 'DejaVuSans-Bold', mono: 'DejaVuSansMono' };
/** Charts' text (any label, a lot number among them) in DejaVu Sans Condensed: Unicode, and about as wide as the Helvetica Vega measured for. */
export const CHART_FONTS = { regular: 'DejaVuSansCondensed', bold: 'DejaVuSansCondensed-Bold' };
/** What the standard fonts' WinAnsi encoding can print: ASCII, Latin-1, and these (ISO 32000-1 Annex D.2). */
const WIN_ANSI_HIGH: Record<number, number> = {
  0x20ac: 0x80, 0x201a: 0x82, 0x201e: 0x84, 0x2026: 0x85, 0x2020: 0x86, 0x2021: 0x87, 0x2030: 0x89, 0x2039: 0x8b,
  0x2018: 0x91, 0x2019: 0x92, 0x201c: 0x93, 0x201d: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x2122: 0x99, 0x203a: 0x9b,
};
const WIN_ANSI = /^[\x20-\x7e\xa0-\xff\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]*$/;
/** The standard fonts' ascenders (1/1000 em, from their AFM files): where a line's baseline sits below its top. */
const ASCENT: Record<Face, number> = { regular: 718, bold: 718, mono: 629 };
/** The names the standard fonts have in each page's resources (our own font objects: see Pen). */
const RESOURCE: Record<Face, string> = { regular: 'SH', bold: 'SB', mono: 'SC' };

/** WinAnsi text as a PDF literal string (ISO 32000-1 §7.3.4.2): `\`, `(`, `)` escaped, bytes above 0x7E in octal. */
function literal(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x28 || c === 0x29 || c === 0x5c) out += `\\${text[i]}`;
    else if (c >= 0x20 && c < 0x7f) out += text[i];
    else out += `\\${(WIN_ANSI_HIGH[c] ?? c).toString(8).padStart(3, '0')}`;
  }
  return out;
}

const rgb = (hex: string) => `${[1, 3, 5].map((i) => (parseInt(hex.slice(i, i + 2), 16) / 255).toFixed(3)).join(' ')} rg`;
const num = (n: number) => (Math.round(n * 100) / 100).toString();

/** A4 landscape, in points. */
export const PAGE = { width: 841.89, height: 595.28 };
export const LEFT = 36;
export const TOP = 52;
export const BOTTOM = PAGE.height - 46;
export const GREY = '#555555';
export const ALERT = '#8c2d19';
export const TABLE_SIZE = 7;
export const LINE = 8.4;
export const PAD = { x: 2.5, y: 1.4 };


/** Advance widths (1/1000 em) of a standard font by character, measured once through pdfkit: no kerning, an upper bound. */
const advanceTables = new Map<string, Map<number, number>>();
/** Measures with `doc` the first time (which changes its current font: `measured` says so). */
function advances(doc: Doc, font: string, measured: () => void): Map<number, number> {
  let table = advanceTables.get(font);
  if (!table) {
    measured();
    table = new Map();
    doc.font(font).fontSize(1000);
    for (const ch of ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~') table.set(ch.charCodeAt(0), doc.widthOfString(ch));
    for (let c = 0xa0; c <= 0xff; c++) table.set(c, doc.widthOfString(String.fromCharCode(c)));
    for (const ch of '\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122') table.set(ch.charCodeAt(0), doc.widthOfString(ch));
    advanceTables.set(font, table);
  }
  return table;
}

export class Pen {
  y = TOP;
  page = 0;
  private font = '';
  private size = 0;
  private color = '';
  /** Text operators not yet handed to pdfkit: written a row at a time (`flush`), not a cell at a time. */
  private pending = '';
  private readonly total: PDFKit.PDFKitReference;

  /** The standard fonts as this document's own font objects, drawn with text operators written here (`put`). */
  private readonly standard: Record<Face, PDFKit.PDFKitReference>;

  constructor(
    readonly doc: Doc,
    private readonly d: DossierDocument,
  ) {
    const font = (name: string) => {
      const ref = doc.ref({ Type: 'Font', Subtype: 'Type1', BaseFont: name, Encoding: 'WinAnsiEncoding' });
      ref.end('');
      return ref;
    };
    this.standard = { regular: font(STANDARD.regular), bold: font(STANDARD.bold), mono: font(STANDARD.mono) };
    // The page count's form, drawn in every footer, written at the end.
    this.total = doc.ref({ Type: 'XObject', Subtype: 'Form', BBox: [0, -3, 80, 10], Resources: { Font: { [RESOURCE.regular]: this.standard.regular } } });
  }

  private use(font: string, size: number) {
    if (font !== this.font) this.doc.font(font);
    if (size !== this.size) this.doc.fontSize(size);
    this.font = font;
    this.size = size;
  }

  /** The font that can print `text` in this face. */
  private fontFor(text: string, face: Face) {
    return WIN_ANSI.test(text) ? STANDARD[face] : UNICODE[face];
  }

  width(text: string, face: Face, size: number): number {
    const font = this.fontFor(text, face);
    if (font !== UNICODE[face]) {
      const table = advances(this.doc, font, () => {
        this.font = '';
        this.size = 0;
      });
      let w = 0;
      for (let i = 0; i < text.length; i++) w += table.get(text.charCodeAt(i)) ?? 1000;
      return (w * size) / 1000;
    }
    this.use(font, size);
    return this.doc.widthOfString(text);
  }

  /**
   * `text` at (x, y: the line's top) on one line; `right` aligns its end there. Text the standard fonts can print
   * is written as text operators directly (one per cell of a 10,000-row table: pdfkit's own path, with kerning and
   * its graphics-state bookkeeping, takes four times as long); anything else goes through pdfkit and DejaVu.
   */
  put(text: string, x: number, y: number, face: Face, size: number, opts: { right?: number; color?: string } = {}) {
    if (text === '') return;
    const color = opts.color ?? '#000000';
    const setColor = color === this.color ? '' : `${rgb(color)} `;
    this.color = color;
    if (WIN_ANSI.test(text)) {
      const left = opts.right === undefined ? x : opts.right - this.width(text, face, size);
      // The page's coordinates run downwards (pdfkit's); the text matrix flips the glyphs back upright.
      this.pending += `BT ${setColor}/${RESOURCE[face]} ${size} Tf 1 0 0 -1 ${num(left)} ${num(y + (ASCENT[face] * size) / 1000)} Tm (${literal(text)}) Tj ET\n`;
      if (this.pending.length > 16_384) this.flush();
      return;
    }
    this.flush();
    if (setColor) this.doc.fillColor(color);
    const w = this.width(text, face, size);
    this.use(this.fontFor(text, face), size);
    this.doc.text(text, opts.right === undefined ? x : opts.right - w, y, { lineBreak: false, textWidth: w, wordCount: 1 } as PDFKit.Mixins.TextOptions);
  }

  /** `text` broken into lines no wider than `width` (at spaces, else anywhere). */
  lines(text: string, face: Face, size: number, width: number): string[] {
    const out: string[] = [];
    for (const paragraph of text.split('\n')) {
      if (this.width(paragraph, face, size) <= width) {
        out.push(paragraph);
        continue;
      }
      let line = '';
      for (const word of paragraph.split(' ')) {
        const next = line ? `${line} ${word}` : word;
        if (this.width(next, face, size) <= width) {
          line = next;
          continue;
        }
        if (line) out.push(line);
        line = '';
        let piece = '';
        for (const ch of word) {
          if (this.width(piece + ch, face, size) > width && piece) {
            out.push(piece);
            piece = '';
          }
          piece += ch;
        }
        line = piece;
      }
      out.push(line);
    }
    return out;
  }

  /** Hands the text written so far to the page; before anything else draws, so that the order stays. */
  flush() {
    if (this.pending === '') return;
    this.doc.addContent(this.pending.slice(0, -1));
    this.pending = '';
  }

  /** A horizontal rule at `y` from `x1` to `x2`. */
  rule(x1: number, x2: number, y: number, color: string) {
    this.flush();
    this.doc.moveTo(x1, y).lineTo(x2, y).lineWidth(0.6).strokeColor(color).stroke();
  }

  /** Forget the drawing state: something else (svg-to-pdfkit) drew. */
  reset() {
    this.flush();
    this.font = '';
    this.size = 0;
    this.color = '';
  }

  /** A filled rectangle (a table's header or band). */
  band(x: number, y: number, w: number, h: number, color: string) {
    this.flush();
    this.doc.rect(x, y, w, h).fill(color);
    this.color = color;
  }

  newPage() {
    this.flush();
    this.doc.addPage({ size: 'A4', layout: 'landscape', margins: { top: TOP, bottom: 20, left: LEFT, right: LEFT } });
    this.page += 1;
    this.reset();
    const fonts = this.doc.page.fonts as Record<string, PDFKit.PDFKitReference>;
    for (const face of ['regular', 'bold', 'mono'] as const) fonts[RESOURCE[face]] = this.standard[face];
    const right = PAGE.width - LEFT;
    this.put(`Lot traceability dossier · Lot ${this.d.lotNumber}`, LEFT, 22, 'bold', 9);
    this.put(`generated ${this.d.generatedAt}`, 0, 23, 'regular', 7.5, { right, color: GREY });
    this.rule(LEFT, right, 36, '#999999');
    this.rule(LEFT, right, PAGE.height - 38, '#999999');
    this.put(this.d.footer, LEFT, PAGE.height - 31, 'regular', 7, { color: GREY });
    // "page x / " ends 24 pt before the margin; the count (the form) fills those 24 pt.
    const label = `page ${this.page} / `;
    this.put(label, 0, PAGE.height - 31, 'regular', 7.5, { right: right - 24, color: '#000000' });
    (this.doc.page.xobjects as Record<string, PDFKit.PDFKitReference>).TP = this.total;
    const baseline = PAGE.height - 31 + 0.718 * 7.5;
    this.flush();
    this.doc.addContent(`q 0 g 1 0 0 -1 ${right - 24} ${baseline.toFixed(2)} cm /TP Do Q`);
    this.y = TOP;
  }

  /** Room for `height` more points on this page, else a new page. */
  need(height: number): boolean {
    if (this.y + height <= BOTTOM) return false;
    this.newPage();
    return true;
  }

  /** Writes the page count into the footers' form and ends the document. */
  finish() {
    this.flush();
    this.total.write(`BT /${RESOURCE.regular} 7.5 Tf 0 0 Td (${this.page}) Tj ET`);
    this.total.end('');
    this.doc.end();
  }
}
