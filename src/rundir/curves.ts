/**
 * `<out>/curves.csv`: one row per finished epoch, written with csv-writer and flushed every epoch,
 * so a spreadsheet or a plotting script can read a run while it trains. The one module that writes
 * and reads it: {@link appendCurveRow} and {@link truncateCurves} for `mixup train`, {@link readCurves}
 * (raw columns) for resume checks and tests, {@link parseCurves} (checked, camelCase) for `mixup report`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createObjectCsvWriter } from 'csv-writer';
import writeFileAtomic from 'write-file-atomic';
import { parse as parseCsv } from 'csv-parse/sync';
import { UserError } from '../errors.js';

/** One epoch of training. Accuracies are fractions in [0, 1]; losses are means per sample. */
export interface CurveRow {
  /** 1-based epoch number. */
  epoch: number;
  /** Learning rate used during the epoch. */
  lr: number;
  train_loss: number;
  /**
   * Top-1 on the training batches as trained (augmented, BatchNorm in training mode). Under mixup a
   * mixed sample counts as correct when the prediction is its majority label, the one with the
   * larger weight λ; so it is not the accuracy on the training images (see train_clean_acc).
   */
  train_acc: number;
  val_loss: number;
  /** Top-1 accuracy on the validation set (BatchNorm in inference mode, center crop). */
  val_acc: number;
  /** Wall-clock seconds of the epoch's training part (evaluation excluded). */
  epoch_seconds: number;
  /** Training samples per second in the epoch. */
  samples_per_sec: number;
  /**
   * data.labelNoise > 0: top-1 on the corrupted training samples against their corrupted labels
   * (memorisation) and against their true labels, inference mode (src/evaluate/memorise.ts); empty otherwise.
   */
  corrupt_noisy_acc?: number;
  corrupt_true_acc?: number;
  /**
   * Calibration of the validation predictions (src/evaluate/calibration.ts), fractions: ECE and MCE over
   * 15 equal-width bins of top-1 confidence, the mean top-1 confidence, and the Brier score
   * (mean over samples of Σₖ (pₖ − yₖ)², in [0, 2]). Always written; absent in rows of older runs.
   */
  val_ece?: number;
  val_mce?: number;
  val_confidence?: number;
  val_brier?: number;
  /**
   * data.holdout > 0: loss, top-1 and ECE (15 bins) on the held-out training images, evaluated like
   * the validation set; the temperature T fitted on them (NLL, src/evaluate/temperature.ts), and the
   * validation ECE of softmax(z / T). Empty otherwise.
   */
  holdout_loss?: number;
  holdout_acc?: number;
  holdout_ece?: number;
  temperature?: number;
  val_ece_scaled?: number;
  /** train.cleanTrainEval > 0: top-1 on that many training images, unmixed, center crop, inference mode. */
  train_clean_acc?: number;
}

/** Column order of curves.csv. */
export const CURVE_COLUMNS: (keyof CurveRow)[] = [
  'epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'epoch_seconds', 'samples_per_sec',
  'corrupt_noisy_acc', 'corrupt_true_acc',
  'val_ece', 'val_mce', 'val_confidence', 'val_brier',
  'holdout_loss', 'holdout_acc', 'holdout_ece', 'temperature', 'val_ece_scaled', 'train_clean_acc',
];

const DIGITS: Record<keyof CurveRow, number> = {
  epoch: 0, lr: 10, train_loss: 6, train_acc: 6, val_loss: 6, val_acc: 6, epoch_seconds: 3, samples_per_sec: 2,
  corrupt_noisy_acc: 6, corrupt_true_acc: 6,
  val_ece: 6, val_mce: 6, val_confidence: 6, val_brier: 6,
  holdout_loss: 6, holdout_acc: 6, holdout_ece: 6, temperature: 6, val_ece_scaled: 6, train_clean_acc: 6,
};

/** Values rounded to their digits, as curves.csv holds them; an absent optional column is an empty cell. */
export function rounded(row: CurveRow): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const k of CURVE_COLUMNS) out[k] = row[k] === undefined ? '' : Number(row[k].toFixed(DIGITS[k]));
  return out;
}

/**
 * Brings the file of a run started before columns were added (a resumed old run) to the current
 * header: when its header is a shorter prefix of {@link CURVE_COLUMNS}, the header is rewritten and
 * every row gets empty cells for the new columns (atomically). Any other header is left alone.
 */
function widenCurves(file: string): void {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const cols = lines[0]?.split(',') ?? [];
  if (cols.length === 0 || cols.length >= CURVE_COLUMNS.length || cols.some((c, i) => c !== CURVE_COLUMNS[i])) return;
  const pad = ','.repeat(CURVE_COLUMNS.length - cols.length);
  writeFileAtomic.sync(file, [CURVE_COLUMNS.join(','), ...lines.slice(1).map((l) => l + pad)].join('\n') + '\n');
}

/**
 * Appends one row (writing the header first when the file is new, widening an older file's header
 * first, see {@link widenCurves}).
 * @param file path of curves.csv.
 */
export async function appendCurveRow(file: string, row: CurveRow): Promise<void> {
  if (existsSync(file)) widenCurves(file);
  const writer = createObjectCsvWriter({
    path: file,
    header: CURVE_COLUMNS.map((id) => ({ id, title: id })),
    append: existsSync(file),
  });
  await writer.writeRecords([rounded(row)]);
}

/**
 * Drops rows of epochs after `lastEpoch` (rows written after the checkpoint a run resumes from), and
 * duplicates, keeping the first row of each epoch. Rewrites the file atomically; no-op when absent.
 * @returns number of rows kept.
 */
export function truncateCurves(file: string, lastEpoch: number): number {
  if (!existsSync(file)) return 0;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const [header, ...rows] = lines;
  const seen = new Set<number>();
  const kept = rows.filter((l) => {
    const e = Number(l.split(',')[0]);
    if (!Number.isInteger(e) || e > lastEpoch || seen.has(e)) return false;
    seen.add(e);
    return true;
  });
  writeFileAtomic.sync(file, [header, ...kept].join('\n') + '\n');
  return kept.length;
}

/**
 * Reads curves.csv into rows (numbers), for `mixup test` / resume checks.
 * @returns [] when the file does not exist.
 */
export function readCurves(file: string): CurveRow[] {
  if (!existsSync(file)) return [];
  const [header, ...rows] = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const cols = header!.split(',');
  return rows.map((l) => {
    const v = l.split(',');
    const r: Record<string, number> = {};
    cols.forEach((c, i) => {
      if (v[i] !== '') r[c] = Number(v[i]); // an empty cell: a column this epoch has no value for
    });
    return r as unknown as CurveRow;
  });
}

/**
 * One row of `curves.csv` read and checked for `mixup report` ({@link parseCurves}): the state after
 * a finished epoch, in camelCase, NaN for an absent value.
 */
export interface EpochCurve {
  /** 1-based epoch number. */
  epoch: number;
  /** Learning rate used in this epoch (NaN when the column is absent). */
  lr: number;
  /** Mean training loss over the epoch (the mixed loss for mixup runs). */
  trainLoss: number;
  /** Training top-1 accuracy, fraction in [0, 1] (NaN when absent). */
  trainAcc: number;
  /** Validation loss (NaN when absent). */
  valLoss: number;
  /** Validation (CIFAR-10 test set) top-1 accuracy, fraction in [0, 1]. */
  valAcc: number;
  /**
   * Label-noise runs: share of the corrupted training samples predicted as their corrupted label
   * (`corrupt_noisy_acc`) and as their true label (`corrupt_true_acc`); NaN when absent or empty.
   */
  corruptNoisyAcc: number;
  corruptTrueAcc: number;
  /** Validation expected calibration error, fraction (NaN when absent or empty: runs from before it was logged). */
  valEce: number;
  /** Top-1 on the held-out training images (`data.holdout`), fraction; NaN when absent or empty. */
  holdoutAcc: number;
  /** Validation ECE after temperature scaling with the T fitted on the holdout, fraction; NaN when absent or empty. */
  valEceScaled: number;
  /** Unmixed top-1 on `train.cleanTrainEval` training images, fraction; NaN when absent or empty. */
  trainCleanAcc: number;
}

const REQUIRED_COLUMNS = ['epoch', 'train_loss', 'val_acc'] as const;

/**
 * Parses the text of a `curves.csv` (header `epoch,lr,train_loss,train_acc,val_loss,val_acc,...`;
 * `lr`, `train_acc`, `val_loss` and `val_ece` may be absent, other columns are ignored).
 * @param file the file name, for messages.
 * @returns the rows, in file order.
 * @throws UserError with one line naming `file`, the line and what was expected, when a required
 *   column is missing, a value is not a number, an accuracy is outside [0, 1], or the epochs
 *   are not 1-based and strictly increasing.
 */
export function parseCurves(text: string, file: string): EpochCurve[] {
  let records: string[][];
  try {
    records = parseCsv(text, { skip_empty_lines: true, trim: true, relax_column_count: false }) as string[][];
  } catch (e) {
    throw new UserError(`${file}: not valid CSV (${(e as Error).message.split('\n')[0]})`);
  }
  if (records.length === 0) throw new UserError(`${file}: empty, expected a header line starting with "epoch,"`);
  const header = records[0]!;
  for (const c of REQUIRED_COLUMNS) {
    if (!header.includes(c)) throw new UserError(`${file}: line 1: no column "${c}" in header "${header.join(',')}"`);
  }
  const col = (name: string) => header.indexOf(name);
  const rows: EpochCurve[] = [];
  for (let i = 1; i < records.length; i++) {
    const rec = records[i]!;
    const line = i + 1;
    const num = (name: string, opts: { fraction?: boolean; finite?: boolean } = {}): number => {
      const idx = col(name);
      if (idx < 0) return NaN;
      const raw = rec[idx] ?? '';
      const v = raw === '' ? NaN : Number(raw);
      if (raw === '' || (Number.isNaN(v) && raw !== 'NaN')) {
        throw new UserError(`${file}: line ${line}: ${name} is "${raw}", expected a number`);
      }
      if ((opts.finite || opts.fraction) && !Number.isFinite(v)) {
        throw new UserError(`${file}: line ${line}: ${name} is ${raw}, expected a finite number`);
      }
      if (opts.fraction && (v < 0 || v > 1)) {
        throw new UserError(`${file}: line ${line}: ${name} is ${raw}, expected a fraction in [0, 1]`);
      }
      return v;
    };
    const epoch = num('epoch', { finite: true });
    const prev = rows.length > 0 ? rows[rows.length - 1]!.epoch : 0;
    if (!Number.isInteger(epoch) || epoch <= prev) {
      throw new UserError(`${file}: line ${line}: epoch is ${epoch}, expected an integer above ${prev} (1-based, increasing)`);
    }
    const trainAccIdx = col('train_acc');
    const optionalFraction = (name: string) => ((rec[col(name)] ?? '') === '' ? NaN : num(name, { fraction: true }));
    rows.push({
      epoch,
      lr: num('lr'),
      trainLoss: num('train_loss'),
      trainAcc: trainAccIdx < 0 ? NaN : num('train_acc', { fraction: true }),
      valLoss: num('val_loss'),
      valAcc: num('val_acc', { fraction: true }),
      corruptNoisyAcc: optionalFraction('corrupt_noisy_acc'),
      corruptTrueAcc: optionalFraction('corrupt_true_acc'),
      valEce: (rec[col('val_ece')] ?? '') === '' ? NaN : num('val_ece'), // NaN also for a diverged epoch
      holdoutAcc: optionalFraction('holdout_acc'),
      valEceScaled: (rec[col('val_ece_scaled')] ?? '') === '' ? NaN : num('val_ece_scaled'),
      trainCleanAcc: optionalFraction('train_clean_acc'),
    });
  }
  return rows;
}
