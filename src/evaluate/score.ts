/**
 * `mixup test`: scores a checkpoint on validation data with the same evaluation as training
 * (center crop, BatchNorm moving statistics), so it prints the accuracy training logged for that epoch.
 */
import { openPipeline } from '../data/index.js';
import type { DataPipeline } from '../data/types.js';
import { augmentSpec } from '../augment/index.js';
import { evaluate, type Evaluation } from './evaluate.js';
import { CalibrationAccumulator, type Calibration } from './calibration.js';
import { evaluateAttack, type AttackOptions, type AttackResult } from './attack.js';
import { loadCheckpointEngine } from '../engine/index.js';
import { findCheckpoint } from '../rundir/rundir.js';
import { loadNewestCheckpoint } from '../rundir/checkpoint.js';

/** What `mixup test` reports. */
export interface Score extends Evaluation {
  /** Checkpoint directory scored. */
  checkpoint: string;
  /** Finished epochs of the checkpoint (and batches of the next, for a mid-epoch one). */
  epoch: number;
  batch: number;
  /** Class names, index = label. */
  classNames: string[];
  /** Calibration of the top-1 confidence (ECE, MCE, Brier, the reliability bins). */
  calibration: Calibration;
  /** Clean and attacked top-1, when an attack was asked for. */
  attack?: AttackResult;
  /** What was scored: the data file's one-line description (e.g. `RecordIO /d/cifar10_val.rec (JPEG, with .idx), 10000 records`). */
  data: string;
  /** The run's `data.valLimit` when it cut the data (the first N samples), else null (all were scored). */
  valLimit: number | null;
}

/**
 * Loads a checkpoint and evaluates it.
 * @param path a run directory (newest checkpoint, or `epoch`) or a checkpoint directory.
 * @param opts.epoch checkpoint at the end of this epoch (1-based).
 * @param opts.data validation data path instead of the run config's.
 * @param opts.full evaluate every validation sample, ignoring the run's `data.valLimit`.
 * @param opts.attack also attack every sample (white-box, src/evaluate/attack.ts) and count attacked top-1.
 * @param opts.onAttackProgress called after every attacked batch with (samples done, samples in all).
 * @param opts.onProgress the same for the clean evaluation.
 * @param opts.onStart called once the checkpoint is loaded and the data opened, before any image is
 *   scored, with what the Score will say of them (so that they can be printed first).
 * @param opts.onSkip told, one line each, of newer checkpoints of the run that were skipped because
 *   they do not load (truncated, corrupt, non-finite; see rundir/checkpoint.ts); they are left as they are.
 * @throws UserError for a missing checkpoint or data, or a run none of whose checkpoints loads.
 */
export async function scoreCheckpoint(
  path: string,
  opts: {
    epoch?: number;
    data?: string;
    full?: boolean;
    attack?: AttackOptions;
    onAttackProgress?: (done: number, total: number) => void;
    onProgress?: (done: number, total: number) => void;
    onStart?: (s: Pick<Score, 'checkpoint' | 'epoch' | 'batch' | 'data'>) => void;
    onSkip?: (line: string) => void;
  },
): Promise<Score> {
  const named = findCheckpoint(path, opts.epoch);
  // A run's newest checkpoint that does not load gives way to the next older one (opts.onSkip says
  // why); a checkpoint asked for by name or --epoch is loaded or refused as it is.
  const { ck, value: loaded } =
    named.dir === path || opts.epoch !== undefined
      ? { ck: named, value: await loadCheckpointEngine(named.dir) }
      : await loadNewestCheckpoint(path, loadCheckpointEngine, (bad, reason) => opts.onSkip?.(`skipped ${bad.name} (${reason})`));
  const { engine, cfg } = loaded;
  let data: DataPipeline | null = null;
  try {
    const evalCfg = opts.full ? { ...cfg, data: { ...cfg.data, valLimit: null } } : cfg;
    const pipe = (data = await openPipeline(evalCfg, 'val', opts.data));
    const described = { checkpoint: ck.dir, epoch: ck.pos.epoch, batch: ck.pos.batch, data: pipe.description ?? `${pipe.numSamples} samples` };
    opts.onStart?.(described);
    const calibration = new CalibrationAccumulator();
    const ev = await evaluate(engine, pipe, { onBatch: (p, l, k) => calibration.add(p, l, k), onProgress: opts.onProgress });
    const attack = opts.attack ? await evaluateAttack(engine, pipe, augmentSpec(cfg, false), opts.attack, opts.onAttackProgress) : undefined;
    const valLimit = evalCfg.data.valLimit !== null && ev.samples === evalCfg.data.valLimit ? evalCfg.data.valLimit : null;
    return {
      ...ev,
      ...described,
      classNames: pipe.classNames,
      valLimit,
      calibration: calibration.result(),
      ...(attack ? { attack } : {}),
    };
  } finally {
    await data?.close();
    engine.dispose();
  }
}
