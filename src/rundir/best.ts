/**
 * Which epoch of a run is its best: the one whose checkpoint is kept besides the newest ones and
 * `train.keepEpochs` (rundir.ts `pruneCheckpoints`). The rule itself is report/select.ts
 * `selectBestEpoch`, the one `mixup report` uses: best holdout top-1 when the run holds images out
 * (`data.holdout`), else best validation top-1.
 */
import type { CurveRow } from './curves.js';
import { selectBestEpoch, selectableRow } from '../report/select.js';

/**
 * The best epoch among `rows` by {@link selectBestEpoch}, the earliest of equal ones (rows are put
 * in epoch order first, so a later epoch that only ties never displaces it, and a checkpoint once
 * dropped as not best can never become best again). Rows whose selecting accuracy is not finite
 * are ignored.
 * @param rows curves.csv rows (any order), e.g. only those of epochs that have a checkpoint.
 * @returns the 1-based epoch, or null when no row has a finite selecting accuracy.
 */
export function bestEpoch(rows: readonly CurveRow[]): number | null {
  if (rows.length === 0) return null;
  const ordered = [...rows].sort((a, b) => a.epoch - b.epoch).map(selectableRow);
  const s = selectBestEpoch(ordered);
  const row = ordered[s.index]!;
  return Number.isFinite(s.on === 'holdout' ? row.holdoutAcc : row.valAcc) ? s.epoch : null;
}
