/**
 * Checkpoint contents: the network (trainable parameters and BatchNorm moving statistics), the SGD
 * momentum buffers, the training position and the resolved config.
 *
 * ```
 * epoch-NNNN/model.json + weights.bin              parameters and moving statistics, TensorFlow.js format
 * epoch-NNNN/optimizer/model.json + weights.bin    momentum buffers
 * epoch-NNNN/state.json                            position, partial-epoch sums, learning rate
 * epoch-NNNN/config.json                           the resolved config
 * ```
 *
 * Random generators need no saved state: every stream is derived from (train.seed, name, epoch,
 * batch) (src/random.ts), so the position alone restores them.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { loadHostTensors, saveHostTensors, type HostTensor } from '../model/weights.js';
import { readJson, writeJsonAtomic, type CheckpointPosition } from './rundir.js';
import { mixupPlacement } from '../config/schema.js';
import { validateConfig } from '../config/load.js';

/** Sums over the batches of the epoch in progress (for a mid-epoch checkpoint). */
export interface EpochSums {
  /** Σ (batch mean loss × batch size). */
  lossSum: number;
  /** Correct top-1 predictions (label with the larger weight). */
  correct: number;
  /** Samples trained on. */
  samples: number;
  /** Seconds spent training. */
  seconds: number;
}

/** `state.json` of a checkpoint. */
export interface CheckpointState extends CheckpointPosition {
  /** Sums of the partial epoch (zeros at an epoch boundary). */
  sums: EpochSums;
  /** Learning rate of the epoch in progress or just finished. */
  lr: number;
  /** How the random streams are restored. */
  random: string;
  created: string;
}

/** Zero sums. */
export function emptySums(): EpochSums {
  return { lossSum: 0, correct: 0, samples: 0, seconds: 0 };
}

/**
 * The `model` field of a checkpoint's model.json metadata: what the network was built from
 * (depth, classes, MixUp placement and backward mode, initialisation seed).
 */
export function modelMeta(cfg: Config): object {
  return { arch: cfg.model.arch, depth: cfg.model.depth, width: cfg.model.width, numClasses: cfg.model.numClasses, mixAt: mixupPlacement(cfg), mixBackward: cfg.mixup.backward, seed: cfg.train.seed };
}

/**
 * Writes a checkpoint into `dir` (an empty directory; the caller renames it into place).
 * @param weights parameters and moving statistics by reference name (Engine `readWeights`).
 * @param optimizer momentum buffers (Engine `readOptimizerState`), or null to save weights only.
 */
export async function saveCheckpoint(dir: string, weights: Map<string, HostTensor>, optimizer: Map<string, HostTensor> | null, state: CheckpointState, cfg: Config): Promise<void> {
  await saveHostTensors(dir, weights, { format: 'mixup-resnet', model: modelMeta(cfg), epoch: state.epoch, batch: state.batch });
  if (optimizer) {
    await saveHostTensors(join(dir, 'optimizer'), optimizer, { format: 'mixup-sgd-momentum' });
  }
  writeJsonAtomic(join(dir, 'state.json'), state);
  writeJsonAtomic(join(dir, 'config.json'), cfg);
}

/**
 * Reads a checkpoint's config, state and weights (for Engine `writeWeights`).
 * @throws UserError when files are missing or unreadable.
 */
export async function loadCheckpoint(dir: string): Promise<{ cfg: Config; state: CheckpointState; weights: Map<string, HostTensor> }> {
  const cfg = validateConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const state = readJson<CheckpointState>(join(dir, 'state.json'));
  const { tensors } = await loadHostTensors(dir);
  return { cfg, state, weights: tensors };
}

/** A checkpoint's momentum buffers (for Engine `writeOptimizerState`). @throws UserError when unreadable. */
export async function loadOptimizerState(dir: string): Promise<Map<string, HostTensor>> {
  return (await loadHostTensors(join(dir, 'optimizer'))).tensors;
}
