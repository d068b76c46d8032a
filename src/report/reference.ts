/**
 * The published CIFAR-10 results of the MXNet reference implementation (unsky/mixup, forked as
 * hdjsjyl/mixup; its README.md results table): % top-1 test accuracy of a pre-activation ResNet-50
 * after 90, 200 and 300 epochs, one run each. The 90- and 200-epoch figures are checkpoints of the
 * 300-epoch runs (its test.py scores a run's checkpoint of a given epoch). The only ERM log (train_erm.log) is a
 * 90-epoch run, so the ERM 200/300 recipe is inferred, and its 300-epoch figure (89.32) is no better
 * than its 200-epoch one.
 */
import type { Experiment } from '../config/schema.js';

/** Reference % test accuracy by experiment and number of epochs. */
export const REFERENCE_ACCURACY: Readonly<Record<Experiment, Readonly<Record<number, number>>>> = {
  erm: { 90: 87.9, 200: 89.37, 300: 89.32 },
  mixup: { 90: 86.09, 200: 91.61, 300: 92.25 },
  'mixup-feature': { 90: 85.45, 200: 91.8, 300: 91.85 },
};

/** The reference's % test accuracy for an experiment trained `epochs` epochs, or null when it published none. */
export function referenceAccuracy(experiment: Experiment, epochs: number): number | null {
  return REFERENCE_ACCURACY[experiment][epochs] ?? null;
}
