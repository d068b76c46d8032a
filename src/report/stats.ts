/**
 * Summary statistics for repeated runs (seeds) of one experiment.
 */

/** Mean and sample standard deviation of a set of values. */
export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n − 1 in the denominator); null for a single value. */
  std: number | null;
  /** Number of values. */
  n: number;
}

/**
 * Mean and sample standard deviation s = sqrt(Σ (x_i − x̄)² / (n − 1)) (Bessel's correction,
 * the usual figure quoted as "mean ± std over seeds").
 * @param xs at least one finite value.
 * @throws RangeError on an empty list.
 */
export function meanStd(xs: readonly number[]): MeanStd {
  const n = xs.length;
  if (n === 0) throw new RangeError('meanStd: no values');
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, std: null, n };
  const ss = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/** A fraction in percent: 0.9512 → 95.12 (numbers for tables; format.ts `pct` for text). */
export function percent(x: number): number {
  return 100 * x;
}

/** `95.12` for one value, `95.12 ± 0.30` (sample std) for several: a table cell of {@link meanStd}. */
export function formatMeanStd(m: MeanStd): string {
  return m.std === null ? m.mean.toFixed(2) : `${m.mean.toFixed(2)} ± ${m.std.toFixed(2)}`;
}
