/**
 * Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", §4.2): one
 * scalar T > 0 divides every logit, softmax(z / T), fitted by minimising the negative log-likelihood
 * on held-out data; accuracy is unchanged. And the figures that judge calibration before and after:
 * NLL, the Brier score, ECE over 15 equal-width bins (calibration.ts) and an equal-mass ECE.
 *
 * Pure host code in float64, no tfjs.
 */
import { CALIBRATION_BINS, CalibrationAccumulator } from './calibration.js';

/** Logits and labels of a split, gathered batch by batch ({@link LogitSet.add}). */
export class LogitSet {
  private parts: Float32Array[] = [];
  private labelParts: Int32Array[] = [];

  /**
   * @param numClasses K.
   */
  constructor(readonly numClasses: number) {}

  /**
   * Adds one batch (copied).
   * @param logits `[B*K]` row-major.
   * @param labels `[B]`.
   */
  add(logits: ArrayLike<number>, labels: ArrayLike<number>): void {
    this.parts.push(Float32Array.from(logits));
    this.labelParts.push(Int32Array.from(labels));
  }

  /** All logits `[N*K]` and labels `[N]` so far, in the order added. */
  get(): { logits: Float32Array; labels: Int32Array } {
    const cat = <T extends Float32Array | Int32Array>(xs: T[], make: (n: number) => T): T => {
      const out = make(xs.reduce((s, x) => s + x.length, 0));
      let o = 0;
      for (const x of xs) out.set(x, (o += x.length) - x.length);
      return out;
    };
    return { logits: cat(this.parts, (n) => new Float32Array(n)), labels: cat(this.labelParts, (n) => new Int32Array(n)) };
  }
}

/** Calibration figures of a split at one temperature. Fractions, not percent. */
export interface CalibrationFigures {
  /** The temperature the logits were divided by. */
  temperature: number;
  samples: number;
  /** Top-1 accuracy (unchanged by T > 0). */
  accuracy: number;
  /** Mean −log softmax(z/T)_y, nats. */
  nll: number;
  /** Mean Σₖ (pₖ − yₖ)², in [0, 2] (calibration.ts). */
  brier: number;
  /** ECE over 15 equal-width confidence bins (calibration.ts). */
  ece: number;
  /** ECE over 15 bins of equal sample count ({@link equalMassEce}). */
  eceEqualMass: number;
}

/** Lower and upper bound of the fitted temperature. */
export const TEMPERATURE_RANGE = [0.05, 20] as const;

/**
 * Which search bound a fitted T stopped at, or null inside the range. At the upper bound the
 * network predicts near-uniformly (softmax(z/20) ≈ 1/K, NLL ≈ ln K: untrained, or collapsed); at
 * the lower one the fitting images are classified (nearly) perfectly and the NLL keeps falling as T → 0.
 */
export function temperatureAtBound(t: number): 'upper' | 'lower' | null {
  if (!Number.isFinite(t)) return null;
  if (Math.abs(t - TEMPERATURE_RANGE[1]) <= 1e-9 * TEMPERATURE_RANGE[1]) return 'upper';
  if (Math.abs(t - TEMPERATURE_RANGE[0]) <= 1e-9 * TEMPERATURE_RANGE[0]) return 'lower';
  return null;
}

/** One line on a T at a search bound ({@link temperatureAtBound}), or null inside the range. */
export function temperatureBoundNote(t: number): string | null {
  const at = temperatureAtBound(t);
  if (at === 'upper') return `T at the search bound ${TEMPERATURE_RANGE[1]}: the network predicts near-uniformly (NLL ≈ ln of the number of classes); scaling cannot calibrate it`;
  if (at === 'lower') return `T at the search bound ${TEMPERATURE_RANGE[0]}: the fitting images are classified (nearly) perfectly, and the NLL keeps falling as T → 0`;
  return null;
}

/** Softmax of one row of logits divided by T, in float64, into `out`; returns log Σ exp(z/T − max). */
function softmaxRow(z: ArrayLike<number>, row: number, K: number, invT: number, out: Float64Array): number {
  let max = -Infinity;
  for (let k = 0; k < K; k++) max = Math.max(max, z[row + k]! * invT);
  let sum = 0;
  for (let k = 0; k < K; k++) sum += out[k] = Math.exp(z[row + k]! * invT - max);
  for (let k = 0; k < K; k++) out[k]! /= sum;
  return Math.log(sum) + max;
}

/**
 * Mean NLL at temperature T and its derivative with respect to β = 1/T:
 * NLL(β) = mean over samples of logsumexp(β z) − β z_y, dNLL/dβ = mean of Σₖ pₖ zₖ − z_y (p = softmax(β z)).
 * NLL is convex in β (its second derivative is the variance of z under p), so the derivative is
 * non-decreasing.
 */
export function nllAndSlope(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number, T: number): { nll: number; slope: number } {
  const n = labels.length;
  const p = new Float64Array(K);
  const invT = 1 / T;
  let nll = 0;
  let slope = 0;
  for (let i = 0; i < n; i++) {
    const row = i * K;
    const y = labels[i]!;
    nll += softmaxRow(logits, row, K, invT, p) - logits[row + y]! * invT;
    let ez = 0;
    for (let k = 0; k < K; k++) ez += p[k]! * logits[row + k]!;
    slope += ez - logits[row + y]!;
  }
  return { nll: nll / n, slope: slope / n };
}

/**
 * The temperature T that minimises the mean NLL of softmax(z / T) on (logits, labels): bisection on
 * β = 1/T over the sign of the convex NLL's derivative, to a relative width of 1e-10, within
 * {@link TEMPERATURE_RANGE} (a bound when the minimum lies beyond it, e.g. a split classified
 * perfectly, whose NLL keeps falling as T → 0).
 * @param logits `[N*K]` row-major. @param labels `[N]` in [0, K).
 * @throws RangeError for an empty split or sizes that disagree.
 */
export function fitTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number): number {
  const n = labels.length;
  if (n === 0 || logits.length !== n * K) throw new RangeError(`fitTemperature: ${logits.length} logits for ${n} labels of ${K} classes`);
  let lo = 1 / TEMPERATURE_RANGE[1]; // β
  let hi = 1 / TEMPERATURE_RANGE[0];
  if (nllAndSlope(logits, labels, K, 1 / lo).slope >= 0) return 1 / lo;
  if (nllAndSlope(logits, labels, K, 1 / hi).slope <= 0) return 1 / hi;
  while (hi - lo > 1e-10 * hi) {
    const mid = (lo + hi) / 2;
    if (nllAndSlope(logits, labels, K, 1 / mid).slope < 0) lo = mid;
    else hi = mid;
  }
  return 2 / (lo + hi);
}

/**
 * Equal-mass ECE (Nixon et al. 2019, "Measuring Calibration in Deep Learning", adaptive binning):
 * samples sorted by top-1 confidence (stable) are cut into M bins of ⌊n/M⌋ or ⌈n/M⌉ samples (bin m
 * holds sorted positions ⌊m·n/M⌋ … ⌊(m+1)·n/M⌋ − 1), and ECE = Σₘ |Bₘ|/n · |acc(Bₘ) − conf(Bₘ)|.
 * @param confidence `[n]` top-1 confidences. @param correct `[n]` 1 when the top-1 prediction is right.
 * @returns NaN for n = 0.
 */
export function equalMassEce(confidence: ArrayLike<number>, correct: ArrayLike<number>, bins = CALIBRATION_BINS): number {
  const n = confidence.length;
  if (n === 0) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => confidence[a]! - confidence[b]! || a - b);
  let ece = 0;
  for (let m = 0; m < bins; m++) {
    const from = Math.floor((m * n) / bins);
    const to = Math.floor(((m + 1) * n) / bins);
    if (to <= from) continue;
    let conf = 0;
    let hits = 0;
    for (let j = from; j < to; j++) {
      conf += confidence[order[j]!]!;
      hits += correct[order[j]!]!;
    }
    ece += Math.abs(hits - conf) / n; // |B|/n · |acc − conf| = |hits − Σconf| / n
  }
  return ece;
}

/**
 * NLL, Brier, ECE (15 equal-width bins) and equal-mass ECE of softmax(z / T), in float64.
 * @param logits `[N*K]` row-major. @param labels `[N]` in [0, K). @param T temperature (1 = as trained).
 */
export function calibrationFigures(logits: ArrayLike<number>, labels: ArrayLike<number>, K: number, T = 1): CalibrationFigures {
  const n = labels.length;
  const probs = new Float64Array(n * K);
  const confidence = new Float64Array(n);
  const correct = new Uint8Array(n);
  const p = new Float64Array(K);
  let nll = 0;
  for (let i = 0; i < n; i++) {
    const row = i * K;
    const y = labels[i]!;
    nll += softmaxRow(logits, row, K, 1 / T, p) - logits[row + y]! / T;
    probs.set(p, row);
    let best = 0;
    for (let k = 1; k < K; k++) if (p[k]! > p[best]!) best = k;
    confidence[i] = p[best]!;
    correct[i] = best === y ? 1 : 0;
  }
  const acc = new CalibrationAccumulator();
  if (n > 0) acc.add(probs, labels, K);
  const c = acc.result();
  return { temperature: T, samples: n, accuracy: c.accuracy, nll: n > 0 ? nll / n : NaN, brier: c.brier, ece: c.ece, eceEqualMass: equalMassEce(confidence, correct) };
}
