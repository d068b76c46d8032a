/**
 * Progress of a training epoch: a cli-progress bar with samples/s, running loss, the epoch's ETA and
 * the whole run's on a terminal; on anything else (CI, nohup, a pipe) a log line every `logEvery`
 * batches like the reference's Speedometer, with the run's ETA once known:
 * `Epoch[3] Batch [100]\tSpeed: 412.50 samples/sec\tloss=1.234567\trun left 2 d 16 h`.
 * Evaluation gets a bar of its own ({@link EvalProgress}). ETAs come from a {@link RunClock}.
 */
import cliProgress from 'cli-progress';
import { RunClock, TIMED_BATCHES_FOR_ESTIMATE, formatDuration } from './eta.js';

/**
 * The terminal cli-progress draws on (its `terminal` option): cli-progress's own saves the cursor
 * when a bar starts and restores it when the bar stops, and turns autowrap off meanwhile, so a line
 * printed while a bar is drawn (SIGINT: ..., the time estimate) was overwritten by the next ones
 * (`runs/Bckpoint ...`) and cut at the terminal's width. This one draws the bar on the cursor's row
 * only, never wider than the terminal less one column (so the row never wraps), and leaves every
 * other setting alone.
 */
class BarTerminal {
  constructor(private readonly stream: NodeJS.WriteStream) {}
  isTTY(): boolean {
    return this.stream.isTTY === true;
  }
  /** Columns of the terminal (80 when it does not say). */
  getWidth(): number {
    return this.stream.columns || 80;
  }
  cursorSave(): void {}
  cursorRestore(): void {}
  lineWrapping(): void {}
  cursorRelative(): void {}
  cursorRelativeReset(): void {}
  /** Shows the cursor again if the process exits while a bar hides it (a second Ctrl-C exits at once). */
  private readonly showOnExit = () => this.stream.write('\x1b[?25h');
  cursor(show: boolean): void {
    this.stream.write(show ? '\x1b[?25h' : '\x1b[?25l');
    if (show) process.off('exit', this.showOnExit);
    else process.once('exit', this.showOnExit);
  }
  cursorTo(x: number | null): void {
    if (x !== null) this.stream.write('\r');
  }
  clearRight(): void {
    this.stream.write('\x1b[K');
  }
  clearLine(): void {
    this.stream.write('\r\x1b[2K');
  }
  clearBottom(): void {
    this.stream.write('\x1b[J');
  }
  newline(): void {
    this.stream.write('\n');
  }
  write(s: string): void {
    this.stream.write(Array.from(s).slice(0, Math.max(1, this.getWidth() - 1)).join(''));
  }
}

/** The bars of this module drawn on the terminal now (started, not yet stopped), with their streams. */
const drawn = new Map<cliProgress.SingleBar, NodeJS.WriteStream>();

/** Whether a progress bar of this module is on the terminal now. */
export function barOnTerminal(): boolean {
  return drawn.size > 0;
}

/**
 * Wraps a line printer (stdout or stderr, the same terminal as the bars) so that a line printed
 * while a bar is drawn first clears the bar's row, and the bar is drawn again below the line.
 * Without a bar on the terminal, the line is printed as it is.
 */
export function aboveBars(print: (line: string) => void): (line: string) => void {
  return (line) => {
    if (drawn.size === 0) return print(line);
    for (const stream of drawn.values()) stream.write('\r\x1b[2K');
    print(line);
    for (const bar of drawn.keys()) bar.render();
  };
}

/**
 * A bar's row: `label [bar] parts[0] | parts[1] | ...`, at most `width - 1` columns. Where the row
 * would leave the bar fewer than 10 columns, parts are left out in `dropOrder` (indices into
 * `parts`); the bar is 10 to 40 columns wide.
 * @param progress share done, 0 to 1.
 */
export function barRow(label: string, progress: number, parts: string[], dropOrder: number[], width: number): string {
  const keep = parts.map(() => true);
  const row = (barWidth: number) => {
    const done = Math.round(Math.min(1, Math.max(0, progress)) * barWidth);
    const text = parts.filter((_, i) => keep[i]).join(' | ');
    return `${label} ${'\u2588'.repeat(done)}${'\u2591'.repeat(barWidth - done)} ${text}`;
  };
  const room = () => width - 1 - Array.from(row(0)).length;
  for (const i of dropOrder) {
    if (room() >= 10) break;
    keep[i] = false;
  }
  return Array.from(row(Math.max(0, Math.min(40, room())))).slice(0, Math.max(1, width - 1)).join('');
}

/** A cli-progress bar drawn on `stream` by {@link BarTerminal}, its row made by `format`. */
function newBar(stream: NodeJS.WriteStream, format: (progress: number, value: number, total: number, payload: Record<string, string>, width: number) => string): cliProgress.SingleBar {
  const options = {
    format: (_o: cliProgress.Options, p: cliProgress.Params, payload: Record<string, string>) => format(p.progress, p.value, p.total, payload, stream.columns || 80),
    stream,
    hideCursor: true,
    clearOnComplete: true,
    linewrap: true,
    forceRedraw: true,
    terminal: new BarTerminal(stream),
  };
  return new cliProgress.SingleBar(options as cliProgress.Options);
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

/** One read of training figures from the device: when it returned (performance.now() ms) and the samples of its batches. */
export interface SettledRead {
  at: number;
  samples: number;
}

/** Tracks one epoch: call {@link EpochProgress.update} after every batch and {@link EpochProgress.stop} at the end. */
export class EpochProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = performance.now();
  private samples = 0;
  /** The latest read, the time of the one before it, and the samples of all reads before it. */
  private read: SettledRead = { at: this.t0, samples: 0 };
  private previousReadAt = this.t0;
  private samplesBeforeRead = 0;
  /** The read of the latest Speedometer line, and the samples through its end. */
  private lastLogRead: SettledRead = this.read;
  private lastLogReadEnd = 0;

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
      // epoch_eta/run_eta: ours, '-' until batches are timed (cli-progress's own {eta} shows "0s" at batch 0);
      // on a narrow terminal the speed goes first, then the loss
      const label = `epoch ${epoch}/${epochs}`;
      this.bar = newBar(sink.stream, (progress, value, total, p, width) =>
        barRow(label, progress, [`${value}/${total} batches`, `${p['speed']} samples/s`, `loss ${p['loss']}`, `left: epoch ${p['epoch_eta']}, run ${p['run_eta']}`], [1, 2], width),
      );
      this.bar.start(startBatch + totalBatches, startBatch, { speed: '-', loss: '-', epoch_eta: '-', run_eta: '-' });
      drawn.set(this.bar, sink.stream);
    }
  }

  /**
   * Records a finished batch.
   * @param batchIndex 0-based index of the batch within the epoch.
   * @param batchSize samples in it.
   * @param runningLoss mean loss over the epoch so far.
   * @param read the read of the device the batch's figures came in (`at`: performance.now() ms when
   *   it returned, `samples`: all its batches'), the same object for every batch of one read; omitted:
   *   a read of this batch alone, now. Speeds are measured between reads only: batches whose figures
   *   arrive together (webgpu settles every train.readEvery steps) did not run in no time.
   */
  update(batchIndex: number, batchSize: number, runningLoss: number, read?: SettledRead): void {
    const now = performance.now();
    const r = read ?? { at: now, samples: batchSize };
    if (r !== this.read) {
      this.previousReadAt = this.read.at;
      this.samplesBeforeRead = this.samplesBeforeRead + this.read.samples;
      this.read = r;
    }
    this.samples += batchSize;
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
    const readEnd = this.samplesBeforeRead + r.samples;
    if (this.bar) {
      const speed = readEnd / Math.max(1e-3, (r.at - this.t0) / 1000);
      const eta = spb === null ? '-' : formatDuration((this.bar.getTotal() - done) * spb);
      this.bar.update(done, { speed: speed.toFixed(1), loss: runningLoss.toFixed(4), epoch_eta: eta, run_eta: runLeft === null ? '-' : formatDuration(runLeft) });
    } else if (done % this.logEvery === 0) {
      // samples settled since the read of the previous line, over the time between the two reads; a
      // second line from the same read gets that read's own speed
      const recent =
        r === this.lastLogRead
          ? r.samples / Math.max(1e-3, (r.at - this.previousReadAt) / 1000)
          : (readEnd - this.lastLogReadEnd) / Math.max(1e-3, (r.at - this.lastLogRead.at) / 1000);
      const run = runLeft === null ? '' : `\trun left ${formatDuration(runLeft)}`;
      this.sink.line(`Epoch[${this.epoch}] Batch [${done}]\tSpeed: ${recent.toFixed(2)} samples/sec\tloss=${runningLoss.toFixed(6)}${run}`);
      this.lastLogRead = r;
      this.lastLogReadEnd = readEnd;
    }
  }

  /** Removes the bar (the caller prints the epoch summary). */
  stop(): void {
    if (this.bar) {
      this.bar.stop();
      drawn.delete(this.bar);
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
  private stream: NodeJS.WriteStream | null = null;

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
      this.bar = newBar(sink.stream, (progress, value, total, p, width) => barRow(`${label} ${verb}`, progress, [`${value}/${total} images`, `${p['left']} left`], [], width));
      this.stream = sink.stream;
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
      drawn.set(this.bar, this.stream!);
    }
    this.started = true;
    const spes = this.own.secondsPerEvalSample();
    this.bar.update(done, { left: spes === null ? '-' : formatDuration((total - done) * spes) });
  };

  /** Removes the bar; returns the seconds since the evaluation started. */
  stop(): number {
    if (this.bar && this.started) {
      this.bar.stop();
      drawn.delete(this.bar);
    }
    this.bar = null;
    return (performance.now() - this.t0) / 1000;
  }
}
