/**
 * A dossier as a format-neutral document: blocks of text, fields, tables and charts that the PDF and HTML
 * renderers both draw, so the two say the same thing. Cells are plain text (renderers escape or encode them);
 * a table's rows are read while it is drawn, so 10,000 recipients are formatted (and fetched) one row at a time.
 */
export interface Column {
  header: string;
  /** Width in points on an A4 landscape page (770 pt between margins); HTML uses the same proportions. */
  width: number;
  align?: 'left' | 'right';
  /** Identifiers and hashes: fixed-width type. */
  mono?: boolean;
  /** A value here is a warning (an overdue report): set to stand out. */
  alert?: boolean;
}

export interface Table {
  kind: 'table';
  columns: Column[];
  /** How many rows there are (said before they are drawn; none: `empty` is said instead). */
  count: number;
  /** The rows' cells, read once while drawing (the recipients come from a database cursor). */
  rows(): Iterable<string[]> | AsyncIterable<string[]>;
  /** Said instead of an empty table. */
  empty: string;
}

export type Block =
  | { kind: 'title'; title: string; subtitle: string }
  /** A numbered section; `newPage` starts it on a fresh page. */
  | { kind: 'heading'; text: string; newPage?: boolean }
  | { kind: 'subheading'; text: string }
  /** Label and value pairs; `mono` values are identifiers or hashes. */
  | { kind: 'fields'; fields: Field[] }
  | { kind: 'paragraph'; text: string; tone?: 'note' | 'alert' }
  | Table
  /** SVG text from charts.ts, drawn at `width` × `height` points (its own aspect kept). */
  | { kind: 'chart'; svg: string; width: number; height: number; alt: string }
  | { kind: 'signatures'; roles: string[] };

export interface Field {
  label: string;
  value: string;
  mono?: boolean;
  /** A warning (a safety signal): set to stand out. */
  alert?: boolean;
}

export interface DossierDocument {
  /** What every page's header names. */
  lotNumber: string;
  /** Document title (PDF metadata, HTML <title>). */
  title: string;
  generatedAt: string;
  /** The footer's left text. */
  footer: string;
  blocks: Block[];
}

/** Usable width of an A4 landscape page between 36 pt margins. */
export const PAGE_WIDTH = 770;

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** An RFC 3339 instant as `2026-03-10 10:00` (UTC, minutes); empty for none. */
export function minute(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
}

/** An integer with thousands separators (`2,500,000,000`); formatting by hand is 20× faster than Intl for 10,000 rows. */
export function grouped(n: number): string {
  const s = String(Math.abs(Math.trunc(n)));
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (i > 0 && (s.length - i) % 3 === 0) out += ',';
    out += s[i];
  }
  return n < 0 ? `-${out}` : out;
}

/** A count with its noun, singular for one: `1 clinic`, `2,500 patients` (`plural` when not noun + s). */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${grouped(n)} ${n === 1 ? noun : plural}`;
}

/** A number with at most `digits` decimals, no trailing zeros. */
export function decimal(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '';
  return String(Math.round(n * 10 ** digits) / 10 ** digits);
}

export function percent(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined ? '' : `${(x * 100).toFixed(digits)} %`;
}
