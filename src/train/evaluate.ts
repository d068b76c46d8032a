/**
 * Evaluation over a whole split: top-1 accuracy, mean loss and per-class accuracy, with BatchNorm in
 * inference mode (moving statistics) and no gradient bookkeeping. Used after every training epoch and
 * by `mixup test`, so both print the same numbers for the same checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import type { DataPipeline } from '../data/types.js';
import type { ResNet } from '../model/resnet.js';
import { evaluateBatch } from './step.js';

/** Result of {@link evaluate}. Accuracies are fractions in [0, 1]. */
export interface Evaluation {
  /** Samples evaluated. */
  samples: number;
  /** Mean loss per sample. */
  loss: number;
  /** Top-1 accuracy. */
  accuracy: number;
  /** Top-1 accuracy per class (NaN for a class without samples). */
  perClass: number[];
  /** Samples per class. */
  perClassCount: number[];
}

/**
 * Evaluates `net` on every sample of `data` once (one epoch of the evaluation pipeline).
 * @param loss the loss to report (on one-hot labels both losses equal cross-entropy).
 */
export async function evaluate(net: ResNet, data: DataPipeline, loss: 'soft-ce' | 'mixture-nll'): Promise<Evaluation> {
  const k = net.options.numClasses;
  const hits = new Array<number>(k).fill(0);
  const counts = new Array<number>(k).fill(0);
  let lossSum = 0;
  let samples = 0;
  for await (const b of data.epoch(0)) {
    const images = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
    try {
      const r = evaluateBatch(net, images, b.labels, loss);
      lossSum += r.lossSum;
      for (let i = 0; i < b.size; i++) {
        const y = b.labels[i]!;
        counts[y]! += 1;
        if (r.predicted[i] === y) hits[y]! += 1;
      }
      samples += b.size;
    } finally {
      images.dispose();
    }
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
