/**
 * The training targets of a batch, pure (no tfjs), as timm's `mixup_target(…, smoothing)` builds
 * them: the (mixed) one-hot labels of a {@link MixPlan} ({@link mixLabels}), label smoothing on top
 * ({@link smoothLabels}), and the label each mixed sample counts as for training accuracy
 * ({@link majorityLabels}).
 *
 * Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
 * Vision", §7): training targets y become (1 − ε)·y + ε/K, applied to the (mixed) one-hot targets
 * of a batch before the loss (config `train.labelSmoothing`), for ERM and mixup alike.
 */
import { UserError } from '../errors.js';
import type { MixPlan } from './plan.js';


/**
 * Smoothed targets.
 * @param y `[B,K]` row-major float32 label weights (rows summing to 1), e.g. from mixLabels.
 * @param numClasses K ≥ 1.
 * @param epsilon ε in [0, 1); 0 returns `y` itself.
 * @returns `[B,K]` float32, (1 − ε)·y + ε/K; rows still sum to 1.
 * @throws RangeError when ε is outside [0, 1) or y's length is not a multiple of K.
 */
export function smoothLabels(y: Float32Array, numClasses: number, epsilon: number): Float32Array {
  if (!(epsilon >= 0 && epsilon < 1)) throw new RangeError(`smoothLabels: ε ${epsilon} is outside [0, 1)`);
  if (y.length % numClasses !== 0) throw new RangeError(`smoothLabels: ${y.length} values are not rows of ${numClasses} classes`);
  if (epsilon === 0) return y;
  const floor = epsilon / numClasses;
  return y.map((v) => (1 - epsilon) * v + floor);
}

function checkLabels(labels: Int32Array, numClasses: number, plan: MixPlan | null): void {
  if (plan && plan.batchSize !== labels.length) {
    throw new RangeError(`mix plan is for a batch of ${plan.batchSize} but the batch has ${labels.length} labels`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= numClasses) {
      throw new UserError(`label ${l} of sample ${i} of the batch is outside [0, ${numClasses}) (config model.numClasses = ${numClasses})`);
    }
  }
}

/**
 * The (mixed) one-hot labels of a batch: row i = weight[i]·onehot(labels[i]) + (1−weight[i])·onehot(labels[partner[i]]),
 * the reference's `label_1 = λ1·y1 + (1−λ1)·y2` etc.; plain one-hot when `plan` is null.
 * @param labels `[B]` class indices.
 * @returns `[B, numClasses]` row-major float32; each row sums to 1.
 * @throws UserError when a label is outside [0, numClasses).
 */
export function mixLabels(labels: Int32Array, numClasses: number, plan: MixPlan | null): Float32Array {
  checkLabels(labels, numClasses, plan);
  const B = labels.length;
  const y = new Float32Array(B * numClasses);
  for (let i = 0; i < B; i++) {
    if (!plan) {
      y[i * numClasses + labels[i]!] = 1;
      continue;
    }
    const w = plan.weight[i]!;
    y[i * numClasses + labels[i]!] += w;
    y[i * numClasses + labels[plan.partner[i]!]!] += 1 - w;
  }
  return y;
}

/**
 * For training accuracy: the label with the larger weight in each (mixed) sample, the sample's own
 * label on a tie; `labels` itself when `plan` is null.
 * @returns `[B]` int32.
 */
export function majorityLabels(labels: Int32Array, plan: MixPlan | null): Int32Array {
  if (!plan) return labels.slice();
  if (plan.batchSize !== labels.length) throw new RangeError(`mix plan is for a batch of ${plan.batchSize} but the batch has ${labels.length} labels`);
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = plan.weight[i]! >= 0.5 ? labels[i]! : labels[plan.partner[i]!]!;
  return out;
}
