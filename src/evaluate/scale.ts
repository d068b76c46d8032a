/**
 * `mixup test --temperature`: fits one temperature T to a checkpoint on held-out data (the run's
 * `data.holdout` images, or a named data file), never on the test set, and scores calibration
 * before and after on both (temperature.ts: NLL, Brier, ECE over 15 bins, equal-mass ECE).
 */
import { existsSync, realpathSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { openPipeline, resolveDataPaths } from '../data/index.js';
import type { DataPipeline } from '../data/types.js';
import { countShared, IMAGE_BYTES, spreadSamples } from '../data/overlap.js';
import type { Engine } from '../engine/engine.js';
import { loadCheckpointEngine } from '../engine/index.js';
import { findCheckpoint } from '../rundir/rundir.js';
import { evaluate } from './evaluate.js';
import { calibrationFigures, fitTemperature, LogitSet, type CalibrationFigures } from './temperature.js';

/** Figures of one split at T = 1 and at the fitted T. */
export interface ScaledSplit {
  /** One line saying what was scored. */
  data: string;
  before: CalibrationFigures;
  after: CalibrationFigures;
}

/** What `mixup test --temperature` reports. */
export interface TemperatureScore {
  checkpoint: string;
  epoch: number;
  batch: number;
  /** The fitted temperature. */
  temperature: number;
  /** The split T was fitted on: `holdout` (data.holdout) or `file`. */
  fittedOn: 'holdout' | 'file';
  fit: ScaledSplit;
  test: ScaledSplit;
}

/**
 * Checks that T can be fitted without the test set, before anything loads: the run has a holdout,
 * or `fitOn` names a file that exists and is not the validation data.
 * @param valPath the validation data `mixup test` scores (`--data`), default the config's.
 * @throws UserError, one line: fitting on the test set is not allowed.
 */
export function checkTemperatureFit(cfg: Config, fitOn: string | undefined, valPath?: string): void {
  if (fitOn === undefined) {
    if (cfg.data.holdout > 0) return;
    throw new UserError(
      '--temperature: the run has no held-out images (data.holdout 0), and fitting T on the test set is not allowed; train with data.holdout N (e.g. 5000), or name other data with --fit-on FILE',
    );
  }
  if (!existsSync(fitOn)) throw new UserError(`--fit-on ${fitOn}: no such file or directory`);
  let val: string | null = null;
  try {
    val = realpathSync(valPath ?? resolveDataPaths(cfg.data).val);
  } catch {
    // the validation data is reported missing when it is opened
  }
  if (val !== null && realpathSync(fitOn) === val) {
    throw new UserError(`--fit-on ${fitOn}: is the validation (test) data this command scores; fitting T on the test set is not allowed`);
  }
}

/** Images of the --fit-on data compared with the validation data (spread evenly over the file). */
export const FIT_PROBES = 100;

/**
 * Refuses --fit-on data that holds the validation images under another name or format (e.g. the
 * CIFAR binary `test_batch.bin` for a run scored on `cifar10_val.rec`): {@link FIT_PROBES} images
 * spread over the fit data are looked up, by content (data/overlap.ts), among all validation
 * images; 5 % of them found there (at least one) is an overlap. `val` should hold the whole
 * validation data ({@link checkFitContent} opens it so).
 * @throws UserError, one line, naming how many of the probed images are validation images.
 */
export function refuseSharedImages(fitOn: string, fit: DataPipeline, val: DataPipeline): void {
  if (!fit.pixels || !val.pixels) return;
  const probe = fit.pixels(spreadSamples(fit.numSamples, FIT_PROBES));
  const k = probe.length / IMAGE_BYTES;
  const shared = countShared(probe, val.pixels());
  if (k > 0 && shared >= Math.max(1, Math.ceil(k / 20))) {
    throw new UserError(
      `--fit-on ${fitOn}: ${shared} of ${k} of its images (spread over the file) are images of the validation (test) data this command scores, by content; fitting T on the test set is not allowed`,
    );
  }
}

/**
 * {@link refuseSharedImages} before any backend loads (`mixup test` calls it first): opens the
 * --fit-on data and the whole validation data `mixup test` scores from (every image, also when the
 * run's `data.valLimit` scores only the first N: the rest are test images too, and 100 probes
 * spread over `test_batch.bin` would find only a few among the first few hundred), on this thread,
 * notes muted; compares them, closes both.
 * @throws UserError as refuseSharedImages, or for data that does not open.
 */
export async function checkFitContent(cfg: Config, fitOn: string, opts: { data?: string }): Promise<void> {
  const quiet = { warn: () => undefined };
  const whole = { ...cfg, data: { ...cfg.data, workers: 0, valLimit: null } };
  const fit = await openPipeline(whole, 'val', fitOn, quiet);
  try {
    const val = await openPipeline(whole, 'val', opts.data, quiet);
    try {
      refuseSharedImages(fitOn, fit, val);
    } finally {
      await val.close();
    }
  } finally {
    await fit.close();
  }
}

/** Logits and labels of a whole split. */
async function gather(engine: Engine, data: DataPipeline, onProgress?: (done: number, total: number) => void): Promise<{ logits: Float32Array; labels: Int32Array }> {
  const set = new LogitSet(engine.options.numClasses);
  await evaluate(engine, data, { onBatch: (_p, l, _k, _pred, z) => set.add(z, l), onProgress });
  return set.get();
}

/**
 * Fits T on the fitting split and scores both splits before and after.
 * @param path a run directory (newest checkpoint, or `epoch`) or a checkpoint directory.
 * @param opts.fitOn a data file to fit on instead of the run's holdout.
 * @param opts.contentChecked the caller ran {@link checkFitContent} already (the CLI, before the backend).
 * @param opts.data validation data instead of the run config's; `opts.full` ignores `data.valLimit`.
 * @throws UserError as {@link checkTemperatureFit}, for a missing checkpoint or data.
 */
export async function scoreTemperature(
  path: string,
  opts: { epoch?: number; data?: string; full?: boolean; fitOn?: string; contentChecked?: boolean; onProgress?: (what: string) => (done: number, total: number) => void },
): Promise<TemperatureScore> {
  const ck = findCheckpoint(path, opts.epoch);
  const { engine, cfg } = await loadCheckpointEngine(ck.dir);
  const open: DataPipeline[] = [];
  try {
    checkTemperatureFit(cfg, opts.fitOn, opts.data);
    const k = engine.options.numClasses;
    let fitData: DataPipeline;
    let fitText: string;
    if (opts.fitOn !== undefined) {
      fitData = await openPipeline({ ...cfg, data: { ...cfg.data, valLimit: null } }, 'val', opts.fitOn);
      open.push(fitData);
      fitText = fitData.description ?? `${fitData.numSamples} samples`;
    } else {
      const train = await openPipeline({ ...cfg, train: { ...cfg.train, cleanTrainEval: 0 }, data: { ...cfg.data, labelNoise: 0 } }, 'train');
      open.push(train);
      fitData = train.holdout!;
      fitText = `${fitData.numSamples} held-out training images (data.holdout, chosen by train.seed ${cfg.train.seed})`;
    }
    const evalCfg = opts.full ? { ...cfg, data: { ...cfg.data, valLimit: null } } : cfg;
    const test = await openPipeline(evalCfg, 'val', opts.data);
    open.push(test);
    if (opts.fitOn !== undefined && !opts.contentChecked) await checkFitContent(cfg, opts.fitOn, { data: opts.data });
    const f = await gather(engine, fitData, opts.onProgress?.('fitting T: evaluating'));
    const v = await gather(engine, test, opts.onProgress?.('test: evaluating'));
    const T = fitTemperature(f.logits, f.labels, k);
    const scaled = (x: { logits: Float32Array; labels: Int32Array }, data: string): ScaledSplit => ({
      data,
      before: calibrationFigures(x.logits, x.labels, k, 1),
      after: calibrationFigures(x.logits, x.labels, k, T),
    });
    return {
      checkpoint: ck.dir,
      epoch: ck.pos.epoch,
      batch: ck.pos.batch,
      temperature: T,
      fittedOn: opts.fitOn === undefined ? 'holdout' : 'file',
      fit: scaled(f, fitText),
      test: scaled(v, test.description ?? `${test.numSamples} samples`),
    };
  } finally {
    for (const p of open) await p.close();
    engine.dispose();
  }
}
