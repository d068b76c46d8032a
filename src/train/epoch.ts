/**
 * One epoch of `mixup train`, in the three parts the run loop (run.ts `epochLoop`) strings together:
 * training over the batches ({@link trainEpoch}: queue steps on the engine, read them in groups,
 * the NaN policy, interrupts), evaluating ({@link evaluateEpoch}: validation top-1, loss and
 * calibration, memorisation of corrupted labels), and the pure bookkeeping between them (the
 * curves.csv row, the epoch line, whether a checkpoint is due).
 */
import { hostname } from 'node:os';
import { UserError } from '../errors.js';
import { EXIT_NAN } from '../exitcodes.js';
import { pct } from '../format.js';
import type { Config } from '../config/schema.js';
import type { Batch, DataPipeline } from '../data/types.js';
import type { Engine, QueuedStep } from '../engine/engine.js';
import { planMixShards } from '../mixup/plan.js';
import { mixupPlacement } from '../config/schema.js';
import { uniformStream } from '../random.js';
import { signalTurn } from '../turn.js';
import { EvaluationStopped, evaluate, type Evaluation } from '../evaluate/evaluate.js';
import { measureMemorisation, type Memorisation } from '../evaluate/memorise.js';
import { CalibrationAccumulator, type Calibration } from '../evaluate/calibration.js';
import { calibrationFigures, fitTemperature, LogitSet, temperatureAtBound } from '../evaluate/temperature.js';
import type { CurveRow } from '../rundir/curves.js';
import type { EpochSums } from '../rundir/checkpoint.js';
import { listCheckpoints, writeStatus } from '../rundir/rundir.js';
import { EpochProgress, EvalProgress, type ProgressSink } from './progress.js';
import type { RunClock } from './eta.js';
import type { RunEvents } from './events.js';
import type { Interrupts } from './interrupts.js';

/** Batches in a row that `nanPolicy: skip-batch` tolerates before stopping. */
export const MAX_SKIPPED_IN_A_ROW = 10;

/** Output channels of a training run. */
export interface TrainIo extends ProgressSink {
  /** Diagnostics and summaries (stderr in the CLI). */
  info(text: string): void;
}

/** What every epoch of one run shares. */
export interface EpochContext {
  cfg: Config;
  io: TrainIo;
  engine: Engine;
  train: DataPipeline;
  val: DataPipeline;
  interrupts: Interrupts;
  /** Give signal handlers a turn of the event loop after every batch (the CLI). */
  handleSignals: boolean;
  /** Test hook: called after every batch with (epoch 0-based, batch index); may request a stop. */
  afterBatch?: (epoch: number, batch: number) => void | 'sigint' | 'sigterm';
  /** TensorBoard events of the run (`train.tensorboard`), or null. */
  events?: RunEvents | null;
  /** Steps queued between two reads of their figures. */
  readEvery: number;
  clock: RunClock;
  /** Non-finite losses skipped in a row so far (`nanPolicy: skip-batch`), across epochs. */
  skippedInARow: number;
  /** Training samples already said to be skipped as unreadable (`data.skipUndecodable`): each is said once. */
  reportedSkips: Set<number>;
}

/**
 * A training batch could not be read (an undecodable record, without `data.skipUndecodable`): the
 * epoch stopped after `batchesDone` batches, all settled and in the sums, so the run can checkpoint
 * the partial epoch as an interrupt does. `dataError` is the data's UserError, naming file and record.
 */
export class TrainDataStopped extends Error {
  constructor(
    readonly batchesDone: number,
    readonly dataError: UserError,
  ) {
    super(dataError.message);
    this.name = 'TrainDataStopped';
  }
}

/**
 * Trains one epoch from batch `fromBatch`: queues every step on the engine without waiting for the
 * device and reads their figures `ctx.readEvery` steps at a time (and before returning), in order,
 * where the NaN policy and the sums see them. Adds to `sums` (loss, correct, samples, seconds).
 * @param announce prints the time estimate once, or null when it was already printed.
 * @returns null when the epoch ran to its end, or the number of batches done when an interrupt
 *   (a signal or the test hook) stopped it before its last batch.
 * @throws UserError (exit code 3) when a loss is not finite and the NaN policy stops the run;
 *   status.json then says so. {@link TrainDataStopped} when a batch cannot be read.
 */
export async function trainEpoch(
  ctx: EpochContext,
  epoch: number,
  fromBatch: number,
  lr: number,
  sums: EpochSums,
  announce: ((text: string) => void) | null,
): Promise<number | null> {
  const { cfg, io, engine, train } = ctx;
  const out = cfg.out!;
  const epochs = cfg.train.epochs;
  const placement = mixupPlacement(cfg);
  const progress = new EpochProgress(io, epoch + 1, epochs, train.batchesPerEpoch - fromBatch, cfg.train.logEvery, fromBatch, ctx.clock, announce);
  const t0 = performance.now();
  let queued: { step: QueuedStep; index: number; size: number }[] = [];
  const readQueued = async (): Promise<void> => {
    const batches = queued;
    queued = [];
    const results = await engine.settle(batches.map((q) => q.step));
    const read = { at: performance.now(), samples: batches.reduce((n, q) => n + q.size, 0) };
    batches.forEach((q, i) => {
      const r = results[i]!;
      if (!r.updated) {
        const where = `epoch ${epoch + 1}, batch ${q.index + 1}`;
        if (cfg.train.nanPolicy === 'skip-batch' && ++ctx.skippedInARow < MAX_SKIPPED_IN_A_ROW) {
          io.info(`loss is ${r.loss} at ${where}: batch skipped (${ctx.skippedInARow} in a row)`);
        } else {
          progress.stop();
          const last = listCheckpoints(out).pop();
          const keep = last ? `the last good checkpoint is ${last.dir}` : 'no checkpoint was written yet';
          const msg = `loss is ${r.loss} at ${where}${ctx.skippedInARow > 0 ? ` (${ctx.skippedInARow} batches in a row)` : ''}; stopped, ${keep}`;
          writeStatus(out, { status: 'failed', epoch, epochs, message: msg });
          throw new UserError(msg, EXIT_NAN);
        }
      } else {
        ctx.skippedInARow = 0;
        sums.lossSum += r.loss * q.size;
        sums.correct += r.correct;
        sums.samples += q.size;
        ctx.events?.batch(epoch, q.index, r.loss, q.size, lr);
      }
      progress.update(q.index, q.size, sums.samples > 0 ? sums.lossSum / sums.samples : NaN, read);
    });
  };
  const batches = train.epoch(epoch, fromBatch)[Symbol.asyncIterator]();
  let done = fromBatch;
  try {
    for (;;) {
      let next: IteratorResult<Batch>;
      try {
        next = await batches.next();
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        // the steps queued so far are good: settle them into the sums, then stop with what was done
        await readQueued();
        progress.stop();
        sums.seconds += (performance.now() - t0) / 1000;
        throw new TrainDataStopped(done, e);
      }
      if (next.done) break;
      const b = next.value;
      for (const s of b.skipped ?? []) {
        sums.skipped = (sums.skipped ?? 0) + 1;
        if (!ctx.reportedSkips.has(s.sample)) {
          ctx.reportedSkips.add(s.sample);
          io.info(`data: skipped ${s.reason} (epoch ${epoch + 1}, batch ${b.index + 1}; data.skipUndecodable: another sample of the batch took its place)`);
        }
      }
      // Training batches are always full (the last partial one is dropped): b.size splits into the shards.
      const { shards } = cfg.train;
      const image = { height: b.height, width: b.width };
      const plan = placement ? planMixShards(b.size, shards, cfg.mixup, uniformStream(cfg.train.seed, 'mixup', epoch, b.index), image) : null;
      const stepOptions = { lr, gradScale: cfg.train.gradScale, loss: cfg.loss, labelSmoothing: cfg.train.labelSmoothing, shards };
      queued.push({ step: engine.trainStep(b, plan, stepOptions), index: b.index, size: b.size });
      if (queued.length >= ctx.readEvery) await readQueued();
      done = b.index + 1;
      const hook = ctx.afterBatch?.(epoch, b.index);
      if (hook) ctx.interrupts.request = hook;
      // Batches can follow each other without a turn of the event loop (cached data, no worker threads),
      // and a signal handler runs only on such a turn: give it one after every batch.
      if (ctx.handleSignals) await signalTurn();
      if (ctx.interrupts.request !== null && b.index + 1 < train.batchesPerEpoch) {
        await readQueued();
        progress.stop();
        sums.seconds += (performance.now() - t0) / 1000;
        return b.index + 1;
      }
    }
    await readQueued();
  } finally {
    engine.discard(queued.map((q) => q.step));
    // an error (a damaged record, a device loss) must not leave the bar drawn: its timer would keep
    // redrawing it over the error line and keep the process alive
    progress.stop();
    await batches.return?.(undefined);
  }
  progress.stop();
  sums.seconds += (performance.now() - t0) / 1000;
  return null;
}

/** What {@link evaluateEpoch} measures. */
export interface EpochEvaluation {
  ev: Evaluation;
  cal: Calibration;
  /** Memorisation of the corrupted training labels, or null without label noise (or none corrupted). */
  mem: Memorisation | null;
  /**
   * `data.holdout`: the held-out images' evaluation and calibration, the temperature fitted on them
   * and the validation ECE at that temperature; null without a holdout.
   */
  holdout: { ev: Evaluation; cal: Calibration; temperature: number; valEceScaled: number } | null;
  /** `train.cleanTrainEval`: the unmixed evaluation of those training images; null when off. */
  clean: Evaluation | null;
}

/**
 * Evaluates after epoch `epoch` (0-based): the validation split (top-1, loss, calibration) and,
 * with label noise, the corrupted training samples; the memorisation pass counts as evaluation
 * time in the run's clock. Yields to the event loop after every batch, so that signals are seen.
 * @returns null when an interrupt was pending before a batch or arrived during one (the
 *   evaluation stops after that batch; nothing is left queued).
 */
export async function evaluateEpoch(ctx: EpochContext, epoch: number): Promise<EpochEvaluation | null> {
  const calibration = new CalibrationAccumulator();
  const evalProgress = new EvalProgress(ctx.io, `epoch ${epoch + 1}/${ctx.cfg.train.epochs}`, 'evaluating', ctx.clock);
  const shouldStop = () => ctx.interrupts.request !== null;
  const k = ctx.engine.options.numClasses;
  const held = ctx.train.holdout;
  const valLogits = held ? new LogitSet(k) : null;
  try {
    const ev = await evaluate(ctx.engine, ctx.val, {
      onBatch: (p, l, k, _pred, z) => (calibration.add(p, l, k), valLogits?.add(z, l)),
      onProgress: evalProgress.update,
      shouldStop,
    });
    const cal = calibration.result();
    let holdout: EpochEvaluation['holdout'] = null;
    if (held) {
      const heldCal = new CalibrationAccumulator();
      const heldLogits = new LogitSet(k);
      const hev = await evaluate(ctx.engine, held, { onBatch: (p, l, k, _pred, z) => (heldCal.add(p, l, k), heldLogits.add(z, l)), shouldStop });
      const h = heldLogits.get();
      const temperature = h.labels.length > 0 && Number.isFinite(hev.loss) ? fitTemperature(h.logits, h.labels, k) : NaN;
      const v = valLogits!.get();
      const valEceScaled = Number.isFinite(temperature) ? calibrationFigures(v.logits, v.labels, k, temperature).ece : NaN;
      holdout = { ev: hev, cal: heldCal.result(), temperature, valEceScaled };
    }
    const clean = ctx.train.cleanTrain ? await evaluate(ctx.engine, ctx.train.cleanTrain, { shouldStop }) : null;
    // round(p·N) can be 0 on a tiny split: then there is nothing to measure and the cells stay empty
    const noise = ctx.train.labelNoise;
    const mem = noise?.noise.indices.length ? await measureMemorisation(ctx.engine, noise, { shouldStop }) : null;
    ctx.clock.evalDone(evalProgress.stop());
    return { ev, cal, mem, holdout, clean };
  } catch (e) {
    evalProgress.stop();
    if (e instanceof EvaluationStopped) return null;
    throw e;
  }
}

/** The curves.csv row of a finished epoch (`epoch` 1-based). */
export function curveRow(epoch: number, lr: number, sums: EpochSums, e: EpochEvaluation): CurveRow {
  const { ev, cal, mem, holdout, clean } = e;
  return {
    epoch,
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
    ...(holdout
      ? { holdout_loss: holdout.ev.loss, holdout_acc: holdout.ev.accuracy, holdout_ece: holdout.cal.ece, temperature: holdout.temperature, val_ece_scaled: holdout.valEceScaled }
      : {}),
    ...(clean ? { train_clean_acc: clean.accuracy } : {}),
  };
}

/**
 * The line printed after an epoch: `Epoch[3/200] lr=0.1 train_loss=… train_acc=…% val_acc=…% …`.
 * In a run that mixes, the training accuracy is named `train_acc_majority` (a mixed sample counts
 * when the prediction is its majority label); `train_clean_acc` and the holdout's figures follow
 * when measured (`T=20.000(at search bound)` when the fit stopped at a bound of TEMPERATURE_RANGE); the line ends in ` skipped_records=N` when N unreadable training records were
 * skipped in the epoch (`data.skipUndecodable`).
 */
export function epochLine(row: CurveRow, epochs: number, e: EpochEvaluation, mixes = false, skipped = 0): string {
  const { cal, mem, holdout, clean } = e;
  return (
    `Epoch[${row.epoch}/${epochs}] lr=${Number(row.lr.toPrecision(10))} train_loss=${row.train_loss.toFixed(4)} ${mixes ? 'train_acc_majority' : 'train_acc'}=${pct(row.train_acc)} ` +
    (clean ? `train_clean_acc=${pct(clean.accuracy)} ` : '') +
    `val_loss=${row.val_loss.toFixed(4)} val_acc=${pct(row.val_acc)} val_ece=${pct(cal.ece)} ` +
    (holdout ? `holdout_acc=${pct(holdout.ev.accuracy)} T=${holdout.temperature.toFixed(3)}${temperatureAtBound(holdout.temperature) ? '(at search bound)' : ''} val_ece_scaled=${pct(holdout.valEceScaled)} ` : '') +
    `time=${row.epoch_seconds.toFixed(1)}s (${row.samples_per_sec.toFixed(1)} samples/s)` +
    (mem ? ` corrupt_noisy_acc=${pct(mem.noisyAcc)} corrupt_true_acc=${pct(mem.trueAcc)}` : '') +
    (skipped > 0 ? ` skipped_records=${skipped}` : '')
  );
}

/**
 * Whether a checkpoint is written after epoch `done` (1-based) of `epochs`: every
 * `train.checkpointEvery` epochs, at the epochs `train.keepEpochs` keeps, at the last epoch, and
 * when an interrupt is pending (the run stops after it).
 */
export function checkpointDue(done: number, epochs: number, t: Pick<Config['train'], 'checkpointEvery' | 'keepEpochs'>, interrupted: boolean): boolean {
  return done % t.checkpointEvery === 0 || t.keepEpochs.includes(done) || done === epochs || interrupted;
}

/** status.json of a run that goes on (or has just finished) after epoch `done` (1-based). */
export function epochStatus(done: number, epochs: number): Parameters<typeof writeStatus>[1] {
  return { status: done === epochs ? 'finished' : 'running', epoch: done, epochs, pid: process.pid, host: hostname() };
}
