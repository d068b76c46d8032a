/**
 * The held-out images of a training split (config `data.holdout`): N training images set aside for
 * model selection and temperature scaling, never trained on, and the unmixed training images
 * evaluated for the clean training accuracy (`train.cleanTrainEval`).
 *
 * Pure functions, no tfjs. Which images depend only on (`train.seed`, N, the split's size), never
 * on the experiment, so runs of one seed hold out the same images and a resumed run holds out the
 * ones it started with.
 */
import { UserError } from '../errors.js';
import { permutation, uniformStream } from '../random.js';

/** A training split divided into the images trained on and the held-out ones. */
export interface HoldoutSplit {
  /** `[n − N]` int32 sample indices trained on, ascending. */
  train: Int32Array;
  /** `[N]` int32 held-out sample indices, ascending. */
  holdout: Int32Array;
}

/**
 * Sets aside `holdout` of `n` samples: a permutation of 0..n−1 drawn from the stream
 * `uniformStream(seed, 'holdout', n)` (Fisher-Yates); its first N entries are held out.
 * @param n samples of the split (after `data.limit`).
 * @param holdout N, 0 ≤ N < n.
 * @throws UserError when N ≥ n.
 */
export function splitHoldout(n: number, holdout: number, seed: number): HoldoutSplit {
  if (!(Number.isInteger(holdout) && holdout >= 0 && holdout < n)) {
    throw new UserError(`data.holdout: ${holdout} held-out images of a training split of ${n}; expected fewer than ${n}`);
  }
  const order = permutation(n, uniformStream(seed, 'holdout', n));
  const sorted = (a: Int32Array) => Int32Array.from(a).sort();
  return { holdout: sorted(order.subarray(0, holdout)), train: sorted(order.subarray(holdout)) };
}

/**
 * The `count` training images whose unmixed accuracy is measured each epoch (`train.cleanTrainEval`):
 * the first `count` of a permutation of `trained` drawn from `uniformStream(seed, 'clean-train', n)`,
 * ascending; all of them when `count` ≥ their number.
 * @param trained sample indices trained on.
 */
export function cleanTrainSamples(trained: Int32Array, count: number, seed: number): Int32Array {
  const n = trained.length;
  const order = permutation(n, uniformStream(seed, 'clean-train', n));
  return Int32Array.from(order.subarray(0, Math.min(count, n)), (k) => trained[k]!).sort();
}
