/**
 * Evaluation over a whole split: top-1 accuracy, mean loss and per-class accuracy, with BatchNorm in
 * inference mode (moving statistics) and no gradient bookkeeping. Used after every training epoch and
 * by `mixup test`, so both print the same numbers for the same checkpoint.
 *
 * The forward of batch i+1 is queued before the logits of batch i are read (asynchronously), so a
 * GPU always has work while JavaScript scores the previous batch on the host.
 */
import type { DataPipeline } from '../data/types.js';
import type { Engine, QueuedLogits } from '../engine/engine.js';
import { scoreLogits } from './scoring.js';
import { signalTurn } from '../turn.js';

/** Result of {@link evaluate}. Accuracies are fractions in [0, 1]. */
export interface Evaluation {
  /** Samples evaluated. */
  samples: number;
  /** Mean cross-entropy per sample, in nats. */
  loss: number;
  /** Top-1 accuracy. */
  accuracy: number;
  /** Top-1 accuracy per class (NaN for a class without samples). */
  perClass: number[];
  /** Samples per class. */
  perClassCount: number[];
}

/** Observers of an evaluation. */
export interface EvaluateOptions {
  /**
   * Called for every batch, in order, once its logits are read: `probs` `[B*K]` softmax
   * probabilities (row-major), `labels` `[B]`, `numClasses` K, `predicted` `[B]` the first-max
   * argmax (scoring.ts `scoreLogits`), `logits` `[B*K]` as read from the device. For calibration,
   * temperature scaling, memorisation and the like.
   */
  onBatch?(probs: Float32Array, labels: Int32Array, numClasses: number, predicted: Int32Array, logits: Float32Array): void;
  /** Called after every batch with the samples scored so far and the split's size. */
  onProgress?(samplesDone: number, samplesTotal: number): void;
  /**
   * Asked before the first batch and after every batch (after a turn of the event loop, in which
   * signal handlers run): true stops the evaluation with {@link EvaluationStopped}. `mixup train`
   * passes "an interrupt is pending".
   */
  shouldStop?(): boolean;
}

/** Thrown by {@link evaluate} when its `shouldStop` said so; nothing is left queued on the engine. */
export class EvaluationStopped extends Error {
  constructor(readonly samplesDone: number) {
    super(`evaluation stopped after ${samplesDone} samples`);
    this.name = 'EvaluationStopped';
  }
}

/**
 * Evaluates the engine's network on every sample of `data` once (one epoch of the evaluation
 * pipeline). On one-hot labels both training losses equal the cross-entropy, which is what `loss`
 * reports.
 * @throws UserError when the device reported an error; {@link EvaluationStopped} when `o.shouldStop`
 *   returned true (checked before the first batch and after each one).
 */
export async function evaluate(engine: Engine, data: DataPipeline, o: EvaluateOptions = {}): Promise<Evaluation> {
  const k = engine.options.numClasses;
  const hits = new Array<number>(k).fill(0);
  const counts = new Array<number>(k).fill(0);
  let lossSum = 0;
  let samples = 0;
  let queued: { logits: QueuedLogits; labels: Int32Array } | null = null;
  const settle = async (q: { logits: QueuedLogits; labels: Int32Array }) => {
    const logits = await engine.readLogits(q.logits);
    const r = scoreLogits(logits, q.labels, k);
    lossSum += r.lossSum;
    for (let i = 0; i < q.labels.length; i++) {
      const y = q.labels[i]!;
      counts[y]! += 1;
      if (r.predicted[i] === y) hits[y]! += 1;
    }
    samples += q.labels.length;
    o.onBatch?.(r.probs, q.labels, k, r.predicted, logits);
    o.onProgress?.(samples, data.numSamples);
  };
  const stopIfAsked = async () => {
    if (!o.shouldStop) return;
    // Batches can follow each other without a turn of the event loop (cached data, no worker
    // threads), and a signal handler runs only on such a turn: give it one after every batch.
    await signalTurn();
    if (o.shouldStop()) throw new EvaluationStopped(samples);
  };
  try {
    await stopIfAsked();
    for await (const b of data.epoch(0)) {
      const logits = engine.queueLogits(b);
      const previous = queued;
      queued = { logits, labels: b.labels };
      if (previous) await settle(previous);
      await stopIfAsked();
    }
    if (queued) {
      const last = queued;
      queued = null;
      await settle(last);
    }
  } finally {
    const left = queued as { logits: QueuedLogits } | null;
    if (left) engine.discardLogits(left.logits);
  }
  const correct = hits.reduce((a, b) => a + b, 0);
  return {
    samples,
    loss: samples > 0 ? lossSum / samples : NaN,
    accuracy: samples > 0 ? correct / samples : NaN,
    perClass: hits.map((h, i) => (counts[i]! > 0 ? h / counts[i]! : NaN)),
    perClassCount: counts,
  };
}
