/**
 * The published CIFAR-10 results of the MXNet reference implementation (hongyi-zhang/mixup,
 * mxnet/README.md results table): % top-1 test accuracy of a pre-activation ResNet-50 after
 * 90, 200 and 300 epochs, one run each.
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
