/**
 * `mixup train`: the epoch loop that wires data → model → mixup → SGD, evaluates after every epoch,
 * writes curves.csv and checkpoints, and survives interruption (resume, Ctrl-C, NaN guard).
 *
 * Recipe as in the MXNet reference (train_cifar10.py / common/fit.py): SGD with momentum and a
 * step learning-rate schedule, one evaluation on the validation set per epoch, BatchNorm in
 * inference mode for evaluation.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { plural } from '../format.js';
import { mixupPlacement, type Config } from '../config/schema.js';
import { absoluteDataPaths, loadConfig, validateConfig } from '../config/load.js';
import { openPipeline } from '../data/index.js';
import type { DataPipeline } from '../data/types.js';
import type { ResNet } from '../model/resnet.js';
import { planMixShards } from '../mixup/plan.js';
import { uniformStream } from '../random.js';
import { describeExperiment } from './describe.js';
import { learningRate } from './schedule.js';
import { SGD } from './sgd.js';
import { defaultReadEvery, settleSteps, trainStep, type PendingStep } from './step.js';
import { evaluate } from './evaluate.js';
import { measureMemorisation } from './memorise.js';
import { describeLabelNoise } from '../data/noise.js';
import { CalibrationAccumulator } from './calibration.js';
import { appendCurveRow, truncateCurves } from './curves.js';
import { EpochProgress, EvalProgress, type ProgressSink } from './progress.js';
import { RunClock } from './eta.js';
import type { RunLog } from './log.js';
import {
  buildNet,
  emptySums,
  loadCheckpointNet,
  loadOptimizerState,
  saveCheckpoint,
  type CheckpointState,
  type EpochSums,
} from './checkpoint.js';
import {
  assertCanStartNewRun,
  assertNotTraining,
  cleanCheckpoints,
  findCheckpoint,
  listCheckpoints,
  prepareNewRun,
  pruneCheckpoints,
  readJson,
  readStatus,
  runPaths,
  writeCheckpoint,
  writeJsonAtomic,
  writeStatus,
  type CheckpointPosition,
  type RunSource,
} from './rundir.js';
import { EXIT_SIGINT, EXIT_SIGTERM, Interrupts } from './interrupts.js';
import { assertMemoryFits } from '../memoryfit.js';

/** Exit code of `mixup train` when the loss became NaN or infinite (130/143: interrupts.ts). */
export const EXIT_NAN = 3;

/** Batches in a row that `nanPolicy: skip-batch` tolerates before stopping. */
export const MAX_SKIPPED_IN_A_ROW = 10;

/** Output channels of a training run. */
export interface TrainIo extends ProgressSink {
  /** Diagnostics and summaries (stderr in the CLI). */
  info(text: string): void;
}

/** How a run starts. */
export interface TrainRequest {
  cfg: Config;
  /** A new run: where its config came from (written to run.json). Null when resuming. */
  source: RunSource | null;
  /** Resume from the newest checkpoint in cfg.out. */
  resume: boolean;
  /** Replace an existing run in cfg.out (new runs only). */
  overwrite: boolean;
  /** Handle SIGINT/SIGTERM (the CLI: true; tests: false). */
  handleSignals: boolean;
  /**
   * Where the run's printed lines are also recorded: opened on `<out>/train.log` once the run
   * directory is ready (the CLI passes the log its output goes through). Optional.
   */
  log?: RunLog;
  /** Test hook: called after every batch with (epoch 0-based, batch index); may request a stop. */
  afterBatch?: (epoch: number, batch: number) => void | 'sigint' | 'sigterm';
}

/**
 * Loads the config of a run to resume and checks that its config file has not changed since.
 * @param out the run directory.
 * @param epochs a new total number of epochs (--epochs), or undefined to keep it.
 * @param force resume even when the config file changed.
 * @throws UserError when the run cannot be resumed (no run, finished and not extended, config changed).
 */
export function prepareResume(out: string, epochs: number | undefined, force: boolean): Config {
  const p = runPaths(out);
  if (!existsSync(p.config)) throw new UserError(`--resume ${out}: no run there (no ${p.config})`);
  let cfg = validateConfig(readJson(p.config), p.config);
  if (existsSync(p.source) && !force) {
    const src = readJson<RunSource>(p.source);
    if (existsSync(src.configFile)) {
      const now = absoluteDataPaths(loadConfig(src.configFile, { overrides: src.overrides }), src.cwd);
      now.out = cfg.out;
      now.train.epochs = cfg.train.epochs;
      if (JSON.stringify(now) !== JSON.stringify(cfg)) {
        throw new UserError(`--resume ${out}: ${src.configFile} (or a file it extends) changed since the run started; resume anyway with --force (the run keeps its own config.json)`);
      }
    }
  }
  const done = readStatus(out)?.epoch ?? 0;
  if (epochs !== undefined && epochs < done) {
    throw new UserError(`--resume ${out} --epochs ${epochs}: the run has already trained ${done} epochs; --epochs sets the new total and must be at least ${done}`);
  }
  if (epochs !== undefined) cfg = { ...cfg, train: { ...cfg.train, epochs } };
  cfg.out = out;
  return cfg;
}

/**
 * The batches of an epoch, said once at the start: `390 batches of 128 per epoch, the last 80 samples
 * unused each epoch` (the last partial batch is dropped, as MXNet's iterator did), or `2 batches of 16
 * per epoch` when they divide evenly.
 */
export function batchesText(samples: number, batches: number, batchSize: number): string {
  const unused = samples - batches * batchSize;
  const each = `${plural(batches, 'batch', 'batches')} of ${batchSize} per epoch`;
  return unused > 0 ? `${each}, the last ${plural(unused, 'sample')} unused each epoch` : each;
}

function fmtPct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}

/**
 * Runs (or resumes) training to `cfg.train.epochs`.
 * @returns the process exit code: 0 finished, 130/143 interrupted by SIGINT/SIGTERM (checkpoint written).
 * @throws UserError for bad input, and with exit code 3 when the loss becomes NaN/infinite.
 */
export async function runTraining(req: TrainRequest, io: TrainIo): Promise<number> {
  const { cfg } = req;
  const out = cfg.out!;

  // Refusals first, then the data (a wrong --data-dir or a damaged file), and only then any write
  // to the run directory: a mistake leaves nothing behind that would block the corrected command.
  if (req.resume) assertNotTraining(out);
  else assertCanStartNewRun(out, req.overwrite);
  assertMemoryFits(cfg, 'train');
  let train: DataPipeline | null = null;
  let val: DataPipeline | null = null;
  let model: { net: ResNet; opt: SGD } | null = null;
  const interrupts = new Interrupts(io, out, req.handleSignals);
  try {
    const note = (l: string) => io.info(`mixup: note: ${l}`);
    const tr = (train = await openPipeline(cfg, 'train', undefined, { warn: note }));
    const va = (val = await openPipeline(cfg, 'val', undefined, { warn: note }));
    if (tr.batchesPerEpoch === 0) {
      throw new UserError(`data: ${tr.numSamples} training samples make no full batch of train.batchSize ${cfg.train.batchSize}`);
    }
    const setup = await setupRun(req, io);
    model = setup;
    req.log?.open(runPaths(out).log);
    const { net, opt, start, sums } = setup;
    const epochs = cfg.train.epochs;
    if (start.epoch >= epochs) {
      io.info(`${out}: already trained ${start.epoch} of ${epochs} epochs; nothing to do (raise the total with --epochs N)`);
      writeStatus(out, { status: 'finished', epoch: start.epoch, epochs, host: hostname() });
      return 0;
    }
    io.info(
      `model: ResNet-${cfg.model.depth}, ${net.parameterCount().toLocaleString('en-US')} trainable parameters; ` +
        `experiment ${describeExperiment(cfg)}${cfg.train.labelSmoothing > 0 ? `; label smoothing ε ${cfg.train.labelSmoothing}` : ''}`,
    );
    io.info(`train data: ${tr.description ?? `${tr.numSamples} samples`} (${batchesText(tr.numSamples, tr.batchesPerEpoch, cfg.train.batchSize)})`);
    if (tr.labelNoise) io.info(describeLabelNoise(tr.labelNoise.noise, cfg.model.numClasses));
    io.info(`val data: ${va.description ?? `${va.numSamples} samples`}`);
    io.info(`run directory: ${resolve(out)}`);
    return await epochLoop(req, io, interrupts, net, opt, tr, va, start, sums);
  } catch (e) {
    if (!(e instanceof UserError && e.exitCode === EXIT_NAN)) {
      try {
        const st = readStatus(out);
        if (st?.status === 'running' && st.pid === process.pid) {
          writeStatus(out, { ...st, status: 'failed', pid: undefined, message: e instanceof Error ? e.message : String(e) });
        }
      } catch {
        // the error that stopped the run is what the user must see; a status.json that cannot be
        // written (or read) names a pid that is gone by then, which --resume copes with
      }
    }
    throw e;
  } finally {
    await train?.close();
    await val?.close();
    model?.net.dispose();
    model?.opt.dispose();
    interrupts.dispose();
  }
}

/**
 * Prepares the run directory and the model: a new run (config.json, run.json, fresh weights) or a
 * resumed one (newest checkpoint's weights, momentum and position; curves.csv cut back to it).
 */
async function setupRun(req: TrainRequest, io: TrainIo): Promise<{ net: ResNet; opt: SGD; start: CheckpointPosition; sums: EpochSums }> {
  const { cfg } = req;
  const out = cfg.out!;
  const paths = runPaths(out);
  const newOptimizer = (net: ResNet) => new SGD(net, { momentum: cfg.train.momentum, wd: cfg.train.wd });
  if (!req.resume) {
    prepareNewRun(out, req.overwrite);
    writeJsonAtomic(paths.config, cfg);
    if (req.source) writeJsonAtomic(paths.source, req.source);
    const net = buildNet(cfg);
    return { net, opt: newOptimizer(net), start: { epoch: 0, batch: 0 }, sums: emptySums() };
  }
  const was = readStatus(out);
  if (was?.status === 'running' && was.pid !== undefined && was.pid !== process.pid) {
    io.info(`resume: status.json says pid ${was.pid} was training, but that process is gone (kill -9, crash, power loss?); going on from the last complete checkpoint`);
  }
  cleanCheckpoints(out);
  writeJsonAtomic(paths.config, cfg);
  if (listCheckpoints(out).length === 0) {
    io.info(`resume: ${out} has no checkpoint yet; starting from epoch 1`);
    truncateCurves(paths.curves, 0);
    const net = buildNet(cfg);
    return { net, opt: newOptimizer(net), start: { epoch: 0, batch: 0 }, sums: emptySums() };
  }
  const ck = findCheckpoint(out);
  const loaded = await loadCheckpointNet(ck.dir);
  const opt = newOptimizer(loaded.net);
  try {
    await loadOptimizerState(ck.dir, opt);
  } catch (e) {
    loaded.net.dispose();
    opt.dispose();
    throw e;
  }
  const start = { epoch: loaded.state.epoch, batch: loaded.state.batch };
  io.info(`resume: from ${ck.dir} (${start.batch > 0 ? `epoch ${start.epoch + 1}, after batch ${start.batch}` : `end of epoch ${start.epoch}`})`);
  const kept = truncateCurves(paths.curves, start.epoch);
  if (kept !== start.epoch && existsSync(paths.curves)) io.info(`resume: curves.csv holds ${kept} epochs, checkpoint ${start.epoch}`);
  return { net: loaded.net, opt, start, sums: loaded.state.sums };
}

async function epochLoop(
  req: TrainRequest,
  io: TrainIo,
  interrupts: Interrupts,
  net: ResNet,
  opt: SGD,
  train: DataPipeline,
  val: DataPipeline,
  start: CheckpointPosition,
  startSums: EpochSums,
): Promise<number> {
  const { cfg } = req;
  const out = cfg.out!;
  const paths = runPaths(out);
  const epochs = cfg.train.epochs;
  const placement = mixupPlacement(cfg);

  const checkpoint = async (pos: CheckpointPosition, sums: EpochSums, lr: number): Promise<string> => {
    const state: CheckpointState = { ...pos, sums, lr, random: 'derived from (train.seed, stream, epoch, batch); no state saved', created: new Date().toISOString() };
    const dir = await writeCheckpoint(out, pos, (tmp) => saveCheckpoint(tmp, net, opt, state, cfg));
    pruneCheckpoints(out, cfg.train.keepCheckpoints, cfg.train.keepEpochs);
    return dir;
  };

  const interrupted = async (pos: CheckpointPosition, sums: EpochSums, lr: number, haveCheckpoint: string | null): Promise<number> => {
    const sig = interrupts.request!;
    const dir = haveCheckpoint ?? (await checkpoint(pos, sums, lr));
    const what = pos.batch > 0 ? `partial epoch ${pos.epoch + 1} (${plural(pos.batch, 'batch', 'batches')} done)` : `end of epoch ${pos.epoch}`;
    writeStatus(out, { status: 'interrupted', epoch: pos.epoch, epochs, message: `${sig.toUpperCase()} at ${what}` });
    io.info(`interrupted: checkpoint of the ${what} in ${dir}`);
    io.info(`resume with: npx mixup train --resume ${out}`);
    return sig === 'sigint' ? EXIT_SIGINT : EXIT_SIGTERM;
  };

  writeStatus(out, { status: 'running', epoch: start.epoch, epochs, pid: process.pid, host: hostname() });
  let sums = startSums;
  let skippedInARow = 0;
  const readEvery = cfg.train.readEvery ?? defaultReadEvery();
  const clock = new RunClock(epochs, train.batchesPerEpoch, cfg.train.batchSize, val.numSamples);
  let announce: ((text: string) => void) | null = (text) => io.info(text);
  for (let epoch = start.epoch; epoch < epochs; epoch++) {
    const lr = learningRate(epoch, cfg.train);
    const fromBatch = epoch === start.epoch ? start.batch : 0;
    if (fromBatch === 0) sums = emptySums();
    const progress = new EpochProgress(io, epoch + 1, epochs, train.batchesPerEpoch - fromBatch, cfg.train.logEvery, fromBatch, clock, announce);
    announce = null; // the estimate is announced once, within the first epoch this process runs
    const t0 = performance.now();
    // Steps are queued without waiting for the device; their figures are read `readEvery` steps at
    // a time (and before any checkpoint), in order, where the NaN policy and the sums see them.
    let queued: { step: PendingStep; index: number; size: number }[] = [];
    const readQueued = async (): Promise<void> => {
      const batches = queued;
      queued = [];
      const results = await settleSteps(batches.map((q) => q.step));
      batches.forEach((q, i) => {
        const r = results[i]!;
        if (!r.updated) {
          const where = `epoch ${epoch + 1}, batch ${q.index + 1}`;
          if (cfg.train.nanPolicy === 'skip-batch' && ++skippedInARow < MAX_SKIPPED_IN_A_ROW) {
            io.info(`loss is ${r.loss} at ${where}: batch skipped (${skippedInARow} in a row)`);
          } else {
            progress.stop();
            const last = listCheckpoints(out).pop();
            const keep = last ? `the last good checkpoint is ${last.dir}` : 'no checkpoint was written yet';
            const msg = `loss is ${r.loss} at ${where}${skippedInARow > 0 ? ` (${skippedInARow} batches in a row)` : ''}; stopped, ${keep}`;
            writeStatus(out, { status: 'failed', epoch, epochs, message: msg });
            throw new UserError(msg, EXIT_NAN);
          }
        } else {
          skippedInARow = 0;
          sums.lossSum += r.loss * q.size;
          sums.correct += r.correct;
          sums.samples += q.size;
        }
        progress.update(q.index, q.size, sums.samples > 0 ? sums.lossSum / sums.samples : NaN);
      });
    };
    try {
      for await (const b of train.epoch(epoch, fromBatch)) {
        const images = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
        try {
          // Training batches are always full (the last partial one is dropped): b.size splits into the shards.
          const { shards } = cfg.train;
          const image = { height: b.height, width: b.width };
          const plan = placement ? planMixShards(b.size, shards, cfg.mixup, uniformStream(cfg.train.seed, 'mixup', epoch, b.index), image) : null;
          const stepOptions = { lr, gradScale: cfg.train.gradScale, loss: cfg.loss, labelSmoothing: cfg.train.labelSmoothing, shards };
          queued.push({ step: trainStep(net, opt, images, b.labels, plan, stepOptions), index: b.index, size: b.size });
        } finally {
          images.dispose();
        }
        if (queued.length >= readEvery) await readQueued();
        const hook = req.afterBatch?.(epoch, b.index);
        if (hook) interrupts.request = hook;
        // Batches can follow each other without a turn of the event loop (cached data, no worker threads),
        // and a signal handler runs only on such a turn: give it one after every batch.
        if (req.handleSignals) await new Promise<void>((r) => setImmediate(r));
        if (interrupts.request !== null && b.index + 1 < train.batchesPerEpoch) {
          await readQueued();
          progress.stop();
          sums.seconds += (performance.now() - t0) / 1000;
          return await interrupted({ epoch, batch: b.index + 1 }, sums, lr, null);
        }
      }
      await readQueued();
    } finally {
      for (const q of queued) tf.dispose([q.step.loss, q.step.correct]);
    }
    progress.stop();
    sums.seconds += (performance.now() - t0) / 1000;

    const calibration = new CalibrationAccumulator();
    const evalProgress = new EvalProgress(io, `epoch ${epoch + 1}/${epochs}`);
    const ev = await evaluate(net, val, { onBatch: (p, l, k) => calibration.add(p, l, k), onProgress: evalProgress.update });
    const cal = calibration.result();
    // round(p·N) can be 0 on a tiny split: then there is nothing to measure and the cells stay empty
    const mem = train.labelNoise?.noise.indices.length ? await measureMemorisation(net, train.labelNoise) : null;
    clock.evalDone(evalProgress.stop()); // the memorisation pass counts as evaluation time
    const row = {
      epoch: epoch + 1,
      lr,
      train_loss: sums.samples > 0 ? sums.lossSum / sums.samples : NaN,
      train_acc: sums.samples > 0 ? sums.correct / sums.samples : NaN,
      val_loss: ev.loss,
      val_acc: ev.accuracy,
      epoch_seconds: sums.seconds,
      samples_per_sec: sums.seconds > 0 ? sums.samples / sums.seconds : 0,
      ...(mem ? { corrupt_noisy_acc: mem.noisyAcc, corrupt_true_acc: mem.trueAcc } : {}),
      val_ece: cal.ece,
      val_mce: cal.mce,
      val_confidence: cal.meanConfidence,
      val_brier: cal.brier,
    };
    await appendCurveRow(paths.curves, row);
    io.line(
      `Epoch[${epoch + 1}/${epochs}] lr=${Number(lr.toPrecision(10))} train_loss=${row.train_loss.toFixed(4)} train_acc=${fmtPct(row.train_acc)} ` +
        `val_loss=${row.val_loss.toFixed(4)} val_acc=${fmtPct(row.val_acc)} val_ece=${fmtPct(cal.ece)} time=${row.epoch_seconds.toFixed(1)}s ` +
        `(${row.samples_per_sec.toFixed(1)} samples/s)` +
        (mem ? ` corrupt_noisy_acc=${fmtPct(mem.noisyAcc)} corrupt_true_acc=${fmtPct(mem.trueAcc)}` : ''),
    );
    let written: string | null = null;
    const kept = cfg.train.keepEpochs.includes(epoch + 1);
    if ((epoch + 1) % cfg.train.checkpointEvery === 0 || kept || epoch + 1 === epochs || interrupts.request !== null) {
      written = await checkpoint({ epoch: epoch + 1, batch: 0 }, emptySums(), lr);
    }
    writeStatus(out, { status: epoch + 1 === epochs ? 'finished' : 'running', epoch: epoch + 1, epochs, pid: process.pid, host: hostname() });
    if (interrupts.request !== null && epoch + 1 < epochs) return await interrupted({ epoch: epoch + 1, batch: 0 }, emptySums(), lr, written);
  }
  io.info(`finished ${plural(epochs, 'epoch')}; curves in ${paths.curves}, checkpoints in ${paths.checkpoints}`);
  return 0;
}
