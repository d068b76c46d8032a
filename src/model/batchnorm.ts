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
  /** `[C]` batch mean, kept (outside any tidy): the caller disposes it. Not differentiable. */
  mean: tf.Tensor1D;
  /** `[C]` biased batch variance (÷ N·H·W), kept: the caller disposes it. Not differentiable. */
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
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D | null, beta: tf.Tensor1D, eps = BN_EPS): BatchNormTrainResult {
  let mean: tf.Tensor1D | null = null;
  let variance: tf.Tensor1D | null = null;
  const [n, h, w, c] = x.shape;
  const m = n * h * w;
  const axes = [0, 1, 2];
  if (c !== beta.shape[0]) throw new RangeError(`batchNormTrain: ${c} channels but beta has ${beta.shape[0]}`);

  // Forward shared by both variants: returns y and saves what the gradient needs.
  const forward = (xIn: tf.Tensor4D, g: tf.Tensor1D | null, b: tf.Tensor1D, save: Saver) => {
    const mu = tf.mean(xIn, axes) as tf.Tensor1D;
    const xc = tf.sub(xIn, mu) as tf.Tensor4D;
    const v = tf.mean(tf.square(xc), axes) as tf.Tensor1D;
    const s = tf.rsqrt(tf.add(v, eps)) as tf.Tensor1D;
    const scale = g ? (tf.mul(g, s) as tf.Tensor1D) : s;
    const y = tf.add(tf.mul(xc, scale), b) as tf.Tensor4D;
    mean = tf.keep(mu);
    variance = tf.keep(v);
    save([xc, s, scale]);
    return y;
  };
  // Backward: grads for x, (γ), β from dy and the saved x − μ, s, γs.
  const backward = (dy: tf.Tensor4D, saved: tf.Tensor[], withGamma: boolean): tf.Tensor[] => {
    const [xc, s, scale] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const dBeta = tf.sum(dy, axes) as tf.Tensor1D;
    const dxcSum = tf.sum(tf.mul(dy, xc), axes) as tf.Tensor1D; // Σ dy·(x − μ) = ∂L/∂γ / s
    // ∂L/∂x = γs·dy − γs·∂β/M − (x − μ)·γs·s²·Σdy(x−μ)/M
    const c0 = tf.div(tf.mul(scale, dBeta), m);
    const c1 = tf.div(tf.mul(tf.mul(scale, tf.square(s)), dxcSum), m);
    const dx = tf.sub(tf.sub(tf.mul(dy, scale), c0), tf.mul(xc, c1)) as tf.Tensor4D;
    if (!withGamma) return [dx, dBeta];
    const dGamma = tf.mul(dxcSum, s) as tf.Tensor1D;
    return [dx, dGamma, dBeta];
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
