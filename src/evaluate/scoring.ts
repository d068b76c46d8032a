/**
 * Scoring of logits on the host, in float64: what every executor's inference output goes through
 * (evaluate.ts, memorisation, `mixup test`), so all of them report the same numbers.
 */
import type { Engine, HostBatch } from '../engine/engine.js';

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
 * engine/tfjs/loss.ts), argmax, and softmax probabilities.
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
 * Scores one batch in inference mode: the engine's queued forward, its read, then {@link scoreLogits}.
 * @throws RangeError when `batch.labels` does not have `batch.size` entries.
 * @throws UserError when the device reported an error.
 */
export async function evaluateBatch(engine: Engine, batch: HostBatch): Promise<EvalResult> {
  if (batch.labels.length !== batch.size) throw new RangeError(`evaluateBatch: ${batch.labels.length} labels for ${batch.size} images`);
  const logits = await engine.readLogits(engine.queueLogits(batch));
  return scoreLogits(logits, batch.labels, engine.options.numClasses);
}
