/**
 * What an attack is, in the words every executor understands (the seam's vocabulary for
 * evaluate/attack.ts, which describes FGSM and I-FGSM and their sources): the kind, ε in pixel
 * levels, the steps, and the input normalisation to differentiate through.
 */
/** Attacks of `mixup test --attack`. */
export const ATTACKS = ['fgsm', 'ifgsm'] as const;
export type AttackKind = (typeof ATTACKS)[number];

/** Default number of I-FGSM steps (Kurakin et al. use min(ε + 4, 1.25ε) steps; 10 is the common choice). */
export const DEFAULT_IFGSM_STEPS = 10;

/** An attack. */
export interface AttackOptions {
  kind: AttackKind;
  /** L∞ budget in pixel levels (0–255 scale), ≥ 0. */
  eps: number;
  /** Gradient steps of I-FGSM, each of ε/steps (FGSM: ignored, always one step of ε). */
  steps: number;
}

/**
 * The network's input normalisation, `x = (pixel · scale − mean[c]) / std[c]` per channel c, as
 * augment/index.ts `AugmentSpec` describes it (`reference` preset: scale 1, the
 * rgbMean, std 1; `paper` preset: scale 1/255, the CIFAR-10 mean and std).
 */
export interface Normalisation {
  scale: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/**
 * Checks an attack's numbers.
 * @throws RangeError when ε is not a finite number ≥ 0 or steps is not a positive integer.
 */
export function checkAttack(o: AttackOptions): void {
  if (!Number.isFinite(o.eps) || o.eps < 0) throw new RangeError(`attack: eps must be a finite number >= 0, got ${o.eps}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new RangeError(`attack: steps must be a positive integer, got ${o.steps}`);
}
