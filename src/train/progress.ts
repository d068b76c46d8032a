/**
 * Progress of a training epoch: a cli-progress bar with samples/s, running loss, the epoch's ETA and
 * the whole run's on a terminal; on anything else (CI, nohup, a pipe) a log line every `logEvery`
 * batches like the reference's Speedometer, with the run's ETA once known:
 * `Epoch[3] Batch [100]\tSpeed: 412.50 samples/sec\tloss=1.234567\trun left 2 d 16 h`.
 * Evaluation gets a bar of its own ({@link EvalProgress}). ETAs come from a {@link RunClock}.
 */
import cliProgress from 'cli-progress';
import { RunClock, TIMED_BATCHES_FOR_ESTIMATE, formatDuration } from './eta.js';

/** Bars of this module drawn on the terminal now (started, not yet stopped). */
let barsDrawn = 0;

/**
 * Whether a progress bar of this module is on the terminal line now: a line printed then must
 * start with `\n` so that it does not continue the bar's line (and only then, or it leaves a blank line).
 */
export function barOnTerminal(): boolean {
  return barsDrawn > 0;
}

/** Where progress goes. */
export interface ProgressSink {
  /** A whole line (epoch summaries, Speedometer lines). */
  line(text: string): void;
  /** True when an interactive bar can be drawn. */
  isTTY: boolean;
  /** The stream a bar draws on. */
  stream?: NodeJS.WriteStream;
}

/** Tracks one epoch: call {@link EpochProgress.update} after every batch and {@link EpochProgress.stop} at the end. */
export class EpochProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = Date.now();
  private samples = 0;
  private lastLogSamples = 0;
  private lastLogTime = this.t0;

  /**
   * @param epoch 1-based epoch number (for the label).
   * @param totalBatches batches this epoch will run (from the first one shown).
   * @param logEvery batches between Speedometer lines when not on a terminal.
   * @param clock the run's clock: batches are timed on it, and the ETAs come from it.
   * @param announce called once with the run's estimate, when the clock has timed
   *   {@link TIMED_BATCHES_FOR_ESTIMATE} batches (or at the epoch's end, if it has fewer); omit to stay silent.
   */
  constructor(
    private readonly sink: ProgressSink,
    private readonly epoch: number,
    epochs: number,
    totalBatches: number,
    private readonly logEvery: number,
    startBatch = 0,
    private readonly clock: RunClock | null = null,
    private announce: ((text: string) => void) | null = null,
  ) {
    clock?.startEpoch();
    if (sink.isTTY && sink.stream) {
      this.bar = new cliProgress.SingleBar(
        {
          // {epoch_eta}/{run_eta}: ours, '-' until batches are timed (cli-progress's own {eta} shows "0s" at batch 0)
          format: `epoch ${epoch}/${epochs} {bar} {value}/{total} batches | {speed} samples/s | loss {loss} | left: this epoch's training {epoch_eta}, whole run {run_eta}`,
          stream: sink.stream,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(startBatch + totalBatches, startBatch, { speed: '-', loss: '-', epoch_eta: '-', run_eta: '-' });
      barsDrawn++;
    }
  }

  /**
   * Records a finished batch.
   * @param batchIndex 0-based index of the batch within the epoch.
   * @param batchSize samples in it.
   * @param runningLoss mean loss over the epoch so far.
   */
  update(batchIndex: number, batchSize: number, runningLoss: number): void {
    this.samples += batchSize;
    const now = Date.now();
    const done = batchIndex + 1;
    this.clock?.batchDone(performance.now() / 1000, done);
    const runLeft = this.clock?.secondsLeft(this.epoch - 1, done) ?? null;
    const spb = this.clock?.secondsPerBatch() ?? null;
    if (this.announce && this.clock && (this.clock.timedBatches >= TIMED_BATCHES_FOR_ESTIMATE || done === this.clock.batchesPerEpoch)) {
      const text = this.clock.describe(this.epoch - 1, done);
      if (text !== null) {
        this.announce(text);
        this.announce = null;
      }
    }
    const speed = this.samples / Math.max(1e-3, (now - this.t0) / 1000);
    if (this.bar) {
      const eta = spb === null ? '-' : formatDuration((this.bar.getTotal() - done) * spb);
      this.bar.update(done, { speed: speed.toFixed(1), loss: runningLoss.toFixed(4), epoch_eta: eta, run_eta: runLeft === null ? '-' : formatDuration(runLeft) });
    } else if (done % this.logEvery === 0) {
      const recent = (this.samples - this.lastLogSamples) / Math.max(1e-3, (now - this.lastLogTime) / 1000);
      const run = runLeft === null ? '' : `\trun left ${formatDuration(runLeft)}`;
      this.sink.line(`Epoch[${this.epoch}] Batch [${done}]\tSpeed: ${recent.toFixed(2)} samples/sec\tloss=${runningLoss.toFixed(6)}${run}`);
      this.lastLogSamples = this.samples;
      this.lastLogTime = now;
    }
  }

  /** Removes the bar (the caller prints the epoch summary). */
  stop(): void {
    if (this.bar) {
      this.bar.stop();
      barsDrawn--;
    }
    this.bar = null;
  }
}

/**
 * Progress of an evaluation on a terminal: `epoch 3/300 evaluating [bar] 4000/10000 images | 35 s left`.
 * Nothing on anything else (the epoch's summary line follows within about a minute). The time left
 * comes from the evaluation's own speed, its first batch (the warm-up) excluded: `-` until a second
 * batch is scored. The run's clock, when given, times the evaluation too (its estimate of the
 * evaluations to come, {@link RunClock.evalSeconds}).
 */
export class EvalProgress {
  private bar: cliProgress.SingleBar | null = null;
  private started = false;
  private readonly t0 = performance.now();
  private readonly own: RunClock;

  /**
   * @param label what is evaluated, e.g. `epoch 3/300`.
   * @param verb what is done to the images (`attacking` for an attack).
   * @param clock the run's clock (training), or null.
   */
  constructor(
    sink: ProgressSink,
    label: string,
    verb = 'evaluating',
    private readonly clock: RunClock | null = null,
  ) {
    clock?.startEval();
    this.own = new RunClock(1, 1, 1, 0);
    if (sink.isTTY && sink.stream) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} ${verb} {bar} {value}/{total} images | {left} left`, stream: sink.stream, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  /** `evaluate`'s onProgress: `done` of `total` samples scored. */
  readonly update = (done: number, total: number): void => {
    const t = performance.now() / 1000;
    this.clock?.evalBatchDone(t, done);
    this.own.evalBatchDone(t, done);
    if (!this.bar) return;
    if (!this.started) {
      this.bar.start(total, 0, { left: '-' });
      barsDrawn++;
    }
    this.started = true;
    const spes = this.own.secondsPerEvalSample();
    this.bar.update(done, { left: spes === null ? '-' : formatDuration((total - done) * spes) });
  };

  /** Removes the bar; returns the seconds since the evaluation started. */
  stop(): number {
    if (this.bar && this.started) {
      this.bar.stop();
      barsDrawn--;
    }
    this.bar = null;
    return (performance.now() - this.t0) / 1000;
  }
}
