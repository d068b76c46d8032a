/**
 * The CIFAR-10 data pipeline's entry points: where the data is ({@link resolveDataPaths}) and the
 * batches of a split ({@link openPipeline}). Formats: MXNet RecordIO (`.rec`, optional `.idx`),
 * the CIFAR binary version (`.bin` files, a directory of them, or `cifar-10-binary.tar.gz`).
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { augmentSpec } from '../augment/index.js';
import type { DataPipeline } from './types.js';
import { Pipeline } from './pipeline.js';
import { allocCache } from './reader.js';
import { findInDir, LOOKED_FOR, openSource, type OpenedSource } from './source.js';
import { readHead } from './recordio.js';
import { isSplitFile } from './cifarbin.js';
import { corruptLabels, type LabelNoise } from './noise.js';
import { cleanTrainSamples, splitHoldout, type HoldoutSplit } from './holdout.js';
import { DEFAULT_DATA_DIR } from './paths.js';

export type { Batch, DataPipeline } from './types.js';
export { openSource, findInDir } from './source.js';

/**
 * The training and validation data paths of a config: `data.train` / `data.val` when set, else the
 * usual names found in `data.dir` (cifar10_train.rec + cifar10_val.rec, data_batch_*.bin +
 * test_batch.bin, cifar-10-binary.tar.gz, or a cifar-10-batches-bin/ subdirectory). A path may be a
 * directory or an archive holding both splits; {@link openPipeline} picks the split's files.
 * @throws UserError naming what was looked for when nothing is found.
 */
export function resolveDataPaths(data: Config['data']): { train: string; val: string } {
  let found: { train: string; val: string } | null = null;
  if (data.dir !== null && (data.train === null || data.val === null)) {
    let isDir = false;
    try {
      isDir = statSync(data.dir).isDirectory();
    } catch {
      throw new UserError(`data.dir ${data.dir}: no such directory (get CIFAR-10 with: mixup data download cifar10 --dir ${data.dir})`);
    }
    if (!isDir) throw new UserError(`data.dir ${data.dir}: not a directory`);
    found = findInDir(data.dir);
    if (!found) throw new UserError(`data.dir ${data.dir}: no CIFAR-10 data found; looked for ${LOOKED_FOR} (get it with: mixup data download cifar10 --dir ${data.dir})`);
  }
  const train = data.train ?? found?.train;
  const val = data.val ?? found?.val;
  if (train === undefined || val === undefined) {
    const missing = [train === undefined ? 'data.train' : null, val === undefined ? 'data.val' : null].filter(Boolean).join(' and ');
    throw new UserError(`no data: set data.dir (--data-dir) to a directory holding ${LOOKED_FOR}, or set ${missing} (get the data with: mixup data download cifar10 --dir data/cifar10)`);
  }
  return { train, val };
}

/**
 * Checks that the data a run will read is there, before anything slow starts (the backend, the
 * model): `data.dir` is a directory holding CIFAR-10 ({@link resolveDataPaths}), and `data.train`
 * / `data.val` exist. Only names and directory listings are looked at; the files are read (and
 * checked) when the pipelines open.
 * @param splits the splits the command reads (`mixup test`: val only).
 * @param valPath the validation data given instead of the config's (`mixup test --data`).
 * @throws UserError, one line naming the path and `mixup data download`.
 */
export function checkDataPaths(data: Config['data'], splits: readonly ('train' | 'val')[] = ['train', 'val'], valPath?: string): void {
  const paths = valPath !== undefined && splits.length === 1 && splits[0] === 'val' ? { train: '', val: valPath } : resolveDataPaths(data);
  if (valPath !== undefined) paths.val = valPath;
  for (const split of splits) {
    if (!existsSync(paths[split])) {
      const key = split === 'val' && valPath !== undefined ? '--data ' : data[split] !== null ? `data.${split} ` : '';
      throw new UserError(`${key}${paths[split]}: no such file or directory (get CIFAR-10 with: mixup data download cifar10 --dir ${DEFAULT_DATA_DIR})`);
    }
  }
}

/**
 * A note when training and validation would read the same samples: `data.train` and `data.val`
 * (or what `data.dir` resolves to) are the same file, after symlinks and relative paths are
 * resolved, or `data.val` is one of the `data_batch_*.bin` files of a training directory. Not an
 * error: a smoke test may want it. A directory or `.tar.gz` named for both is fine (each split
 * takes its own files from it), and so is anything that does not resolve (openPipeline reports that).
 * @returns the one-line note, e.g. `data.train and data.val are the same file (/d/x.rec): the
 *   validation accuracy will be measured on training data`, or null.
 */
export function sameDataNote(cfg: Config): string | null {
  let paths: { train: string; val: string };
  let train: string;
  let val: string;
  try {
    paths = resolveDataPaths(cfg.data);
    train = realpathSync(paths.train);
    val = realpathSync(paths.val);
  } catch {
    return null;
  }
  const which = cfg.data.train !== null && cfg.data.val !== null ? 'data.train and data.val' : 'the training and validation data';
  const tail = 'the validation accuracy will be measured on training data';
  const valStat = statSync(val, { throwIfNoEntry: false });
  if (!valStat?.isFile()) return null;
  if (train === val) {
    const head = readHead(val, 2);
    if (head[0] === 0x1f && head[1] === 0x8b) return null; // a .tar.gz holds both splits
    return `${which} are the same file (${paths.val}): ${tail}`;
  }
  if (statSync(train, { throwIfNoEntry: false })?.isDirectory() && dirname(val) === train && isSplitFile(basename(val), 'train')) {
    return `data.val ${paths.val} is one of the training files in ${paths.train}: ${tail}`;
  }
  return null;
}

/** Extra options of {@link openPipeline}. */
export interface OpenPipelineOptions {
  /** Where notes (e.g. "records carry several labels") go; default: stderr, once per pipeline. */
  warn?: (line: string) => void;
  /** Batches in flight (default 2 per worker). */
  prefetch?: number;
}

/**
 * Opens a split as a batch iterator. Training (`split` 'train'): `train.batchSize`, the last
 * partial batch dropped, seeded shuffle and augmentation (see batch.ts), `data.limit`. Evaluation
 * ('val'): `train.evalBatchSize`, file order, center crop, `data.valLimit`. Images are `[B,H,W,3]`
 * float32 in the network's units (see src/augment/index.ts), labels `[B]` int32.
 * The validation split (without `path`) warns when it is the training data ({@link sameDataNote}).
 * The training split with `data.labelNoise` p > 0 yields the corrupted labels (noise.ts) and carries
 * them and their samples as `labelNoise`; validation labels are never changed.
 * @param path overrides the split's resolved path (e.g. `mixup test --data`).
 * @throws UserError for missing or bad data (see source.ts), or a training split smaller than one batch.
 */
export async function openPipeline(cfg: Config, split: 'train' | 'val', path?: string, options: OpenPipelineOptions = {}): Promise<DataPipeline> {
  const p = path ?? cfg.data[split] ?? resolveDataPaths(cfg.data)[split];
  const train = split === 'train';
  const source: OpenedSource = await openSource(p, split, {
    numClasses: cfg.model.numClasses,
    labelIndex: cfg.data.labelIndex,
    labelField: cfg.data.labelField,
    limit: train ? cfg.data.limit : cfg.data.valLimit,
  });
  const warn = options.warn ?? ((l: string) => process.stderr.write(`mixup: note: ${l}\n`));
  for (const n of source.notes) warn(n);
  if (!train && path === undefined) {
    const same = sameDataNote(cfg);
    if (same !== null) warn(same);
  }
  const batchSize = train ? cfg.train.batchSize : cfg.train.evalBatchSize;
  const held: HoldoutSplit | null = train && cfg.data.holdout > 0 ? splitHoldout(source.numSamples, cfg.data.holdout, cfg.train.seed) : null;
  const trainedCount = held ? held.train.length : source.numSamples;
  if (train && trainedCount < batchSize) {
    const limited = cfg.data.limit !== null && source.numSamples === cfg.data.limit ? ` (the first ${cfg.data.limit}, data.limit)` : '';
    const heldText = held ? ` less ${held.holdout.length} held out (data.holdout)` : '';
    throw new UserError(`${source.path}: ${source.numSamples} training samples${limited}${heldText}, fewer than train.batchSize ${batchSize}: an epoch would have no batch`);
  }
  const cache = cfg.data.cache && source.spec.kind !== 'mem' ? allocCache(source.numSamples) : null;
  const opts = {
    train,
    batchSize,
    seed: cfg.train.seed,
    augment: augmentSpec(cfg, train),
    workers: cfg.data.workers,
    cache,
    skipUndecodable: train && cfg.data.skipUndecodable,
    ...(options.prefetch !== undefined ? { prefetch: options.prefetch } : {}),
  };
  if (!train) return new Pipeline(source, opts);
  const trained = held ? held.train : null;
  // Labels are read on this thread only (pipeline.ts), so replacing them here covers worker
  // threads and the image cache alike; data.limit has already cut the split to N samples. With a
  // holdout only the images trained on are corrupted: held-out labels stay true.
  let labels = source.labels;
  let noise: LabelNoise | null = null;
  if (cfg.data.labelNoise > 0) {
    const own = trained ? Int32Array.from(trained, (i) => source.labels[i]!) : source.labels;
    const c = corruptLabels(own, cfg.data.labelNoise, cfg.model.numClasses, cfg.train.seed);
    if (trained) {
      labels = source.labels.slice();
      trained.forEach((i, k) => (labels[i] = c.labels[k]!));
      noise = { ...c.noise, indices: Int32Array.from(c.noise.indices, (k) => trained[k]!) };
    } else ({ labels, noise } = c);
  }
  const description = held ? `${source.description}; ${held.holdout.length} held out (data.holdout), ${held.train.length} trained on` : source.description;
  const pipeline = new Pipeline({ ...source, labels, description }, trained ? { ...opts, subset: trained } : opts);
  const evaluation = { train: false, batchSize: cfg.train.evalBatchSize, augment: augmentSpec(cfg, false) };
  if (noise) pipeline.labelNoise = { noise, samples: pipeline.subset(noise.indices, evaluation) };
  if (held) pipeline.holdout = pipeline.subset(held.holdout, evaluation);
  if (cfg.train.cleanTrainEval > 0) {
    const all = trained ?? Int32Array.from({ length: source.numSamples }, (_, i) => i);
    if (cfg.train.cleanTrainEval > all.length) warn(`train.cleanTrainEval ${cfg.train.cleanTrainEval} is more than the ${all.length} images trained on: clamped to ${all.length}`);
    pipeline.cleanTrain = pipeline.subset(cleanTrainSamples(all, cfg.train.cleanTrainEval, cfg.train.seed), evaluation);
  }
  return pipeline;
}
