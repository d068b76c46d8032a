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
import { join } from 'node:path';
import { CURVE_COLUMNS, rounded, type CurveRow } from '../rundir/curves.js';
import { EventFileWriter, trimEventFiles, type Scalar } from '../rundir/tfevents.js';
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
  private lossSum = 0;
  private samples = 0;

  /**
   * Opens a new event file in `<out>/tb/`. When the run resumes from `start`, events of the old
   * files past that position are removed first (the epochs and batches it trains again).
   * @param batchesPerEpoch SGD steps per epoch (the unit of every step).
   * @param logEvery batches of an epoch between two `batch/` points.
   */
  constructor(
    out: string,
    private readonly batchesPerEpoch: number,
    private readonly logEvery: number,
    start: CheckpointPosition | null,
    now?: () => number,
  ) {
    const dir = tensorboardDir(out);
    if (start !== null) {
      const lastEpochStep = start.epoch * batchesPerEpoch;
      const lastBatchStep = lastEpochStep + start.batch;
      this.removed = trimEventFiles(dir, (tag, step) => step <= (tag.startsWith('epoch/') ? lastEpochStep : lastBatchStep));
    }
    this.writer = new EventFileWriter(dir, now);
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

  close(): void {
    this.writer.close();
  }
}
