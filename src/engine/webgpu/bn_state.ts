/**
 * The state of a training-mode BatchNorm of the static engine, and how kernels read it: the BatchNorm's
 * shape ({@link BnShape}), the layout of its state buffer, and the WGSL that folds the partial
 * statistics ({@link bnMomentsFn}) and applies the BatchNorm(+ReLU) in a consumer kernel's prologue
 * ({@link bnPrologue}). The kernels that write and use the state are in bn.ts.
 *
 * A tensor is seen as `[S, M, C]`: S shards of M = N/S·H·W rows of C channels.
 *
 * Statistics are reduced in two stages without a separate dispatch for the second: a producer writes
 * per-(shard, partial, channel) statistics into the BatchNorm's state, and every consumer kernel first
 * folds the P partials of each (shard, channel) in workgroup memory ({@link bnMomentsFn}).
 *
 * Per-BatchNorm state buffer, floats ({@link bnLayout}): forward partials `[S,Pf,C,2]` at 0, each the
 * (mean, M2 = Σ(x − mean)²) of the rows m ∈ [p·L, min((p+1)·L, M)) of its shard, folded with Chan et
 * al.'s pairwise formula (numerically sound at any count); backward partials `[S,Pb,C,2]` (Σg,
 * Σg·(x − μ), μ the shard's mean from the forward partials: plain sums) at 2·S·Pf·C;
 * g = dy·[y > 0] (the ReLU mask, where fused). Two producers write the same format:
 * bn.ts `bnStatsKernel` (P ≤ 32 partials per shard, a shift K inside each partial keeps its one-pass
 * sums accurate), and the statistics epilogue of a convolution with its finalize kernel
 * (bn_epilogue.ts: final values, P = 1, where the BatchNorm's shape says `fwdFinal`).
 */
import { f32, WG } from './wgsl.js';

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
  /**
   * The forward statistics in the state are final (one partial per shard), written by a finalize
   * kernel from a convolution's epilogue (bn_epilogue.ts), not by bn.ts `bnStatsKernel`.
   */
  fwdFinal?: boolean;
}

/**
 * Most shard-channels S·C a BatchNorm may have: the kernels keep per-(shard, channel) statistics in
 * workgroup memory (WebGPU's default 16 KiB), the backward four arrays of S·C floats, a convolution's
 * fused prologue two beside its GEMM tiles. 1,024 covers every network at `train.shards` 1 (WRN-28-10's
 * 640 channels) or 2 (PreAct ResNet-18's 512).
 */
export const BN_MAX_SHARD_CHANNELS = 1024;

/**
 * Partials per shard and invocation groups of bn.ts `bnStatsKernel` for a shape: R = ⌊256/C⌋ rows per
 * pass for C ≤ 256; one row per pass (R = 1, each invocation looping over channels) for wider ones;
 * partial p covers the L consecutive rows from p·L (the last one fewer), P = ⌈M/L⌉ ≤ 32.
 */
export function bnPartials(s: BnShape): { P: number; L: number; R: number } {
  const R = Math.max(1, Math.floor(WG / s.channels));
  const want = Math.max(1, Math.min(32, Math.ceil(s.rows / (R * 64))));
  const L = Math.ceil(s.rows / want);
  return { P: Math.ceil(s.rows / L), L, R };
}

/**
 * Where the state of a BatchNorm keeps what (module comment): `Pf` forward partials per shard of `L`
 * rows each (1 of M rows with `fwdFinal`), `Pb` backward partials per shard, the backward half at
 * float `bwd`, `floats` in all.
 */
export function bnLayout(s: BnShape): { Pf: number; L: number; Pb: number; bwd: number; floats: number } {
  const p = bnPartials(s);
  const [Pf, L] = s.fwdFinal ? [1, s.rows] : [p.P, p.L];
  const bwd = 2 * s.shards * Pf * s.channels;
  return { Pf, L, Pb: p.P, bwd, floats: bwd + 2 * s.shards * p.P * s.channels };
}

/** Floats of a BatchNorm's state buffer (forward and backward partials). */
export function bnStateFloats(s: BnShape): number {
  return bnLayout(s).floats;
}

/**
 * WGSL of a kernel that reads a BatchNorm's forward partials (binding `state`, declared by the
 * caller): constants `BN_S`, `BN_M`, `BN_C`, `BN_P`, `BN_L`, `BN_EPS` and `fn bnMoments(s, c) -> vec2f`,
 * the (mean, biased variance) of shard s, channel c, folded from the P partials (mean_p, M2_p) of
 * n_p = min(L, M − p·L) rows each in order p = 0, 1, … with Chan et al.'s formula
 * (n = n_a + n_b, δ = mean_b − mean_a, mean = mean_a + δ·n_b/n, M2 = M2_a + M2_b + δ²·n_a·n_b/n;
 * Chan, Golub & LeVeque 1979), as every BatchNorm kernel folds them. One partial is read as it is.
 */
export function bnMomentsFn(s: BnShape): string {
  const { Pf, L } = bnLayout(s);
  return `const BN_S = ${s.shards}u; const BN_M = ${s.rows}u; const BN_C = ${s.channels}u; const BN_P = ${Pf}u; const BN_L = ${L}u; const BN_EPS = ${f32(s.eps ?? BN_EPS)};
fn bnMoments(s: u32, c: u32) -> vec2f {
  let o0 = (s * BN_P * BN_C + c) * 2u;
  var mean = state[o0];
  var m2 = state[o0 + 1u];
  var n = f32(min(BN_L, BN_M));
  for (var p = 1u; p < BN_P; p++) {
    let o = ((s * BN_P + p) * BN_C + c) * 2u;
    let nb = f32(min(BN_L, BN_M - p * BN_L));
    let nn = n + nb;
    let d = state[o] - mean;
    mean += d * (nb / nn);
    m2 += state[o + 1u] + d * d * (n * nb / nn);
    n = nn;
  }
  return vec2f(mean, max(m2 / f32(BN_M), 0.0));
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
 * `select(y, 0, y < 0)` (a NaN stays NaN for the step's NaN guard).
 * @returns WGSL declarations, prologue statements and the workgroup bytes used.
 */
export function bnPrologue(a: BnApply, wgSize: number): { decls: string; body: string; bytes: number } {
  const SC = a.shape.shards * a.shape.channels;
  const decls = `${bnMomentsFn(a.shape)}
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
