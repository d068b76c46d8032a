/**
 * Epoch and batch bookkeeping (pure functions) and building one batch's images.
 *
 * Training: the order of an epoch is `permutation(n, uniformStream(seed, 'shuffle', epoch))`,
 * batches of `train.batchSize`, the last partial batch dropped; sample `i` of epoch `e` is
 * augmented with `uniformStream(seed, 'augment', e, i)` (i = the sample's index in the data, not its
 * position), so a batch depends only on (seed, epoch, batch index) — not on the worker count, the
 * prefetch depth or whether the run was resumed. Evaluation: file order, every sample once, the
 * last batch smaller, center crop, no randomness.
 */
import { permutation, uniformStream } from '../random.js';
import { augmentInto, type AugmentSpec } from '../augment/index.js';
import { IMAGE_SIDE, type SampleReader } from './reader.js';

/** Batches in one epoch: ⌊n/B⌋ for training (last partial batch dropped), ⌈n/B⌉ for evaluation. */
export function batchesPerEpoch(n: number, batchSize: number, train: boolean): number {
  return train ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Sample order of an epoch: a seeded permutation for training, 0..n-1 for evaluation. */
export function epochOrder(n: number, seed: number, epoch: number, train: boolean): Int32Array {
  if (train) return permutation(n, uniformStream(seed, 'shuffle', epoch));
  const o = new Int32Array(n);
  for (let i = 0; i < n; i++) o[i] = i;
  return o;
}

/** Sample indices of batch `b` of an epoch order (the last evaluation batch may be short). */
export function batchSamples(order: Int32Array, b: number, batchSize: number): Int32Array {
  return order.subarray(b * batchSize, Math.min(order.length, (b + 1) * batchSize));
}

/** What a worker needs to build one batch. */
export interface BatchJob {
  /** Epoch number (selects the augmentation streams). */
  epoch: number;
  /** Sample indices, in batch order. */
  samples: Int32Array;
  /** Training (random augmentation) or evaluation. */
  train: boolean;
}

/**
 * Builds a batch's images: reads (or takes from the cache) each sample's pixels and writes its
 * augmented, normalised `[H,W,3]` float32 image.
 * @returns `[B,H,W,3]` float32 (NHWC), B = samples.length.
 */
export function buildImages(reader: SampleReader, spec: AugmentSpec, seed: number, job: BatchJob): Float32Array {
  const per = spec.outH * spec.outW * 3;
  const out = new Float32Array(job.samples.length * per);
  const scratch = new Uint8Array(per);
  for (let k = 0; k < job.samples.length; k++) {
    const i = job.samples[k]!;
    const px = reader.read(i);
    const u = job.train ? uniformStream(seed, 'augment', job.epoch, i) : null;
    augmentInto(spec, px, IMAGE_SIDE, IMAGE_SIDE, u, out, k * per, scratch);
  }
  return out;
}
