/**
 * White-box adversarial examples against a checkpoint, as the mixup paper's robustness experiment
 * (Zhang et al. 2017, §3.5) ran them: the fast gradient sign method (FGSM, Goodfellow et al. 2015,
 * "Explaining and Harnessing Adversarial Examples") and its iterative form (I-FGSM, Kurakin et al.
 * 2017, "Adversarial Examples in the Physical World", the basic iterative method).
 *
 * The perturbation lives in pixel space: ε is in 0–255 pixel levels on the un-normalised image,
 * before the network's input normalisation (mean subtraction, and for the `paper` preset the
 * division by 255 and the std), and every attacked image is clipped to [0, 255]. The attack
 * differentiates through that normalisation:
 *   FGSM:    x′ = clip₀²⁵⁵(x + ε·sign(∇ₓ L(f(norm(x)), y)))
 *   I-FGSM:  x₀ = x, xₜ₊₁ = clip₀²⁵⁵(clip_{x,ε}(xₜ + (ε/K)·sign(∇ₓ L(f(norm(xₜ)), y)))), K steps,
 * where clip_{x,ε} keeps every pixel within ±ε of the clean one and L is the cross-entropy with the
 * true label. BatchNorm runs in inference mode (moving statistics), so every sample is attacked
 * independently of the others in its batch; L is summed, not averaged, over the batch, which keeps
 * small per-sample gradients from rounding to zero (the sign does not change). A pixel whose
 * gradient is exactly 0 is not moved.
 */
import type { DataPipeline } from '../data/types.js';
import { checkAttack, type AttackOptions, type Normalisation } from '../engine/attack.js';
import type { Engine } from '../engine/engine.js';

export { ATTACKS, DEFAULT_IFGSM_STEPS, checkAttack, type AttackKind, type AttackOptions, type Normalisation } from '../engine/attack.js';


/** What {@link evaluateAttack} reports. Accuracies are fractions in [0, 1]. */
export interface AttackResult extends AttackOptions {
  /** Samples attacked. */
  samples: number;
  /** Top-1 accuracy on the clean images. */
  cleanAccuracy: number;
  /** Top-1 accuracy on the attacked images. */
  attackedAccuracy: number;
}

/**
 * Attacks every sample of `data` once (one epoch of the evaluation pipeline) against the engine's network in
 * inference mode (Engine `attackPredictions`), and counts clean and attacked top-1 hits. The engine reads only the predictions
 * of each batch to the host.
 * @param norm the normalisation the pipeline applied (to undo it and attack in pixel space).
 * @param onProgress called after every batch with (samples done, samples in all).
 * @throws RangeError for bad attack numbers.
 */
export async function evaluateAttack(
  engine: Engine,
  data: DataPipeline,
  norm: Normalisation,
  o: AttackOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<AttackResult> {
  checkAttack(o);
  let samples = 0;
  let clean = 0;
  let attacked = 0;
  for await (const b of data.epoch(0)) {
    const p = await engine.attackPredictions(b, norm, o);
    for (let i = 0; i < b.size; i++) {
      if (p[i] === b.labels[i]) clean++;
      if (p[b.size + i] === b.labels[i]) attacked++;
    }
    samples += b.size;
    onProgress?.(samples, data.numSamples);
  }
  return {
    ...o,
    steps: o.kind === 'fgsm' ? 1 : o.steps,
    samples,
    cleanAccuracy: samples > 0 ? clean / samples : NaN,
    attackedAccuracy: samples > 0 ? attacked / samples : NaN,
  };
}
