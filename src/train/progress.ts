/**
 * Progress of a training epoch: a cli-progress bar with samples/s, running loss and ETA on a terminal;
 * on anything else (CI, nohup, a pipe) a log line every `logEvery` batches like the reference's
 * Speedometer: `Epoch[3] Batch [100]\tSpeed: 412.50 samples/sec\tloss=1.234567`.
 */
import cliProgress from 'cli-progress';

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
   */
  constructor(
    private readonly sink: ProgressSink,
    private readonly epoch: number,
    epochs: number,
    totalBatches: number,
    private readonly logEvery: number,
    startBatch = 0,
  ) {
    if (sink.isTTY && sink.stream) {
      this.bar = new cliProgress.SingleBar(
        {
          format: `epoch ${epoch}/${epochs} {bar} {value}/{total} batches | {speed} samples/s | loss {loss} | ETA {eta_formatted}`,
          stream: sink.stream,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(startBatch + totalBatches, startBatch, { speed: '-', loss: '-' });
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
    const speed = this.samples / Math.max(1e-3, (now - this.t0) / 1000);
    if (this.bar) {
      this.bar.update(batchIndex + 1, { speed: speed.toFixed(1), loss: runningLoss.toFixed(4) });
    } else if ((batchIndex + 1) % this.logEvery === 0) {
      const recent = (this.samples - this.lastLogSamples) / Math.max(1e-3, (now - this.lastLogTime) / 1000);
      this.sink.line(`Epoch[${this.epoch}] Batch [${batchIndex + 1}]\tSpeed: ${recent.toFixed(2)} samples/sec\tloss=${runningLoss.toFixed(6)}`);
      this.lastLogSamples = this.samples;
      this.lastLogTime = now;
    }
  }

  /** Removes the bar (the caller prints the epoch summary). */
  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}
