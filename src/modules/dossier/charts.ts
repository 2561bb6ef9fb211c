import type { TopLevelSpec } from 'vega-lite';

/**
 * Charts as SVG text, rendered on the server by Vega-Lite (compiled to Vega, drawn by Vega's headless SVG
 * renderer): the same SVG goes into the PDF (svg-to-pdfkit) and inline into the HTML. Vega is loaded on first
 * use, so a service that never prints a dossier does not carry it. Values are numbers and the service's own codes
 * and labels; Vega escapes the text it writes into the SVG.
 */
type Engines = { vega: typeof import('vega'); vl: typeof import('vega-lite') };
let engines: Promise<Engines> | undefined;
/** Loads Vega and Vega-Lite (once); a dossier asks early, so that loading overlaps its database reads. */
export const loadCharts = () => (engines ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => ({ vega, vl })));

/** The font the charts name; the PDF maps it to its own (pdf.ts), the browser to its sans-serif. */
export const CHART_FONT = 'Helvetica';

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vl } = await loadCharts();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const config = {
  font: CHART_FONT,
  // ASCII hyphen-minus for negative numbers (d3-format's default is U+2212, which the PDF's standard fonts lack).
  locale: { number: { decimal: '.', thousands: ',', grouping: [3], currency: ['', ''], minus: '-' } },
  view: { stroke: '#bbbbbb' },
  axis: { labelFontSize: 9, titleFontSize: 9, titleFontWeight: 'normal' as const, gridColor: '#e6e6e6' },
  header: { labelFontSize: 10, labelFontWeight: 'bold' as const, title: null },
  legend: { labelFontSize: 9, titleFontSize: 9 },
};

/** A point of the change chart: one instrument at one timepoint (change in points; interval null below n = 2). */
export interface ChangePoint {
  instrument: string;
  /** The panel's title: the instrument's name and a second line (which way is better). */
  title: [string, string];
  timepoint: string;
  n: number;
  mean: number;
  lower: number | null;
  upper: number | null;
}

/**
 * Mean change from baseline by timepoint, one panel per instrument (its own y scale), each mean with its 95 %
 * t-interval as an error bar and n under it; the dashed line is no change. `timepoints` fixes the x order.
 */
export function changeChart(points: ChangePoint[], timepoints: readonly string[], width: number): Promise<string> {
  const instruments = [...new Map(points.map((p) => [p.instrument, p.title])).entries()];
  // Three panels share the width; one or two keep a third's width each rather than stretching a few points across it.
  const panel = Math.floor((width - 60 * 3) / 3) - 10;
  const x = { field: 'timepoint', type: 'ordinal' as const, sort: [...timepoints], title: null, axis: { labelAngle: 0 } };
  // Short: a rotated axis title longer than the panel is tall pushes the panel's title far above it.
  const y = { type: 'quantitative' as const, title: 'Change (points)' };
  // One chart per instrument (concatenated, not faceted: each keeps its own axes and y scale).
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: points.map(({ title: _title, ...p }) => ({ ...p, label: `n = ${p.n}` })) },
    columns: 3,
    concat: instruments.map(([instrument, [title, subtitle]]) => ({
      title: { text: title, subtitle, fontSize: 10, subtitleFontSize: 8.5, subtitleColor: '#555555', anchor: 'start' as const },
      width: panel,
      height: 120,
      transform: [{ filter: { field: 'instrument', equal: instrument } }],
      layer: [
        { mark: { type: 'rule', strokeDash: [4, 3], color: '#888888' }, encoding: { y: { datum: 0, type: 'quantitative' as const } } },
        { mark: { type: 'errorbar', ticks: { size: 10 }, color: '#1f5f99' }, encoding: { x, y: { ...y, field: 'lower' }, y2: { field: 'upper' } } },
        { mark: { type: 'line', point: { filled: true, size: 40 }, color: '#1f5f99' }, encoding: { x, y: { ...y, field: 'mean' } } },
        { mark: { type: 'text', dx: 7, fontSize: 8, color: '#555555', align: 'left', baseline: 'middle' }, encoding: { x, y: { ...y, field: 'mean' }, text: { field: 'label' } } },
      ],
    })),
    config,
  } as TopLevelSpec);
}

/** A rate with its interval (fractions), as a row of the rate chart. */
export interface RateBar {
  group: string;
  value: number | null;
  lower: number | null;
  upper: number | null;
}

/** Adverse-event rates per procedure as points with their 95 % intervals, one row per group (the lot, the pool). */
export function rateChart(rows: RateBar[], width: number): Promise<string> {
  const y = { field: 'group', type: 'nominal' as const, title: null, sort: rows.map((r) => r.group), axis: { labelLimit: 260 } };
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: rows.map((r) => ({ ...r, label: r.value === null ? 'no procedures' : `${(r.value * 100).toFixed(1)} %` })) },
    width: width - 300,
    height: 26 * rows.length,
    layer: [
      {
        mark: { type: 'errorbar', ticks: { size: 10 }, color: '#8c2d19' },
        encoding: { y, x: { field: 'lower', type: 'quantitative', title: 'Share of procedures with an adverse event (95 % exact interval)', axis: { format: '.1~%' } }, x2: { field: 'upper' } },
      },
      { mark: { type: 'point', filled: true, size: 50, color: '#8c2d19' }, encoding: { y, x: { field: 'value', type: 'quantitative' } } },
      { mark: { type: 'text', dy: -9, fontSize: 9 }, encoding: { y, x: { field: 'value', type: 'quantitative' }, text: { field: 'label' } } },
    ],
    config,
  } as TopLevelSpec);
}
