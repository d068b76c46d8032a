/**
 * The label-noise table of `mixup report` (the mixup paper's Table 2 layout): finished runs with
 * `data.labelNoise` > 0, one row per noise level and method (the seeds of one config pooled), with
 * best and last test accuracy and how much of the corrupted labels the network memorised by the
 * last epoch (curves.csv `corrupt_noisy_acc`, `corrupt_true_acc`).
 */
import { selectBestEpoch } from './select.js';
import { createArrayCsvStringifier } from 'csv-writer';
import { configLabels, type Run } from './runs.js';
import { formatMeanStd, meanStd, percent, type MeanStd } from './stats.js';

/** One row: the finished seeds of one config. Accuracies in %. */
export interface NoiseRow {
  /** data.labelNoise, a fraction. */
  noise: number;
  epochs: number;
  /** `ERM`, `mixup α=8`, `CutMix α=1`, `feature mixup α=0.2`, with `, ε=0.1` for label smoothing. */
  method: string;
  /** The config label (name, and the keys in which runs of that name differ). */
  label: string;
  best: MeanStd;
  last: MeanStd;
  /** Corrupted samples predicted as their corrupted label after the last epoch; null when not logged. */
  memorised: MeanStd | null;
  /** Corrupted samples predicted as their true label after the last epoch; null when not logged. */
  trueOnCorrupted: MeanStd | null;
  seeds: number[];
  runs: string[];
}

/** Config keys the noise table shows (the noise level and the method), left out of row labels. */
const SHOWN = ['experiment', 'data.labelNoise', 'mixup.alpha', 'mixup.kind', 'train.labelSmoothing', 'mixup.mixRate', 'train.lr', 'train.batchSize', 'data.valLimit'];

const setting = (r: Run, key: string): string | undefined => r.settings[key];

/** data.labelNoise of a run (0 when its config predates the key). */
export function labelNoiseOf(r: Run): number {
  return Number(setting(r, 'data.labelNoise') ?? 0);
}

/** The method of a run, as the table names it (see {@link NoiseRow.method}). */
export function methodOf(r: Run): string {
  const eps = Number(setting(r, 'train.labelSmoothing') ?? 0);
  const smooth = eps > 0 ? `, ε=${eps}` : '';
  if (r.experiment === 'erm') return `ERM${smooth}`;
  const kind = setting(r, 'mixup.kind') === 'cutmix' ? 'CutMix' : r.experiment === 'mixup-feature' ? 'feature mixup' : 'mixup';
  return `${kind} α=${r.alpha}${smooth}`;
}

/** Sort rank of a method: ERM, mixup, CutMix, feature mixup, then by α and ε. */
function methodRank(r: Run): [number, number, number] {
  const kind = r.experiment === 'erm' ? 0 : setting(r, 'mixup.kind') === 'cutmix' ? 2 : r.experiment === 'mixup-feature' ? 3 : 1;
  return [kind, kind === 0 ? 0 : r.alpha, Number(setting(r, 'train.labelSmoothing') ?? 0)];
}

const lastOf = (r: Run) => r.curves[r.curves.length - 1]!;

/** Mean ± std of a column's last value, or null when some run did not log it. */
function lastColumn(runs: readonly Run[], pick: (r: Run) => number): MeanStd | null {
  const xs = runs.map(pick);
  return xs.every(Number.isFinite) ? meanStd(xs.map(percent)) : null;
}

/**
 * Groups the finished label-noise runs (`data.labelNoise` > 0) by config ({@link Run.groupKey}).
 * Call dropRepeatedSeeds first, as for the main table.
 * @returns rows sorted by noise level, epochs, method ({@link methodRank}), label; [] when no run qualifies.
 */
export function buildNoiseTable(runs: readonly Run[]): NoiseRow[] {
  const noisy = runs.filter((r) => r.complete && labelNoiseOf(r) > 0);
  const labels = new Map(configLabels(noisy, SHOWN).map((l, i) => [noisy[i]!, l]));
  const groups = new Map<string, Run[]>();
  for (const r of noisy) groups.set(r.groupKey, [...(groups.get(r.groupKey) ?? []), r]);
  const rows = [...groups.values()].map((g) => {
    const sorted = [...g].sort((a, b) => a.seed - b.seed);
    const r0 = sorted[0]!;
    return {
      rank: methodRank(r0),
      row: {
        noise: labelNoiseOf(r0),
        epochs: r0.epochs,
        method: methodOf(r0),
        label: labels.get(r0)!,
        best: meanStd(sorted.map((r) => percent(r.curves[selectBestEpoch(r.curves).index]!.valAcc))),
        last: meanStd(sorted.map((r) => percent(lastOf(r).valAcc))),
        memorised: lastColumn(sorted, (r) => lastOf(r).corruptNoisyAcc),
        trueOnCorrupted: lastColumn(sorted, (r) => lastOf(r).corruptTrueAcc),
        seeds: sorted.map((r) => r.seed),
        runs: sorted.map((r) => r.dir),
      } satisfies NoiseRow,
    };
  });
  const byRank = (a: [number, number, number], b: [number, number, number]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  rows.sort((a, b) => a.row.noise - b.row.noise || a.row.epochs - b.row.epochs || byRank(a.rank, b.rank) || a.row.label.localeCompare(b.row.label, 'en', { numeric: true }));
  return rows.map((x) => x.row);
}

const fmt = (m: MeanStd | null) => (m === null ? '-' : formatMeanStd(m));

/**
 * The noise table as Markdown, with a note on what the columns mean.
 * @param rows from {@link buildNoiseTable}, at least one.
 */
export function formatNoiseMarkdown(rows: readonly NoiseRow[]): string {
  const header = ['label noise', 'method', 'epochs', 'test acc % (best)', 'test acc % (last)', 'memorised %', 'true label % on corrupted', 'train.seed', 'config'];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((h) => (['method', 'config'].includes(h) ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const cells = [`${Number((100 * r.noise).toFixed(2))}%`, r.method, String(r.epochs), fmt(r.best), fmt(r.last), fmt(r.memorised), fmt(r.trueOnCorrupted), r.seeds.join(', '), r.label];
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  lines.push(
    '',
    'Label noise: data.labelNoise of the training labels replaced by labels drawn uniformly from all classes (the same samples for every method of a seed).',
    'best / last: top-1 % on the validation set at the best and at the last epoch (best: picked on the held-out images with data.holdout, else on the test set itself, optimistic). memorised: share of the corrupted training samples predicted as',
    'their corrupted label after the last epoch (inference mode); true label: predicted as their true label. train.seed: the seed of each run of the row;',
    'several seeds: mean ± sample std.',
  );
  return lines.join('\n');
}

const round = (x: number) => Number(x.toFixed(4));
const mean = (m: MeanStd | null) => (m === null ? null : round(m.mean));
const std = (m: MeanStd | null) => (m === null || m.std === null ? null : round(m.std));

/**
 * One plain object per noise row, the JSON and CSV outputs (as the main table's tableRecords):
 * `label_noise` a fraction, accuracies and shares in % rounded to 4 decimals with their sample std
 * (null for one seed, or where a run did not log the column), `n` the number of runs, `seeds` their
 * train.seed, `config` the row's label.
 */
export function noiseRecords(rows: readonly NoiseRow[]): Record<string, unknown>[] {
  return rows.map((r) => ({
    label_noise: r.noise,
    method: r.method,
    epochs: r.epochs,
    best_acc: mean(r.best),
    best_acc_std: std(r.best),
    last_acc: mean(r.last),
    last_acc_std: std(r.last),
    memorised: mean(r.memorised),
    memorised_std: std(r.memorised),
    true_on_corrupted: mean(r.trueOnCorrupted),
    true_on_corrupted_std: std(r.trueOnCorrupted),
    n: r.runs.length,
    seeds: r.seeds,
    config: r.label,
    runs: r.runs,
  }));
}

/** The noise table as JSON: an array of {@link noiseRecords}. */
export function formatNoiseJson(rows: readonly NoiseRow[]): string {
  return JSON.stringify(noiseRecords(rows), null, 2);
}

const NOISE_CSV_COLUMNS = [
  'label_noise',
  'method',
  'epochs',
  'best_acc',
  'best_acc_std',
  'last_acc',
  'last_acc_std',
  'memorised',
  'memorised_std',
  'true_on_corrupted',
  'true_on_corrupted_std',
  'n',
  'seeds',
  'config',
  'runs',
];

/** The noise table as CSV with a header line; empty cells for nulls, lists joined by spaces (as the main table's). */
export function formatNoiseCsv(rows: readonly NoiseRow[]): string {
  const stringifier = createArrayCsvStringifier({ header: NOISE_CSV_COLUMNS });
  const cell = (v: unknown) => (v === null ? '' : Array.isArray(v) ? v.join(' ') : (v as string | number));
  const records = noiseRecords(rows);
  return (stringifier.getHeaderString()! + stringifier.stringifyRecords(records.map((rec) => NOISE_CSV_COLUMNS.map((c) => cell(rec[c]))))).replace(/\n$/, '');
}
