/**
 * The MixUp layer on tensors: applies a {@link MixPlan} to a batch of images or feature maps.
 * out[i] = weight[i]·x[i] + (1 − weight[i])·x[partner[i]], computed as
 * x[partner] + weight ⊙ (x − x[partner]). The gather by `partner` has a custom gradient, a gather
 * of dy by the inverse permutation (exact, since `partner` is a permutation), so no
 * UnsortedSegmentSum kernel is needed (the wasm backend has none).
 *
 * What flows back into the layers before the mix is chosen by {@link MixBackward}: the exact
 * gradient; the reference MixUp op's own backward (unsky/mixup, symbols/mixup.py, `app_backward`:
 * each row's output gradient times a per-row factor, see referenceGradFactor in plan.ts); or zero.
 */
import * as tf from '@tensorflow/tfjs';

/** The function type tf.customGrad takes (not exported by @tensorflow/tfjs). */
type CustomGradFn<T extends tf.Tensor> = Parameters<typeof tf.customGrad<T>>[0];
import { boxWeights, inversePermutation, referenceGradFactor, type MixBackward, type MixPlan } from '../../mixup/plan.js';

export type { MixBackward };


/**
 * Rows of `x` reordered by a permutation: out[i] = x[perm[i]], with gradient dx = dy[perm⁻¹].
 * @param x `[B, ...]`.
 * @param perm `[B]` a permutation of 0..B−1.
 */
export function permuteRows<T extends tf.Tensor>(x: T, perm: Int32Array): T {
  const inv = inversePermutation(perm);
  const op = tf.customGrad(((xIn: T, save: (t: tf.Tensor[]) => void) => {
    void save;
    const idx = tf.tensor1d(perm, 'int32');
    return {
      value: tf.gather(xIn, idx, 0) as T,
      gradFunc: (dy: T) => tf.tidy(() => tf.gather(dy, tf.tensor1d(inv, 'int32'), 0)),
    };
  }) as unknown as CustomGradFn<T>);
  return op(x);
}

/** `[B, 1, ..., 1]` float32 tensor of a per-row vector, broadcastable against `[B, ...]` of `rank`. */
function rowVector(values: Float64Array, rank: number): tf.Tensor {
  return tf.tensor(Float32Array.from(values), [values.length, ...new Array<number>(rank - 1).fill(1)], 'float32');
}

/**
 * The weight w of each row's own sample and 1 − w of its partner's, broadcastable against x:
 * `[B,1,...,1]` from plan.weight (1 − w formed in float64, as the reference's `(1-λ)`), or for a
 * CutMix plan `[B,H,W,1]` (w 0 inside the row's box, 1 outside; {@link boxWeights}).
 * @throws RangeError when a CutMix plan's image size is not x's `[B,H,W,C]`.
 */
function ownWeights(x: tf.Tensor, plan: MixPlan): [tf.Tensor, tf.Tensor] {
  if (!plan.boxes) return [rowVector(plan.weight, x.rank), rowVector(plan.weight.map((v) => 1 - v), x.rank)];
  if (x.rank !== 4 || x.shape[1] !== plan.height || x.shape[2] !== plan.width) {
    throw new RangeError(`applyMix: CutMix plan is for ${plan.height}x${plan.width} images, tensor has shape [${x.shape.join(',')}]`);
  }
  const w = tf.tensor4d(boxWeights(plan), [x.shape[0], plan.height!, plan.width!, 1], 'float32');
  return [w, tf.sub(1, w)];
}

/**
 * Mixes a batch by a plan (see plan.ts for which λ goes to which row): out = w·x + (1 − w)·x[partner],
 * w one number per row (mixup) or per pixel (CutMix boxes, the same for every channel).
 * @param x `[B,H,W,C]` (or any `[B, ...]`; CutMix: `[B,H,W,C]` of the plan's H, W) float32 images or feature maps.
 * @param plan the batch's plan; plan.batchSize must equal B.
 * @param backward gradient to the input: `exact` (default), `reference` or `zero`.
 * @returns same shape as x.
 * @throws RangeError when the plan is for another batch size.
 */
export function applyMix<T extends tf.Tensor>(x: T, plan: MixPlan, backward: MixBackward = 'exact'): T {
  const B = x.shape[0];
  if (plan.batchSize !== B) throw new RangeError(`applyMix: plan is for a batch of ${plan.batchSize}, tensor has ${B} rows`);
  const mix = (xIn: T): T => {
    if (plan.mixLen === 0) return tf.clone(xIn);
    return tf.tidy(() => {
      const other = permuteRows(xIn, plan.partner);
      const [w, rest] = ownWeights(xIn, plan);
      return tf.add(tf.mul(w, xIn), tf.mul(rest, other)) as T;
    });
  };
  if (backward === 'exact') return mix(x);
  const gradFunc =
    backward === 'zero'
      ? (dy: T) => tf.zerosLike(dy)
      : (dy: T) => tf.tidy(() => tf.mul(dy, rowVector(referenceGradFactor(plan), dy.rank)));
  const op = tf.customGrad(((xIn: T, save: (t: tf.Tensor[]) => void) => {
    void save;
    return { value: mix(xIn), gradFunc };
  }) as unknown as CustomGradFn<T>);
  return op(x);
}
