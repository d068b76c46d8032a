/**
 * Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
 * Vision", §7): training targets y become (1 − ε)·y + ε/K, applied to the (mixed) one-hot targets
 * of a batch before the loss (config `train.labelSmoothing`), for ERM and mixup alike. Pure, no tfjs.
 */

/**
 * Smoothed targets.
 * @param y `[B,K]` row-major float32 label weights (rows summing to 1), e.g. from mixLabels.
 * @param numClasses K ≥ 1.
 * @param epsilon ε in [0, 1); 0 returns `y` itself.
 * @returns `[B,K]` float32, (1 − ε)·y + ε/K; rows still sum to 1.
 * @throws RangeError when ε is outside [0, 1) or y's length is not a multiple of K.
 */
export function smoothLabels(y: Float32Array, numClasses: number, epsilon: number): Float32Array {
  if (!(epsilon >= 0 && epsilon < 1)) throw new RangeError(`smoothLabels: ε ${epsilon} is outside [0, 1)`);
  if (y.length % numClasses !== 0) throw new RangeError(`smoothLabels: ${y.length} values are not rows of ${numClasses} classes`);
  if (epsilon === 0) return y;
  const floor = epsilon / numClasses;
  return y.map((v) => (1 - epsilon) * v + floor);
}
