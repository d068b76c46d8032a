/**
 * What a run writes to TensorBoard (`<out>/tb/`, config `train.tensorboard`), on the event files of
 * src/rundir/tfevents.ts. Every step is a global batch count (SGD steps since the start of the
 * run), so a resumed run continues the same curves:
 * - every `train.logEvery` batches of an epoch: `batch/train_loss` (mean loss of the batches since
 *   the previous point) and `batch/lr`, at step epoch·batchesPerEpoch + batches done;
 * - after every epoch: `epoch/<column>` for every figure of its curves.csv row (train_loss,
 *   train_acc, val_acc, val_ece, holdout_acc, samples_per_sec, ...), the values exactly as
 *   curves.csv holds them, at step epoch·batchesPerEpoch.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { plural } from '../format.js';
import { CURVE_COLUMNS, readCurves, rounded, type CurveRow } from '../rundir/curves.js';
import { EventFileWriter, scalarSteps, trimEventFiles, type Scalar } from '../rundir/tfevents.js';
import type { CheckpointPosition } from '../rundir/rundir.js';

/** The TensorBoard directory of a run. */
export function tensorboardDir(out: string): string {
  return join(out, 'tb');
}

/** The scalars of one curves.csv row, tagged `epoch/<column>` (empty cells and `epoch` left out). */
export function epochScalars(row: CurveRow): Scalar[] {
  const cells = rounded(row);
  return CURVE_COLUMNS.filter((c) => c !== 'epoch' && typeof cells[c] === 'number').map((c) => ({ tag: `epoch/${c}`, value: cells[c] as number }));
}

/** Writes a run's TensorBoard events as it trains. */
export class RunEvents {
  private readonly writer: EventFileWriter;
  /** Scalars removed from the old files on resume (logged after the checkpoint). */
  readonly removed: number = 0;
  /** Old files whose torn tail (bytes after the last whole record) was cut off on resume. */
  readonly torn: { file: string; bytes: number }[] = [];
  /** Epochs (1-based) whose `epoch/` points were missing on resume and were written again from curves.csv. */
  readonly rewritten: number[] = [];
  private lossSum = 0;
  private samples = 0;

  /**
   * Opens a new event file in `<out>/tb/`. When the run resumes from `start`, events of the old
   * files past that position are removed first (the epochs and batches it trains again), and the
   * `epoch/` points of the epochs in `curves` that no whole event holds (a torn record, a file
   * lost) are written again into the new file, from those rows.
   * @param batchesPerEpoch SGD steps per epoch (the unit of every step).
   * @param logEvery batches of an epoch between two `batch/` points.
   * @param curves on resume, curves.csv's rows up to the checkpoint.
   */
  constructor(
    out: string,
    private readonly batchesPerEpoch: number,
    private readonly logEvery: number,
    start: CheckpointPosition | null,
    now?: () => number,
    curves: readonly CurveRow[] = [],
  ) {
    const dir = tensorboardDir(out);
    let have = new Set<number>();
    if (start !== null) {
      const lastEpochStep = start.epoch * batchesPerEpoch;
      const lastBatchStep = lastEpochStep + start.batch;
      this.removed = trimEventFiles(dir, (tag, step) => step <= (tag.startsWith('epoch/') ? lastEpochStep : lastBatchStep), (file, bytes) => this.torn.push({ file, bytes }));
      have = scalarSteps(dir, 'epoch/');
    }
    this.writer = new EventFileWriter(dir, now);
    if (start === null) return;
    for (const row of curves) {
      if (row.epoch > start.epoch || have.has(row.epoch * batchesPerEpoch)) continue;
      this.epoch(row);
      this.rewritten.push(row.epoch);
    }
  }

  /** The event file being written. */
  get file(): string {
    return this.writer.file;
  }

  /**
   * A batch of epoch `epoch` (0-based) was read back: index `index`, mean loss `loss` over `size`
   * samples, trained at learning rate `lr`.
   */
  batch(epoch: number, index: number, loss: number, size: number, lr: number): void {
    this.lossSum += loss * size;
    this.samples += size;
    if ((index + 1) % this.logEvery !== 0) return;
    const step = epoch * this.batchesPerEpoch + index + 1;
    this.writer.scalars(step, [
      { tag: 'batch/train_loss', value: this.lossSum / this.samples },
      { tag: 'batch/lr', value: lr },
    ]);
    this.lossSum = 0;
    this.samples = 0;
  }

  /** An epoch's curves.csv row was written. */
  epoch(row: CurveRow): void {
    this.lossSum = 0;
    this.samples = 0;
    this.writer.scalars(row.epoch * this.batchesPerEpoch, epochScalars(row));
  }

  /** What resuming did to the old files, one line each: points removed, torn records cut off, epoch points written again. */
  resumeLines(dir: string): string[] {
    const lines: string[] = [];
    const torn = this.torn.map((t) => `, and a torn record (${plural(t.bytes, 'byte')}) cut off the end of ${basename(t.file)}`).join('');
    if (this.removed > 0 || torn !== '') lines.push(`resume: ${plural(this.removed, 'TensorBoard point')} logged after the checkpoint removed from ${dir}${torn}`);
    if (this.rewritten.length > 0) {
      lines.push(`resume: the TensorBoard points of ${plural(this.rewritten.length, 'epoch')} (${this.rewritten.join(', ')}) were missing and are written again from curves.csv`);
    }
    return lines;
  }

  close(): void {
    this.writer.close();
  }
}

/** curves.csv's rows for {@link RunEvents} on resume, or none when it is missing or unreadable. */
export function curvesForEvents(file: string): CurveRow[] {
  try {
    return existsSync(file) ? readCurves(file) : [];
  } catch {
    return [];
  }
}
