/**
 * Batch normalisation over NHWC tensors, per channel, as MXNet's BatchNorm computes it
 * (eps 2e-5, momentum 0.9 in the reference's symbols/resnet.py).
 *
 * Training mode normalises with the batch statistics (mean and biased variance over N·H·W) and
 * has a closed-form gradient (tf.customGrad): with x̂ = (x − μ)·s, s = 1/√(σ² + eps), M = N·H·W,
 *   ∂L/∂β = Σ dy,   ∂L/∂γ = Σ dy·x̂,   ∂L/∂x = γ·s·(dy − ∂L/∂β/M − x̂·∂L/∂γ/M)
 * (Ioffe & Szegedy 2015, §3; the sums run over N, H, W). Only [C]-vectors are broadcast; the
 * backward pass is two reductions and four element-wise ops over the activation.
 * Inference mode uses the moving statistics: y = x·γs + (β − μ_moving·γs).
 *
 * Shards (config `train.shards`, the reference's GPUs): with S shards the batch is viewed as
 * `[S, N/S·H, W, C]` and every shard is normalised with its own statistics (reductions over axes
 * 1-2 per shard, M = N/S·H·W), as each of the reference's GPUs normalised its own share of the batch;
 * ∂L/∂γ and ∂L/∂β sum over the shards. The statistics reported for the moving update are the
 * average of the shards' (MXNet averages the GPUs' moving statistics; with one momentum that is one
 * update with the averaged batch statistics).
 */
import * as tf from '@tensorflow/tfjs';

/** The function type tf.customGrad takes (not exported by @tensorflow/tfjs). */
type CustomGradFn<T extends tf.Tensor> = Parameters<typeof tf.customGrad<T>>[0];

/** BatchNorm eps of the reference (symbols/resnet.py: `eps=2e-5`). */
export const BN_EPS = 2e-5;
/** BatchNorm momentum of the reference (`bn_mom=0.9`): moving = m·moving + (1 − m)·batch. */
export const BN_MOMENTUM = 0.9;

/** Result of a training-mode BatchNorm. */
export interface BatchNormTrainResult {
  /** `[N,H,W,C]` the normalised, scaled and shifted activation (differentiable w.r.t. x, γ, β). */
  y: tf.Tensor4D;
  /** `[C]` batch mean (with shards: the shards' mean), kept (outside any tidy): the caller disposes it. Not differentiable. */
  mean: tf.Tensor1D;
  /** `[C]` biased batch variance (÷ N·H·W; with shards: the average of the shards'), kept: the caller disposes it. Not differentiable. */
  variance: tf.Tensor1D;
}

type Saver = (tensors: tf.Tensor[]) => void;

/**
 * Training-mode BatchNorm with batch statistics and the closed-form gradient.
 * @param x `[N,H,W,C]` float32.
 * @param gamma `[C]` scale, or null for a fixed γ = 1 (MXNet `fix_gamma=True`, as `bn_data`): then
 *   no gradient is returned for it.
 * @param beta `[C]` shift.
 * @param eps added to the variance (default {@link BN_EPS}).
 * @param shards S ≥ 1 equal shards of the batch (rows 0..N/S−1, ...), each with its own statistics.
 * @throws RangeError when the channels of x and beta differ or N is not a multiple of S.
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D | null, beta: tf.Tensor1D, eps = BN_EPS, shards = 1): BatchNormTrainResult {
  let mean: tf.Tensor1D | null = null;
  let variance: tf.Tensor1D | null = null;
  const [n, h, w, c] = x.shape;
  if (c !== beta.shape[0]) throw new RangeError(`batchNormTrain: ${c} channels but beta has ${beta.shape[0]}`);
  if (!Number.isInteger(shards) || shards < 1 || n % shards !== 0) {
    throw new RangeError(`batchNormTrain: a batch of ${n} does not split into ${shards} equal shards`);
  }
  // One shard: reduce over N,H,W to [C] vectors (the wasm kernels' fast case). Several: view the
  // batch as [S, N/S·H, W, C] and reduce over axes 1-2 to [S,1,1,C], one row of statistics per shard
  // (the same elements in the same order as one shard alone). Rank 4, not a 5-D view: tfjs-webgpu
  // 4.22 emits invalid WGSL for a 5-D broadcast binary op (`cannot index type 'vec5'`) and computes
  // nothing, which the golden 2-shard cases on webgpu caught.
  const sharded = shards > 1;
  const m = (n / shards) * h * w;
  const axes = sharded ? [1, 2] : [0, 1, 2];
  const view = (t: tf.Tensor): tf.Tensor => (sharded ? tf.reshape(t, [shards, (n / shards) * h, w, c]) : t);
  const unview = (t: tf.Tensor): tf.Tensor4D => (sharded ? tf.reshape(t, [n, h, w, c]) : t) as tf.Tensor4D;
  const perShard = (t: tf.Tensor): tf.Tensor => tf.sum(t, axes, sharded);
  // [S,1,1,1,C] per-shard values → [C]: summed (gradients) or averaged (statistics).
  const overShards = (t: tf.Tensor, op: 'sum' | 'mean'): tf.Tensor1D =>
    (sharded ? (op === 'sum' ? tf.sum(t, [0, 1, 2]) : tf.mean(t, [0, 1, 2])) : t) as tf.Tensor1D;

  // Forward shared by both variants: returns y and saves what the gradient needs.
  const forward = (xIn: tf.Tensor4D, g: tf.Tensor1D | null, b: tf.Tensor1D, save: Saver) => {
    const xv = view(xIn);
    const mu = tf.mean(xv, axes, sharded);
    const xc = tf.sub(xv, mu);
    const v = tf.mean(tf.square(xc), axes, sharded);
    const s = tf.rsqrt(tf.add(v, eps));
    const scale = g ? tf.mul(g, s) : s;
    const y = unview(tf.add(tf.mul(xc, scale), b));
    mean = tf.keep(overShards(mu, 'mean'));
    variance = tf.keep(overShards(v, 'mean'));
    save([xc, s, scale]);
    return y;
  };
  // Backward: grads for x, (γ), β from dy and the saved x − μ, s, γs (per shard).
  const backward = (dy: tf.Tensor4D, saved: tf.Tensor[], withGamma: boolean): tf.Tensor[] => {
    const [xc, s, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
    const dyv = view(dy);
    const dBeta = perShard(dyv);
    const dxcSum = perShard(tf.mul(dyv, xc)); // Σ dy·(x − μ) = ∂L/∂γ / s
    // ∂L/∂x = γs·(dy − ∂β/M − (x − μ)·s²·Σdy(x−μ)/M)
    const c0 = tf.div(dBeta, m);
    const c1 = tf.div(tf.mul(tf.square(s), dxcSum), m);
    const dx = unview(tf.mul(tf.sub(tf.sub(dyv, c0), tf.mul(xc, c1)), scale) as tf.Tensor4D);
    if (!withGamma) return [dx, overShards(dBeta, 'sum')];
    return [dx, overShards(tf.mul(dxcSum, s), 'sum'), overShards(dBeta, 'sum')];
  };

  let y: tf.Tensor4D;
  if (gamma) {
    const op = tf.customGrad(((xIn: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, save: Saver) => ({
      value: forward(xIn, g, b, save),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => backward(dy, saved, true),
    })) as unknown as CustomGradFn<tf.Tensor4D>);
    y = op(x, gamma, beta);
  } else {
    const op = tf.customGrad(((xIn: tf.Tensor4D, b: tf.Tensor1D, save: Saver) => ({
      value: forward(xIn, null, b, save),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => backward(dy, saved, false),
    })) as unknown as CustomGradFn<tf.Tensor4D>);
    y = op(x, beta);
  }
  return { y, mean: mean!, variance: variance! };
}

/**
 * Inference-mode BatchNorm with the moving statistics.
 * @param x `[N,H,W,C]` float32.
 * @param gamma `[C]`, or null for γ = 1.
 * @param beta `[C]`.
 * @param movingMean `[C]`.
 * @param movingVar `[C]`.
 */
export function batchNormInfer(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D | null,
  beta: tf.Tensor1D,
  movingMean: tf.Tensor1D,
  movingVar: tf.Tensor1D,
  eps = BN_EPS,
): tf.Tensor4D {
  return tf.tidy(() => {
    const s = tf.rsqrt(tf.add(movingVar, eps));
    const scale = gamma ? tf.mul(gamma, s) : s;
    const shift = tf.sub(beta, tf.mul(movingMean, scale));
    return tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
  });
}

/**
 * The new moving statistic, MXNet's update `moving = momentum·moving + (1 − momentum)·batch`.
 * @param moving `[C]` current value.
 * @param batch `[C]` the batch statistic.
 */
export function movingUpdate(moving: tf.Tensor1D, batch: tf.Tensor1D, momentum = BN_MOMENTUM): tf.Tensor1D {
  return tf.tidy(() => tf.add(tf.mul(moving, momentum), tf.mul(batch, 1 - momentum)) as tf.Tensor1D);
}
