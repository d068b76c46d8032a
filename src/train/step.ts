/**
 * One SGD step and one evaluation batch of a {@link ResNet}.
 *
 * Training step: forward in training mode (BatchNorm batch statistics, the MixUp layer at the
 * network's placement when a plan is given), batch-mean loss on the mixed one-hot labels,
 * gradients of gradScale·loss (train.gradScale: the reference's mixup runs effectively used 1/64,
 * see README), MXNet SGD update (weight decay not rescaled), then the BatchNorm moving statistics.
 */
import * as tf from '@tensorflow/tfjs';
import { majorityLabels, mixLabels, type MixPlan } from '../mixup/plan.js';
import { applyMovingUpdates, forward, type MovingUpdate, type ResNet } from '../model/resnet.js';
import { meanLoss, perSampleLoss, type LossName } from './loss.js';
import type { SGD } from './sgd.js';

/** Options of one training step. */
export interface StepOptions {
  /** Learning rate of this step (from learningRate(epoch, ...)). */
  lr: number;
  /** Factor on the batch-mean loss gradient before SGD (train.gradScale); weight decay untouched. */
  gradScale: number;
  loss: LossName;
}

/** What a training step reports. */
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

function countCorrect(logits: tf.Tensor2D, targets: Int32Array): { correct: number; predicted: Int32Array } {
  const argMax = tf.argMax(logits, 1);
  const predicted = Int32Array.from(argMax.dataSync());
  argMax.dispose();
  let correct = 0;
  for (let i = 0; i < targets.length; i++) if (predicted[i] === targets[i]) correct++;
  return { correct, predicted };
}

/**
 * One training step: updates the parameters, the momentum buffers and the BatchNorm moving
 * statistics, unless the loss is NaN or infinite (then it changes nothing and reports
 * `updated: false`); disposes every tensor it makes (the caller still owns `images`).
 * @param images `[B,H,W,3]` float32, normalised.
 * @param labels `[B]` class indices in [0, numClasses).
 * @param plan the batch's mixing (planMix), or null for ERM; mixes at `net.options.mixAt`.
 * @throws UserError when a label is out of range.
 */
export function trainStep(
  net: ResNet,
  opt: SGD,
  images: tf.Tensor4D,
  labels: Int32Array,
  plan: MixPlan | null,
  o: StepOptions,
): StepResult {
  const B = images.shape[0];
  if (labels.length !== B) throw new RangeError(`trainStep: ${labels.length} labels for ${B} images`);
  const K = net.options.numClasses;
  const yValues = mixLabels(labels, K, plan);
  const targets = majorityLabels(labels, plan);
  const updates: MovingUpdate[] = [];
  let logits: tf.Tensor2D | null = null;
  let loss: tf.Scalar | null = null;
  const y = tf.tensor2d(yValues, [B, K], 'float32');
  const varList = [...net.params.values()];
  try {
    const { value, grads } = tf.variableGrads(() => {
      const z = forward(net, images, { training: true, plan, movingUpdates: updates });
      const l = meanLoss(z, y, o.loss);
      logits = tf.keep(z);
      loss = tf.keep(tf.clone(l)); // `value` below is disposed, this copy is read after the update
      return o.gradScale === 1 ? l : tf.mul(l, o.gradScale);
    }, varList);
    value.dispose();
    const lossValue = (loss as tf.Scalar | null)!.dataSync()[0]!;
    const updated = Number.isFinite(lossValue);
    const byName = new Map<string, tf.Tensor>();
    for (const [name, v] of net.params) byName.set(name, grads[v.name]!);
    try {
      if (updated) opt.apply(byName, o.lr);
    } finally {
      for (const g of Object.values(grads)) g.dispose();
    }
    if (updated) applyMovingUpdates(updates);
    const { correct } = countCorrect(logits!, targets);
    return { loss: lossValue, correct, updated };
  } finally {
    y.dispose();
    (logits as tf.Tensor | null)?.dispose();
    (loss as tf.Tensor | null)?.dispose();
    for (const u of updates) u.value.dispose();
  }
}

/** What an evaluation batch reports. */
export interface EvalResult {
  /** Sum of the per-sample losses of the batch (one-hot labels), in nats. */
  lossSum: number;
  /** Samples whose argmax prediction equals the label. */
  correct: number;
  /** `[B]` argmax predictions. */
  predicted: Int32Array;
}

/**
 * Scores one batch in inference mode (BatchNorm moving statistics, no mixing, no gradients).
 * @param images `[B,H,W,3]` float32, normalised (center crop).
 * @param labels `[B]` class indices.
 * @throws UserError when a label is out of range.
 */
export function evaluateBatch(net: ResNet, images: tf.Tensor4D, labels: Int32Array, loss: LossName): EvalResult {
  const B = images.shape[0];
  if (labels.length !== B) throw new RangeError(`evaluateBatch: ${labels.length} labels for ${B} images`);
  const K = net.options.numClasses;
  const yValues = mixLabels(labels, K, null);
  const [lossSumT, logits] = tf.tidy(() => {
    const z = forward(net, images, { training: false });
    const y = tf.tensor2d(yValues, [B, K], 'float32');
    return [tf.sum(perSampleLoss(z, y, loss)), z] as const;
  });
  try {
    const lossSum = lossSumT.dataSync()[0]!;
    const { correct, predicted } = countCorrect(logits, labels);
    return { lossSum, correct, predicted };
  } finally {
    lossSumT.dispose();
    logits.dispose();
  }
}
