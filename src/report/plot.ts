/**
 * `mixup report --plot FILE`: validation accuracy and training loss against epoch for several
 * runs in one figure (two panels side by side, and a third of the validation ECE when some run
 * logged it, one colour per experiment row, seeds of one row
 * in the same colour), like the curves the reference shows. The figure is a Vega-Lite spec,
 * rendered headless by Vega to SVG; a `.png` file is the SVG rasterised by resvg.
 */
import { writeFileSync } from 'node:fs';
import { compile, type TopLevelSpec } from 'vega-lite';
import { parse as parseVega, View } from 'vega';
import { Resvg } from '@resvg/resvg-js';
import { UserError } from '../errors.js';
import { checkOutputFile, errCode } from '../fsutil.js';
import { EXPERIMENTS } from '../config/schema.js';
import { configLabels, type Run } from './runs.js';
import { offRecipeKeys } from './recipe.js';

/** Font of the figure's text: DejaVu Sans where installed, else the system's sans-serif. */
const FONT = 'DejaVu Sans, sans-serif';

/** One point of the plotted data (a long table: one row per run and epoch). */
export interface PlotPoint {
  /** Legend entry: the config name, e.g. `mixup-200`. */
  series: string;
  /** Run directory; lines are drawn per run. */
  run: string;
  epoch: number;
  /** Validation top-1 accuracy in %. */
  valAcc: number;
  /** Training loss; null when not finite (so that a diverged epoch leaves a gap). */
  trainLoss: number | null;
  /** Validation ECE in %; null when not logged. */
  valEce: number | null;
}

/**
 * Legend label of each run: the name of its config (`erm-90`, ...); runs that share a name but
 * differ in config (not just in seed) get the keys in which they differ, as in the table
 * ({@link configLabels}), and the keys in which a run differs from the reference's recipe, so seeds
 * of one row share a colour.
 * @returns labels in the order of `runs`.
 */
export function seriesLabels(runs: readonly Run[]): string[] {
  return configLabels(runs, [], (r) => offRecipeKeys(r) ?? []);
}

/** The long table of points the figure draws. */
export function plotPoints(runs: readonly Run[]): PlotPoint[] {
  const labels = seriesLabels(runs);
  return runs.flatMap((r, i) =>
    r.curves.map((c) => ({
      series: labels[i]!,
      run: r.dir,
      epoch: c.epoch,
      valAcc: Number((c.valAcc * 100).toFixed(4)),
      trainLoss: Number.isFinite(c.trainLoss) ? c.trainLoss : null,
      valEce: Number.isFinite(c.valEce) ? Number((c.valEce * 100).toFixed(4)) : null,
    })),
  );
}

/**
 * The x scale and axis of the epoch: epochs are 1-based, so the axis runs from epoch 1 to the last
 * epoch plotted, with whole-epoch ticks only. A one-epoch figure has the single tick `1` in the
 * middle (domain [0.5, 1.5]) rather than an axis that runs on to an epoch 2 nobody trained.
 * @param maxEpoch the last epoch of any run plotted (≥ 1).
 */
export function epochAxis(maxEpoch: number): { scale: { domain: number[]; nice: false }; axis: { tickMinStep: number; format: string; values?: number[] } } {
  if (maxEpoch <= 1) return { scale: { domain: [0.5, 1.5], nice: false }, axis: { tickMinStep: 1, format: 'd', values: [1] } };
  return { scale: { domain: [1, maxEpoch], nice: false }, axis: { tickMinStep: 1, format: 'd' } };
}

/**
 * The y scale of a panel: fitted to the data (not from zero). When every plotted value is the same
 * (one epoch, or runs that agree), Vega's scale would have no extent and label its single tick with
 * six decimals (`23.200000`); the domain is then widened to ±5 % of the value (at least ±0.05 around
 * 0), so the ticks are round numbers around it.
 * @param ys the panel's values; nulls (gaps) are ignored.
 */
export function valueScale(ys: readonly (number | null)[]): { zero: false; domain?: number[] } {
  const finite = ys.filter((y): y is number => y !== null && Number.isFinite(y));
  if (finite.length === 0) return { zero: false };
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  if (hi > lo) return { zero: false };
  const pad = Math.max(Math.abs(lo) * 0.05, 0.05);
  return { zero: false, domain: [lo - pad, lo + pad] };
}

/**
 * The Vega-Lite spec of the figure: line charts of validation accuracy %, training loss and, when
 * some run logged it, validation ECE % against epoch; colour = legend label, one line per run.
 */
export function buildPlotSpec(runs: readonly Run[]): TopLevelSpec {
  const values = plotPoints(runs);
  // legend order: erm, mixup, mixup-feature, each by epochs (not the order of the directories)
  const names = seriesLabels(runs);
  const order = runs
    .map((r, i) => ({ label: names[i]!, e: EXPERIMENTS.indexOf(r.experiment), n: r.epochs }))
    .sort((a, b) => a.e - b.e || a.n - b.n || a.label.localeCompare(b.label, 'en', { numeric: true }));
  const labels = [...new Set(order.map((o) => o.label))];
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: 'run',
    sort: labels,
    scale: { scheme: labels.length <= 10 ? 'tableau10' : 'tableau20' },
  };
  // short runs (a few epochs) get a marker per epoch: a one-epoch run is a single point, no line
  const maxEpoch = Math.max(...values.map((v) => v.epoch));
  const points = maxEpoch <= 40 ? { point: { filled: true, size: 30 } } : {};
  const panel = (field: 'valAcc' | 'trainLoss' | 'valEce', title: string) => ({
    width: 420,
    height: 300,
    title,
    mark: { type: 'line' as const, strokeWidth: 1.5, ...points },
    encoding: {
      x: { field: 'epoch', type: 'quantitative' as const, title: 'epoch', ...epochAxis(maxEpoch) },
      y: { field, type: 'quantitative' as const, title, scale: valueScale(values.map((v) => v[field])) },
      color,
      detail: { field: 'run', type: 'nominal' as const },
    },
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 10,
    data: { values },
    hconcat: [
      panel('valAcc', 'validation accuracy (%)'),
      panel('trainLoss', 'training loss'),
      ...(values.some((v) => v.valEce !== null) ? [panel('valEce', 'validation ECE (%)')] : []),
    ],
    resolve: { scale: { color: 'shared' } },
    config: { font: FONT, legend: { labelLimit: 0 } }, // no truncation: labels name the keys off the recipe
  } as TopLevelSpec;
}

/**
 * Renders a Vega-Lite spec to an SVG document, headless (no browser, no canvas: Vega estimates
 * text widths).
 * @returns the SVG text, starting with `<svg`.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vg = compile(spec).spec;
  const view = new View(parseVega(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterises an SVG document to PNG with resvg, at `scale` × the SVG's size, with the system
 * fonts (DejaVu Sans for sans-serif when installed).
 * @returns the PNG file bytes.
 */
export function svgToPng(svg: string, scale = 2): Buffer {
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

/**
 * Checks, before anything is computed or printed, that `file` can receive a figure (see
 * {@link checkOutputFile}): a name ending in `.svg` or `.png` (any case), a writable directory, and
 * no existing file unless `opts.replace` (the command's `--force`).
 * @param flag the option that named the file, for messages (`--plot`, `--reliability`).
 * @returns the format, from the extension.
 * @throws UserError with one line `<flag> <file>: <what is wrong>`.
 */
export function checkPlotFile(file: string, flag = '--plot', opts: { replace?: boolean } = {}): 'svg' | 'png' {
  return checkOutputFile(flag, file, ['.svg', '.png'], opts.replace ?? false) === '.svg' ? 'svg' : 'png';
}

/**
 * Draws the curves of `runs` into `file`: SVG for `.svg`, PNG for `.png`.
 * @param force replace an existing file.
 * @throws UserError when {@link checkPlotFile} fails, for no runs, or a file that cannot be written.
 */
export async function writePlot(file: string, runs: readonly Run[], force = false): Promise<void> {
  const format = checkPlotFile(file, '--plot', { replace: force });
  if (runs.length === 0) throw new UserError(`--plot ${file}: no run with curves to draw`);
  saveFigure(file, format, await renderSvg(buildPlotSpec(runs)));
}

/**
 * Writes a rendered figure: the SVG text for `svg`, the SVG rasterised by {@link svgToPng} for `png`.
 * @param flag the option that named the file, for the message.
 * @throws UserError `<flag> <file>: cannot write (<code>)`.
 */
export function saveFigure(file: string, format: 'svg' | 'png', svg: string, flag = '--plot'): void {
  try {
    writeFileSync(file, format === 'svg' ? svg : svgToPng(svg));
  } catch (e) {
    throw new UserError(`${flag} ${file}: cannot write (${errCode(e)})`);
  }
}
