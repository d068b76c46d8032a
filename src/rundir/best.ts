/**
 * Which epoch of a run is its best: the one whose checkpoint is kept besides the newest ones and
 * `train.keepEpochs` (rundir.ts `pruneCheckpoints`). One pure function, so that the split that
 * selects it can change in one place.
 */
import type { CurveRow } from './curves.js';

/**
 * The best epoch among `rows`: the highest validation top-1 (`val_acc`), the earliest of equal ones
 * (so a later epoch that only ties never displaces it, and a checkpoint once dropped as not best
 * can never become best again). Rows whose `val_acc` is not finite are ignored.
 * @param rows curves.csv rows (any order), e.g. only those of epochs that have a checkpoint.
 * @returns the 1-based epoch, or null when no row has a finite val_acc.
 */
export function bestEpoch(rows: readonly CurveRow[]): number | null {
  let best: CurveRow | null = null;
  for (const r of rows) {
    if (!Number.isFinite(r.val_acc)) continue;
    if (best === null || r.val_acc > best.val_acc || (r.val_acc === best.val_acc && r.epoch < best.epoch)) best = r;
  }
  return best?.epoch ?? null;
}
