/**
 * `mixup report --tensorboard RUN_DIR...`: TensorBoard event files for runs trained before `mixup
 * train` wrote them (or with `train.tensorboard: false`), from their curves.csv: the same
 * `epoch/<column>` scalars a run writes as it trains (src/train/events.ts), at the same steps.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readCurves } from '../rundir/curves.js';
import { EventFileWriter, isEventFile } from '../rundir/tfevents.js';
import { epochScalars, tensorboardDir } from '../train/events.js';
import { isRun, readRun } from './runs.js';

/** What {@link writeRunEvents} did with one directory. */
export type RunEventsResult = { dir: string; file: string; epochs: number; batchesPerEpoch: number | null } | { dir: string; skipped: string; notRun?: true };

/**
 * Batches per epoch of a run, from its curves.csv: samples_per_sec × epoch_seconds is the samples
 * trained in an epoch (both columns rounded, so the median of round(samples / batchSize) over the
 * epochs). Null when those columns give no positive count (then steps are epochs).
 */
export function batchesPerEpochOf(rows: { samples_per_sec: number; epoch_seconds: number }[], batchSize: number): number | null {
  const counts = rows.map((r) => Math.round((r.samples_per_sec * r.epoch_seconds) / batchSize)).filter((n) => Number.isFinite(n) && n > 0).sort((a, b) => a - b);
  return counts.length === 0 ? null : counts[Math.floor(counts.length / 2)]!;
}

/**
 * Writes `<dir>/tb/events.out.tfevents.*` from `<dir>/curves.csv`. Wall times count back from the
 * file's modification time by the epochs' `epoch_seconds`.
 * @returns the file written, or why the directory was skipped: not a run with a finished epoch
 *   (`notRun`), or event files already there (they are never replaced).
 */
export function writeRunEvents(dir: string): RunEventsResult {
  const run = readRun(dir);
  if (!isRun(run)) return { dir, skipped: `${run.reason}; skipped`, notRun: true };
  const tb = tensorboardDir(dir);
  if (existsSync(tb) && readdirSync(tb).some(isEventFile)) return { dir, skipped: `${dir}: already has event files; left alone` };
  const curvesFile = join(dir, 'curves.csv');
  const rows = readCurves(curvesFile);
  const bpe = batchesPerEpochOf(rows, run.batchSize);
  const end = statSync(curvesFile).mtimeMs / 1000;
  const after = rows.map((_, i) => rows.slice(i + 1).reduce((s, r) => s + (Number.isFinite(r.epoch_seconds) ? r.epoch_seconds : 0), 0));
  const start = end - (after[0] ?? 0) - (rows[0]?.epoch_seconds ?? 0);
  const w = new EventFileWriter(tb, () => start);
  try {
    rows.forEach((r, i) => w.scalars(r.epoch * (bpe ?? 1), epochScalars(r), end - after[i]!));
  } finally {
    w.close();
  }
  return { dir, file: w.file, epochs: rows.length, batchesPerEpoch: bpe };
}
