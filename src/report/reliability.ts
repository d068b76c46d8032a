/**
 * `mixup test --reliability FILE`: the reliability diagram of a checkpoint (Guo et al. 2017, Fig. 1;
 * Niculescu-Mizil & Caruana 2005): top-1 accuracy against top-1 confidence per equal-width
 * confidence bin, with the gap to the bin's mean confidence and the diagonal of a perfectly
 * calibrated model, above a histogram of how many samples fall in each bin; ECE in the title.
 * A Vega-Lite spec rendered like `mixup report --plot` (src/report/plot.ts).
 */
import type { TopLevelSpec } from 'vega-lite';
import { UserError } from '../errors.js';
import { pct } from '../format.js';
import type { Calibration } from '../evaluate/calibration.js';
import { checkPlotFile, renderSvg, saveFigure } from './plot.js';

/** The flag that names the file, for messages. */
const FLAG = '--reliability';

/** Text around the diagram. */
export interface ReliabilityLabels {
  /** Second title line, e.g. the checkpoint and its epoch. */
  subtitle?: string;
}

/** One non-empty bin as the diagram draws it; confidences and accuracy in [0, 1]. */
export interface ReliabilityPoint {
  lower: number;
  upper: number;
  /** Middle of the bin (where its count is written). */
  mid: number;
  count: number;
  accuracy: number;
  meanConfidence: number;
}

/** The bins that hold samples (empty bins have no accuracy to draw). */
export function reliabilityPoints(c: Calibration): ReliabilityPoint[] {
  return c.bins
    .filter((b) => b.count > 0)
    .map((b) => ({ lower: b.lower, upper: b.upper, mid: (b.lower + b.upper) / 2, count: b.count, accuracy: b.accuracy, meanConfidence: b.meanConfidence }));
}

const pctSpaced = (x: number) => pct(x, 2, ' ');

/** The title, with the ECE: `Reliability diagram, ECE 3.21 %`. */
export function reliabilityTitle(c: Calibration): string {
  return `Reliability diagram, ECE ${pctSpaced(c.ece)}`;
}

/** The subtitle lines: `top-1 43.36 %, mean confidence 45.10 %, MCE 9.87 %` and `10,000 images, 15 equal-width bins`. */
export function reliabilitySummary(c: Calibration): string[] {
  return [
    `top-1 ${pctSpaced(c.accuracy)}, mean confidence ${pctSpaced(c.meanConfidence)}, MCE ${pctSpaced(c.mce)}`,
    `${c.samples.toLocaleString('en-US')} images, ${c.bins.length} equal-width bins of top-1 confidence`,
  ];
}

/** Legend entries of the diagram. */
const ACCURACY = 'accuracy';
const CONFIDENCE = 'mean confidence';
const GAP = 'gap (overconfidence)';
const DIAGONAL = 'perfect calibration';

/**
 * The Vega-Lite spec: on top, per bin, a bar of its accuracy, a dark red line at the bin's mean
 * confidence, a light red band between the two where the bin is overconfident (the gap ECE weighs;
 * an underconfident bin's line lies inside its bar) and the dashed diagonal; below, samples per bin.
 */
export function buildReliabilitySpec(c: Calibration, labels: ReliabilityLabels = {}): TopLevelSpec {
  const values = reliabilityPoints(c);
  const x = { field: 'lower', type: 'quantitative' as const, title: null, scale: { domain: [0, 1], nice: false }, axis: { tickCount: 10, labels: false } };
  const color = {
    type: 'nominal' as const,
    title: null,
    scale: { domain: [ACCURACY, CONFIDENCE, GAP, DIAGONAL], range: ['#4c78a8', '#b2182b', '#f5c4c4', '#666666'] },
    legend: { orient: 'top-left' as const, fillColor: 'white', padding: 6, strokeColor: '#ccc', labelLimit: 200, symbolOpacity: 1 },
  };
  const W = 420;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: 10,
    title: {
      text: reliabilityTitle(c),
      subtitle: [...reliabilitySummary(c), ...(labels.subtitle ? [labels.subtitle] : [])],
      anchor: 'start',
      fontSize: 14,
      subtitleFontSize: 11,
      subtitleColor: '#444',
    },
    data: { values },
    vconcat: [
      {
        width: W,
        height: W,
        layer: [
          {
            // the gap, drawn first: above an overconfident bin's bar, hidden inside an underconfident one's
            mark: { type: 'rect' },
            encoding: {
              x,
              x2: { field: 'upper' },
              y: { field: 'meanConfidence', type: 'quantitative', scale: { domain: [0, 1], nice: false }, title: 'accuracy (top-1 within the bin)' },
              y2: { field: 'accuracy' },
              color: { ...color, datum: GAP },
            },
          },
          {
            mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
            encoding: {
              x,
              x2: { field: 'upper' },
              y: { field: 'accuracy', type: 'quantitative' },
              y2: { datum: 0 },
              color: { ...color, datum: ACCURACY },
              tooltip: [{ field: 'count' }, { field: 'meanConfidence', format: '.3f' }, { field: 'accuracy', format: '.3f' }],
            },
          },
          {
            mark: { type: 'rule', strokeWidth: 2.5 },
            encoding: {
              x,
              x2: { field: 'upper' },
              y: { field: 'meanConfidence', type: 'quantitative' },
              color: { ...color, datum: CONFIDENCE },
            },
          },
          {
            data: { values: [{ p: 0 }, { p: 1 }] },
            mark: { type: 'line', strokeDash: [5, 4], strokeWidth: 1.5 },
            encoding: {
              x: { field: 'p', type: 'quantitative', scale: { domain: [0, 1] } },
              y: { field: 'p', type: 'quantitative' },
              color: { ...color, datum: DIAGONAL },
            },
          },
        ],
      },
      {
        width: W,
        height: 110,
        encoding: {
          x: { ...x, title: 'top-1 confidence', axis: { tickCount: 10, format: '.1f' } },
          x2: { field: 'upper' },
          y: { field: 'count', type: 'quantitative', title: 'samples' },
        },
        layer: [
          { mark: { type: 'rect', color: '#9ab6d3', stroke: 'white', strokeWidth: 1 }, encoding: { y2: { datum: 0 }, tooltip: [{ field: 'count' }] } },
          // the count over each bar: bins of a few samples are invisible bars otherwise
          { mark: { type: 'text', baseline: 'bottom', dy: -2, fontSize: 9, color: '#333' }, encoding: { x: { field: 'mid', type: 'quantitative' }, x2: null, text: { field: 'count', type: 'quantitative', format: ',d' } } },
        ],
      },
    ],
    spacing: 6,
    config: { font: 'DejaVu Sans, sans-serif', view: { stroke: '#ddd' } },
  } as TopLevelSpec;
}

/**
 * Checks, before anything is computed, that `file` can receive the diagram: `.svg` or `.png`, in a
 * writable directory, and not an existing file unless `force`.
 * @returns the format.
 * @throws UserError `--reliability <file>: <what is wrong>`.
 */
export function checkReliabilityFile(file: string, force: boolean): 'svg' | 'png' {
  return checkPlotFile(file, FLAG, { replace: force });
}

/**
 * Draws the reliability diagram of `c` into `file` (SVG or PNG by its extension).
 * @throws UserError when the file is refused ({@link checkReliabilityFile}), no sample was
 *   evaluated, or it cannot be written.
 */
export async function writeReliability(file: string, c: Calibration, force: boolean, labels: ReliabilityLabels = {}): Promise<void> {
  const format = checkReliabilityFile(file, force);
  if (reliabilityPoints(c).length === 0) throw new UserError(`${FLAG} ${file}: no evaluated sample with a finite confidence to draw`);
  saveFigure(file, format, await renderSvg(buildReliabilitySpec(c, labels)), FLAG);
}
