/**
 * The results table of `mixup report`: runs grouped into rows in the reference's columns
 * (experiment, alpha, mix_rate, test acc, initial learning rate, batch size; plus epochs, which
 * tell the reference's 90/200/300-epoch rows apart), with final and best test accuracy as
 * mean ± sample std over seeds, and optionally the reference's published figure and the
 * difference. Output as Markdown (table-markdown.ts), CSV or JSON (table-records.ts).
 */
import { EXPERIMENTS, type Experiment } from '../config/schema.js';
import { configLabels, type CurveRow, type Run, type RunStatus } from './runs.js';
import { meanStd, percent, type MeanStd } from './stats.js';
import { publishedAccuracy } from './reference.js';
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

/** True when some row has a calibration figure: only then do the tables get ECE columns. */
export function hasEce(rows: readonly TableRow[]): boolean {
  return rows.some((r) => r.finalEce !== null);
}
