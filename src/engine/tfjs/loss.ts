/**
 * The two losses of config `loss`, on logits z `[B,K]` and (mixed) one-hot labels y `[B,K]`
 * (rows summing to 1), computed stably through log-sum-exp:
 * - `soft-ce`: −Σₖ yₖ·log softmax(z)ₖ = logsumexp(z) − Σₖ yₖ·zₖ  (the usual mixup loss,
 *   facebookresearch/mixup-cifar10; equal to λ·CE(z, a) + (1−λ)·CE(z, b)).
 * - `mixture-nll`: −log Σₖ yₖ·softmax(z)ₖ = logsumexp(z) − logsumexp(z + log y), the reference's
 *   SparseSoftmaxCrossEntropyLoss custom op (unsky/mixup, symbols/sparse_softmax.py:
 *   `loss = -log(sum(y*softmax(X), axis=1))`). Zero entries of y enter as −1e30 instead of
 *   log 0 = −∞ (exp underflows to exactly 0 either way), which keeps every gradient finite.
 * Both equal plain cross-entropy −log softmax(z)_label when y is one-hot.
 */
import * as tf from '@tensorflow/tfjs';

import type { LossName } from '../engine.js';

export type { LossName };

/** Stands for log 0 in mixture-nll: finite in float32, and exp(−1e30 − max) is exactly 0. */
const LOG_ZERO = -1e30;

/**
 * Loss of each sample.
 * @param logits `[B,K]` float32.
 * @param y `[B,K]` float32 label weights, rows summing to 1.
 * @returns `[B]` per-sample loss in nats.
 */
export function perSampleLoss(logits: tf.Tensor2D, y: tf.Tensor2D, loss: LossName): tf.Tensor1D {
  return tf.tidy(() => {
    const lse = tf.logSumExp(logits, 1);
    if (loss === 'soft-ce') {
      // Σ y·(lse − z) = lse·Σy − Σ y·z
      return tf.sub(tf.mul(lse, tf.sum(y, 1)), tf.sum(tf.mul(y, logits), 1)) as tf.Tensor1D;
    }
    const positive = tf.greater(y, 0);
    const logY = tf.where(positive, tf.log(tf.where(positive, y, tf.onesLike(y))), tf.fill(y.shape, LOG_ZERO));
    return tf.sub(lse, tf.logSumExp(tf.add(logits, logY), 1)) as tf.Tensor1D;
  });
}

/**
 * Batch-mean loss, the quantity training differentiates.
 * @param logits `[B,K]`.
 * @param y `[B,K]` label weights.
 * @returns scalar, mean over the B samples.
 */
export function meanLoss(logits: tf.Tensor2D, y: tf.Tensor2D, loss: LossName): tf.Scalar {
  return tf.tidy(() => tf.mean(perSampleLoss(logits, y, loss)) as tf.Scalar);
}
