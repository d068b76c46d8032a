/**
 * `mixup test`: scores a checkpoint on validation data with the same evaluation as training
 * (center crop, BatchNorm moving statistics), so it prints the accuracy training logged for that epoch.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { validateConfig } from '../config/load.js';
import { openPipeline } from '../data/index.js';
import type { DataPipeline } from '../data/types.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { loadCheckpointNet } from './checkpoint.js';
import { findCheckpoint, readJson, type CheckpointPosition } from './rundir.js';

/** What `mixup test` reports. */
export interface Score extends Evaluation {
  /** Checkpoint directory scored. */
  checkpoint: string;
  /** Finished epochs of the checkpoint (and batches of the next, for a mid-epoch one). */
  epoch: number;
  batch: number;
  /** Class names, index = label. */
  classNames: string[];
}

/**
 * The checkpoint `mixup test` would score and its config, without loading weights (the backend is
 * chosen from the config before any tensor exists).
 * @throws UserError for a missing checkpoint or a damaged config.json.
 */
export function findRunConfig(path: string, epoch?: number): { dir: string; pos: CheckpointPosition; cfg: Config } {
  const ck = findCheckpoint(path, epoch);
  const file = join(ck.dir, 'config.json');
  return { ...ck, cfg: validateConfig(readJson(file), file) };
}

/**
 * Loads a checkpoint and evaluates it.
 * @param path a run directory (newest checkpoint, or `epoch`) or a checkpoint directory.
 * @param opts.epoch checkpoint at the end of this epoch (1-based).
 * @param opts.data validation data path instead of the run config's.
 * @param opts.full evaluate every validation sample, ignoring the run's `data.valLimit`.
 * @throws UserError for a missing checkpoint or data.
 */
export async function scoreCheckpoint(path: string, opts: { epoch?: number; data?: string; full?: boolean }): Promise<Score> {
  const ck = findCheckpoint(path, opts.epoch);
  const { net, cfg } = await loadCheckpointNet(ck.dir);
  let data: DataPipeline | null = null;
  try {
    const evalCfg = opts.full ? { ...cfg, data: { ...cfg.data, valLimit: null } } : cfg;
    const pipe = (data = await openPipeline(evalCfg, 'val', opts.data));
    const ev = await evaluate(net, pipe);
    return { ...ev, checkpoint: ck.dir, epoch: ck.pos.epoch, batch: ck.pos.batch, classNames: pipe.classNames };
  } finally {
    await data?.close();
    net.dispose();
  }
}

/** Human-readable lines of a {@link Score}. */
export function formatScore(s: Score): string[] {
  const lines = [
    `checkpoint: ${s.checkpoint} (epoch ${s.epoch}${s.batch > 0 ? ` + ${s.batch} batches` : ''})`,
    `top-1 accuracy: ${(100 * s.accuracy).toFixed(2)}% (${Math.round(s.accuracy * s.samples)}/${s.samples})`,
    `mean loss: ${s.loss.toFixed(4)}`,
    'per-class accuracy:',
  ];
  const w = Math.max(5, ...s.classNames.map((n) => n.length));
  s.perClass.forEach((a, i) => {
    const name = s.classNames[i] ?? `class ${i}`;
    lines.push(`  ${String(i).padStart(2)} ${name.padEnd(w)}  ${Number.isNaN(a) ? '   n/a' : `${(100 * a).toFixed(2).padStart(6)}%`}  (${s.perClassCount[i]} samples)`);
  });
  return lines;
}
