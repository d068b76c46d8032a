/**
 * The end of a training step in one dispatch: MXNet SGD with momentum over the flat parameter
 * buffer (train/sgd.ts) and the BatchNorm moving statistics (model/batchnorm.ts movingUpdate), both
 * under the NaN guard of train/step.ts: when this step's loss is not finite nothing changes.
 *
 *   step = lr·g + (lr·wd)·w  (the wd term only on `*_weight`/`*_gamma`, laid out first: i < wdEnd)
 *   mom ← momentum·mom − step;  w ← w + mom
 *   moving ← 0.9·moving + 0.1·batch
 * With `form` `pytorch` (torch.optim.SGD, train.sgd) the parameter part is instead
 *   buf ← momentum·buf + g + wd·w;  w ← w − lr·buf
 * and scalars[1] holds wd itself (the engine writes it so); the layout puts every parameter in
 * [0, wdEnd) then.
 * g already carries train.gradScale (the loss kernel scales the loss gradient); weight decay is
 * never rescaled. lr and lr·wd come per step from the scalars buffer (rounded to float32 on the host).
 */
import type { Kernel } from './kernel.js';
import { elementwiseMain, f32, storage } from './wgsl.js';
import { BN_MOMENTUM, type SgdForm } from '../../model/spec.js';

/** Sizes of the update. */
export interface UpdateShape {
  /** Floats of the flat parameter buffer (and of gradients, momentum), padding included. */
  params: number;
  /** Parameters with weight decay occupy [0, wdEnd). */
  wdEnd: number;
  /** Floats of the moving-statistics buffer (and the batch-statistics buffer). */
  moving: number;
  /** train.momentum. */
  momentum: number;
  /** train.sgd (default `mxnet`). */
  form?: SgdForm;
  /** Capacity of the results buffer (see head.ts lossKernel). */
  capacity: number;
}

function mxnetStep(s: UpdateShape): string {
  return `    var step = grads[i] * scalars[0];
    if (i < ${s.wdEnd}u) { step = step + w * scalars[1]; }
    let next = ${s.momentum === 0 ? '-step' : `mom[i] * ${f32(s.momentum)} - step`};
    mom[i] = next;
    params[i] = w + next;`;
}

function pytorchStep(s: UpdateShape): string {
  return `    var d = grads[i];
    if (i < ${s.wdEnd}u) { d = d + w * scalars[1]; }
    let next = ${s.momentum === 0 ? 'd' : `mom[i] * ${f32(s.momentum)} + d`};
    mom[i] = next;
    params[i] = w - scalars[0] * next;`;
}

/**
 * One invocation per parameter (i < params) or moving statistic (after them). The guard: the
 * loss of this step (results[slot]) is finite, tested on its bits (exponent not all ones), which
 * no compiler may fold away. Bindings: params, grads, momentum, moving, batch, scalars, results.
 */
export function updateKernel(s: UpdateShape): Kernel {
  const main = elementwiseMain(
    s.params + s.moving,
    `  let slot = u32(scalars[2]) % ${s.capacity}u;
  let bits = bitcast<u32>(results[slot * 2u]);
  if ((bits & 0x7f800000u) == 0x7f800000u) { return; }
  if (i < ${s.params}u) {
    let w = params[i];
${s.form === 'pytorch' ? pytorchStep(s) : mxnetStep(s)}
  } else {
    let j = i - ${s.params}u;
    moving[j] = moving[j] * ${f32(BN_MOMENTUM)} + batch[j] * ${f32(1 - BN_MOMENTUM)};
  }`,
  );
  return {
    label: `sgd_update${s.form === 'pytorch' ? '_pytorch' : ''} P${s.params} moving${s.moving}`,
    code: `${storage(0, 'params', 'read_write')}\n${storage(1, 'grads', 'read')}\n${storage(2, 'mom', 'read_write')}\n${storage(3, 'moving', 'read_write')}\n${storage(4, 'batch', 'read')}\n${storage(5, 'scalars', 'read')}\n${storage(6, 'results', 'read')}\n${main.code}`,
    bindings: ['read_write', 'read', 'read_write', 'read_write', 'read', 'read', 'read'],
    workgroups: main.workgroups,
  };
}
