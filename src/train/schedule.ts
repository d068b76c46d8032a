/**
 * Learning-rate schedules, per epoch (pure).
 */
import type { Config } from '../config/schema.js';

/**
 * The learning rate of epoch `epoch` (0-based).
 * - `step` (the reference: MXNet's MultiFactorScheduler with steps at `lr_step_epochs`·epoch_size,
 *   common/fit.py `_get_lr_scheduler`): lr·lrFactor^k, k = number of lrStepEpochs s with s ≤ epoch.
 *   MultiFactorScheduler lowers the rate once the update count passes s·epoch_size, i.e. from the
 *   first batch of 0-based epoch s, so with steps [10, 100, 200] epochs 0..9 use lr, 10..99 lr·0.1.
 * - `step-after` (facebookresearch/mixup-cifar10 train.py: `adjust_learning_rate(optimizer, epoch)`
 *   runs after epoch `epoch` has trained and sets lr/10 once epoch ≥ 100, lr/100 once ≥ 150):
 *   lr·lrFactor^k, k = number of s with s < epoch, so with steps [100, 150] epochs 0..100 use lr,
 *   101..150 lr·0.1 and 151.. lr·0.01.
 * - `cosine`: lr·(1 + cos(π·epoch/epochs))/2, from lr at epoch 0 towards 0 (SGDR without restarts,
 *   Loshchilov & Hutter 2017), constant within an epoch.
 * @param epoch 0-based epoch index.
 * @param t config `train` (lr, lrSchedule, lrFactor, lrStepEpochs, epochs).
 */
export function learningRate(
  epoch: number,
  t: Pick<Config['train'], 'lr' | 'lrSchedule' | 'lrFactor' | 'lrStepEpochs' | 'epochs'>,
): number {
  if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`learningRate: epoch ${epoch} is not a non-negative integer`);
  if (t.lrSchedule === 'cosine') return (t.lr * (1 + Math.cos((Math.PI * epoch) / t.epochs))) / 2;
  let lr = t.lr;
  const after = t.lrSchedule === 'step-after' ? 1 : 0;
  for (const s of t.lrStepEpochs) if (s + after <= epoch) lr *= t.lrFactor;
  return lr;
}
