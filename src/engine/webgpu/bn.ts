/**
 * Training-mode BatchNorm kernels of the static engine (per shard; inference mode: bn_infer.ts), NHWC float32.
 * Formulas and conventions as model/batchnorm.ts (MXNet's BatchNorm; eps 2e-5): training mode
 * normalises every shard with its own mean and biased variance over its N/S·H·W rows; the moving
 * statistics get the shards' average (moving = 0.9·moving + 0.1·batch, applied by the update kernel).
 *
 * A BatchNorm's shape, its state buffer (forward and backward partial statistics) and the fold and
 * prologue that consumer kernels use to read it are in bn_state.ts; this module holds the kernels:
 * {@link bnStatsKernel} writes the partials (P ≤ 32 per shard, a shift K inside each partial keeps
 * its one-pass sums accurate; the other producer is a convolution's statistics epilogue with its
 * finalize kernel, bn_epilogue.ts, where the BatchNorm's shape says `fwdFinal`).
 *
 * The training step applies BatchNorm(+ReLU) where its output is read (bn_state.ts `bnPrologue`: a
 * convolution's prologue), so only a BatchNorm before a kernel without one (the head's pool) runs
 * {@link bnForwardKernel}; the backward recomputes its ReLU mask from x.
 */
import type { BindingKind, Kernel } from './kernel.js';
import { entry, f32, grid, storage, WG } from './wgsl.js';
import { elementwiseCost } from './cost.js';
import { BN_EPS, BN_MAX_SHARD_CHANNELS, bnLayout, bnMomentsFn, bnPartials, bnPrologue, bnStateFloats, type BnShape } from './bn_state.js';

function header(s: BnShape): string {
  const { Pf, Pb, L, R, bwd } = { ...bnPartials(s), ...bnLayout(s) };
  if (s.shards * s.channels > BN_MAX_SHARD_CHANNELS) throw new Error(`BatchNorm: ${s.shards} shards × ${s.channels} channels, at most ${BN_MAX_SHARD_CHANNELS} shard-channels`);
  return `const S = ${s.shards}u; const M = ${s.rows}u; const C = ${s.channels}u; const PF = ${Pf}u; const PB = ${Pb}u; const L = ${L}u; const R = ${R}u;
const BWD = ${bwd}u; const N = ${s.shards * s.rows * s.channels}u; const EPS = ${f32(s.eps ?? BN_EPS)};`;
}

/**
 * Partials of the forward (mean, M2) or backward (Σg, Σg·(x − μ)) statistics (bn_state.ts module comment), partial
 * p of shard s over rows [p·L, min((p+1)·L, M)). Dispatch `[P, S, 1]` workgroups of 256. For C ≤ 256:
 * invocation (r, c) = (lid / C, lid % C), r < R = ⌊256/C⌋, sums the partial's rows p·L + r, p·L + r + R, …
 * at channel c; then the R sums per channel are added in workgroup memory and written to the state.
 * For C > 256 (R = 1): invocation lid sums all the partial's rows at channels c = lid, lid + 256, …
 * (consecutive invocations read consecutive channels of a row) and writes them straight to the state.
 * Forward sums are shifted by K = x[the partial's first row, c] and turned into (mean, M2) at the end:
 * mean = K + Σ(x−K)/n, M2 = Σ(x−K)² − (Σ(x−K))²/n.
 * Backward: g = dy·[BN output > 0] with `relu`, the BN output recomputed from x and the forward
 * statistics as the consumers computed it ({@link bnPrologue}); `batch`: workgroup (0, 0) also writes
 * the shards' average mean and biased variance to `batch` ([mean C | var C], for the moving update),
 * which a BatchNorm applied in its consumers has no forward kernel to write.
 * Bindings forward: x, state. Backward: dy, x, state, [γ (relu, not fixGamma), β (relu),] [batch].
 * @throws Error for a forward kernel of a shape whose forward statistics are final (`fwdFinal`).
 */
export function bnStatsKernel(s: BnShape, o: { backward: boolean; relu?: boolean; fixGamma?: boolean; batch?: boolean }): Kernel {
  const { P } = bnPartials(s);
  const bwd = o.backward;
  if (!bwd && s.fwdFinal) throw new Error('bnStatsKernel: the forward statistics of this BatchNorm are written by a finalize kernel (fwdFinal)');
  const mask = bwd && o.relu === true;
  const writeBatch = bwd && o.batch === true;
  const decl: string[] = [];
  const bindings: BindingKind[] = [];
  const add = (name: string, access: 'read' | 'read_write') => {
    decl.push(storage(bindings.length, name, access));
    bindings.push(access);
  };
  if (bwd) add('dy', 'read');
  add('x', 'read');
  add('state', 'read_write');
  if (mask) {
    if (!o.fixGamma) add('gamma', 'read');
    add('beta', 'read');
  }
  if (writeBatch) add('batch', 'read_write');
  const pro = mask ? bnPrologue({ shape: s, fixGamma: o.fixGamma === true, relu: true }, WG) : null;
  // Forward: shifted sums (v = x − K); backward: v = x − μ.
  const shift = bwd ? 'bnMoments(s, c).x' : 'x[(base + m0) * C + c]';
  const value = bwd ? `let g = ${mask ? 'select(0.0, dy[j], bnAct(x[j], s, c) > 0.0)' : 'dy[j]'}; acc += vec2f(g, g * v);` : 'acc += vec2f(v, v * v);';
  // Writes the sums t of (shard s, partial p, channel c): backward as they are, forward as (mean, M2).
  const write = bwd
    ? `let o = BWD + ((s * PB + p) * C + c) * 2u;
    state[o] = t.x;
    state[o + 1u] = t.y;`
    : `let o = ((s * PB + p) * C + c) * 2u;
    let n = f32(m1 - m0);
    state[o] = k + t.x / n;
    state[o + 1u] = max(t.y - t.x * (t.x / n), 0.0);`;
  const narrowSums = `let c = lid % C; let r = lid / C;
  var acc = vec2f(0.0);
  if (r < R) {
    let k = ${shift};
    for (var m = m0 + r; m < m1; m += R) {
      let j = (base + m) * C + c;
      let v = x[j] - k;
      ${value}
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (lid < C) {
    let c = lid;
    let k = ${bwd ? '0.0' : shift};
    var t = vec2f(0.0);
    for (var q = 0u; q < R; q++) { t += part[q * C + c]; }
    ${write}
  }`;
  const wideSums = `for (var c = lid; c < C; c += ${WG}u) {
    var acc = vec2f(0.0);
    let k = ${shift};
    for (var m = m0; m < m1; m++) {
      let j = (base + m) * C + c;
      let v = x[j] - k;
      ${value}
    }
    let t = acc;
    ${write}
  }`;
  const code = `${header(s)}
${decl.join('\n')}
${pro ? pro.decls : bwd ? bnMomentsFn(s) : ''}
${s.channels > WG ? '' : `var<workgroup> part: array<vec2f, ${WG}>;`}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x; let s = wid.y;
  let base = s * M;
  let m0 = p * L;
  let m1 = min(m0 + L, M);
  ${pro ? pro.body : ''}
  ${
    writeBatch
      ? `if (p == 0u && s == 0u) {
    for (var c = lid; c < C; c += ${WG}u) {
      var mv = vec2f(0.0);
      for (var q = 0u; q < S; q++) { mv += bnMoments(q, c); }
      batch[c] = mv.x / f32(S);
      batch[C + c] = mv.y / f32(S);
    }
  }`
      : ''
  }
  ${s.channels > WG ? wideSums : narrowSums}
}
`;
  const n = s.shards * s.rows * s.channels;
  const { Pf } = bnLayout(s);
  const cost = elementwiseCost('bn', n, bwd ? 4 : 3, (bwd ? 2 : 1) * n + (bwd ? 2 * s.shards * Pf * s.channels : 0), 2 * s.shards * P * s.channels + (writeBatch ? 2 * s.channels : 0));
  const label = `bn_${bwd ? 'bwd' : 'fwd'}_stats S${s.shards} M${s.rows} C${s.channels}${mask ? ' relu' : ''}${writeBatch ? ' +batch' : ''}`;
  return { label, code, bindings, workgroups: [P, s.shards, 1], cost };
}

/**
 * WGSL that folds the forward statistics ({@link bnMomentsFn}) into `mu[s·C+c]`, `rstd[s·C+c]` =
 * 1/√(var + eps) and (forward only) `vr` (biased variance) in workgroup memory, and with `backward`
 * the backward partials into `gs` = Σg and `gxm` = Σg·(x − μ) per (s, c). Ends with a barrier; call
 * it in uniform control flow.
 */
function foldStats(backward: boolean): string {
  return `  for (var j0 = 0u; j0 < S * C; j0 += ${WG}u) {
    let j = j0 + lid;
    if (j < S * C) {
      let s = j / C; let c = j % C;
      let m = bnMoments(s, c);
      mu[j] = m.x;
      ${backward ? '' : 'vr[j] = m.y;'}
      rstd[j] = inverseSqrt(m.y + EPS);
      ${
        backward
          ? `var u = vec2f(0.0);
      for (var p = 0u; p < PB; p++) {
        let o = BWD + ((s * PB + p) * C + c) * 2u;
        u += vec2f(state[o], state[o + 1u]);
      }
      gs[j] = u.x; gxm[j] = u.y;`
          : ''
      }
    }
  }
  workgroupBarrier();`;
}

const ELEMS = 8;

/**
 * Training-mode forward: y = (x − μ)·(γ·rstd) + β per shard, then ReLU when `relu` (written as
 * `select(v, 0, v < 0)`, which keeps a NaN as tf.relu does, so the NaN guard sees it; `max` need not). Each workgroup
 * folds the statistics (see {@link foldStats}), then each invocation writes 8 elements
 * (i = (wg·8 + e)·256 + lid). Workgroup 0 also writes the shards' average mean and biased
 * variance to `batch` ([mean C | var C], for the moving update).
 * Bindings: x, state, [γ,] β, y, batch.
 */
export function bnForwardKernel(s: BnShape, o: { fixGamma: boolean; relu: boolean }): Kernel {
  const n = s.shards * s.rows * s.channels;
  const workgroups = grid(Math.ceil(n / (WG * ELEMS)));
  const decl = [storage(0, 'x', 'read'), storage(1, 'state', 'read')];
  const bindings: BindingKind[] = ['read', 'read'];
  if (!o.fixGamma) (decl.push(storage(2, 'gamma', 'read')), bindings.push('read'));
  const b = bindings.length;
  decl.push(storage(b, 'beta', 'read'), storage(b + 1, 'y', 'read_write'), storage(b + 2, 'batch', 'read_write'));
  bindings.push('read', 'read_write', 'read_write');
  const code = `${header(s)}
${decl.join('\n')}
${bnMomentsFn(s)}
var<workgroup> mu: array<f32, ${s.shards * s.channels}>;
var<workgroup> vr: array<f32, ${s.shards * s.channels}>;
var<workgroup> rstd: array<f32, ${s.shards * s.channels}>;
${entry(workgroups[0])}
${foldStats(false)}
  if (wg == 0u) {
    for (var c = lid; c < C; c += ${WG}u) {
      var m = 0.0; var v = 0.0;
      for (var s = 0u; s < S; s++) { m += mu[s * C + c]; v += vr[s * C + c]; }
      batch[c] = m / f32(S);
      batch[C + c] = v / f32(S);
    }
  }
  for (var e = 0u; e < ${ELEMS}u; e++) {
    let i = (wg * ${ELEMS}u + e) * ${WG}u + lid;
    if (i >= N) { break; }
    let c = i % C; let sc = (i / C / M) * C + c;
    let val = (x[i] - mu[sc]) * (${o.fixGamma ? '' : 'gamma[c] * '}rstd[sc]) + beta[c];
    y[i] = ${o.relu ? 'select(val, 0.0, val < 0.0)' : 'val'};
  }
}
`;
  // Each workgroup folds the whole forward half of the state: read once, requested once per workgroup.
  const stateFloats = bnLayout(s).bwd;
  const cost = elementwiseCost('bn', n, 4, n + stateFloats + 2 * s.channels, n + 2 * s.channels);
  cost.requested += 4 * (workgroups[0] * workgroups[1] - 1) * stateFloats;
  return { label: `bn_fwd S${s.shards} M${s.rows} C${s.channels}${o.relu ? ' relu' : ''}`, code, bindings, workgroups, cost };
}

/**
 * Training-mode backward (model/batchnorm.ts): with g = dy·[y > 0] (ReLU mask when `relu`; the
 * BatchNorm output y recomputed from x as {@link bnPrologue} computes it, so no output is stored),
 *   dx = γ·rstd·(g − Σg/M − (x − μ)·rstd²·Σg(x−μ)/M)   per shard,
 *   dγ = Σ_s rstd_s·Σg(x−μ)_s,  dβ = Σ_s Σg_s  (written by workgroup 0).
 * `dx`: `write` (dx = …), `add` (dx += …, e.g. onto the residual gradient), or `none` (grads only,
 * one workgroup). Each workgroup folds the statistics, then each invocation handles 8 elements.
 * Bindings: [dy, x,] state, [γ (with dx),] [β (with dx and relu),] [dγ,] dβ, [dx].
 */
export function bnBackwardKernel(s: BnShape, o: { fixGamma: boolean; relu: boolean; dx: 'write' | 'add' | 'none' }): Kernel {
  const n = s.shards * s.rows * s.channels;
  const withDx = o.dx !== 'none';
  const workgroups = withDx ? grid(Math.ceil(n / (WG * ELEMS))) : ([1, 1, 1] as [number, number, number]);
  const decl: string[] = [];
  const bindings: BindingKind[] = [];
  const add = (name: string, access: 'read' | 'read_write') => (decl.push(storage(bindings.length, name, access)), bindings.push(access));
  if (withDx) (add('dy', 'read'), add('x', 'read'));
  add('state', 'read');
  if (withDx && !o.fixGamma) add('gamma', 'read');
  if (withDx && o.relu) add('beta', 'read');
  if (!o.fixGamma) add('dgamma', 'read_write');
  add('dbeta', 'read_write');
  if (withDx) add('dx', 'read_write');
  const SC = s.shards * s.channels;
  const code = `${header(s)}
${decl.join('\n')}
${bnMomentsFn(s)}
var<workgroup> mu: array<f32, ${SC}>;
var<workgroup> rstd: array<f32, ${SC}>;
var<workgroup> gs: array<f32, ${SC}>;
var<workgroup> gxm: array<f32, ${SC}>;
${entry(workgroups[0])}
${foldStats(true)}
  if (wg == 0u) {
    for (var c = lid; c < C; c += ${WG}u) {
      var db = 0.0; var dg = 0.0;
      for (var s = 0u; s < S; s++) { db += gs[s * C + c]; dg += gxm[s * C + c] * rstd[s * C + c]; }
      dbeta[c] = db;
      ${o.fixGamma ? '' : 'dgamma[c] = dg;'}
    }
  }
  ${
    withDx
      ? `for (var e = 0u; e < ${ELEMS}u; e++) {
    let i = (wg * ${ELEMS}u + e) * ${WG}u + lid;
    if (i >= N) { break; }
    let c = i % C; let sc = (i / C / M) * C + c;
    let r = rstd[sc];
    ${o.relu ? `let scale = ${o.fixGamma ? '' : 'gamma[c] * '}r;
    let g = select(0.0, dy[i], fma(x[i], scale, beta[c] - mu[sc] * scale) > 0.0);` : 'let g = dy[i];'}
    let v = ${o.fixGamma ? '' : 'gamma[c] * '}r * (g - gs[sc] / f32(M) - (x[i] - mu[sc]) * (r * r * gxm[sc] / f32(M)));
    dx[i] = ${o.dx === 'add' ? 'dx[i] + ' : ''}v;
  }`
      : ''
  }
}
`;
  const stateFloats = bnStateFloats(s);
  const elems = withDx ? n : 0;
  const cost = elementwiseCost(
    'bn',
    elems,
    8,
    elems * (2 + (o.dx === 'add' ? 1 : 0)) + stateFloats + 2 * s.channels,
    elems + 2 * s.channels,
  );
  cost.requested += 4 * (workgroups[0] * workgroups[1] - 1) * stateFloats;
  return { label: `bn_bwd S${s.shards} M${s.rows} C${s.channels}${o.relu ? ' relu' : ''} dx:${o.dx}`, code, bindings, workgroups, cost };
}
