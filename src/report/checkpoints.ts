/**
 * The reference's 90- and 200-epoch figures are checkpoints of its 300-epoch runs (its test.py
 * scores a run's checkpoint of a given epoch; the learning-rate schedules agree up to there). `mixup report --compare-reference` therefore also reads those rows from the curves of a
 * longer run: each run gives a prefix run for every epoch the reference published a figure for that
 * lies before its planned end and that curves.csv has reached.
 */
import { isPaperArch, REFERENCE_ACCURACY } from './reference.js';
import type { Run } from './runs.js';

/**
 * The run cut at `epoch`: its first `epoch` rows of curves.csv, planned length `epoch`, finished,
 * named `<config> at epoch N`; prefixes of several seeds of one config share a group key (one row).
 * @throws RangeError when curves.csv has no row of that epoch.
 */
export function runAtEpoch(r: Run, epoch: number): Run {
  const n = r.curves.findIndex((c) => c.epoch === epoch);
  if (n < 0) throw new RangeError(`runAtEpoch: ${r.dir} has no row for epoch ${epoch}`);
  return {
    ...r,
    name: `${r.name} at epoch ${epoch}`,
    epochs: epoch,
    status: 'finished',
    complete: true,
    curves: r.curves.slice(0, n + 1),
    groupKey: `${r.groupKey}|at=${epoch}`,
  };
}

/**
 * For {@link runs}: the prefix runs at the reference's epochs (90, 200 of a 300-epoch run; 90 of a
 * 200-epoch one) that each run has reached, in the order of `runs`.
 */
export function referenceEpochRuns(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    if (isPaperArch(r.settings['model.arch'])) continue; // the paper published final figures only
    const epochs = Object.keys(REFERENCE_ACCURACY[r.experiment]).map(Number).sort((a, b) => a - b);
    for (const e of epochs) if (e < r.epochs && r.curves.some((c) => c.epoch === e)) out.push(runAtEpoch(r, e));
  }
  return out;
}
