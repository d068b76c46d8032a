/**
 * Training-mode BatchNorm kernels of the static engine (per shard; inference mode: bn_infer.ts), NHWC float32.
 * Formulas and conventions as model/batchnorm.ts (MXNet's BatchNorm; eps 2e-5): training mode
 * normalises every shard with its own mean and biased variance over its N/S·H·W rows; the moving
 * statistics get the shards' average (moving = 0.9·moving + 0.1·batch, applied by the update kernel).
 *
 * A tensor is seen as `[S, M, C]`: S shards of M = N/S·H·W rows of C channels.
 *
 * Statistics are reduced in two stages without a separate dispatch for the second: a partials
 * kernel writes, per shard s and partial p, shifted sums over a strided subset of the shard's rows,
 * and every consumer kernel first folds the P partials of each (shard, channel) in workgroup memory.
 * The shift K(s,c) = x[first row of shard s, c] (a sample of the channel) keeps the one-pass variance
 * E[(x−K)²] − E[x−K]² accurate.
 *
 * Per-BatchNorm state buffer, floats: forward partials `[S,P,C,2]` (Σ(x−K), Σ(x−K)²) at 0, backward
 * partials `[S,P,C,2]` (Σg, Σg·(x−K)) at S·P·C·2; g = dy·[y > 0] (the ReLU mask, where fused).
 *
 * The training step applies BatchNorm(+ReLU) where its output is read ({@link bnPrologue}: a
 * convolution's prologue), so only a BatchNorm before a kernel without one (the head's pool) runs
 * {@link bnForwardKernel}; the backward recomputes its ReLU mask from x.
 */
import type { BindingKind, Kernel } from './kernel.js';
import { entry, f32, grid, storage, WG } from './wgsl.js';
import { elementwiseCost } from './cost.js';

/** BatchNorm eps of the reference (symbols/resnet.py). */
export const BN_EPS = 2e-5;

/** Geometry of one BatchNorm's input. */
export interface BnShape {
  /** Shards S (own statistics each). */
  shards: number;
  /** Rows per shard, M = N/S·H·W. */
  rows: number;
  channels: number;
  /** BatchNorm eps (model/spec.ts NetworkSpec.bnEps); default {@link BN_EPS}. */
  eps?: number;
}

/**
 * Most shard-channels S·C a BatchNorm may have: the kernels keep per-(shard, channel) statistics in
 * workgroup memory (WebGPU's default 16 KiB), the backward four arrays of S·C floats, a convolution's
 * fused prologue two beside its GEMM tiles. 1,024 covers every network at `train.shards` 1 (WRN-28-10's
 * 640 channels) or 2 (PreAct ResNet-18's 512).
 */
export const BN_MAX_SHARD_CHANNELS = 1024;

/**
 * Partials per shard and invocation groups of the partials kernel for a shape: R = ⌊256/C⌋ rows per
 * pass for C ≤ 256; one row per pass (R = 1, each invocation looping over channels) for wider ones.
 */
export function bnPartials(s: BnShape): { P: number; R: number } {
  const R = Math.max(1, Math.floor(WG / s.channels));
  const P = Math.max(1, Math.min(32, Math.ceil(s.rows / (R * 64))));
  return { P, R };
}

/** Floats of a BatchNorm's state buffer (forward and backward partials). */
export function bnStateFloats(s: BnShape): number {
  return 4 * s.shards * bnPartials(s).P * s.channels;
}

/**
 * WGSL of a kernel that reads a BatchNorm's forward partials (bindings `x`, the BatchNorm input, and
 * `state`, declared by the caller): constants `BN_S`, `BN_M`, `BN_C`, `BN_P`, `BN_EPS` and
 * `fn bnMoments(s, c) -> vec2f`, the (mean, biased variance) of shard s, channel c, folded from the P
 * shifted partials exactly as every BatchNorm kernel folds them ({@link foldStats}). `xVec4`: x is
 * declared `array<vec4<f32>>` (a conv's vec4 loads), and the shift is read as a component of it.
 */
export function bnMomentsFn(s: BnShape, xVec4 = false): string {
  const { P } = bnPartials(s);
  return `const BN_S = ${s.shards}u; const BN_M = ${s.rows}u; const BN_C = ${s.channels}u; const BN_P = ${P}u; const BN_EPS = ${f32(s.eps ?? BN_EPS)};
fn bnMoments(s: u32, c: u32) -> vec2f {
  var t = vec2f(0.0);
  for (var p = 0u; p < BN_P; p++) {
    let o = ((s * BN_P + p) * BN_C + c) * 2u;
    t += vec2f(state[o], state[o + 1u]);
  }
  let d = t.x / f32(BN_M);
  let k = s * BN_M * BN_C + c;
  return vec2f(${xVec4 ? 'x[k / 4u][k % 4u]' : 'x[k]'} + d, max(t.y / f32(BN_M) - d * d, 0.0));
}`;
}

/** A BatchNorm applied where its output is read (a conv's prologue, the backward's ReLU mask). */
export interface BnApply {
  shape: BnShape;
  fixGamma: boolean;
  relu: boolean;
}

/**
 * The fused BatchNorm(+ReLU) of a consumer kernel: declarations (after the caller's `x` and `state`
 * bindings and `gamma` unless fixGamma, `beta`), workgroup arrays `bnScale`, `bnShift` `[S·C]` (8·S·C
bytes, at most 8 KiB under {@link BN_MAX_SHARD_CHANNELS}, so a GEMM's tiles still fit beside them), and the
 * statements (in `main`, uniform control flow, invocation index `lid` of `wgSize`) that fill them:
 * scale = γ·rstd, shift = β − μ·scale, then a barrier. `fn bnAct(v, s, c)` is then the BatchNorm output
 * `fma(v, scale, shift)` of an input value v of shard s, channel c, with ReLU written as
 * `select(y, 0, y < 0)` (a NaN stays NaN for the step's NaN guard). `xVec4`: see {@link bnMomentsFn}.
 * @returns WGSL declarations, prologue statements and the workgroup bytes used.
 */
export function bnPrologue(a: BnApply, wgSize: number, xVec4 = false): { decls: string; body: string; bytes: number } {
  const SC = a.shape.shards * a.shape.channels;
  const decls = `${bnMomentsFn(a.shape, xVec4)}
var<workgroup> bnScale: array<f32, ${SC}>;
var<workgroup> bnShift: array<f32, ${SC}>;
fn bnAct(v: f32, s: u32, c: u32) -> f32 {
  let j = s * BN_C + c;
  let y = fma(v, bnScale[j], bnShift[j]);
  return ${a.relu ? 'select(y, 0.0, y < 0.0)' : 'y'};
}`;
  const body = `for (var j0 = 0u; j0 < ${SC}u; j0 += ${wgSize}u) {
    let j = j0 + lid;
    if (j < ${SC}u) {
      let c = j % BN_C;
      let m = bnMoments(j / BN_C, c);
      let sc = ${a.fixGamma ? '' : 'gamma[c] * '}inverseSqrt(m.y + BN_EPS);
      bnScale[j] = sc;
      bnShift[j] = beta[c] - m.x * sc;
    }
  }
  workgroupBarrier();`;
  return { decls, body, bytes: 8 * SC };
}

function header(s: BnShape): string {
  const { P, R } = bnPartials(s);
  if (s.shards * s.channels > BN_MAX_SHARD_CHANNELS) throw new Error(`BatchNorm: ${s.shards} shards × ${s.channels} channels, at most ${BN_MAX_SHARD_CHANNELS} shard-channels`);
  return `const S = ${s.shards}u; const M = ${s.rows}u; const C = ${s.channels}u; const P = ${P}u; const R = ${R}u;
const N = ${s.shards * s.rows * s.channels}u; const EPS = ${f32(s.eps ?? BN_EPS)};`;
}

/**
 * Partials of the forward (Σ(x−K), Σ(x−K)²) or backward (Σg, Σg·(x−K)) statistics. Dispatch
 * `[P, S, 1]` workgroups of 256. For C ≤ 256: invocation (r, c) = (lid / C, lid % C), r < R = ⌊256/C⌋,
 * sums rows m ≡ p·R + r (mod P·R) of shard s at channel c; then the R sums per channel are added in
 * workgroup memory and written to the state at partial (s, p). For C > 256 (R = 1): invocation lid
 * sums rows m ≡ p (mod P) at channels c = lid, lid + 256, … (consecutive invocations read consecutive
 * channels of a row) and writes each channel's sums straight to the state.
 * Backward: g = dy·[BN output > 0] with `relu`, the BN output recomputed from x and the forward
 * partials as the consumers computed it ({@link bnPrologue}); `batch`: workgroup (0, 0) also writes
 * the shards' average mean and biased variance to `batch` ([mean C | var C], for the moving update),
 * which a BatchNorm applied in its consumers has no forward kernel to write.
 * Bindings forward: x, state. Backward: dy, x, state, [γ (relu, not fixGamma), β (relu),] [batch].
 */
export function bnStatsKernel(s: BnShape, o: { backward: boolean; relu?: boolean; fixGamma?: boolean; batch?: boolean }): Kernel {
  const { P } = bnPartials(s);
  const bwd = o.backward;
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
  const value = bwd ? `let g = ${mask ? 'select(0.0, dy[j], bnAct(x[j], s, c) > 0.0)' : 'dy[j]'}; acc += vec2f(g, g * v);` : 'acc += vec2f(v, v * v);';
  const half = bwd ? 'S * P * C * 2u + ' : '';
  const narrowSums = `let c = lid % C; let r = lid / C;
  var acc = vec2f(0.0);
  if (r < R) {
    let base = s * M;
    let k = x[base * C + c];
    for (var m = p * R + r; m < M; m += P * R) {
      let j = (base + m) * C + c;
      let v = x[j] - k;
      ${value}
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  if (lid < C) {
    var t = vec2f(0.0);
    for (var q = 0u; q < R; q++) { t += part[q * C + lid]; }
    let o = ${half}((s * P + p) * C + lid) * 2u;
    state[o] = t.x;
    state[o + 1u] = t.y;
  }`;
  const wideSums = `let base = s * M;
  for (var c = lid; c < C; c += ${WG}u) {
    var acc = vec2f(0.0);
    let k = x[base * C + c];
    for (var m = p; m < M; m += P) {
      let j = (base + m) * C + c;
      let v = x[j] - k;
      ${value}
    }
    let o = ${half}((s * P + p) * C + c) * 2u;
    state[o] = acc.x;
    state[o + 1u] = acc.y;
  }`;
  const code = `${header(s)}
${decl.join('\n')}
${pro ? pro.decls : writeBatch ? bnMomentsFn(s) : ''}
${s.channels > WG ? '' : `var<workgroup> part: array<vec2f, ${WG}>;`}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let p = wid.x; let s = wid.y;
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
  const cost = elementwiseCost('bn', n, bwd ? 4 : 3, (bwd ? 2 : 1) * n + (bwd ? 2 * s.shards * P * s.channels : 0), 2 * s.shards * P * s.channels + (writeBatch ? 2 * s.channels : 0));
  const label = `bn_${bwd ? 'bwd' : 'fwd'}_stats S${s.shards} M${s.rows} C${s.channels}${mask ? ' relu' : ''}${writeBatch ? ' +batch' : ''}`;
  return { label, code, bindings, workgroups: [P, s.shards, 1], cost };
}

/**
 * WGSL that folds the forward partials into `mu[s·C+c]`, `rstd[s·C+c]` = 1/√(var + eps) and (forward
 * only) `vr` (biased variance) in workgroup memory, and with `backward` the backward partials into
 * `gs` = Σg and `gxm` = Σg·(x − μ) per (s, c). Ends with a barrier; call it in uniform control flow.
 */
function foldStats(backward: boolean): string {
  return `  for (var j0 = 0u; j0 < S * C; j0 += ${WG}u) {
    let j = j0 + lid;
    if (j < S * C) {
      let s = j / C; let c = j % C;
      var t = vec2f(0.0);
      var u = vec2f(0.0);
      for (var p = 0u; p < P; p++) {
        let o = ((s * P + p) * C + c) * 2u;
        t += vec2f(state[o], state[o + 1u]);
        ${backward ? 'u += vec2f(state[S * P * C * 2u + o], state[S * P * C * 2u + o + 1u]);' : ''}
      }
      let d = t.x / f32(M);
      let v = max(t.y / f32(M) - d * d, 0.0);
      mu[j] = x[s * M * C + c] + d;
      ${backward ? '' : 'vr[j] = v;'}
      rstd[j] = inverseSqrt(v + EPS);
      ${backward ? 'gs[j] = u.x; gxm[j] = u.y - d * u.x;' : ''}
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
  const stateFloats = 2 * s.shards * bnPartials(s).P * s.channels;
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
 * Bindings: [dy,] x, state, [γ (with dx),] [β (with dx and relu),] [dγ,] dβ, [dx].
 */
export function bnBackwardKernel(s: BnShape, o: { fixGamma: boolean; relu: boolean; dx: 'write' | 'add' | 'none' }): Kernel {
  const n = s.shards * s.rows * s.channels;
  const withDx = o.dx !== 'none';
  const workgroups = withDx ? grid(Math.ceil(n / (WG * ELEMS))) : ([1, 1, 1] as [number, number, number]);
  const decl: string[] = [];
  const bindings: BindingKind[] = [];
  const add = (name: string, access: 'read' | 'read_write') => (decl.push(storage(bindings.length, name, access)), bindings.push(access));
  if (withDx) add('dy', 'read');
  add('x', 'read');
  add('state', 'read');
  if (withDx && !o.fixGamma) add('gamma', 'read');
  if (withDx && o.relu) add('beta', 'read');
  if (!o.fixGamma) add('dgamma', 'read_write');
  add('dbeta', 'read_write');
  if (withDx) add('dx', 'read_write');
  const SC = s.shards * s.channels;
  const code = `${header(s)}
${decl.join('\n')}
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
    elems * (2 + (o.dx === 'add' ? 1 : 0)) + stateFloats + s.shards * s.channels + 2 * s.channels,
    elems + 2 * s.channels,
  );
  cost.requested += 4 * (workgroups[0] * workgroups[1] - 1) * stateFloats;
  return { label: `bn_bwd S${s.shards} M${s.rows} C${s.channels}${o.relu ? ' relu' : ''} dx:${o.dx}`, code, bindings, workgroups, cost };
}
