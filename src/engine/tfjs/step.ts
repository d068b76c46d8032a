/**
 * One SGD step and one evaluation batch of a {@link ResNet}, dispatched without host reads.
 *
 * Training step: forward in training mode (BatchNorm batch statistics, the MixUp layer at the
 * network's placement when a plan is given), batch-mean loss on the mixed one-hot labels,
 * gradients of gradScale·loss (train.gradScale: the reference's mixup runs effectively used 1/64,
 * see README), MXNet SGD update (weight decay not rescaled), then the BatchNorm moving statistics.
 *
 * Nothing here waits for the device: {@link trainStep} queues the whole step and hands back the
 * batch loss and correct count as device scalars ({@link PendingStep}); the caller reads them with
 * {@link settleStep} (or {@link settleSteps} for several steps in one read) when it chooses, so a GPU
 * can run several steps ahead of JavaScript. The NaN guard therefore also runs on the device: every
 * assignment of the step (parameters, momentum, moving statistics) is `where(finite(loss), new, old)`.
 */
import * as tf from '@tensorflow/tfjs';
import { majorityLabels, mixLabels, type MixPlan } from '../../mixup/plan.js';
import { applyMovingUpdates, forward, type MovingUpdate, type ResNet } from './resnet.js';
import { meanLoss, type LossName } from './loss.js';
import { smoothLabels } from '../../mixup/targets.js';
import type { SGD } from './sgd.js';
import { assertNoDeviceError } from '../dawn.js';

/** Options of one training step. */
export interface StepOptions {
  /** Learning rate of this step (from learningRate(epoch, ...)). */
  lr: number;
  /** Factor on the batch-mean loss gradient before SGD (train.gradScale); weight decay untouched. */
  gradScale: number;
  loss: LossName;
  /** ε of label smoothing on the (mixed) targets (train.labelSmoothing); default 0. */
  labelSmoothing?: number;
  /** Equal shards of the batch, each with its own BatchNorm statistics (train.shards; default 1). */
  shards?: number;
}

/** What a training step reports once read. */
export interface StepResult {
  /** Mean loss of the batch (not multiplied by gradScale), in nats. */
  loss: number;
  /** Samples whose argmax prediction is the label with the larger weight (unmixed: the label). */
  correct: number;
  /**
   * False when the loss was NaN or infinite: then nothing was changed (parameters, momentum and
   * moving statistics are as before the step), so `nanPolicy: skip-batch` really skips the batch.
   */
  updated: boolean;
}

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

/** Steps queued between reads on a GPU backend when `train.readEvery` is null. */
export const GPU_READ_EVERY = 8;

/**
 * How many steps to queue between two reads when `train.readEvery` is null: {@link GPU_READ_EVERY}
 * on a GPU backend (webgpu, or tfjs-node that reports `isUsingGpuDevice`), where reading after every
 * step would leave the device idle while JavaScript waits; 1 on the CPU backends, whose kernels run
 * at dispatch anyway, so progress stays current.
 */
export function defaultReadEvery(): number {
  const name = tf.getBackend();
  const onGpu = name === 'webgpu' || (name === 'tensorflow' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true);
  return onGpu ? GPU_READ_EVERY : 1;
}

/** What an evaluation batch reports. */
export interface EvalResult {
  /** Sum of the per-sample cross-entropies of the batch (one-hot labels), in nats. */
  lossSum: number;
  /** Samples whose argmax prediction equals the label. */
  correct: number;
  /** `[B]` argmax predictions (the first of equal maxima). */
  predicted: Int32Array;
  /** `[B*K]` softmax probabilities, row-major. */
  probs: Float32Array;
}

/**
 * Scores logits read from the device, on the host in float64: per-sample cross-entropy
 * logsumexp(z) − z_label (what both losses of config `loss` reduce to on one-hot labels, see
 * loss.ts), argmax, and softmax probabilities.
 * @param logits `[B*K]` row-major float32 logits.
 * @param labels `[B]` class indices in [0, K).
 * @param K number of classes.
 * @throws RangeError when the sizes do not match or a label is outside [0, K).
 */
export function scoreLogits(logits: Float32Array, labels: Int32Array, K: number): EvalResult {
  const B = labels.length;
  if (logits.length !== B * K) throw new RangeError(`scoreLogits: ${logits.length} logits for ${B} labels of ${K} classes`);
  const predicted = new Int32Array(B);
  const probs = new Float32Array(B * K);
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < B; i++) {
    const row = i * K;
    const label = labels[i]!;
    if (!(label >= 0 && label < K)) throw new RangeError(`scoreLogits: label ${label} of sample ${i} is outside [0, ${K})`);
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[row + k]! > logits[row + best]!) best = k;
    const max = logits[row + best]!;
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(logits[row + k]! - max);
    for (let k = 0; k < K; k++) probs[row + k] = Math.exp(logits[row + k]! - max) / sum;
    lossSum += max + Math.log(sum) - logits[row + label]!;
    predicted[i] = best;
    if (best === label) correct++;
  }
  return { lossSum, correct, predicted, probs };
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

/**
 * Reads logits from the device (asynchronously), disposes them and scores them with {@link scoreLogits}.
 * @param logits `[B,K]` on the device, e.g. from {@link inferLogits}; disposed here, also on error.
 * @param labels `[B]` class indices.
 * @throws UserError when the webgpu device reported an error (engine/dawn.ts `assertNoDeviceError`).
 */
export async function readScores(logits: tf.Tensor2D, labels: Int32Array): Promise<EvalResult> {
  let values: Float32Array;
  try {
    values = (await logits.data()) as Float32Array;
  } finally {
    logits.dispose();
  }
  assertNoDeviceError();
  return scoreLogits(values, labels, logits.shape[1]);
}

/**
 * Scores one batch in inference mode: {@link inferLogits}, then {@link readScores}.
 * @param images `[B,H,W,3]` float32, normalised (center crop).
 * @param labels `[B]` class indices.
 * @throws RangeError when `labels` does not have B entries.
 */
export async function evaluateBatch(net: ResNet, images: tf.Tensor4D, labels: Int32Array): Promise<EvalResult> {
  const B = images.shape[0];
  if (labels.length !== B) throw new RangeError(`evaluateBatch: ${labels.length} labels for ${B} images`);
  return readScores(inferLogits(net, images), labels);
}
