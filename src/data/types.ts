/**
 * What the data pipeline hands to training and evaluation: plain typed arrays (no tfjs), so batches
 * can be built in worker threads and moved to the main thread without copies.
 */
import type { LabelNoise } from './noise.js';
import type { SkippedSample } from './batch.js';

/** One batch of images and labels. */
export interface Batch {
  /** `[B,H,W,3]` float32, NHWC, augmented and normalised (mean subtracted, per the augment preset). */
  images: Float32Array;
  /** `[B]` int32 class labels in [0, numClasses). */
  labels: Int32Array;
  /** B, the number of samples in this batch (the last evaluation batch may be smaller). */
  size: number;
  /** H and W of each image (from `data.imageShape`, or 32 for the `paper` preset). */
  height: number;
  width: number;
  /** Index of this batch within its epoch, from 0. */
  index: number;
  /**
   * Samples of the batch that could not be read and were skipped (`data.skipUndecodable`), each
   * replaced by a copy of another sample of the batch (image and label); absent when none.
   */
  skipped?: SkippedSample[];
}

/** A training split whose labels were partly replaced (config `data.labelNoise` > 0). */
export interface CorruptedSplit {
  /** Which samples got which labels. */
  noise: LabelNoise;
  /**
   * The corrupted samples (`noise.indices`, in that order) in evaluation mode: center crop, batches of
   * `train.evalBatchSize`, labels = the corrupted ones. Closed with the training pipeline.
   */
  samples: DataPipeline;
}

/** A split (train or val) ready to be iterated epoch by epoch. */
export interface DataPipeline {
  /** Samples in the split (after `data.limit` / `data.valLimit`). */
  readonly numSamples: number;
  /** Batches one epoch yields: floor(N/B) for training (last partial batch dropped), ceil(N/B) for evaluation. */
  readonly batchesPerEpoch: number;
  /** Class names, index = label (CIFAR-10's from batches.meta.txt order when known). */
  readonly classNames: string[];
  /**
   * One line saying what was opened, to print at the start of a run, e.g.
   * `CIFAR-10 binary, /d/data_batch_1.bin (1 of the usual 5 files), 10000 samples`,
   * `CIFAR-10 binary, /d/data_batch_{1,2,3,4,5}.bin (the usual 5 files), 1000 of 50000 samples (data.limit)`,
   * `RecordIO /d/cifar10_train.rec (JPEG, with .idx), 50000 records` (see src/data/source.ts).
   */
  readonly description?: string;
  /** Training split with `data.labelNoise` > 0: the corruption and its samples; absent otherwise. */
  labelNoise?: CorruptedSplit;
  /**
   * Training split with `data.holdout` N > 0: the N held-out images (never trained on, true labels)
   * in evaluation mode (center crop, `train.evalBatchSize`, ascending sample order); closed with
   * the training pipeline. Absent otherwise.
   */
  holdout?: DataPipeline;
  /**
   * Training split with `train.cleanTrainEval` N > 0: N of the images trained on (their training
   * labels) in evaluation mode, for the unmixed training accuracy; closed with the training pipeline.
   */
  cleanTrain?: DataPipeline;
  /**
   * The batches of one epoch. Training: order shuffled by a stream seeded from (train.seed, 'shuffle',
   * epoch) and augmentation drawn per sample from (train.seed, 'augment', epoch, sample index), so
   * an epoch's batches depend only on the seed and the epoch number. Evaluation: every sample once, in
   * file order, center crop. `fromBatch` skips the first batches (to resume inside an epoch).
   */
  epoch(epoch: number, fromBatch?: number): AsyncIterable<Batch>;
  /**
   * Reads every sample once (decoding and caching the images) so that a damaged record is found
   * now, e.g. the validation split's before the first epoch trains; absent where there is nothing
   * to read (in-memory test pipelines).
   * With `data.skipUndecodable` (training split) a sample that cannot be read is listed instead.
   * @returns the samples that cannot be read (always [] without skipping).
   * @throws UserError naming the file and record.
   */
  check?(): Promise<SkippedSample[]>;
  /**
   * The decoded `[K,32,32,3]` uint8 pixels of samples (default all), to compare files by content
   * (data/overlap.ts); absent where there is nothing to read (in-memory test pipelines).
   */
  pixels?(samples?: Int32Array): Uint8Array;
  /** Stops worker threads and closes files. */
  close(): Promise<void>;
}
