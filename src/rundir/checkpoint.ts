/**
 * Checkpoint contents: the network (trainable parameters and BatchNorm moving statistics), the SGD
 * momentum buffers, the training position and the resolved config.
 *
 * ```
 * epoch-NNNN/model.json + weights.bin              parameters and moving statistics (model/weights.ts)
 * epoch-NNNN/optimizer/model.json + weights.bin    momentum buffers
 * epoch-NNNN/state.json                            position, partial-epoch sums, learning rate
 * epoch-NNNN/config.json                           the resolved config
 * ```
 *
 * Loading checks everything: each weights file against the SHA-256 in its model.json (where there
 * is one), every float tensor for NaN and ±∞, and state.json's position and sums; a checkpoint that
 * fails is skipped in favour of the next older one by {@link loadNewestCheckpoint}.
 *
 * Random generators need no saved state: every stream is derived from (train.seed, name, epoch,
 * batch) (src/random.ts), so the position alone restores them.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { WEIGHTS_BIN, loadHostTensors, saveHostTensors, type HostTensor } from '../model/weights.js';
import { UserError } from '../errors.js';
import { listCheckpoints, readJson, writeJsonAtomic, type CheckpointPosition } from './rundir.js';
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
  /** Unreadable training records skipped (`data.skipUndecodable`); absent = 0 (and in older checkpoints). */
  skipped?: number;
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
 * Refuses tensors holding NaN or ±∞ (a checkpoint of a diverged run, or bytes damaged on disk).
 * @param where the weights file, for the message.
 * @param kind what the tensors are (`parameter or BatchNorm statistic`, `momentum buffer`).
 * @throws UserError naming the first such tensor, the index of its first bad value and how many it holds.
 */
export function assertFinite(tensors: Map<string, HostTensor>, where: string, kind: string): void {
  for (const [name, t] of tensors) {
    if (!(t.values instanceof Float32Array)) continue;
    const v = t.values;
    let first = -1;
    let bad = 0;
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) {
        if (first < 0) first = i;
        bad++;
      }
    }
    if (bad > 0) {
      throw new UserError(`${where}: ${kind} "${name}" holds ${v[first]} at index ${first} (${bad} of ${v.length} values not finite); the checkpoint is damaged`);
    }
  }
}

/** Checks what training reads from state.json: the position and the sums. @throws UserError naming the field. */
function checkState(state: unknown, file: string): CheckpointState {
  const s = state as Partial<CheckpointState> | null;
  const bad = (field: string, want: string) => new UserError(`${file}: ${field} is ${JSON.stringify((s as Record<string, unknown> | null)?.[field] ?? null)?.slice(0, 40)}, expected ${want}; the checkpoint is damaged`);
  if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new UserError(`${file}: not a JSON object; the checkpoint is damaged`);
  for (const k of ['epoch', 'batch'] as const) if (!Number.isSafeInteger(s[k]) || s[k]! < 0) throw bad(k, 'a non-negative integer');
  if (typeof s.lr !== 'number' || !Number.isFinite(s.lr)) throw bad('lr', 'a finite number');
  const sums = s.sums as Partial<EpochSums> | undefined;
  for (const k of ['lossSum', 'correct', 'samples', 'seconds'] as const) {
    if (typeof sums?.[k] !== 'number' || !Number.isFinite(sums[k])) throw new UserError(`${file}: sums.${k} is not a finite number; the checkpoint is damaged`);
  }
  return s as CheckpointState;
}

/**
 * Reads a checkpoint's config, state and weights (for Engine `writeWeights`), all checked (see the
 * module comment).
 * @throws UserError when files are missing, unreadable or damaged.
 */
export async function loadCheckpoint(dir: string): Promise<{ cfg: Config; state: CheckpointState; weights: Map<string, HostTensor> }> {
  const cfg = validateConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  const stateFile = join(dir, 'state.json');
  const state = checkState(readJson(stateFile), stateFile);
  const { tensors } = await loadHostTensors(dir);
  assertFinite(tensors, join(dir, WEIGHTS_BIN), 'parameter or BatchNorm statistic');
  return { cfg, state, weights: tensors };
}

/** A checkpoint's momentum buffers (for Engine `writeOptimizerState`), checked. @throws UserError when unreadable or damaged. */
export async function loadOptimizerState(dir: string): Promise<Map<string, HostTensor>> {
  const { tensors } = await loadHostTensors(join(dir, 'optimizer'));
  assertFinite(tensors, join(dir, 'optimizer', WEIGHTS_BIN), 'momentum buffer');
  return tensors;
}

/** A checkpoint of a run, as {@link listCheckpoints} lists it. */
export type ListedCheckpoint = ReturnType<typeof listCheckpoints>[number];

/**
 * Loads the newest checkpoint of run `out` that loads: `load` is tried on each checkpoint, newest
 * first, and a UserError from it (a missing, truncated, corrupt or non-finite file) passes on to
 * the next older one after `onSkip` has been told. Other errors (bugs, the device) end the search.
 * Nothing is deleted; what happens to a skipped checkpoint is the caller's (`onSkip`) choice.
 * @param load reads one checkpoint directory (and disposes what it made before it throws).
 * @param onSkip called with each skipped checkpoint and the one-line reason.
 * @throws UserError when the run has no checkpoint, or none loads.
 */
export async function loadNewestCheckpoint<T>(
  out: string,
  load: (dir: string) => Promise<T>,
  onSkip: (ck: ListedCheckpoint, reason: string) => void,
): Promise<{ ck: ListedCheckpoint; value: T }> {
  const all = listCheckpoints(out).reverse();
  if (all.length === 0) throw new UserError(`${out}: no checkpoint found (expected ${join(out, 'checkpoints', 'epoch-NNNN')})`);
  for (const ck of all) {
    try {
      return { ck, value: await load(ck.dir) };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      onSkip(ck, e.message.split('\n')[0]!);
    }
  }
  const what = all.length === 1 ? 'its only checkpoint does not load' : `none of its ${all.length} checkpoints loads`;
  throw new UserError(`${out}: ${what} (named above with the reason); no checkpoint was moved or deleted`);
}
