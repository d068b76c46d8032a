/**
 * FGSM and I-FGSM on tensors (the tfjs executor's half of evaluate/attack.ts, which describes the
 * attack and its sources): normalisation in and out of pixel space, the attacked pixels, and the
 * clean and attacked predictions of one batch.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostBatch } from '../engine.js';
import { checkAttack, type AttackOptions, type Normalisation } from '../attack.js';
import { assertNoDeviceError } from '../dawn.js';
import { perSampleLoss } from './loss.js';
import { forward, type ResNet } from './resnet.js';

/**
 * Pixels to network input.
 * @param pixels `[B,H,W,3]` float32 in pixel levels (0–255).
 * @returns `[B,H,W,3]` float32, normalised.
 */
export function normalise(pixels: tf.Tensor4D, n: Normalisation): tf.Tensor4D {
  return tf.tidy(() => tf.div(tf.sub(tf.mul(pixels, n.scale), tf.tensor1d([...n.mean])), tf.tensor1d([...n.std])) as tf.Tensor4D);
}

/**
 * Network input back to pixels, rounded to whole levels: the evaluation pipeline normalises
 * uint8 images (no jitter), so the rounding removes the float error of the round trip.
 * @param x `[B,H,W,3]` float32, normalised.
 * @returns `[B,H,W,3]` float32 pixel levels, whole numbers.
 */
export function pixelsOf(x: tf.Tensor4D, n: Normalisation): tf.Tensor4D {
  return tf.tidy(() => tf.round(tf.div(tf.add(tf.mul(x, tf.tensor1d([...n.std])), tf.tensor1d([...n.mean])), n.scale)) as tf.Tensor4D);
}

/**
 * Adversarial versions of a batch of images.
 * @param logitsOf the model: normalised `[B,H,W,3]` → `[B,K]` logits; must treat samples independently.
 * @param pixels `[B,H,W,3]` float32 clean images in pixel levels, within [0, 255]; not disposed.
 * @param labels `[B]` true class indices in [0, numClasses).
 * @returns `[B,H,W,3]` float32 attacked pixels (the caller disposes them), each within ±ε of the
 *   clean pixel and within [0, 255].
 * @throws RangeError for bad attack numbers or a label count that is not B.
 */
export function attackPixels(
  logitsOf: (x: tf.Tensor4D) => tf.Tensor2D,
  pixels: tf.Tensor4D,
  labels: Int32Array,
  numClasses: number,
  norm: Normalisation,
  o: AttackOptions,
): tf.Tensor4D {
  checkAttack(o);
  if (labels.length !== pixels.shape[0]) throw new RangeError(`attackPixels: ${labels.length} labels for ${pixels.shape[0]} images`);
  const steps = o.kind === 'fgsm' ? 1 : o.steps;
  const stepSize = o.eps / steps;
  const y = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses), 'float32') as tf.Tensor2D);
  const lo = tf.tidy(() => tf.maximum(tf.sub(pixels, o.eps), 0) as tf.Tensor4D);
  const hi = tf.tidy(() => tf.minimum(tf.add(pixels, o.eps), 255) as tf.Tensor4D);
  const gradOf = tf.grad((p: tf.Tensor) => tf.sum(perSampleLoss(logitsOf(normalise(p as tf.Tensor4D, norm)), y, 'soft-ce')));
  let x: tf.Tensor4D = pixels;
  try {
    for (let t = 0; t < steps; t++) {
      const next = tf.tidy(() => {
        const g = gradOf(x) as tf.Tensor4D;
        return tf.minimum(tf.maximum(tf.add(x, tf.mul(tf.sign(g), stepSize)), lo), hi) as tf.Tensor4D;
      });
      if (x !== pixels) x.dispose();
      x = next;
    }
    return x === pixels ? tf.clone(pixels) : x;
  } finally {
    y.dispose();
    lo.dispose();
    hi.dispose();
  }
}

/**
 * Attacks one batch against `net` in inference mode and predicts both versions; reads only the
 * predictions (asynchronously) and disposes every tensor it makes.
 * @returns `[2B]` int32: the argmax of the clean images, then of the attacked ones.
 * @throws RangeError for bad attack numbers; UserError when the device reported an error.
 */
export async function attackPredictions(net: ResNet, batch: HostBatch, norm: Normalisation, o: AttackOptions): Promise<Int32Array> {
  const logitsOf = (x: tf.Tensor4D) => forward(net, x, { training: false });
  const images = tf.tensor4d(batch.images, [batch.size, batch.height, batch.width, 3]);
  let adv: tf.Tensor4D | null = null;
  let preds: tf.Tensor | null = null;
  try {
    const pixels = pixelsOf(images, norm);
    try {
      adv = attackPixels(logitsOf, pixels, batch.labels, net.options.numClasses, norm, o);
    } finally {
      pixels.dispose();
    }
    const a = adv;
    preds = tf.tidy(() => tf.stack([tf.argMax(logitsOf(images), 1), tf.argMax(logitsOf(normalise(a, norm)), 1)]));
    const p = (await preds.data()) as Int32Array;
    assertNoDeviceError();
    return p;
  } finally {
    images.dispose();
    adv?.dispose();
    preds?.dispose();
  }
}
