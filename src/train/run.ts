/**
 * `mixup train`: the epoch loop that wires data → model → mixup → SGD, evaluates after every epoch,
 * writes curves.csv and checkpoints, and survives interruption (resume, Ctrl-C, NaN guard).
 *
 * Recipe as in the MXNet reference (train_cifar10.py / common/fit.py): SGD with momentum and a
 * step learning-rate schedule, one evaluation on the validation set per epoch, BatchNorm in
 * inference mode for evaluation.
 */
import { existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError, firstLine } from '../errors.js';
import { mixupCommand, shellWord } from '../invocation.js';
import { plural } from '../format.js';
import { mixupPlacement, type Config } from '../config/schema.js';
import { openPipeline } from '../data/index.js';
import type { DataPipeline } from '../data/types.js';
import type { Engine } from '../engine/engine.js';
import { createEngine, loadCheckpointEngine } from '../engine/index.js';
import { describeExperiment } from './describe.js';
import { learningRate } from './schedule.js';
import { describeLabelNoise } from '../data/noise.js';
import { appendCurveRow, readCurves, truncateCurves } from '../rundir/curves.js';
import { bestEpoch } from '../rundir/best.js';
import { checkpointBytes, diskUseLine } from './diskuse.js';
import { TrainDataStopped, checkpointDue, curveRow, epochLine, epochStatus, evaluateEpoch, trainEpoch, type EpochContext, type TrainIo } from './epoch.js';
import { RunClock } from './eta.js';
import { nothingToDo } from './resume.js';
import { curvesForEvents, RunEvents, tensorboardDir } from './events.js';
import type { RunLog } from '../rundir/log.js';
import {
  emptySums,
  loadNewestCheckpoint,
  loadOptimizerState,
  saveCheckpoint,
  type CheckpointState,
  type EpochSums,
} from '../rundir/checkpoint.js';
import {
  assertCanStartNewRun,
  assertNotTraining,
  checkpointName,
  cleanCheckpoints,
  listCheckpoints,
  prepareNewRun,
  pruneCheckpoints,
  readStatus,
  runPaths,
  setAsideCheckpoint,
  writeCheckpoint,
  writeJsonAtomic,
  writeStatus,
  type CheckpointPosition,
  type RunSource,
} from '../rundir/rundir.js';
import { Interrupts } from './interrupts.js';
import { EXIT_NAN, EXIT_SIGINT, EXIT_SIGTERM } from '../exitcodes.js';
import { assertMemoryFits } from '../engine/memoryfit.js';

export { EXIT_NAN } from '../exitcodes.js';

/** Steps queued between reads on a GPU engine when `train.readEvery` is null (1 on the CPU, see epochLoop). */
export const GPU_READ_EVERY = 8;

export { MAX_SKIPPED_IN_A_ROW, type TrainIo } from './epoch.js';

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

export { prepareResume } from './resume.js';

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
  let model: { engine: Engine } | null = null;
  let events: RunEvents | null = null;
  const interrupts = new Interrupts(
    {
      // io.info clears a progress bar's row before the line (the CLI's sink, progress.ts aboveBars)
      info: (text) => io.info(text),
      beforeExit: (sig) => {
        const st = readStatus(out);
        if (st) writeStatus(out, { ...st, status: 'interrupted', pid: undefined, message: `second ${sig.toUpperCase()}: stopped without a checkpoint of the epoch in progress` });
      },
    },
    req.handleSignals,
  );
  try {
    const note = (l: string) => io.info(`mixup: note: ${l}`);
    const tr = (train = await openPipeline(cfg, 'train', undefined, { warn: note }));
    const va = (val = await openPipeline(cfg, 'val', undefined, { warn: note }));
    // A damaged image is found now, not when an epoch reaches it (the decoded images fill the cache
    // that the first epoch would fill anyway); with data.skipUndecodable a bad training one is said now.
    const unreadable = (await tr.check?.()) ?? [];
    await va.check?.();
    if (tr.batchesPerEpoch === 0) {
      throw new UserError(`data: ${tr.numSamples} training samples make no full batch of train.batchSize ${cfg.train.batchSize}`);
    }
    const setup = await setupRun(req, io, tr.batchesPerEpoch);
    model = setup;
    req.log?.open(runPaths(out).log);
    const { engine, start, sums } = setup;
    if (!req.resume) rmSync(tensorboardDir(out), { recursive: true, force: true }); // --overwrite: the old run's events go too
    if (cfg.train.tensorboard) events = new RunEvents(out, tr.batchesPerEpoch, cfg.train.logEvery, req.resume ? start : null, undefined, req.resume ? curvesForEvents(runPaths(out).curves) : []);
    if (events) for (const l of events.resumeLines(tensorboardDir(out))) io.info(l);
    const epochs = cfg.train.epochs;
    if (start.epoch >= epochs) {
      io.info(nothingToDo(out, start.epoch, epochs));
      writeStatus(out, { status: 'finished', epoch: start.epoch, epochs, host: hostname() });
      return 0;
    }
    io.info(
      `model: ${engine.spec.label}, ${engine.parameterCount().toLocaleString('en-US')} trainable parameters; ` +
        `experiment ${describeExperiment(cfg)}${cfg.train.labelSmoothing > 0 ? `; label smoothing ε ${cfg.train.labelSmoothing}` : ''}`,
    );
    io.info(`train data: ${tr.description ?? `${tr.numSamples} samples`} (${batchesText(tr.numSamples, tr.batchesPerEpoch, cfg.train.batchSize)})`);
    if (tr.labelNoise) io.info(describeLabelNoise(tr.labelNoise.noise, cfg.model.numClasses));
    for (const u of unreadable.filter((u) => !u.heldOut)) io.info(`data: ${u.reason}: skipped in every epoch (data.skipUndecodable: another sample of its batch takes its place)`);
    const heldBad = unreadable.filter((u) => u.heldOut === true);
    for (const u of heldBad) io.info(`data: ${u.reason}: a held-out image (data.holdout), replaced in every holdout evaluation (data.skipUndecodable: another held-out image of its batch takes its place)`);
    if (heldBad.length > 0) io.info(`data: ${heldBad.length} of ${tr.holdout?.numSamples ?? '?'} held-out images cannot be read; holdout_* figures count their replacements (data.skipUndecodable)`);
    io.info(`val data: ${va.description ?? `${va.numSamples} samples`}`);
    io.info(diskUseLine(cfg, checkpointBytes(await engine.readWeights(), await engine.readOptimizerState()), runPaths(out).checkpoints));
    io.info(`run directory: ${resolve(out)}`);
    return await epochLoop(req, io, interrupts, engine, tr, va, start, sums, events, new Set(unreadable.filter((u) => !u.heldOut).map((u) => u.sample)));
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
    model?.engine.dispose();
    events?.close();
    interrupts.dispose();
  }
}

/**
 * Prepares the run directory and the model: a new run (config.json, run.json, fresh weights) or a
 * resumed one (newest checkpoint's weights, momentum and position; curves.csv cut back to it).
 */
async function setupRun(req: TrainRequest, io: TrainIo, batchesPerEpoch: number): Promise<{ engine: Engine; start: CheckpointPosition; sums: EpochSums }> {
  const { cfg } = req;
  const out = cfg.out!;
  const paths = runPaths(out);
  if (!req.resume) {
    prepareNewRun(out, req.overwrite);
    writeJsonAtomic(paths.config, cfg);
    if (req.source) writeJsonAtomic(paths.source, req.source);
    return { engine: createEngine(cfg), start: { epoch: 0, batch: 0 }, sums: emptySums() };
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
    return { engine: createEngine(cfg), start: { epoch: 0, batch: 0 }, sums: emptySums() };
  }
  // The newest checkpoint that loads. The damaged ones newer than it are then set aside (never
  // deleted), so that neither pruning nor the next checkpoint of their position replaces them;
  // when none loads, all stay where they are and the resume is refused (again next time).
  const skipped: { name: string; dir: string; reason: string }[] = [];
  let found;
  try {
    found = await loadNewestCheckpoint(
      out,
      async (dir) => {
        const l = await loadCheckpointEngine(dir);
        try {
          l.engine.writeOptimizerState(await loadOptimizerState(dir));
        } catch (e) {
          l.engine.dispose();
          throw e;
        }
        return l;
      },
      (bad, reason) => skipped.push({ name: bad.name, dir: bad.dir, reason }),
    );
  } catch (e) {
    for (const s of skipped) io.info(`resume: ${s.name} does not load (${s.reason})`);
    throw e;
  }
  for (const s of skipped) {
    let aside: string;
    try {
      aside = `set aside as ${setAsideCheckpoint(s.dir)}, not deleted`;
    } catch (e) {
      aside = `left where it is (it cannot be renamed: ${(e as NodeJS.ErrnoException).code ?? firstLine(e)})`;
    }
    io.info(`resume: skipped ${s.name} (${s.reason}); ${aside}`);
  }
  const { ck, value: loaded } = found;
  const start = { epoch: loaded.state.epoch, batch: loaded.state.batch };
  io.info(`resume: from ${ck.dir} (${positionText(start, batchesPerEpoch, 'resume')})`);
  const kept = truncateCurves(paths.curves, start.epoch);
  if (kept !== start.epoch && existsSync(paths.curves)) io.info(`resume: curves.csv holds ${kept} epochs, checkpoint ${start.epoch}`);
  return { engine: loaded.engine, start, sums: loaded.state.sums };
}

/** The command that resumes run `out`, for the lines that say how to go on. */
function resumeCommand(out: string): string {
  return `${mixupCommand()} train --resume ${shellWord(resolve(out))}`;
}

/**
 * The best epoch (rundir/best.ts) among those of run `out` with an end-of-epoch checkpoint, whose
 * checkpoint pruning keeps; one pruned as not best never becomes best again. Null when curves.csv
 * has no such row (or cannot be read: pruning then keeps what keepCheckpoints and keepEpochs say).
 */
function bestSaved(out: string): number | null {
  const saved = new Set(listCheckpoints(out).filter((c) => c.pos.batch === 0).map((c) => c.pos.epoch));
  try {
    return bestEpoch(readCurves(runPaths(out).curves).filter((r) => saved.has(r.epoch)));
  } catch {
    return null;
  }
}

/**
 * Where a checkpoint stands, for the lines that name it: `end of epoch 3`, `partial epoch 4 (120
 * batches done)` / `epoch 4, after batch 120`, or, for an epoch trained but not evaluated (an
 * interrupt during its evaluation; position batch = batches per epoch), `epoch 4 as trained (its
 * evaluation was cut short; --resume redoes it)` / `epoch 4 trained, not evaluated: evaluating it first`.
 */
export function positionText(pos: CheckpointPosition, batchesPerEpoch: number, use: 'checkpoint' | 'resume'): string {
  if (pos.batch === 0) return `end of epoch ${pos.epoch}`;
  if (pos.batch >= batchesPerEpoch) return use === 'checkpoint' ? `epoch ${pos.epoch + 1} as trained (its evaluation was cut short; --resume redoes it)` : `epoch ${pos.epoch + 1} trained, not evaluated: evaluating it first`;
  return use === 'checkpoint' ? `partial epoch ${pos.epoch + 1} (${plural(pos.batch, 'batch', 'batches')} done)` : `epoch ${pos.epoch + 1}, after batch ${pos.batch}`;
}

/**
 * The epochs of a run from `start`: train an epoch, evaluate it, append its curves.csv row and print
 * its line, checkpoint when due; stops early (with a checkpoint) on an interrupt.
 * @returns the exit code: 0, or 130/143 after SIGINT/SIGTERM.
 */
async function epochLoop(
  req: TrainRequest,
  io: TrainIo,
  interrupts: Interrupts,
  engine: Engine,
  train: DataPipeline,
  val: DataPipeline,
  start: CheckpointPosition,
  startSums: EpochSums,
  events: RunEvents | null,
  reportedSkips: Set<number>,
): Promise<number> {
  const { cfg } = req;
  const out = cfg.out!;
  const paths = runPaths(out);
  const epochs = cfg.train.epochs;

  const checkpoint = async (pos: CheckpointPosition, sums: EpochSums, lr: number): Promise<string> => {
    const state: CheckpointState = { ...pos, sums, lr, random: 'derived from (train.seed, stream, epoch, batch); no state saved', created: new Date().toISOString() };
    const dir = await writeCheckpoint(out, pos, async (tmp) => saveCheckpoint(tmp, await engine.readWeights(), await engine.readOptimizerState(), state, cfg));
    pruneCheckpoints(out, cfg.train.keepCheckpoints, cfg.train.keepEpochs, bestSaved(out));
    return dir;
  };

  const interrupted = async (pos: CheckpointPosition, sums: EpochSums, lr: number, haveCheckpoint: string | null): Promise<number> => {
    const sig = interrupts.request!;
    const dir = haveCheckpoint ?? (await checkpoint(pos, sums, lr));
    const what = positionText(pos, train.batchesPerEpoch, 'checkpoint');
    const trained = pos.batch >= train.batchesPerEpoch;
    const when = trained ? `during the evaluation of epoch ${pos.epoch + 1}` : `at ${what}`;
    writeStatus(out, { status: 'interrupted', epoch: pos.epoch, epochs, message: `${sig.toUpperCase()} ${when}` });
    io.info(`interrupted: checkpoint of ${trained ? '' : 'the '}${what} in ${dir}`);
    io.info(`resume with: ${resumeCommand(out)}`);
    return sig === 'sigint' ? EXIT_SIGINT : EXIT_SIGTERM;
  };

  writeStatus(out, { status: 'running', epoch: start.epoch, epochs, pid: process.pid, host: hostname() });
  // On a GPU, reading after every step would leave the device idle while JavaScript waits; on the
  // CPU backends kernels run at dispatch anyway, so reading every step keeps progress current.
  const ctx: EpochContext = {
    cfg,
    io,
    engine,
    train,
    val,
    interrupts,
    handleSignals: req.handleSignals,
    afterBatch: req.afterBatch,
    events,
    readEvery: cfg.train.readEvery ?? (engine.onGpu ? GPU_READ_EVERY : 1),
    clock: new RunClock(epochs, train.batchesPerEpoch, cfg.train.batchSize, val.numSamples),
    skippedInARow: 0,
    reportedSkips,
  };
  let sums = startSums;
  let announce: ((text: string) => void) | null = (text) => io.info(text);
  for (let epoch = start.epoch; epoch < epochs; epoch++) {
    const lr = learningRate(epoch, cfg.train);
    const fromBatch = epoch === start.epoch ? start.batch : 0;
    if (fromBatch === 0) sums = emptySums();
    let stoppedAfter: number | null;
    try {
      stoppedAfter = await trainEpoch(ctx, epoch, fromBatch, lr, sums, announce);
    } catch (e) {
      if (!(e instanceof TrainDataStopped)) throw e;
      // An unreadable record: keep the batches trained so far (a checkpoint as Ctrl-C writes), say
      // how to go on, and stop with the data's error (exit 2).
      const pos = { epoch, batch: e.batchesDone };
      // nothing trained since the checkpoint of this position (resumed there, or the epoch's first
      // batch failed): that one stands
      const have = e.batchesDone === fromBatch && listCheckpoints(out).some((c) => c.pos.epoch === pos.epoch && c.pos.batch === pos.batch);
      const dir = have ? join(paths.checkpoints, checkpointName(pos)) : await checkpoint(pos, sums, lr);
      io.info(`stopped by unreadable training data at epoch ${epoch + 1}, batch ${e.batchesDone + 1}: checkpoint of the ${positionText(pos, train.batchesPerEpoch, 'checkpoint')} in ${dir}`);
      io.info(`resume with: ${resumeCommand(out)} (once the file is repaired; or let it skip unreadable records: ${resumeCommand(out)} --set data.skipUndecodable=true)`);
      throw e.dataError;
    }
    // the estimate is announced once, within the first epoch this process trains batches of
    if (fromBatch < train.batchesPerEpoch) announce = null;
    if (stoppedAfter !== null) return await interrupted({ epoch, batch: stoppedAfter }, sums, lr, null);

    let evaluation;
    try {
      evaluation = await evaluateEpoch(ctx, epoch);
    } catch (e) {
      if (!(e instanceof UserError && e.exitCode === 2)) throw e;
      // An unreadable record in an evaluation (the holdout, the clean training images): the epoch's
      // training is kept as an interrupt during the evaluation keeps it, and --resume evaluates it again.
      const pos = { epoch, batch: train.batchesPerEpoch };
      const dir = await checkpoint(pos, sums, lr);
      io.info(`stopped by unreadable data in the evaluation of epoch ${epoch + 1}: checkpoint of ${positionText(pos, train.batchesPerEpoch, 'checkpoint')} in ${dir}`);
      io.info(`resume with: ${resumeCommand(out)} (once the file is repaired; or let it skip unreadable records: ${resumeCommand(out)} --set data.skipUndecodable=true)`);
      throw e;
    }
    // An interrupt during the evaluation: the epoch's training is kept (a checkpoint at its last
    // batch, sums and all), and --resume evaluates it again.
    if (evaluation === null) return await interrupted({ epoch, batch: train.batchesPerEpoch }, sums, lr, null);
    const row = curveRow(epoch + 1, lr, sums, evaluation);
    await appendCurveRow(paths.curves, row);
    events?.epoch(row);
    io.line(epochLine(row, epochs, evaluation, mixupPlacement(cfg) !== null, sums.skipped));
    const written = checkpointDue(epoch + 1, epochs, cfg.train, interrupts.request !== null) ? await checkpoint({ epoch: epoch + 1, batch: 0 }, emptySums(), lr) : null;
    writeStatus(out, epochStatus(epoch + 1, epochs));
    if (interrupts.request !== null && epoch + 1 < epochs) return await interrupted({ epoch: epoch + 1, batch: 0 }, emptySums(), lr, written);
  }
  io.info(`finished ${plural(epochs, 'epoch')}; curves in ${paths.curves}, checkpoints in ${paths.checkpoints}`);
  return 0;
}
