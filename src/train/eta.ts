/**
 * How long the rest of a training run takes: the measured time per training batch and per
 * evaluation, times what is left. Pure bookkeeping on times the caller passes in (seconds), so it is
 * testable without a clock.
 */

/** What the estimate of the rest of a run is made of. */
export interface RunLeft {
  /** Training batches still to run in the current epoch. */
  batchesLeftThisEpoch: number;
  /** Whole epochs after the current one. */
  epochsAfterThis: number;
  batchesPerEpoch: number;
  /** Measured seconds per training batch. */
  secondsPerBatch: number;
  /** Seconds of one evaluation (after every epoch, the current one included). */
  evalSeconds: number;
}

/**
 * Seconds the rest of a run takes: (batches left this epoch + epochs after it × batches per epoch)
 * × seconds per batch + (epochs after this + 1) × seconds per evaluation.
 */
export function runSecondsLeft(p: RunLeft): number {
  return (p.batchesLeftThisEpoch + p.epochsAfterThis * p.batchesPerEpoch) * p.secondsPerBatch + (p.epochsAfterThis + 1) * p.evalSeconds;
}

/**
 * A duration for people planning around it, two units at most: `42 s`, `12 min 5 s`, `3 h 5 min`,
 * `2 d 16 h`; `-` for a negative or non-finite value.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round(seconds / 60);
  if (m < 24 * 60) return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
  const h = Math.round(seconds / 3600);
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

/**
 * Forward-only evaluation of a sample against one training step of it (forward, backward of the
 * activations and of the weights): about a third. Used for the evaluation's share of the estimate
 * until the first evaluation is timed.
 */
export const EVAL_COST_PER_TRAIN_SAMPLE = 1 / 3;

/** Training batches timed before the run's estimate is announced. */
export const TIMED_BATCHES_FOR_ESTIMATE = 5;

/**
 * Times a run: training batches (the first batch of each epoch only starts the clock: it carries the
 * warm-up of kernels and data) and evaluations. Times in seconds, from any monotonic clock.
 */
export class RunClock {
  private trainSeconds = 0;
  private trainBatches = 0;
  private ref: { t: number; done: number } | null = null;
  private evalTimes: number[] = [];
  private evalRef: { t: number; done: number } | null = null;
  private evalSecondsTimed = 0;
  private evalSamplesTimed = 0;

  /**
   * @param epochs total epochs of the run.
   * @param batchesPerEpoch training batches per epoch.
   * @param batchSize samples per training batch.
   * @param valSamples samples of one evaluation.
   */
  constructor(
    readonly epochs: number,
    readonly batchesPerEpoch: number,
    private readonly batchSize: number,
    private readonly valSamples: number,
  ) {}

  /** A new epoch starts: the next {@link batchDone} only sets the reference point. */
  startEpoch(): void {
    this.ref = null;
  }

  /**
   * Records that `done` batches of the current epoch have finished by time `t`. Batches whose
   * figures are read together arrive within microseconds: calls less than 1 ms after the reference
   * point move it forward instead of counting as batches that took no time.
   */
  batchDone(t: number, done: number): void {
    if (this.ref === null || t - this.ref.t < 1e-3) {
      if (this.ref === null) this.ref = { t, done };
      else this.ref.done = done;
      return;
    }
    this.trainSeconds += t - this.ref.t;
    this.trainBatches += done - this.ref.done;
    this.ref = { t, done };
  }

  /** Batches timed so far. */
  get timedBatches(): number {
    return this.trainBatches;
  }

  /** Mean seconds per training batch, or null before any batch was timed. */
  secondsPerBatch(): number | null {
    return this.trainBatches > 0 ? this.trainSeconds / this.trainBatches : null;
  }

  /** Records one evaluation's duration. */
  evalDone(seconds: number): void {
    this.evalTimes.push(seconds);
  }

  /** An evaluation starts: the next {@link evalBatchDone} only sets the reference point. */
  startEval(): void {
    this.evalRef = null;
  }

  /**
   * Records that `samplesDone` samples of the evaluation in progress are scored by time `t`. As
   * for training, the first batch only starts the clock (it carries the warm-up).
   */
  evalBatchDone(t: number, samplesDone: number): void {
    if (this.evalRef !== null && samplesDone > this.evalRef.done) {
      this.evalSecondsTimed += t - this.evalRef.t;
      this.evalSamplesTimed += samplesDone - this.evalRef.done;
    }
    this.evalRef = { t, done: samplesDone };
  }

  /** Mean seconds per evaluated sample over the evaluation batches timed so far, or null before any. */
  secondsPerEvalSample(): number | null {
    return this.evalSamplesTimed > 0 ? this.evalSecondsTimed / this.evalSamplesTimed : null;
  }

  /**
   * Seconds of one evaluation: the last one timed (`timed`); before any, the validation samples
   * times the evaluation's own speed once its batches are timed (`speed`); before that, the share of
   * training time it is expected to take ({@link EVAL_COST_PER_TRAIN_SAMPLE}, `guess`). Null before
   * any training batch was timed and without evaluation batches timed.
   */
  evalSeconds(): { seconds: number; from: 'timed' | 'speed' | 'guess' } | null {
    if (this.evalTimes.length > 0) return { seconds: this.evalTimes[this.evalTimes.length - 1]!, from: 'timed' };
    const spes = this.secondsPerEvalSample();
    if (spes !== null) return { seconds: this.valSamples * spes, from: 'speed' };
    const spb = this.secondsPerBatch();
    return spb === null ? null : { seconds: (this.valSamples * spb * EVAL_COST_PER_TRAIN_SAMPLE) / this.batchSize, from: 'guess' };
  }

  /**
   * Seconds the rest of the run takes from `batchesDone` batches into epoch `epoch` (0-based), its
   * evaluation still to come; null before any batch was timed.
   */
  secondsLeft(epoch: number, batchesDone: number): number | null {
    const spb = this.secondsPerBatch();
    const ev = this.evalSeconds();
    if (spb === null || ev === null) return null;
    return runSecondsLeft({
      batchesLeftThisEpoch: this.batchesPerEpoch - batchesDone,
      epochsAfterThis: this.epochs - epoch - 1,
      batchesPerEpoch: this.batchesPerEpoch,
      secondsPerBatch: spb,
      evalSeconds: ev.seconds,
    });
  }

  /**
   * The one-line estimate announced once the first batches are timed, e.g. `time left for the
   * remaining 300 epochs (training and evaluation): about 2 d 16 h; training 12 min 23 s per epoch (1.91 s a
   * batch), evaluation about 1 min 2 s per epoch (a guess from the training speed until an evaluation
   * is timed)`.
   */
  describe(epoch: number, batchesDone: number): string | null {
    const left = this.secondsLeft(epoch, batchesDone);
    const spb = this.secondsPerBatch();
    const ev = this.evalSeconds();
    if (left === null || spb === null || ev === null) return null;
    const epochsLeft = this.epochs - epoch;
    const evalText = {
      timed: `evaluation ${formatDuration(ev.seconds)} per epoch (as timed)`,
      speed: `evaluation about ${formatDuration(ev.seconds)} per epoch (from its speed so far)`,
      guess: `evaluation about ${formatDuration(ev.seconds)} per epoch (a guess from the training speed until an evaluation is timed)`,
    }[ev.from];
    return (
      `time left for the ${epochsLeft === 1 ? 'last epoch' : `remaining ${epochsLeft} epochs`} (training and evaluation): about ${formatDuration(left)}; ` +
      `training ${formatDuration(spb * this.batchesPerEpoch)} per epoch (${spb.toFixed(spb < 1 ? 3 : 2)} s a batch), ${evalText}`
    );
  }
}
