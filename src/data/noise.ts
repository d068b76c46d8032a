/**
 * Label noise for the memorisation experiment of the mixup paper (Zhang et al. 2017, §3.4, after
 * Zhang et al. 2017, "Understanding deep learning requires rethinking generalization"): a fixed
 * subset of round(p·N) training samples gets labels drawn uniformly from all K classes.
 *
 * Pure functions, no tfjs. Which samples and which new labels depend only on (`train.seed`, p, N):
 * one stream `uniformStream(seed, 'label-noise', N)` first shuffles 0..N−1 (Fisher-Yates), and the
 * first m = round(p·N) samples of that order are corrupted, the k-th of them with the k-th label
 * drawn after the shuffle. So the experiment (ERM, mixup, α, ...) never changes the corruption, the
 * subset for a smaller p is contained in the one for a larger p (with the same new labels), and
 * the true labels play no part in the choice. A drawn label equals the true one with probability
 * 1/K, so about m/K of the chosen samples keep their label ({@link LabelNoise.changed} counts the others).
 */
import { UserError } from '../errors.js';
import { permutation, randomInt, uniformStream } from '../random.js';

/** The corruption of one training split. */
export interface LabelNoise {
  /** The share p (config `data.labelNoise`). */
  p: number;
  /** N, the samples of the split (after `data.limit`). */
  numSamples: number;
  /** `[m]` int32 sample indices of the corrupted subset, ascending (m = round(p·N)). */
  indices: Int32Array;
  /** `[m]` int32 the labels they get, aligned with `indices`. */
  noisyLabels: Int32Array;
  /** `[m]` int32 their true labels, aligned with `indices`. */
  trueLabels: Int32Array;
  /** How many of the m new labels differ from the true one (about m·(K−1)/K). */
  changed: number;
}

/**
 * Corrupts the labels of a training split.
 * @param labels `[N]` int32 true labels in [0, numClasses).
 * @param p share of samples to corrupt, 0 ≤ p < 1 (config `data.labelNoise`).
 * @param numClasses K ≥ 1: new labels are uniform on 0..K−1.
 * @param seed `train.seed`.
 * @returns the split's labels with the subset replaced (`[N]`, a new array; `labels` is not
 *   changed) and the {@link LabelNoise} that describes it.
 * @throws UserError when p is outside [0, 1).
 */
export function corruptLabels(labels: Int32Array, p: number, numClasses: number, seed: number): { labels: Int32Array; noise: LabelNoise } {
  if (!(p >= 0 && p < 1)) throw new UserError(`data.labelNoise: ${p} is not a share in [0, 1)`);
  const n = labels.length;
  const m = Math.round(p * n);
  const u = uniformStream(seed, 'label-noise', n);
  const order = permutation(n, u);
  const chosen: [number, number][] = [];
  for (let k = 0; k < m; k++) chosen.push([order[k]!, randomInt(u, numClasses)]);
  chosen.sort((a, b) => a[0] - b[0]);
  const out = labels.slice();
  const indices = new Int32Array(m);
  const noisyLabels = new Int32Array(m);
  const trueLabels = new Int32Array(m);
  let changed = 0;
  chosen.forEach(([i, y], k) => {
    indices[k] = i;
    noisyLabels[k] = y;
    trueLabels[k] = labels[i]!;
    if (y !== labels[i]) changed++;
    out[i] = y;
  });
  return { labels: out, noise: { p, numSamples: n, indices, noisyLabels, trueLabels, changed } };
}

/**
 * The line a run prints at its start, e.g. `label noise: 1000 of 2000 training labels (data.labelNoise
 * 0.5) replaced by labels drawn uniformly from all 10 classes; 897 changed, 103 drew their true label
 * again (expected about 1/10); validation labels untouched`.
 */
export function describeLabelNoise(noise: LabelNoise, numClasses: number): string {
  const m = noise.indices.length;
  return (
    `label noise: ${m} of ${noise.numSamples} training labels (data.labelNoise ${noise.p}) replaced by labels drawn uniformly from all ${numClasses} classes; ` +
    `${noise.changed} changed, ${m - noise.changed} drew their true label again (expected about 1/${numClasses}); validation labels untouched`
  );
}
