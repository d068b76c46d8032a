/**
 * The results table of `mixup report`: runs grouped into rows in the reference's columns
 * (experiment, alpha, mix_rate, test acc, initial learning rate, batch size; plus epochs, which
 * tell the reference's 90/200/300-epoch rows apart), with final and best test accuracy as
 * mean ± sample std over seeds, and optionally the reference's published figure and the
 * difference. Output as Markdown, CSV or JSON.
 */
import { createArrayCsvStringifier } from 'csv-writer';
import { EXPERIMENTS, type Experiment } from '../config/schema.js';
import { basename } from 'node:path';
import { configLabels, type CurveRow, type Run, type RunStatus } from './runs.js';
import { formatMeanStd, meanStd, percent, type MeanStd } from './stats.js';
import { isPaperArch, publishedAccuracy } from './reference.js';
import { offRecipeKeys } from './recipe.js';
import { selectBestEpoch } from './select.js';

/** One row of the table: the finished seeds of one config, or one run still in progress. */
export interface TableRow {
  /** Config name of the runs (e.g. `mixup-200`). */
  config: string;
  /**
   * The config name, with the keys in which rows of that name differ when they do
   * (`quick (data.limit=1000)`; see {@link configLabels}), apart from keys that have a column.
   */
  label: string;
  experiment: Experiment;
  /** `model.arch` of the row's runs (undefined in runs older than the key). */
  arch?: string;
  /** Planned epochs. */
  epochs: number;
  /** α; null for ERM, which does not mix. */
  alpha: number | null;
  /** mix_rate; null for ERM. */
  mixRate: number | null;
  /** Initial learning rate. */
  lr: number;
  batchSize: number;
  /** Validation images evaluated (`data.valLimit`, the first N), null for all. */
  valLimit: number | null;
  /** Run directories of the row. */
  runs: string[];
  /** train.seed of each run, in the order of `runs`. */
  seeds: number[];
  /** % test accuracy after the last epoch (for a run in progress: the last finished one). */
  finalAcc: MeanStd;
  /** % test accuracy at each run's best epoch ({@link selectBestEpoch}: on the holdout when the runs have one). */
  bestAcc: MeanStd;
  /** On what the best epoch was picked: `holdout` (data.holdout) or `test` (optimistic). */
  bestOn: 'holdout' | 'test';
  /** % validation ECE after temperature scaling (T fitted on the holdout) at the best epoch; null without a holdout. */
  bestEceScaled: MeanStd | null;
  /** % validation ECE after the last epoch; null when a run of the row did not log it (older runs). */
  finalEce: MeanStd | null;
  /** % validation ECE at each run's best epoch (as bestAcc); null as finalEce. */
  bestEce: MeanStd | null;
  /** True when every run of the row finished all its epochs. */
  finished: boolean;
  /** Last finished epoch (the smallest over the row's runs). */
  lastEpoch: number;
  /** For a run in progress: status.json's status, or null when it wrote none. */
  status: RunStatus | null;
  /** The reference's % test accuracy for this experiment and number of epochs, when published. */
  reference: number | null;
  /** finalAcc.mean − reference, percentage points. */
  diff: number | null;
  /**
   * Keys in which the row's runs differ from the reference's recipe for their experiment and epochs
   * (see recipe.ts), e.g. `model.depth`, `data.limit`; empty when they follow it or there is no recipe.
   * Such a row's `reference` and `diff` stay null: it does not compare with the published figure.
   */
  offRecipe: string[];
}

/**
 * Config keys the table shows in columns of their own (`val images` appears whenever rows differ in
 * it), so row labels need not repeat them.
 */
const KEYS_WITH_COLUMNS = ['experiment', 'mixup.alpha', 'mixup.mixRate', 'train.lr', 'train.batchSize', 'data.valLimit'];

/** Options of {@link buildTable}. */
export interface TableOptions {
  /** Fill `reference` and `diff` from the reference's published figures. */
  compareReference?: boolean;
}

function rowOf(runs: Run[], label: string, finished: boolean, opts: TableOptions): TableRow {
  const r0 = runs[0]!;
  const finalAcc = meanStd(runs.map((r) => percent(r.curves[r.curves.length - 1]!.valAcc)));
  const bestEpoch = (r: Run) => r.curves[selectBestEpoch(r.curves).index]!;
  const bestAcc = meanStd(runs.map((r) => percent(bestEpoch(r).valAcc)));
  const bestOn = runs.every((r) => selectBestEpoch(r.curves).on === 'holdout') ? 'holdout' : 'test';
  const ece = (pick: (r: Run) => CurveRow, field: 'valEce' | 'valEceScaled' = 'valEce') => {
    const xs = runs.map((r) => percent(pick(r)[field]));
    return xs.every(Number.isFinite) ? meanStd(xs) : null;
  };
  const offRecipe = offRecipeKeys(r0) ?? [];
  const reference = opts.compareReference && offRecipe.length === 0 ? publishedAccuracy(r0.settings['model.arch'], r0.experiment, r0.epochs) : null;
  const mixes = r0.experiment !== 'erm';
  return {
    config: r0.name,
    label,
    experiment: r0.experiment,
    arch: r0.settings['model.arch'],
    epochs: r0.epochs,
    alpha: mixes ? r0.alpha : null,
    mixRate: mixes ? r0.mixRate : null,
    lr: r0.lr,
    batchSize: r0.batchSize,
    valLimit: r0.valLimit,
    runs: runs.map((r) => r.dir),
    seeds: runs.map((r) => r.seed),
    finalAcc,
    bestAcc,
    bestOn,
    bestEceScaled: bestOn === 'holdout' ? ece(bestEpoch, 'valEceScaled') : null,
    finalEce: ece((r) => r.curves[r.curves.length - 1]!),
    bestEce: ece(bestEpoch),
    finished,
    lastEpoch: Math.min(...runs.map((r) => r.curves[r.curves.length - 1]!.epoch)),
    status: finished ? 'finished' : r0.status,
    reference,
    diff: reference === null ? null : finalAcc.mean - reference,
    offRecipe,
  };
}

/** A finished run kept for the table, and the later runs of the same config and seed left out. */
export interface RepeatedSeed {
  kept: Run;
  /** In argument order. */
  dropped: Run[];
}

/**
 * Counts each seed of a config once: among finished runs with the same {@link Run.groupKey} and
 * `train.seed`, keeps the first in `runs` order and leaves out the others (a repeated run of one
 * seed is not an independent sample; counted twice it would shrink the std and pull the mean).
 * Unfinished runs are kept as they are: they are in no mean.
 * @returns `runs` without the repeats (order kept), and each kept run with the ones it replaced.
 */
export function dropRepeatedSeeds(runs: readonly Run[]): { runs: Run[]; repeats: RepeatedSeed[] } {
  const first = new Map<string, RepeatedSeed>();
  const kept: Run[] = [];
  for (const r of runs) {
    if (!r.complete) {
      kept.push(r);
      continue;
    }
    const key = `${r.groupKey}|seed=${r.seed}`;
    const seen = first.get(key);
    if (seen) seen.dropped.push(r);
    else {
      first.set(key, { kept: r, dropped: [] });
      kept.push(r);
    }
  }
  return { runs: kept, repeats: [...first.values()].filter((x) => x.dropped.length > 0) };
}

/**
 * Groups runs into table rows (call {@link dropRepeatedSeeds} first: every run given is counted). Finished runs with the same config apart from the seed (and the
 * keys in `IGNORED_FOR_GROUPING`) share a row, with mean ± sample std (n − 1) over them; each
 * run still in progress gets a row of its own, marked unfinished, that no mean includes.
 * Rows are sorted by experiment (erm, mixup, mixup-feature), then epochs, label, finished first.
 */
export function buildTable(runs: readonly Run[], opts: TableOptions = {}): TableRow[] {
  const labels = new Map(configLabels(runs, KEYS_WITH_COLUMNS, (r) => offRecipeKeys(r) ?? []).map((l, i) => [runs[i]!, l]));
  const groups = new Map<string, Run[]>();
  const rows: TableRow[] = [];
  for (const r of runs) {
    if (!r.complete) {
      rows.push(rowOf([r], labels.get(r)!, false, opts));
      continue;
    }
    const g = groups.get(r.groupKey);
    if (g) g.push(r);
    else groups.set(r.groupKey, [r]);
  }
  for (const g of groups.values()) rows.push(rowOf([...g].sort((a, b) => a.seed - b.seed), labels.get(g[0]!)!, true, opts));
  const order = (e: Experiment) => EXPERIMENTS.indexOf(e);
  return rows.sort(
    (a, b) =>
      order(a.experiment) - order(b.experiment) ||
      a.epochs - b.epochs ||
      a.label.localeCompare(b.label, 'en', { numeric: true }) ||
      Number(b.finished) - Number(a.finished) ||
      a.runs[0]!.localeCompare(b.runs[0]!),
  );
}

// ---------------------------------------------------------------- formatting

function fmtDiff(d: number): string {
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(2)}`;
}

function progressText(r: TableRow): string {
  return r.finished ? 'finished' : `${r.status ?? 'in progress'}, epoch ${r.lastEpoch}/${r.epochs}`;
}

/**
 * How the Markdown table names run directories: the base name (`runs/erm-90-s0/` → `erm-90-s0`),
 * or the directory as given where two directories of the table share a base name.
 */
function runNames(rows: readonly TableRow[]): Map<string, string> {
  const dirs = [...new Set(rows.flatMap((r) => r.runs))];
  const base = (d: string) => basename(d.replace(/\/+$/, '')) || d;
  const count = new Map<string, number>();
  for (const d of dirs) count.set(base(d), (count.get(base(d)) ?? 0) + 1);
  return new Map(dirs.map((d) => [d, count.get(base(d))! > 1 ? d.replace(/(.)\/+$/, '$1') : base(d)]));
}

/** A Markdown table cell: `|` escaped. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** `all`, or the number of validation images (`data.valLimit`) with thousands separators. */
function valImagesText(valLimit: number | null): string {
  return valLimit === null ? 'all' : valLimit.toLocaleString('en-US');
}

/** The note on what `test acc` is: how many validation images, when all rows used the same. */
function testAccNote(rows: readonly TableRow[], perRow: boolean): string {
  const which = perRow
    ? 'the CIFAR-10 test images; column val images: all, or the first N (data.valLimit)'
    : rows[0]!.valLimit === null
      ? 'all CIFAR-10 test images'
      : `the first ${valImagesText(rows[0]!.valLimit)} CIFAR-10 test images, data.valLimit`;
  const best = bestText(rows);
  return `test acc: top-1 % on the validation set (${which}); final = after the last epoch, best = ${best.note}.`;
}

/** How the "best" column is named and explained: picked on the holdout, on the test set, or a mix of both. */
function bestText(rows: readonly TableRow[]): { header: string; note: string } {
  const on = new Set(rows.map((r) => r.bestOn));
  if (on.size === 1 && on.has('holdout')) {
    return { header: 'test acc % (best on holdout)', note: 'at the epoch of the best accuracy on the held-out training images (data.holdout)' };
  }
  const optimistic = 'the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images)';
  if (on.size === 1) return { header: 'test acc % (best, picked on test: optimistic)', note: optimistic };
  return {
    header: 'test acc % (best: holdout or test)',
    note: `for rows with a holdout (data.holdout) at the epoch of the best holdout accuracy, for the others ${optimistic}; column best on`,
  };
}

/**
 * The table as Markdown: one header, one line per row, then notes that state how the figures
 * were computed, including how many validation images were evaluated (`data.valLimit`). A
 * `val images` column is added when rows used different numbers, ECE columns (final and at the
 * best-accuracy epoch) when some run logged calibration, a `status` column when some row is unfinished. The `config` column shows each row's {@link TableRow.label}; the last
 * column, `runs`, names the row's run directories (base names).
 */
export function formatMarkdown(rows: readonly TableRow[], opts: TableOptions = {}): string {
  const anyUnfinished = rows.some((r) => !r.finished);
  const valPerRow = new Set(rows.map((r) => r.valLimit)).size > 1;
  const header = [
    'config',
    'experiment',
    'epochs',
    'alpha',
    'mix_rate',
    'test acc % (final)',
    bestText(rows).header,
    'initial learning rate',
    'batch size',
  ];
  const mixedBest = new Set(rows.map((r) => r.bestOn)).size > 1;
  if (mixedBest) header.splice(header.indexOf('initial learning rate'), 0, 'best on');
  if (valPerRow) header.push('val images');
  const anyEce = hasEce(rows);
  if (anyEce) header.push('ECE % (final)', 'ECE % (at best acc)');
  const anyScaled = rows.some((r) => r.bestEceScaled !== null);
  if (anyScaled) header.push('ECE % after T (at best)');
  header.push('train.seed');
  if (opts.compareReference) header.push('reference %', 'final − reference');
  if (anyUnfinished) header.push('status');
  header.push('runs');
  const names = runNames(rows);
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((h) => (['config', 'experiment', 'status', 'runs'].includes(h) ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const cells = [
      cell(r.label),
      r.experiment,
      String(r.epochs),
      r.alpha === null ? '-' : String(r.alpha),
      r.mixRate === null ? '-' : String(r.mixRate),
      formatMeanStd(r.finalAcc),
      formatMeanStd(r.bestAcc),
      ...(mixedBest ? [r.bestOn] : []),
      String(r.lr),
      String(r.batchSize),
      ...(valPerRow ? [valImagesText(r.valLimit)] : []),
      ...(anyEce ? [r.finalEce, r.bestEce].map((m) => (m === null ? '-' : formatMeanStd(m))) : []),
      ...(anyScaled ? [r.bestEceScaled === null ? '-' : formatMeanStd(r.bestEceScaled)] : []),
      r.seeds.join(', '),
    ];
    if (opts.compareReference) cells.push(r.reference === null ? '-' : r.reference.toFixed(2), r.diff === null ? '-' : fmtDiff(r.diff));
    if (anyUnfinished) cells.push(progressText(r));
    cells.push(cell(r.runs.map((d) => names.get(d)!).join(', ')));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push(
    '',
    testAccNote(rows, valPerRow),
    'train.seed: the seed of each run of the row. Several seeds of one config: mean ± sample standard deviation, s = sqrt(Σ(x − mean)² / (n − 1)).',
  );
  if (anyEce) lines.push(ECE_NOTE);
  if (anyScaled) lines.push(SCALED_NOTE);
  if (opts.compareReference) {
    lines.push(
      'reference: the MXNet reference implementation (unsky/mixup, forked as hdjsjyl/mixup), one run each; final − reference in percentage points.',
      'Its 90- and 200-epoch figures are checkpoints of its 300-epoch runs: rows "<config> at epoch N" read them from a longer run\'s curves.',
      'Its ERM 200/300-epoch recipe is inferred (its only ERM log is a 90-epoch run), and its 300-epoch ERM figure (89.32) is no better than its 200-epoch one.',
    );
    if (rows.some((r) => isPaperArch(r.arch))) {
      lines.push(
        'Rows of the paper\'s networks (model.arch preact-resnet18, wrn-28-10) compare with the mixup paper instead: Table 1 of arXiv:1710.09412, ' +
          'CIFAR-10 test error 5.6 → 4.2 % (PreAct ResNet-18), 3.8 → 2.7 % (WRN-28-10), ERM → mixup α 1, 200 epochs, as accuracy; recipe configs/paper/.',
      );
    }
    const off = rows.filter((r) => r.offRecipe.length > 0);
    if (off.length > 0) {
      lines.push(
        `reference left empty for ${off.map((r) => `${r.label} (${r.offRecipe.join(', ')})`).join('; ')}: ` +
          "trained with other settings than the reference's recipe (configs/<experiment>-<epochs>.json, or -300 for a length it did not publish), so its figure does not compare.",
      );
    }
    const unpublished = rows.filter((r) => r.offRecipe.length === 0 && r.reference === null);
    if (unpublished.length > 0) {
      lines.push(`reference left empty for ${unpublished.map((r) => `${r.label} (${r.epochs} epochs)`).join('; ')}: the reference published no figure for ${unpublished.length === 1 ? 'it' : 'them'}.`);
    }
  }
  if (anyUnfinished) lines.push('Unfinished runs show the last finished epoch and are in no mean.');
  return lines.join('\n');
}

/** True when some row has a calibration figure: only then do the tables get ECE columns. */
function hasEce(rows: readonly TableRow[]): boolean {
  return rows.some((r) => r.finalEce !== null);
}

const ECE_NOTE =
  'ECE: expected calibration error of the validation predictions in % (15 equal-width bins of top-1 confidence, Guo et al. 2017); ' +
  'final = after the last epoch, at best acc = at the best epoch (as test acc best); - for runs that did not log it.';

const SCALED_NOTE =
  'ECE after T: the validation ECE after temperature scaling (softmax(z/T), one T per epoch fitted by NLL on the held-out images, Guo et al. 2017) at the best epoch; - for rows without a holdout.';

const round = (x: number, digits = 4) => Number(x.toFixed(digits));
const roundStd = (m: MeanStd | null) => (m === null || m.std === null ? null : round(m.std));

/**
 * One plain object per row, numbers rounded to 4 decimals: the JSON and CSV outputs
 * (`val_limit`: validation images evaluated, null / empty for all). When some row has calibration
 * figures, every row also gets `final_ece`, `final_ece_std`, `best_acc_ece`, `best_acc_ece_std`
 * (% ECE, null where a run did not log it).
 */
export function tableRecords(rows: readonly TableRow[]): Record<string, unknown>[] {
  const columns = recordColumns(rows);
  return rows.map((r) => Object.fromEntries(columns.map(([name, value]) => [name, value(r)])));
}

/** The columns of the JSON and CSV outputs, in order, each with how a row fills it. */
const RECORD_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['config', (r) => r.config],
  ['experiment', (r) => r.experiment],
  ['epochs', (r) => r.epochs],
  ['alpha', (r) => r.alpha],
  ['mix_rate', (r) => r.mixRate],
  ['final_acc', (r) => round(r.finalAcc.mean)],
  ['final_acc_std', (r) => (r.finalAcc.std === null ? null : round(r.finalAcc.std))],
  ['best_acc', (r) => round(r.bestAcc.mean)],
  ['best_acc_std', (r) => (r.bestAcc.std === null ? null : round(r.bestAcc.std))],
  ['lr', (r) => r.lr],
  ['batch_size', (r) => r.batchSize],
  ['val_limit', (r) => r.valLimit],
  ['n', (r) => r.finalAcc.n],
  ['seeds', (r) => r.seeds],
  ['status', (r) => (r.finished ? 'finished' : (r.status ?? 'in progress'))],
  ['last_epoch', (r) => r.lastEpoch],
  ['reference_acc', (r) => r.reference],
  ['diff', (r) => (r.diff === null ? null : round(r.diff))],
  ['runs', (r) => r.runs],
];

/** Columns added at the end when some row has calibration figures. */
const RECORD_ECE_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['final_ece', (r) => (r.finalEce === null ? null : round(r.finalEce.mean))],
  ['final_ece_std', (r) => roundStd(r.finalEce)],
  ['best_acc_ece', (r) => (r.bestEce === null ? null : round(r.bestEce.mean))],
  ['best_acc_ece_std', (r) => roundStd(r.bestEce)],
];

/** Columns added at the end when some row picked its best epoch on a holdout. */
const RECORD_HOLDOUT_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['best_on', (r) => r.bestOn],
  ['best_ece_scaled', (r) => (r.bestEceScaled === null ? null : round(r.bestEceScaled.mean))],
  ['best_ece_scaled_std', (r) => roundStd(r.bestEceScaled)],
];

/**
 * The record columns of a table: ECE columns only when some row has calibration figures, and
 * `best_on` (holdout or test) with the ECE after temperature scaling only when some row has a holdout.
 */
function recordColumns(rows: readonly TableRow[]): readonly (readonly [string, (r: TableRow) => unknown])[] {
  return [...RECORD_COLUMNS, ...(hasEce(rows) ? RECORD_ECE_COLUMNS : []), ...(rows.some((r) => r.bestOn === 'holdout') ? RECORD_HOLDOUT_COLUMNS : [])];
}

/** The table as JSON: an array of {@link tableRecords}. */
export function formatJson(rows: readonly TableRow[]): string {
  return JSON.stringify(tableRecords(rows), null, 2);
}

/** The table as CSV with a header line; empty cells for nulls, lists joined by spaces. */
export function formatCsv(rows: readonly TableRow[]): string {
  const records = tableRecords(rows);
  const columns = recordColumns(rows).map(([name]) => name);
  const stringifier = createArrayCsvStringifier({ header: columns });
  const cell = (v: unknown) => (v === null ? '' : Array.isArray(v) ? v.join(' ') : (v as string | number));
  return (
    stringifier.getHeaderString()! +
    stringifier.stringifyRecords(records.map((rec) => columns.map((c) => cell(rec[c]))))
  ).replace(/\n$/, '');
}
