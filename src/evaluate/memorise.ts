/**
 * Memorisation of corrupted labels (config `data.labelNoise`; the mixup paper's §3.4): after each
 * epoch the corrupted training samples are classified in inference mode (BatchNorm moving
 * statistics, center crop, no mixing, no augmentation) and the predictions compared with their
 * corrupted labels (how much of the noise the network has memorised) and with their true labels.
 *
 * Why a separate inference pass rather than counting during the training steps: a mixed training
 * sample has no single label to be right about, augmentation and BatchNorm batch statistics change
 * the prediction, and counting on the host would read the device after every step. One pass over
 * the m = round(p·N) corrupted samples costs about m inference images per epoch (cheaper per image
 * than training), with one host read per evaluation batch.
 */
import type { CorruptedSplit } from '../data/types.js';
import type { Engine } from '../engine/engine.js';
import { evaluate, type EvaluateOptions } from './evaluate.js';

/** Accuracy on the corrupted training samples; fractions in [0, 1]. */
export interface Memorisation {
  /** Corrupted samples evaluated (m). */
  samples: number;
  /** Share predicted as their corrupted label (memorisation). */
  noisyAcc: number;
  /** Share predicted as their true label. */
  trueAcc: number;
}

/** Running counts of {@link tallyBatch}. */
export interface MemorisationCounts {
  samples: number;
  noisyHits: number;
  trueHits: number;
}

/**
 * Adds one batch of predictions to the counts.
 * @param predicted `[b]` argmax class of each sample.
 * @param noisy `[b]` their corrupted labels; `truth` `[b]` their true labels.
 */
export function tallyBatch(c: MemorisationCounts, predicted: Int32Array, noisy: Int32Array, truth: Int32Array): void {
  if (predicted.length !== noisy.length || predicted.length !== truth.length) {
    throw new RangeError(`tallyBatch: ${predicted.length} predictions, ${noisy.length} corrupted and ${truth.length} true labels`);
  }
  for (let i = 0; i < predicted.length; i++) {
    if (predicted[i] === noisy[i]) c.noisyHits++;
    if (predicted[i] === truth[i]) c.trueHits++;
  }
  c.samples += predicted.length;
}

/** Fractions of the counts (NaN when no sample was counted). */
export function memorisationOf(c: MemorisationCounts): Memorisation {
  return { samples: c.samples, noisyAcc: c.samples > 0 ? c.noisyHits / c.samples : NaN, trueAcc: c.samples > 0 ? c.trueHits / c.samples : NaN };
}

/**
 * Classifies every corrupted sample once through {@link evaluate} (inference mode, its
 * asynchronous reads) and counts hits against both labels in its per-batch hook.
 * @param split the training pipeline's `labelNoise`: its `samples` pipeline yields the corrupted
 *   samples in `noise.indices` order with their corrupted labels.
 * @param o `shouldStop`, as for evaluate (throws EvaluationStopped).
 */
export async function measureMemorisation(engine: Engine, split: CorruptedSplit, o: Pick<EvaluateOptions, 'shouldStop'> = {}): Promise<Memorisation> {
  const c: MemorisationCounts = { samples: 0, noisyHits: 0, trueHits: 0 };
  const truth = split.noise.trueLabels;
  await evaluate(engine, split.samples, {
    ...o,
    onBatch: (_probs, labels, _k, predicted) => tallyBatch(c, predicted, labels, truth.subarray(c.samples, c.samples + labels.length)),
  });
  return memorisationOf(c);
}
