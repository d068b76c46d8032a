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
import { isUserError } from '../errors.js';

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

/** A sample of a batch that could not be read and was skipped (`data.skipUndecodable`). */
export interface SkippedSample {
  /** Its position in the batch. */
  slot: number;
  /** Its index in the data (the record). */
  sample: number;
  /** The position in the batch whose image (and label) took its place. */
  from: number;
  /** Why it could not be read: the reader's one-line message, naming file and record. */
  reason: string;
  /** Found by the check before training among the samples not trained on (`data.holdout`). */
  heldOut?: boolean;
}

/**
 * Builds a batch's images: reads (or takes from the cache) each sample's pixels and writes its
 * augmented, normalised `[H,W,3]` float32 image.
 * @param skipped when given (`data.skipUndecodable`), a sample that cannot be read (a UserError:
 *   undecodable, wrong size) is skipped and listed here instead of ending the batch: its slot gets
 *   a copy of the next readable sample of the batch (wrapping around), so the batch keeps its size
 *   and stays a function of (seed, epoch, batch) alone.
 * @returns `[B,H,W,3]` float32 (NHWC), B = samples.length.
 * @throws UserError naming the record when a sample cannot be read (without `skipped`), or none of
 *   the batch's samples can (with it).
 */
export function buildImages(reader: SampleReader, spec: AugmentSpec, seed: number, job: BatchJob, skipped?: SkippedSample[]): Float32Array {
  const per = spec.outH * spec.outW * 3;
  const out = new Float32Array(job.samples.length * per);
  const scratch = new Uint8Array(per);
  const failed: { slot: number; reason: string; error: unknown }[] = [];
  for (let k = 0; k < job.samples.length; k++) {
    const i = job.samples[k]!;
    let px: Uint8Array;
    try {
      px = reader.read(i);
    } catch (e) {
      if (!skipped || !isUserError(e)) throw e;
      failed.push({ slot: k, reason: (e as Error).message, error: e });
      continue;
    }
    const u = job.train ? uniformStream(seed, 'augment', job.epoch, i) : null;
    augmentInto(spec, px, IMAGE_SIDE, IMAGE_SIDE, u, out, k * per, scratch);
  }
  if (failed.length === 0) return out;
  if (failed.length === job.samples.length) throw failed[0]!.error;
  const bad = new Set(failed.map((f) => f.slot));
  for (const f of failed) {
    let from = (f.slot + 1) % job.samples.length;
    while (bad.has(from)) from = (from + 1) % job.samples.length;
    out.copyWithin(f.slot * per, from * per, (from + 1) * per);
    skipped!.push({ slot: f.slot, sample: job.samples[f.slot]!, from, reason: f.reason });
  }
  return out;
}

/**
 * Reads (decodes, caches) `samples`; with `skipped`, one that cannot be read (a UserError) is listed
 * there (`from` -1) and the others are read on.
 * @throws UserError for the first sample that cannot be read, without `skipped`.
 */
export function readAll(reader: SampleReader, samples: Int32Array, skipped?: SkippedSample[]): void {
  samples.forEach((i, slot) => {
    try {
      reader.read(i);
    } catch (e) {
      if (!skipped || !isUserError(e)) throw e;
      skipped.push({ slot, sample: i, from: -1, reason: (e as Error).message });
    }
  });
}
