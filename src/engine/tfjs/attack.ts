/**
 * White-box adversarial examples against a checkpoint, as the mixup paper's robustness experiment
 * (Zhang et al. 2017, §3.5) ran them: the fast gradient sign method (FGSM, Goodfellow et al. 2015,
 * "Explaining and Harnessing Adversarial Examples") and its iterative form (I-FGSM, Kurakin et al.
 * 2017, "Adversarial Examples in the Physical World", the basic iterative method).
 *
 * The perturbation lives in pixel space: ε is in 0–255 pixel levels on the un-normalised image,
 * before the network's input normalisation (mean subtraction, and for the `paper` preset the
 * division by 255 and the std), and every attacked image is clipped to [0, 255]. The attack
 * differentiates through that normalisation:
 *   FGSM:    x′ = clip₀²⁵⁵(x + ε·sign(∇ₓ L(f(norm(x)), y)))
 *   I-FGSM:  x₀ = x, xₜ₊₁ = clip₀²⁵⁵(clip_{x,ε}(xₜ + (ε/K)·sign(∇ₓ L(f(norm(xₜ)), y)))), K steps,
 * where clip_{x,ε} keeps every pixel within ±ε of the clean one and L is the cross-entropy with the
 * true label. BatchNorm runs in inference mode (moving statistics), so every sample is attacked
 * independently of the others in its batch; L is summed, not averaged, over the batch, which keeps
 * small per-sample gradients from rounding to zero (the sign does not change). A pixel whose
 * gradient is exactly 0 is not moved.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import type { DataPipeline } from '../data/types.js';
import { forward, type ResNet } from '../engine/tfjs/resnet.js';
import { perSampleLoss } from '../engine/tfjs/loss.js';
import { assertNoDeviceError } from '../engine/dawn.js';

/** Attacks of `mixup test --attack`. */
export const ATTACKS = ['fgsm', 'ifgsm'] as const;
export type AttackKind = (typeof ATTACKS)[number];

/** Default number of I-FGSM steps (Kurakin et al. use min(ε + 4, 1.25ε) steps; 10 is the common choice). */
export const DEFAULT_IFGSM_STEPS = 10;

/** An attack. */
export interface AttackOptions {
  kind: AttackKind;
  /** L∞ budget in pixel levels (0–255 scale), ≥ 0. */
  eps: number;
  /** Gradient steps of I-FGSM, each of ε/steps (FGSM: ignored, always one step of ε). */
  steps: number;
}

/**
 * The network's input normalisation, `x = (pixel · scale − mean[c]) / std[c]` per channel c, as
 * {@link import('../augment/index.js').AugmentSpec} describes it (`reference` preset: scale 1, the
 * rgbMean, std 1; `paper` preset: scale 1/255, the CIFAR-10 mean and std).
 */
export interface Normalisation {
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

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
 * Checks an attack's numbers.
 * @throws RangeError when ε is not a finite number ≥ 0 or steps is not a positive integer.
 */
export function checkAttack(o: AttackOptions): void {
  if (!Number.isFinite(o.eps) || o.eps < 0) throw new RangeError(`attack: eps must be a finite number >= 0, got ${o.eps}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`attack: steps must be a positive integer, got ${o.steps}`);
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
 * The attack `mixup test --attack KIND --eps E [--steps K]` asks for, checked.
 * @param flags the option values as commander gives them (strings, or undefined when absent).
 * @returns the attack, or undefined when `--attack` is absent.
 * @throws UserError naming the flag: --eps or --steps without --attack, --attack without --eps,
 *   ε not a number in [0, 255], steps not a positive integer, --steps with fgsm.
 */
export function parseAttackFlags(flags: { attack?: string; eps?: string; steps?: string }): AttackOptions | undefined {
  if (flags.attack === undefined) {
    const stray = flags.eps !== undefined ? '--eps' : flags.steps !== undefined ? '--steps' : null;
    if (stray) throw new UserError(`${stray} goes with --attack fgsm|ifgsm`);
    return undefined;
  }
  const kind = flags.attack as AttackKind;
  if (!ATTACKS.includes(kind)) throw new UserError(`--attack ${flags.attack}: expected one of ${ATTACKS.join(', ')}`);
  if (flags.eps === undefined) throw new UserError(`--attack ${kind}: --eps E is required (E in pixel levels 0-255, e.g. --eps 2)`);
  const eps = Number(flags.eps);
  if (flags.eps.trim() === '' || !Number.isFinite(eps) || eps < 0 || eps > 255) throw new UserError(`--eps ${flags.eps}: expected a number of pixel levels in [0, 255]`);
  if (kind === 'fgsm' && flags.steps !== undefined) throw new UserError('--steps goes with --attack ifgsm (FGSM is one step of ε)');
  const steps = flags.steps === undefined ? (kind === 'fgsm' ? 1 : DEFAULT_IFGSM_STEPS) : Number(flags.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`--steps ${flags.steps}: expected a positive whole number`);
  return { kind, eps, steps };
}

/** What {@link evaluateAttack} reports. Accuracies are fractions in [0, 1]. */
export interface AttackResult extends AttackOptions {
  /** Samples attacked. */
  samples: number;
  /** Top-1 accuracy on the clean images. */
  cleanAccuracy: number;
  /** Top-1 accuracy on the attacked images. */
  attackedAccuracy: number;
}

/**
 * Attacks every sample of `data` once (one epoch of the evaluation pipeline) against `net` in
 * inference mode, and counts clean and attacked top-1 hits. Reads only the predictions of each
 * batch to the host (asynchronously); disposes every tensor it makes.
 * @param norm the normalisation the pipeline applied (to undo it and attack in pixel space).
 * @param onProgress called after every batch with (samples done, samples in all).
 * @throws RangeError for bad attack numbers.
 */
export async function evaluateAttack(
  net: ResNet,
  data: DataPipeline,
  norm: Normalisation,
  o: AttackOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<AttackResult> {
  checkAttack(o);
  const K = net.options.numClasses;
  const logitsOf = (x: tf.Tensor4D) => forward(net, x, { training: false });
  let samples = 0;
  let clean = 0;
  let attacked = 0;
  for await (const b of data.epoch(0)) {
    const images = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
    let adv: tf.Tensor4D | null = null;
    let preds: tf.Tensor | null = null;
    try {
      const pixels = pixelsOf(images, norm);
      try {
        adv = attackPixels(logitsOf, pixels, b.labels, K, norm, o);
      } finally {
        pixels.dispose();
      }
      const a = adv;
      preds = tf.tidy(() => tf.stack([tf.argMax(logitsOf(images), 1), tf.argMax(logitsOf(normalise(a, norm)), 1)]));
      const p = (await preds.data()) as Int32Array;
      assertNoDeviceError();
      for (let i = 0; i < b.size; i++) {
        if (p[i] === b.labels[i]) clean++;
        if (p[b.size + i] === b.labels[i]) attacked++;
      }
      samples += b.size;
      onProgress?.(samples, data.numSamples);
    } finally {
      images.dispose();
      adv?.dispose();
      preds?.dispose();
    }
  }
  return {
    ...o,
    steps: o.kind === 'fgsm' ? 1 : o.steps,
    samples,
    cleanAccuracy: samples > 0 ? clean / samples : NaN,
    attackedAccuracy: samples > 0 ? attacked / samples : NaN,
  };
}
