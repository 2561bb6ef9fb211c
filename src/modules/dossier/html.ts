import type { Block, DossierDocument, Field, Table } from './document.js';

/**
 * The dossier as one self-contained HTML page (no script, no external resource: styles and the charts' SVG are
 * inline) that prints like the PDF: A4 landscape, the lot number at the top of every page and "page x / y" at its
 * foot (CSS Paged Media margin boxes, `counter(page)` / `counter(pages)`), table headers repeated on each page.
 * Every value from a record is HTML-escaped; the lot number also goes into the page's CSS, escaped for CSS.
 * Produced as it is read (a stream), like the PDF.
 */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text for an HTML text node or a quoted attribute value (HTML Living Standard §13.1.2.6). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * Text for a double-quoted CSS string (CSS Syntax 3 §4.3.7): every character but letters, digits, space, `-` and
 * `.` as a hexadecimal escape, so nothing in it can end the string, the rule or the `<style>` element.
 */
export function escapeCssString(text: string): string {
  return text.replace(/[^A-Za-z0-9 .-]/gu, (c) => `\\${c.codePointAt(0)!.toString(16)} `);
}

function fields(list: Field[]): string {
  return `<dl class="fields">${list.map((f) => `<dt>${escapeHtml(f.label)}</dt><dd${f.mono ? ' class="mono"' : f.alert ? ' class="alert"' : ''}>${escapeHtml(f.value)}</dd>`).join('')}</dl>`;
}

/** A table, a chunk of rows at a time (the recipients come from a cursor). */
async function* table(t: Table): AsyncGenerator<string> {
  if (t.count === 0) {
    yield `<p class="empty">${escapeHtml(t.empty)}</p>`;
    return;
  }
  const total = t.columns.reduce((s, c) => s + c.width, 0);
  const cls = t.columns.map((c) => {
    const names = [c.align === 'right' ? 'num' : '', c.mono ? 'mono' : '', c.alert ? 'alert' : ''].filter(Boolean).join(' ');
    return names ? ` class="${names}"` : '';
  });
  yield [
    '<table><colgroup>',
    ...t.columns.map((c) => `<col style="width:${((100 * c.width) / total).toFixed(2)}%">`),
    '</colgroup><thead><tr>',
    ...t.columns.map((c, i) => `<th${cls[i]}>${escapeHtml(c.header)}</th>`),
    '</tr></thead><tbody>',
  ].join('');
  let chunk = '';
  for await (const cells of t.rows()) {
    chunk += '<tr>';
    for (let i = 0; i < cells.length; i++) chunk += `<td${cls[i]}>${escapeHtml(cells[i]!)}</td>`;
    chunk += '</tr>\n';
    if (chunk.length > 65_536) {
      yield chunk;
      chunk = '';
    }
  }
  yield `${chunk}</tbody></table>`;
}

/** A block other than a table, as HTML. */
function block(b: Exclude<Block, Table>): string {
  switch (b.kind) {
    case 'title':
      return `<header class="title"><h1>${escapeHtml(b.title)}</h1><p>${escapeHtml(b.subtitle)}</p></header>`;
    case 'heading':
      return `<h2${b.newPage ? ' class="new-page"' : ''}>${escapeHtml(b.text)}</h2>`;
    case 'subheading':
      return `<h3>${escapeHtml(b.text)}</h3>`;
    case 'fields':
      return fields(b.fields);
    case 'paragraph':
      return `<p${b.tone ? ` class="${b.tone}"` : ''}>${escapeHtml(b.text)}</p>`;
    case 'chart':
      // SVG made by Vega from the service's numbers and labels (charts.ts), not from request text.
      return `<figure class="chart" role="img" aria-label="${escapeHtml(b.alt)}">${b.svg}</figure>`;
    case 'signatures':
      return `<div class="signatures">${b.roles.map((r) => `<div class="signature"><span>${escapeHtml(r)}</span><span>Signature</span><span>Date</span></div>`).join('')}</div>`;
  }
}

const style = (d: DossierDocument) => `
@page { size: A4 landscape; margin: 16mm 12mm 14mm;
  @top-left { content: "Lot traceability dossier \\b7  Lot ${escapeCssString(d.lotNumber)}"; font: bold 9pt Helvetica, Arial, sans-serif; }
  @top-right { content: "generated ${escapeCssString(d.generatedAt)}"; font: 7.5pt Helvetica, Arial, sans-serif; color: #555; }
  @bottom-left { content: "${escapeCssString(d.footer)}"; font: 7pt Helvetica, Arial, sans-serif; color: #555; }
  @bottom-right { content: "page " counter(page) " / " counter(pages); font: 7.5pt Helvetica, Arial, sans-serif; }
}
html { font: 9pt/1.35 Helvetica, Arial, "DejaVu Sans", sans-serif; color: #000; }
body { margin: 0 auto; max-width: 277mm; padding: 4mm; }
.running { display: flex; justify-content: space-between; border-bottom: 0.6pt solid #999; padding-bottom: 2pt; margin-bottom: 8pt; font-size: 8pt; }
.running b { font-size: 9pt; }
h1 { font-size: 20pt; margin: 0; } .title p { font-size: 12pt; margin: 2pt 0 10pt; color: #333; }
h2 { font-size: 12.5pt; color: #1f3b57; margin: 14pt 0 6pt; break-after: avoid; }
h2.new-page { break-before: page; }
h3 { font-size: 9.5pt; margin: 10pt 0 4pt; break-after: avoid; }
dl.fields { display: grid; grid-template-columns: 150pt 1fr; gap: 2pt 0; margin: 0 0 6pt; }
dl.fields dt { font-weight: bold; } dl.fields dd { margin: 0; overflow-wrap: anywhere; }
.mono { font-family: Courier, "DejaVu Sans Mono", monospace; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 7pt; margin-bottom: 8pt; }
thead { display: table-header-group; } tr { break-inside: avoid; }
th { background: #dde3ea; text-align: left; padding: 1.4pt 2.5pt; vertical-align: bottom; }
td { padding: 1.4pt 2.5pt; vertical-align: top; overflow-wrap: anywhere; }
tbody tr:nth-child(even) td { background: #f3f5f7; }
.num { text-align: right; }
p.note, p.empty { color: #555; } p.alert { color: #8c2d19; } td.alert, dd.alert { color: #8c2d19; font-weight: bold; }
figure.chart { margin: 4pt 0 8pt; break-inside: avoid; } figure.chart svg { max-width: 100%; height: auto; }
.signatures { margin-top: 24pt; }
.signature { display: grid; grid-template-columns: 300pt 250pt 140pt; margin-top: 30pt; }
.signature span { border-top: 0.6pt solid #000; margin-right: 20pt; padding-top: 2pt; font-size: 7.5pt; color: #555; }
@media print { body { max-width: none; padding: 0; } .running { display: none; } }
`;

/** The dossier as one HTML page, produced a chunk at a time (a table's rows as they are read). */
export async function* renderHtml(d: DossierDocument): AsyncGenerator<string> {
  yield [
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(d.title)}</title><style>${style(d)}</style></head><body>`,
    `<div class="running"><b>Lot traceability dossier · Lot ${escapeHtml(d.lotNumber)}</b><span>generated ${escapeHtml(d.generatedAt)}</span></div>`,
  ].join('\n');
  for (const b of d.blocks) {
    if (b.kind === 'table') yield* table(b);
    else yield block(b);
  }
  yield `<footer class="running"><span>${escapeHtml(d.footer)}</span></footer>\n</body></html>\n`;
}
