/**
 * The network's head and the loss (model/resnet.ts, train/loss.ts, train/step.ts): global average
 * pool (reading the head's BatchNorm+ReLU through its prologue), fc1, the batch-mean loss with its
 * gradient and the correct count, and their backward (fc1's and the pool's in one kernel).
 * NHWC float32; `fc1_weight` `[C, K]`, `fc1_bias` `[K]`.
 */
import type { LossName } from '../engine.js';
import type { Kernel } from './kernel.js';
import { elementwiseMain, entry, f32, grid, storage, WG } from './wgsl.js';
import { bnPrologue, bnStateFloats, type BnApply } from './bn_state.js';
import { elementwiseCost } from './cost.js';

/**
 * Global average pool: pooled[b,c] = Σ_{pix} y[b,pix,c] / HW over `x` `[B,HW,C]`, with y = x or, with
 * `bn`, y = ReLU(BatchNorm(x)) applied as x is read (bn_state.ts bnPrologue: the head's BatchNorm is never
 * written out). One invocation per (b, c); each workgroup of 256 first folds the BatchNorm's
 * scale and shift for all shard-channels. Bindings: x, [state, [γ,] β (with bn),] pooled.
 */
export function poolKernel(batch: number, hw: number, channels: number, bn?: BnApply): Kernel {
  const n = batch * channels;
  const workgroups = grid(Math.ceil(n / WG));
  const pro = bn ? bnPrologue(bn, WG) : null;
  const names: [string, 'read' | 'read_write'][] = [['x', 'read']];
  if (bn) {
    names.push(['state', 'read']);
    if (!bn.fixGamma) names.push(['gamma', 'read']);
    names.push(['beta', 'read']);
  }
  names.push(['pooled', 'read_write']);
  // The shard of image b: rows of shard s are images [s·B/S, (s+1)·B/S).
  const value = bn ? `bnAct(x[(b * ${hw}u + p) * ${channels}u + c], b / ${batch / (bn?.shape.shards ?? 1)}u, c)` : `x[(b * ${hw}u + p) * ${channels}u + c]`;
  const code = `${names.map(([name, access], i) => storage(i, name, access)).join('\n')}
${pro ? pro.decls : ''}
${entry(workgroups[0])}
  ${pro ? pro.body : ''}
  let i = wg * ${WG}u + lid;
  if (i < ${n}u) {
    let c = i % ${channels}u; let b = i / ${channels}u;
    var acc = 0.0;
    for (var p = 0u; p < ${hw}u; p++) { acc += ${value}; }
    pooled[i] = acc / ${f32(hw)};
  }
}
`;
  const stateFloats = bn ? bnStateFloats(bn.shape) / 2 : 0;
  const cost = elementwiseCost('other', batch * hw * channels, bn ? 3 : 1, batch * hw * channels + stateFloats, n);
  cost.requested += 4 * (workgroups[0] * workgroups[1] - 1) * stateFloats;
  return { label: `pool${bn ? '+bnrelu' : ''} B${batch} HW${hw} C${channels}`, code, bindings: names.map(([, a]) => a), workgroups, cost };
}

/** What the loss kernel computes. */
export interface LossOptions {
  batch: number;
  channels: number;
  classes: number;
  loss: LossName;
  /** Factor on the loss gradient (train.gradScale). */
  gradScale: number;
  /** Steps whose results fit in the results buffer (`[capacity, 2]`: loss, correct). */
  capacity: number;
}

/**
 * fc1, the loss and its gradient, one workgroup of 256 (invocation b handles rows b, b+256, …):
 * z = pooled·W + bias; per row soft-ce lse(z)·Σy − Σy·z or mixture-nll lse(z) − lse(z + log y)
 * (log 0 as −1e30); dz = gradScale/B·(softmax(z)·Σy − y) resp. gradScale/B·(softmax(z) −
 * softmax(z + log y)); the correct count compares the first argmax of z with the majority label.
 * Writes results[slot] = (batch-mean loss, correct) and dz `[B,K]`.
 * Bindings: pooled, W, bias, scalars ([lr, lr·wd, slot, …]), targets `[B,K]`, majority `[B]` (as
 * floats), results, dz.
 */
export function lossKernel(o: LossOptions): Kernel {
  const K = o.classes;
  const nll = o.loss === 'mixture-nll';
  const code = `${storage(0, 'pooled', 'read')}
${storage(1, 'fw', 'read')}
${storage(2, 'fb', 'read')}
${storage(3, 'scalars', 'read')}
${storage(4, 'y', 'read')}
${storage(5, 'majority', 'read')}
${storage(6, 'results', 'read_write')}
${storage(7, 'dz', 'read_write')}
var<workgroup> lossPart: array<f32, ${WG}>;
var<workgroup> hitPart: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var lossSum = 0.0;
  var hits = 0.0;
  for (var b = lid; b < ${o.batch}u; b += ${WG}u) {
    var z: array<f32, ${K}>;
    var best = 0u;
    for (var k = 0u; k < ${K}u; k++) {
      var acc = 0.0;
      for (var c = 0u; c < ${o.channels}u; c++) { acc += pooled[b * ${o.channels}u + c] * fw[c * ${K}u + k]; }
      z[k] = acc + fb[k];
      if (z[k] > z[best]) { best = k; }
    }
    if (f32(best) == majority[b]) { hits += 1.0; }
    let zmax = z[best];
    var se = 0.0;
    for (var k = 0u; k < ${K}u; k++) { se += exp(z[k] - zmax); }
    let lse = zmax + log(se);
${
  nll
    ? `    var m2 = -3.0e38;
    for (var k = 0u; k < ${K}u; k++) { let yk = y[b * ${K}u + k]; m2 = max(m2, z[k] + select(-1e30, log(yk), yk > 0.0)); }
    var se2 = 0.0;
    for (var k = 0u; k < ${K}u; k++) { let yk = y[b * ${K}u + k]; se2 += exp(z[k] + select(-1e30, log(yk), yk > 0.0) - m2); }
    lossSum += lse - (m2 + log(se2));
    for (var k = 0u; k < ${K}u; k++) {
      let yk = y[b * ${K}u + k];
      let q = exp(z[k] + select(-1e30, log(yk), yk > 0.0) - m2) / se2;
      dz[b * ${K}u + k] = (exp(z[k] - lse) - q) * ${f32(o.gradScale / o.batch)};
    }`
    : `    var ysum = 0.0; var yz = 0.0;
    for (var k = 0u; k < ${K}u; k++) { let yk = y[b * ${K}u + k]; ysum += yk; yz += yk * z[k]; }
    lossSum += lse * ysum - yz;
    for (var k = 0u; k < ${K}u; k++) {
      dz[b * ${K}u + k] = (exp(z[k] - lse) * ysum - y[b * ${K}u + k]) * ${f32(o.gradScale / o.batch)};
    }`
}
  }
  lossPart[lid] = lossSum;
  hitPart[lid] = hits;
  workgroupBarrier();
  if (lid == 0u) {
    var l = 0.0; var h = 0.0;
    for (var j = 0u; j < ${WG}u; j++) { l += lossPart[j]; h += hitPart[j]; }
    let slot = u32(scalars[2]) % ${o.capacity}u;
    results[slot * 2u] = l / ${f32(o.batch)};
    results[slot * 2u + 1u] = h;
  }
}
`;
  return {
    label: `loss_${o.loss} B${o.batch} C${o.channels} K${K}`,
    code,
    bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'read_write', 'read_write'],
    workgroups: [1, 1, 1],
  };
}

/**
 * fc1 backward and the pool's backward in one kernel: dW[c,k] = Σ_b pooled[b,c]·dz[b,k],
 * dbias[k] = Σ_b dz[b,k], and the gradient of the pool's input `[B,HW,C]`,
 * da[b,pix,c] = dpooled[b,c] / HW with dpooled[b,c] = Σ_k dz[b,k]·W[c,k] (never stored).
 * Invocation i < C·K computes dW[i], i < K also dbias[i], i < B·C dpooled[i] and its HW copies
 * (consecutive invocations write consecutive channels of a pixel).
 * Bindings: pooled, W, dz, dW, dbias, da.
 */
export function fcBackwardKernel(batch: number, channels: number, classes: number, hw: number): Kernel {
  const K = classes;
  const C = channels;
  const main = elementwiseMain(
    Math.max(C * K, batch * C),
    `  if (i < ${C * K}u) {
    let c = i / ${K}u; let k = i % ${K}u;
    var acc = 0.0;
    for (var b = 0u; b < ${batch}u; b++) { acc += pooled[b * ${C}u + c] * dz[b * ${K}u + k]; }
    dw[i] = acc;
  }
  if (i < ${K}u) {
    var acc = 0.0;
    for (var b = 0u; b < ${batch}u; b++) { acc += dz[b * ${K}u + i]; }
    db[i] = acc;
  }
  if (i < ${batch * C}u) {
    let b = i / ${C}u; let c = i % ${C}u;
    var acc = 0.0;
    for (var k = 0u; k < ${K}u; k++) { acc += dz[b * ${K}u + k] * fw[c * ${K}u + k]; }
    let g = acc / ${f32(hw)};
    for (var p = 0u; p < ${hw}u; p++) { da[(b * ${hw}u + p) * ${C}u + c] = g; }
  }`,
  );
  const n = batch * hw * C;
  return {
    label: `fc_bwd+pool_bwd B${batch} C${C} K${K} HW${hw}`,
    code: `${storage(0, 'pooled', 'read')}\n${storage(1, 'fw', 'read')}\n${storage(2, 'dz', 'read')}\n${storage(3, 'dw', 'read_write')}\n${storage(4, 'db', 'read_write')}\n${storage(5, 'da', 'read_write')}\n${main.code}`,
    bindings: ['read', 'read', 'read', 'read_write', 'read_write', 'read_write'],
    workgroups: main.workgroups,
    cost: { ...elementwiseCost('other', 0, 0, batch * C + C * K + batch * K, n + C * K + K), flops: 4 * batch * C * K, usefulFlops: 4 * batch * C * K },
  };
}

/**
 * Inference logits and, for input gradients, dz of the summed soft-ce on one-hot labels
 * (attack.ts: L = Σ_b CE(z_b, label_b), dz = softmax(z) − onehot). One invocation per row.
 * Bindings: pooled, W, bias, logits; with `grad`: labels (floats), dz.
 */
export function logitsKernel(batch: number, channels: number, classes: number, grad: boolean): Kernel {
  const K = classes;
  const main = elementwiseMain(
    batch,
    `  var z: array<f32, ${K}>;
  var zmax = -3.0e38;
  for (var k = 0u; k < ${K}u; k++) {
    var acc = 0.0;
    for (var c = 0u; c < ${channels}u; c++) { acc += pooled[i * ${channels}u + c] * fw[c * ${K}u + k]; }
    z[k] = acc + fb[k];
    logits[i * ${K}u + k] = z[k];
    zmax = max(zmax, z[k]);
  }
${
  grad
    ? `  var se = 0.0;
  for (var k = 0u; k < ${K}u; k++) { se += exp(z[k] - zmax); }
  for (var k = 0u; k < ${K}u; k++) { dz[i * ${K}u + k] = exp(z[k] - zmax) / se - select(0.0, 1.0, f32(k) == labels[i]); }`
    : ''
}`,
  );
  const decl = [storage(0, 'pooled', 'read'), storage(1, 'fw', 'read'), storage(2, 'fb', 'read'), storage(3, 'logits', 'read_write')];
  if (grad) decl.push(storage(4, 'labels', 'read'), storage(5, 'dz', 'read_write'));
  return {
    label: `logits B${batch} C${channels} K${K}${grad ? ' +dz' : ''}`,
    code: `${decl.join('\n')}\n${main.code}`,
    bindings: grad ? ['read', 'read', 'read', 'read_write', 'read', 'read_write'] : ['read', 'read', 'read', 'read_write'],
    workgroups: main.workgroups,
  };
}
