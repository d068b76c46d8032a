/**
 * SGD with momentum and weight decay in one of two forms (`train.sgd`).
 *
 * `mxnet`: MXNet's `sgd` optimiser with momentum and weight decay, as the reference trains with it
 * (common/fit.py: optimizer 'sgd', momentum 0.9, wd 1e-4). MXNet's update (optimizer.SGD, kernel
 * sgd_mom_update) is
 *   mom ← momentum·mom − lr·(rescale_grad·grad + wd·weight);   weight ← weight + mom
 * with the momentum buffers starting at zero. Weight decay applies only to parameters whose names
 * end in `_weight` or `_gamma` (MXNet's default wd_mult: 0 for every other name, so none on `_beta`
 * or `_bias`). The gradient handed to {@link SGD.apply} is already the rescaled one (trainStep
 * multiplies the loss by `train.gradScale`); weight decay is never rescaled.
 *
 * `pytorch`: torch.optim.SGD(params, lr, momentum, weight_decay) as facebookresearch/mixup-cifar10
 * trains (dampening 0, no Nesterov; torch/optim/sgd.py):
 *   buf ← momentum·buf + (grad + wd·weight);   weight ← weight − lr·buf
 * on every parameter (BatchNorm γ, β and biases too). The two forms agree only while lr is constant:
 * PyTorch's buffer holds no lr, so a lower lr applies to the accumulated velocity at once.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import { EXTRA_NAMES_SHOWN, type ResNet } from './resnet.js';

import { momentumKey, wdMult, type SgdForm } from '../../model/spec.js';

export { momentumKey, wdMult };

/** SGD with momentum over a network's trainable parameters. */
export class SGD {
  readonly momentum: number;
  readonly wd: number;
  readonly form: SgdForm;
  private readonly net: ResNet;
  private readonly mom = new Map<string, tf.Variable>();

  /**
   * @param net the network whose `params` this optimiser updates.
   * @param o momentum in [0, 1] (`train.momentum`), wd ≥ 0 (`train.wd`), form (`train.sgd`, default `mxnet`).
   */
  constructor(net: ResNet, o: { momentum: number; wd: number; form?: SgdForm }) {
    this.net = net;
    this.momentum = o.momentum;
    this.wd = o.wd;
    this.form = o.form ?? 'mxnet';
    for (const [name, v] of net.params) {
      const zeros = tf.zerosLike(v);
      this.mom.set(name, tf.variable(zeros, false));
      zeros.dispose(); // the variable keeps the data
    }
  }

  /**
   * One update of every parameter.
   * @param grads gradient of each parameter by reference name (same shapes), already scaled.
   * @param lr learning rate of this step.
   * @param guard optional boolean scalar on the device: where it is false the update changes nothing
   *   (weights and momentum keep their values; trainStep passes `finite(loss)`), without a host read.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, guard?: tf.Scalar): void {
    for (const [name, w] of this.net.params) {
      const g = grads.get(name);
      if (!g) throw new Error(`SGD.apply: no gradient for ${name}`);
      const m = this.mom.get(name)!;
      const wd = this.wd * wdMult(name, this.form);
      tf.tidy(() => {
        let next: tf.Tensor;
        let nextW: tf.Tensor;
        if (this.form === 'pytorch') {
          // buf ← μ·buf + g + wd·w;  w ← w − lr·buf
          const d = wd !== 0 ? tf.add(g, tf.mul(w, wd)) : g;
          next = this.momentum === 0 ? d : tf.add(tf.mul(m, this.momentum), d);
          nextW = tf.sub(w, tf.mul(next, lr));
        } else {
          // mom ← μ·mom − lr·(g + wd·w);  w ← w + mom
          let step = tf.mul(g, lr);
          if (wd !== 0) step = tf.add(step, tf.mul(w, lr * wd));
          next = this.momentum === 0 ? tf.neg(step) : tf.sub(tf.mul(m, this.momentum), step);
          nextW = tf.add(w, next);
        }
        if (guard) {
          m.assign(tf.where(guard, next, m));
          w.assign(tf.where(guard, nextW, w));
        } else {
          m.assign(next);
          w.assign(nextW);
        }
      });
    }
  }

  /** Names (`<param>_momentum`) and current momentum buffers, for checkpoints. The tensors are the live buffers: do not dispose them. */
  state(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, m] of this.mom) out.set(momentumKey(name), m);
    return out;
  }

  /**
   * Restores momentum buffers saved by {@link state} (copies the values; `s` stays the caller's).
   * @throws UserError when a buffer is missing or has another shape, or naming the first
   *   EXTRA_NAMES_SHOWN (resnet.ts) buffers the network has no parameter for (and how many more),
   *   e.g. the momentum of depth-50 weights given to a depth-8 network.
   */
  setState(s: Map<string, tf.Tensor>): void {
    const known = new Set([...this.mom.keys()].map(momentumKey));
    const extra = [...s.keys()].filter((name) => !known.has(name));
    if (extra.length > 0) {
      const shown = extra.slice(0, EXTRA_NAMES_SHOWN).join(', ');
      const more = extra.length > EXTRA_NAMES_SHOWN ? ` and ${extra.length - EXTRA_NAMES_SHOWN} more` : '';
      throw new UserError(
        `optimizer state: ${extra.length} momentum buffer${extra.length === 1 ? '' : 's'} the network has no parameter for: ${shown}${more} (the checkpoint is not of this network?)`,
      );
    }
    for (const [name, m] of this.mom) {
      const t = s.get(momentumKey(name));
      if (!t) throw new UserError(`optimizer state: momentum buffer ${momentumKey(name)} is missing`);
      if (t.shape.length !== m.shape.length || t.shape.some((d, i) => d !== m.shape[i])) {
        throw new UserError(`optimizer state: ${momentumKey(name)} has shape [${t.shape.join(',')}], expected [${m.shape.join(',')}]`);
      }
    }
    for (const [name, m] of this.mom) tf.tidy(() => m.assign(s.get(momentumKey(name))!.toFloat()));
  }

  /** Disposes the momentum buffers. */
  dispose(): void {
    for (const m of this.mom.values()) m.dispose();
    this.mom.clear();
  }
}
