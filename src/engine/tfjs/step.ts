/**
 * One SGD step and the inference forward of a {@link ResNet}, dispatched without host reads (the
 * tfjs Engine, engine.ts, queues them; evaluate/scoring.ts scores the logits on the host).
 *
 * Training step: forward in training mode (BatchNorm batch statistics, the MixUp layer at the
 * network's placement when a plan is given), batch-mean loss on the mixed one-hot labels,
 * gradients of gradScale·loss (train.gradScale: the reference's mixup runs effectively used 1/64,
 * see docs/configs.md), MXNet SGD update (weight decay not rescaled), then the BatchNorm moving statistics.
 *
 * Nothing here waits for the device: {@link trainStep} queues the whole step and hands back the
 * batch loss and correct count as device scalars ({@link PendingStep}); the caller reads them with
 * {@link settleStep} (or {@link settleSteps} for several steps in one read) when it chooses, so a GPU
 * can run several steps ahead of JavaScript. The NaN guard therefore also runs on the device: every
 * assignment of the step (parameters, momentum, moving statistics) is `where(finite(loss), new, old)`.
 */
import * as tf from '@tensorflow/tfjs';
import type { MixPlan } from '../../mixup/plan.js';
import { applyMovingUpdates, forward, type MovingUpdate, type ResNet } from './resnet.js';
import { meanLoss } from './loss.js';
import { majorityLabels, mixLabels, smoothLabels } from '../../mixup/targets.js';
import type { SGD } from './sgd.js';
import { assertNoDeviceError } from '../dawn.js';
import type { StepOptions, StepResult } from '../engine.js';

export type { StepOptions, StepResult } from '../engine.js';

/** A dispatched step whose figures are still on the device. Read it once with {@link settleStep}. */
export interface PendingStep {
  /** Scalar float32: the batch-mean loss, unscaled. */
  readonly loss: tf.Scalar;
  /** Scalar int32: the correct count (see {@link StepResult.correct}). */
  readonly correct: tf.Scalar;
}

/**
 * A boolean scalar, true when `x` is finite. Computed as `x − x == 0` (NaN − NaN and ∞ − ∞ are NaN)
 * because the wasm backend has no IsFinite kernel.
 */
export function finiteScalar(x: tf.Scalar): tf.Scalar {
  return tf.tidy(() => tf.equal(tf.sub(x, x), 0) as tf.Scalar);
}

/**
 * `[B]` argmax of each row compared with `targets`, summed on the device.
 * @param logits `[B,K]`.
 * @param targets `[B]` class indices.
 * @returns scalar int32, the number of rows whose argmax equals the target.
 */
function correctCount(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.tensor1d(targets, 'int32')), 'int32')) as tf.Scalar);
}

/**
 * Queues one training step: updates the parameters, the momentum buffers and the BatchNorm moving
 * statistics, unless the loss is NaN or infinite (then the step changes nothing; the guard runs on
 * the device, so no host read is needed). Disposes every tensor it makes except the returned
 * scalars (the caller still owns `images`).
 * @param images `[B,H,W,3]` float32, normalised.
 * @param labels `[B]` class indices in [0, numClasses).
 * @param plan the batch's mixing (planMix), or null for ERM; mixes at `net.options.mixAt`.
 * @returns the step's loss and correct count on the device; read them with {@link settleStep}.
 * @throws RangeError when `labels` does not have B entries.
 */
export function trainStep(net: ResNet, opt: SGD, images: tf.Tensor4D, labels: Int32Array, plan: MixPlan | null, o: StepOptions): PendingStep {
  const B = images.shape[0];
  if (labels.length !== B) throw new RangeError(`trainStep: ${labels.length} labels for ${B} images`);
  const K = net.options.numClasses;
  const yValues = smoothLabels(mixLabels(labels, K, plan), K, o.labelSmoothing ?? 0);
  const targets = majorityLabels(labels, plan);
  const updates: MovingUpdate[] = [];
  let logits: tf.Tensor2D | null = null;
  let loss: tf.Scalar | null = null;
  const y = tf.tensor2d(yValues, [B, K], 'float32');
  const varList = [...net.params.values()];
  let grads: tf.NamedTensorMap = {};
  try {
    const r = tf.variableGrads(() => {
      const z = forward(net, images, { training: true, plan, shards: o.shards, movingUpdates: updates });
      const l = meanLoss(z, y, o.loss);
      logits = tf.keep(z);
      loss = tf.keep(tf.clone(l)); // `value` below is disposed; this copy is the step's reported loss
      return o.gradScale === 1 ? l : tf.mul(l, o.gradScale);
    }, varList);
    r.value.dispose();
    grads = r.grads;
    const finite = finiteScalar(loss!);
    try {
      const byName = new Map<string, tf.Tensor>();
      for (const [name, v] of net.params) byName.set(name, grads[v.name]!);
      opt.apply(byName, o.lr, finite);
      applyMovingUpdates(updates, finite);
    } finally {
      finite.dispose();
    }
    const correct = correctCount(logits!, targets);
    const pending: PendingStep = { loss: loss!, correct };
    loss = null; // handed to the caller
    return pending;
  } finally {
    y.dispose();
    for (const g of Object.values(grads)) g.dispose();
    (logits as tf.Tensor | null)?.dispose();
    (loss as tf.Tensor | null)?.dispose();
    for (const u of updates) u.value.dispose();
  }
}

/**
 * Reads several dispatched steps in one device read (two, in fact: losses and counts), in order,
 * and disposes their scalars.
 * @throws UserError when the webgpu device reported an error (see engine/dawn.ts `assertNoDeviceError`).
 * @returns one {@link StepResult} per step; `updated` is false exactly where the loss is not finite.
 */
export async function settleSteps(steps: readonly PendingStep[]): Promise<StepResult[]> {
  if (steps.length === 0) return [];
  const [lossT, correctT] = tf.tidy(() => [tf.stack(steps.map((s) => s.loss)), tf.stack(steps.map((s) => s.correct))]);
  try {
    const [losses, counts] = await Promise.all([lossT!.data(), correctT!.data()]);
    assertNoDeviceError();
    return steps.map((_, i) => ({ loss: losses[i]!, correct: counts[i]!, updated: Number.isFinite(losses[i]!) }));
  } finally {
    tf.dispose([lossT!, correctT!]);
    for (const s of steps) tf.dispose([s.loss, s.correct]);
  }
}

/** Reads one dispatched step (see {@link settleSteps}). */
export async function settleStep(step: PendingStep): Promise<StepResult> {
  return (await settleSteps([step]))[0]!;
}

/**
 * Queues the inference-mode forward of one batch (BatchNorm moving statistics, no mixing, no
 * gradients) and returns its logits, still on the device.
 * @param images `[B,H,W,3]` float32, normalised (center crop).
 * @returns `[B, numClasses]` logits; the caller disposes them.
 */
export function inferLogits(net: ResNet, images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => forward(net, images, { training: false }));
}
