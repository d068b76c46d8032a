/**
 * Calibration of a classifier's top-1 confidence, accumulated batch by batch from host-side
 * softmax probabilities (no tfjs): expected and maximum calibration error over equal-width
 * confidence bins, mean confidence, the Brier score and the per-bin table a reliability diagram
 * draws.
 *
 * Definitions (Guo et al. 2017, "On Calibration of Modern Neural Networks", §2): each sample's
 * confidence is its largest probability p̂ = maxₖ pₖ and its prediction that class (the first on a
 * tie, as tf.argMax). With M bins Iₘ = ((m−1)/M, m/M] (bin 1 also takes p̂ = 0) and Bₘ the samples
 * whose p̂ falls in Iₘ, of n in all:
 *   acc(Bₘ) = share of Bₘ predicted correctly, conf(Bₘ) = mean p̂ over Bₘ,
 *   ECE = Σₘ |Bₘ|/n · |acc(Bₘ) − conf(Bₘ)|,   MCE = max over non-empty Bₘ of |acc(Bₘ) − conf(Bₘ)|.
 * Brier score (Brier 1950, multi-class form): the mean over samples of Σₖ (pₖ − yₖ)² with y the
 * one-hot label, summed over the K classes and not divided by K, so it lies in [0, 2]
 * (0 = certain and right; a uniform prediction scores 1 − 1/K).
 */

/** Number of confidence bins of the ECE: 15, as Guo et al. 2017. */
export const CALIBRATION_BINS = 15;

/** One confidence bin of the reliability table. */
export interface CalibrationBin {
  /** Bin edges: the bin holds confidences in (lower, upper] (the first bin also 0). */
  lower: number;
  upper: number;
  /** Samples whose top-1 confidence falls in the bin. */
  count: number;
  /** Mean top-1 confidence of those samples; NaN for an empty bin. */
  meanConfidence: number;
  /** Top-1 accuracy of those samples, fraction in [0, 1]; NaN for an empty bin. */
  accuracy: number;
}

/** What {@link CalibrationAccumulator.result} reports. Fractions, not percent. */
export interface Calibration {
  /** Samples accumulated. */
  samples: number;
  /** Expected calibration error over {@link bins}, in [0, 1]. */
  ece: number;
  /** Maximum calibration error (largest gap of a non-empty bin), in [0, 1]. */
  mce: number;
  /** Mean top-1 confidence over all samples. */
  meanConfidence: number;
  /** Top-1 accuracy over all samples (the argmax of the probabilities). */
  accuracy: number;
  /** Mean over samples of Σₖ (pₖ − yₖ)², in [0, 2]. */
  brier: number;
  /** The equal-width bins, lowest confidence first. */
  bins: CalibrationBin[];
}

/**
 * Streaming calibration statistics: feed every evaluation batch with {@link add}, read the figures
 * with {@link result}. Sums are kept in float64, so the result does not depend on batch size.
 * A probability that is NaN or infinite (a diverged network) makes every figure NaN.
 */
export class CalibrationAccumulator {
  readonly numBins: number;
  private readonly counts: Float64Array;
  private readonly confSums: Float64Array;
  private readonly hits: Float64Array;
  private samples = 0;
  private brierSum = 0;
  private nonFinite = false;

  /**
   * @param numBins number of equal-width confidence bins (default 15).
   * @throws RangeError when numBins is not a positive integer.
   */
  constructor(numBins = CALIBRATION_BINS) {
    if (!Number.isInteger(numBins) || numBins < 1) throw new RangeError(`CalibrationAccumulator: numBins must be a positive integer, got ${numBins}`);
    this.numBins = numBins;
    this.counts = new Float64Array(numBins);
    this.confSums = new Float64Array(numBins);
    this.hits = new Float64Array(numBins);
  }

  /**
   * Adds one batch.
   * @param probs `[B*K]` float32, row-major `[B,K]`: each row a probability vector (softmax).
   * @param labels `[B]` class indices in [0, K).
   * @param numClasses K.
   * @throws RangeError when the sizes disagree or a label is outside [0, K).
   */
  add(probs: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): void {
    const B = labels.length;
    const K = numClasses;
    if (probs.length !== B * K) throw new RangeError(`CalibrationAccumulator.add: ${probs.length} probabilities for ${B} labels × ${K} classes`);
    for (let i = 0; i < B; i++) {
      const y = labels[i]!;
      if (!Number.isInteger(y) || y < 0 || y >= K) throw new RangeError(`CalibrationAccumulator.add: label ${y} of sample ${i} outside [0, ${K})`);
      const row = i * K;
      let best = 0;
      let conf = probs[row]!;
      let sq = 0;
      for (let k = 0; k < K; k++) {
        const p = probs[row + k]!;
        if (p > conf) {
          conf = p;
          best = k;
        }
        const d = p - (k === y ? 1 : 0);
        sq += d * d;
      }
      this.samples++;
      if (!Number.isFinite(sq)) {
        this.nonFinite = true;
        continue;
      }
      this.brierSum += sq;
      const m = Math.min(this.numBins - 1, Math.max(0, Math.ceil(conf * this.numBins) - 1));
      this.counts[m]! += 1;
      this.confSums[m]! += conf;
      if (best === y) this.hits[m]! += 1;
    }
  }

  /** The figures over everything added so far (NaN everywhere when nothing was added). */
  result(): Calibration {
    const n = this.samples;
    const bins: CalibrationBin[] = [];
    let ece = 0;
    let mce = 0;
    let confSum = 0;
    let hitSum = 0;
    for (let m = 0; m < this.numBins; m++) {
      const c = this.counts[m]!;
      const meanConfidence = c > 0 ? this.confSums[m]! / c : NaN;
      const accuracy = c > 0 ? this.hits[m]! / c : NaN;
      bins.push({ lower: m / this.numBins, upper: (m + 1) / this.numBins, count: c, meanConfidence, accuracy });
      confSum += this.confSums[m]!;
      hitSum += this.hits[m]!;
      if (c > 0) {
        const gap = Math.abs(accuracy - meanConfidence);
        ece += (c / n) * gap;
        mce = Math.max(mce, gap);
      }
    }
    const bad = n === 0 || this.nonFinite;
    return {
      samples: n,
      ece: bad ? NaN : ece,
      mce: bad ? NaN : mce,
      meanConfidence: bad ? NaN : confSum / n,
      accuracy: bad ? NaN : hitSum / n,
      brier: bad ? NaN : this.brierSum / n,
      bins,
    };
  }
}
