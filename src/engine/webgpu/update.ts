/**
 * The end of a training step in one dispatch: MXNet SGD with momentum over the flat parameter
 * buffer (train/sgd.ts) and the BatchNorm moving statistics (model/batchnorm.ts movingUpdate), both
 * under the NaN guard of train/step.ts: when this step's loss is not finite nothing changes.
 *
 *   step = lr·g + (lr·wd)·w  (the wd term only on `*_weight`/`*_gamma`, laid out first: i < wdEnd)
 *   mom ← momentum·mom − step;  w ← w + mom
 *   moving ← 0.9·moving + 0.1·batch
 * g is the gradient buffer's value, or for a split backward-filter's weight (conv_filter.ts) the sum of
 * its chunks' partials, z = 0, 1, … in order (so a step is deterministic).
 *
 * With `form` `pytorch` (torch.optim.SGD, train.sgd) the parameter part is instead
 *   buf ← momentum·buf + g + wd·w;  w ← w − lr·buf
 * and scalars[1] holds wd itself (the engine writes it so); the layout puts every parameter in
 * [0, wdEnd) then.
 * g already carries train.gradScale (the loss kernel scales the loss gradient); weight decay is
 * never rescaled. lr and lr·wd come per step from the scalars buffer (rounded to float32 on the host).
 */
import type { Kernel } from './kernel.js';
import { elementwiseMain, f32, storage } from './wgsl.js';
import { elementwiseCost } from './cost.js';
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
  /**
   * Parameter ranges whose gradient is a sum of partials (split backward-filter), in ascending
   * `offset`, disjoint: floats [offset, offset + total) of the flat buffer take
   * Σ_z partials[base + z·total + (i − offset)] over z < chunks instead of grads[i].
   */
  splits?: readonly SplitGradient[];
}

/** One parameter whose gradient is the sum of `chunks` partials of `total` floats at `base` (floats). */
export interface SplitGradient {
  offset: number;
  total: number;
  base: number;
  chunks: number;
}

function mxnetStep(s: UpdateShape): string {
  return `    var step = gradOf(i) * scalars[0];
    if (i < ${s.wdEnd}u) { step = step + w * scalars[1]; }
    let next = ${s.momentum === 0 ? '-step' : `mom[i] * ${f32(s.momentum)} - step`};
    mom[i] = next;
    params[i] = w + next;`;
}

function pytorchStep(s: UpdateShape): string {
  return `    var d = gradOf(i);
    if (i < ${s.wdEnd}u) { d = d + w * scalars[1]; }
    let next = ${s.momentum === 0 ? 'd' : `mom[i] * ${f32(s.momentum)} + d`};
    mom[i] = next;
    params[i] = w - scalars[0] * next;`;
}

/**
 * One invocation per parameter (i < params) or moving statistic (after them). The guard: the
 * loss of this step (results[slot]) is finite, tested on its bits (exponent not all ones), which
 * no compiler may fold away. Bindings: params, grads, momentum, moving, batch, scalars, results,
 * [partials (with splits)].
 */
export function updateKernel(s: UpdateShape): Kernel {
  const splits = s.splits ?? [];
  for (let j = 1; j < splits.length; j++) {
    if (splits[j]!.offset < splits[j - 1]!.offset + splits[j - 1]!.total) throw new Error('updateKernel: split ranges must ascend without overlap');
  }
  // The gradient of parameter i: a binary search for the last split range starting at or before i.
  const gradOf = splits.length === 0
    ? 'fn gradOf(i: u32) -> f32 { return grads[i]; }'
    : `var<private> SPLITS: array<vec4u, ${splits.length}> = array<vec4u, ${splits.length}>(${splits.map((r) => `vec4u(${r.offset}u, ${r.total}u, ${r.base}u, ${r.chunks}u)`).join(', ')});
fn gradOf(i: u32) -> f32 {
  var lo = 0u;
  var hi = ${splits.length}u;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (SPLITS[mid].x <= i) { lo = mid + 1u; } else { hi = mid; }
  }
  if (lo > 0u) {
    let r = SPLITS[lo - 1u];
    let j = i - r.x;
    if (j < r.y) {
      var g = 0.0;
      for (var z = 0u; z < r.w; z++) { g += partials[r.z + z * r.y + j]; }
      return g;
    }
  }
  return grads[i];
}`;
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
  const partialFloats = splits.reduce((a, r) => a + r.chunks * r.total, 0);
  const splitFloats = splits.reduce((a, r) => a + r.total, 0);
  const cost = elementwiseCost('other', s.params + s.moving, 6, 3 * s.params - splitFloats + partialFloats + 2 * s.moving, 2 * s.params + s.moving);
  const decls = [
    storage(0, 'params', 'read_write'), storage(1, 'grads', 'read'), storage(2, 'mom', 'read_write'), storage(3, 'moving', 'read_write'),
    storage(4, 'batch', 'read'), storage(5, 'scalars', 'read'), storage(6, 'results', 'read'), ...(splits.length > 0 ? [storage(7, 'partials', 'read')] : []),
  ];
  return {
    label: `sgd_update${s.form === 'pytorch' ? '_pytorch' : ''} P${s.params} moving${s.moving}${splits.length > 0 ? ` splits${splits.length}` : ''}`,
    code: `${decls.join('\n')}\n${gradOf}\n${main.code}`,
    bindings: ['read_write', 'read', 'read_write', 'read_write', 'read', 'read', 'read', ...(splits.length > 0 ? (['read'] as const) : [])],
    workgroups: main.workgroups,
    cost,
  };
}
