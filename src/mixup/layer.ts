/**
 * The MixUp layer on tensors: applies a {@link MixPlan} to a batch of images or feature maps.
 * out[i] = weight[i]·x[i] + (1 − weight[i])·x[partner[i]], computed as
 * x[partner] + weight ⊙ (x − x[partner]). The gather by `partner` has a custom gradient, a gather
 * of dy by the inverse permutation (exact, since `partner` is a permutation), so no
 * UnsortedSegmentSum kernel is needed (the wasm backend has none). Gradients therefore flow through
 * the mix into the layers before it, exactly; the reference's custom op returned a zero input
 * gradient instead (mxnet/symbols/mixup.py, `self.assign(in_grad[0], req[0], 0)`).
 */
import * as tf from '@tensorflow/tfjs';

/** The function type tf.customGrad takes (not exported by @tensorflow/tfjs). */
type CustomGradFn<T extends tf.Tensor> = Parameters<typeof tf.customGrad<T>>[0];
import { boxWeights, inversePermutation, type MixPlan } from './plan.js';

/**
 * What flows back through the mix: `exact` the true gradient (this project's default);
 * `zero` no gradient at all, as the reference's custom op did (its backward assigns 0 to the
 * input gradient), so the layers before a feature-map mix learn only from weight decay.
 */
export type MixBackward = 'exact' | 'zero';

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

/**
 * The weight of each row's own sample, broadcastable against x: `[B,1,...,1]` from plan.weight, or
 * for a CutMix plan `[B,H,W,1]` (0 inside the row's box, 1 outside; {@link boxWeights}).
 * @throws RangeError when a CutMix plan's image size is not x's `[B,H,W,C]`.
 */
function ownWeight(x: tf.Tensor, plan: MixPlan): tf.Tensor {
  const B = x.shape[0];
  if (!plan.boxes) return tf.tensor(Float32Array.from(plan.weight), [B, ...x.shape.slice(1).map(() => 1)], 'float32');
  if (x.rank !== 4 || x.shape[1] !== plan.height || x.shape[2] !== plan.width) {
    throw new RangeError(`applyMix: CutMix plan is for ${plan.height}x${plan.width} images, tensor has shape [${x.shape.join(',')}]`);
  }
  return tf.tensor4d(boxWeights(plan), [B, plan.height!, plan.width!, 1], 'float32');
}

/**
 * Mixes a batch by a plan (see plan.ts for which λ goes to which row): out = w·x + (1 − w)·x[partner],
 * w one number per row (mixup) or per pixel (CutMix boxes, the same for every channel).
 * @param x `[B,H,W,C]` (or any `[B, ...]`; CutMix: `[B,H,W,C]` of the plan's H, W) float32 images or feature maps.
 * @param plan the batch's plan; plan.batchSize must equal B.
 * @param backward gradient to the input: `exact` (default) or `zero` (the reference's op).
 * @returns same shape as x.
 */
export function applyMix<T extends tf.Tensor>(x: T, plan: MixPlan, backward: MixBackward = 'exact'): T {
  const B = x.shape[0];
  if (plan.batchSize !== B) throw new RangeError(`applyMix: plan is for a batch of ${plan.batchSize}, tensor has ${B} rows`);
  const mix = (xIn: T): T => {
    if (plan.mixLen === 0) return tf.clone(xIn);
    return tf.tidy(() => {
      const other = permuteRows(xIn, plan.partner);
      const w = ownWeight(xIn, plan);
      return tf.add(other, tf.mul(w, tf.sub(xIn, other))) as T;
    });
  };
  if (backward === 'exact') return mix(x);
  const op = tf.customGrad(((xIn: T, save: (t: tf.Tensor[]) => void) => {
    void save;
    return { value: mix(xIn), gradFunc: (dy: T) => tf.zerosLike(dy) };
  }) as unknown as CustomGradFn<T>);
  return op(x);
}
