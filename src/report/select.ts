/**
 * Model selection: which epoch of a run counts as its "best". With held-out training images
 * (`data.holdout`), the epoch of the best holdout accuracy; without, the epoch of the best test
 * accuracy, which picks on the very images it then reports (optimistic, as the reference and
 * most papers did). `mixup report` uses it for its "best" figures; keeping the best checkpoint
 * follows the same rule.
 */

/** The figures {@link selectBestEpoch} reads of one curves.csv row (rundir/curves.ts EpochCurve). */
export interface SelectableEpoch {
  /** 1-based epoch. */
  epoch: number;
  /** Top-1 on the validation (CIFAR-10 test) set, fraction. */
  valAcc: number;
  /** Top-1 on the held-out training images, fraction; NaN when the run has none. */
  holdoutAcc: number;
}

/** The chosen epoch and on what it was chosen. */
export interface Selection {
  /** 1-based epoch. */
  epoch: number;
  /** Index of that row in the rows given. */
  index: number;
  /** `holdout`: best holdout accuracy; `test`: best test accuracy. */
  on: 'holdout' | 'test';
  /** True when chosen on the test set: the test accuracy at that epoch is an optimistic estimate. */
  optimistic: boolean;
}

/**
 * The best epoch of a run: when some row has a finite holdout accuracy, the row with the highest
 * one (rows without it are not candidates); otherwise the row with the highest test accuracy,
 * flagged optimistic. The first of equal rows wins. NaN accuracies (a diverged epoch) never win.
 * @throws RangeError when `rows` is empty.
 */
export function selectBestEpoch(rows: readonly SelectableEpoch[]): Selection {
  if (rows.length === 0) throw new RangeError('selectBestEpoch: no epochs');
  const onHoldout = rows.some((r) => Number.isFinite(r.holdoutAcc));
  const score = (r: SelectableEpoch) => (onHoldout ? r.holdoutAcc : r.valAcc);
  let index = 0;
  for (let i = 1; i < rows.length; i++) {
    const s = score(rows[i]!);
    const best = score(rows[index]!);
    if (Number.isFinite(s) && (!Number.isFinite(best) || s > best)) index = i;
  }
  return { epoch: rows[index]!.epoch, index, on: onHoldout ? 'holdout' : 'test', optimistic: !onHoldout };
}

/**
 * The figures {@link selectBestEpoch} reads, from a row as `mixup train` writes it (rundir/curves.ts
 * `CurveRow`, snake_case): for choosing during training (e.g. which checkpoint to keep).
 */
export function selectableRow(r: { epoch: number; val_acc: number; holdout_acc?: number }): SelectableEpoch {
  return { epoch: r.epoch, valAcc: r.val_acc, holdoutAcc: r.holdout_acc ?? NaN };
}
