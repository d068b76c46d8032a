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
import { assignWeights, createResNet, namedWeights, type ResNet } from '../engine/tfjs/resnet.js';
import { loadTensors, saveTensors } from '../model/weights.js';
import type { SGD } from '../engine/tfjs/sgd.js';
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
 * A freshly initialised network for a config: depth, classes, MixUp placement and backward mode,
 * weights seeded from train.seed.
 * @throws UserError for an invalid depth.
 */
export function buildNet(cfg: Config): ResNet {
  return createResNet({
    depth: cfg.model.depth,
    numClasses: cfg.model.numClasses,
    mixAt: mixupPlacement(cfg),
    mixBackward: cfg.mixup.backward,
    seed: cfg.train.seed,
  });
}

/**
 * Writes a checkpoint into `dir` (an empty directory; the caller renames it into place).
 * @param opt the optimiser, or null to save weights only.
 */
export async function saveCheckpoint(dir: string, net: ResNet, opt: SGD | null, state: CheckpointState, cfg: Config): Promise<void> {
  await saveTensors(dir, namedWeights(net), { format: 'mixup-resnet', model: net.options, epoch: state.epoch, batch: state.batch });
  if (opt) {
    await saveTensors(join(dir, 'optimizer'), opt.state(), { format: 'mixup-sgd-momentum' });
  }
  writeJsonAtomic(join(dir, 'state.json'), state);
  writeJsonAtomic(join(dir, 'config.json'), cfg);
}

/**
 * Reads a checkpoint's config and builds its network with the saved weights.
 * @throws UserError when files are missing or do not fit the config.
 */
export async function loadCheckpointNet(dir: string): Promise<{ net: ResNet; cfg: Config; state: CheckpointState }> {
  const cfg = validateConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const state = readJson<CheckpointState>(join(dir, 'state.json'));
  const { tensors } = await loadTensors(dir);
  const net = buildNet(cfg);
  try {
    assignWeights(net, tensors, dir);
  } catch (e) {
    net.dispose();
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { net, cfg, state };
}

/** Restores momentum buffers from a checkpoint into `opt`. */
export async function loadOptimizerState(dir: string, opt: SGD): Promise<void> {
  const { tensors } = await loadTensors(join(dir, 'optimizer'));
  opt.setState(tensors);
  for (const t of tensors.values()) t.dispose();
}
