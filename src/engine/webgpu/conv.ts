/**
 * Convolution kernels of the static WebGPU engine (issue 17): forward, backward-data and
 * backward-filter of the reference network's convolutions (3×3 pad 1 and 1×1 pad 0, stride 1 or 2,
 * no bias; MXNet `Convolution`), each an implicit GEMM generated from static shapes.
 *
 * Layouts: activations NHWC `[B,H,W,C]` float32; weights `[k,k,Cin,Cout]` (model/spec.ts), which
 * read as a row-major `[k·k·Cin, Cout]` matrix with row index `(kh·k + kw)·Cin + ci`.
 *
 * All three kernels are instances of one tiled GEMM, `C[rows, cols] = Σ_red A(row, red)·B(red, col)`,
 * whose operands are gathered from the tensors as they are loaded (nothing is unfolded in memory):
 *
 * | kernel          | rows            | cols | red              | A(row, red)          | B(red, col)            |
 * | --------------- | --------------- | ---- | ---------------- | -------------------- | ---------------------- |
 * | forward         | B·OH·OW (b,oh,ow) | Cout | k·k·Cin (kh,kw,ci) | x at (oh·s−p+kh, ow·s−p+kw, ci), 0 in the padding | w[kh,kw,ci,co] |
 * | backward-data   | B·H·W (b,h,w)   | Cin  | k·k·Cout (kh,kw,co) | dy at ((h+p−kh)/s, (w+p−kw)/s, co) where that divides and lies inside, else 0 | w[kh,kw,ci,co] |
 * | backward-filter | k·k·Cin (kh,kw,ci) | Cout | B·OH·OW, split in chunks | x as in forward (transposed) | dy[b,oh,ow,co] |
 *
 * Backward-data (conv_data.ts) is the transposed convolution: the gather form above indexes the kernel taps
 * directly, so no flipped copy of the weights is needed; stride 2 runs as four dense phases (the
 * parities of h and w), each with only the taps whose `h + p − kh` is even. Backward-filter (conv_filter.ts) splits its long reduction
 * (every output position) into chunks, one per `workgroup_id.z`, and writes one partial `[k·k·Cin, Cout]`
 * per chunk, which the SGD update sums (split-K), because its output is small (2,304 floats at 16→16)
 * and would otherwise occupy only a few workgroups.
 *
 * Tiling: conv_gemm.ts (4×4 outputs per invocation, workgroup tiles up to 256×16 / 64×64 staged in
 * workgroup memory).
 */
import type { BindingKind, Kernel } from './kernel.js';
import { declare, gemmKernel, occupancyTiles, roundUp, type GemmTiles } from './conv_gemm.js';
import { tileStatsEpilogue, tileStatsFit, tileStatsFloats } from './bn_epilogue.js';
import { bnLayout, bnPrologue, type BnApply } from './bn_state.js';

export { gemmTiles, type GemmTiles } from './conv_gemm.js';

/** A convolution of the network (no bias; pad = (k−1)/2, MXNet's `pad=(1,1)` for 3×3 and 0 for 1×1). */
export interface ConvShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  k: 1 | 3;
  stride: 1 | 2;
}

/**
 * The output size of a convolution: `floor((in + 2·pad − k) / stride) + 1` per side, pad = (k−1)/2
 * (MXNet's `Convolution` output size).
 * @throws Error when a size is not a positive integer or k/stride are not 1|3 and 1|2.
 */
export function convOutSize(s: ConvShape): { outH: number; outW: number } {
  for (const key of ['batch', 'inH', 'inW', 'inC', 'outC'] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 1) throw new Error(`conv shape: ${key} must be a positive integer, got ${s[key]}`);
  }
  if (s.k !== 1 && s.k !== 3) throw new Error(`conv shape: k must be 1 or 3, got ${s.k}`);
  if (s.stride !== 1 && s.stride !== 2) throw new Error(`conv shape: stride must be 1 or 2, got ${s.stride}`);
  const pad = (s.k - 1) / 2;
  const out = (n: number) => Math.floor((n + 2 * pad - s.k) / s.stride) + 1;
  return { outH: out(s.inH), outW: out(s.inW) };
}

/**
 * Multiply-adds ×2 of one convolution pass: `2·B·OH·OW·Cout·k·k·Cin` floating-point operations. The
 * same count holds for the forward, backward-data and backward-filter passes (each is the same GEMM
 * transposed), counting products with padding as the forward does not; the kernels' wasted work on
 * tile edges, padding and stride-2 holes is not counted.
 */
export function convFlops(s: ConvShape): number {
  const { outH, outW } = convOutSize(s);
  return 2 * s.batch * outH * outW * s.outC * s.k * s.k * s.inC;
}

/**
 * One side (height or width) of the gather's indexing, for the cost model: `pairs`, the (output
 * position, tap) pairs that read memory, and `distinct`, the input positions read at all.
 * Forward and backward-filter read x at `o·s + t − p` inside [0, n); backward-data reads dy at
 * `(i + p − t) / s` where that divides and lies inside [0, out), for every input position i < n.
 */
export function gatherSide(n: number, out: number, k: number, s: number, dir: 'x' | 'dy'): { pairs: number; distinct: number } {
  const p = (k - 1) / 2;
  const seen = new Set<number>();
  let pairs = 0;
  if (dir === 'x') {
    for (let o = 0; o < out; o++) {
      for (let t = 0; t < k; t++) {
        const i = o * s + t - p;
        if (i >= 0 && i < n) (pairs++, seen.add(i));
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      for (let t = 0; t < k; t++) {
        const v = i + p - t;
        if (v >= 0 && v % s === 0 && v / s < out) (pairs++, seen.add(v / s));
      }
    }
  }
  return { pairs, distinct: seen.size };
}

/** x as forward and backward-filter gather it: (position, tap) reads and distinct floats of x read. */
export function xGather(s: ConvShape): { reads: number; distinct: number } {
  const { outH, outW } = convOutSize(s);
  const h = gatherSide(s.inH, outH, s.k, s.stride, 'x');
  const w = gatherSide(s.inW, outW, s.k, s.stride, 'x');
  return { reads: s.batch * s.inC * h.pairs * w.pairs, distinct: s.batch * s.inC * h.distinct * w.distinct };
}

/** WGSL constants of a convolution's shape. */
export function shapeConsts(s: ConvShape): string {
  const { outH, outW } = convOutSize(s);
  return [
    `const H = ${s.inH}u;`,
    `const W = ${s.inW}u;`,
    `const CIN = ${s.inC}u;`,
    `const OH = ${outH}u;`,
    `const OW = ${outW}u;`,
    `const COUT = ${s.outC}u;`,
    `const KS = ${s.k}u;`,
    `const S = ${s.stride}u;`,
    `const PAD = ${(s.k - 1) / 2}u;`,
  ].join('\n');
}

/**
 * `fn loadX(m: u32, kk: u32) -> f32`: the implicit im2col of x, element (output position m =
 * (b·OH + oh)·OW + ow, tap kk = (kh·k + kw)·Cin + ci): x[b, oh·s − p + kh, ow·s − p + kw, ci], 0 in
 * the padding. Unsigned arithmetic: `oh·s + kh − p` wraps past H when it would be negative.
 * With `bn` the element inside the image is the BatchNorm(+ReLU) output `bnAct(x, shard of b, ci)`
 * (bn_state.ts bnPrologue; the padding stays 0, as the conv pads the BatchNorm's output).
 */
export function im2colFn(s: ConvShape, bn: BnApply | undefined, vec4 = false): string {
  if (bn && s.batch % bn.shape.shards !== 0) throw new Error(`conv: batch ${s.batch} does not split into ${bn.shape.shards} BatchNorm shards`);
  const act = bn
    ? `fn act(v: f32, ci: u32, b: u32) -> f32 { return bnAct(v, b / ${s.batch / bn.shape.shards}u, ci); }\n`
    : `fn act(v: f32, ci: u32, b: u32) -> f32 { return v; }\n`;
  return act + (vec4 ? im2colVec4(s, bn !== undefined) : im2colBody(s));
}

/**
 * `fn rowX(m: u32) -> vec4<u32>`, what im2col needs of output position m = (b·OH + oh)·OW + ow, once per
 * tile: (b·H, oh·s, ow·s, b) for 3×3, (x's float offset of the pixel, 0, 0, b) for 1×1; and
 * `fn loadX4(ri: vec4<u32>, kk: u32) -> vec4<f32>`: {@link im2colFn}'s elements kk..kk+3 (kk a
 * multiple of 4, Cin % 4 = 0, so one tap and channels ci..ci+3) as one 16-byte load of x declared
 * `array<vec4<f32>>`.
 */
function im2colVec4(s: ConvShape, bn: boolean): string {
  const act = bn ? 'vec4<f32>(act(v.x, ci, ri.w), act(v.y, ci + 1u, ri.w), act(v.z, ci + 2u, ri.w), act(v.w, ci + 3u, ri.w))' : 'v';
  const info = s.k === 1 ? 'vec4<u32>(((b * H + oh * S) * W + ow * S) * CIN, 0u, 0u, b)' : 'vec4<u32>(b * H, oh * S, ow * S, b)';
  const pos =
    s.k === 1
      ? `let ci = kk;
  let v = x[(ri.x + ci) / 4u];`
      : `let tap = kk / CIN;
  let ci = kk % CIN;
  let ih = ri.y + tap / KS - PAD;
  let iw = ri.z + tap % KS - PAD;
  if (ih >= H || iw >= W) { return vec4<f32>(0.0); }
  let v = x[(((ri.x + ih) * W + iw) * CIN + ci) / 4u];`;
  return `fn rowX(m: u32) -> vec4<u32> {
  let ow = m % OW;
  let t = m / OW;
  let oh = t % OH;
  let b = t / OH;
  return ${info};
}
fn loadX4(ri: vec4<u32>, kk: u32) -> vec4<f32> {
  ${pos}
  return ${act};
}`;
}

function im2colBody(s: ConvShape): string {
  if (s.k === 1) {
    return `fn loadX(m: u32, kk: u32) -> f32 {
  let ow = m % OW;
  let t = m / OW;
  let oh = t % OH;
  let b = t / OH;
  return act(x[((b * H + oh * S) * W + ow * S) * CIN + kk], kk, b);
}`;
  }
  return `fn loadX(m: u32, kk: u32) -> f32 {
  let ow = m % OW;
  let t = m / OW;
  let oh = t % OH;
  let b = t / OH;
  let tap = kk / CIN;
  let ci = kk % CIN;
  let ih = oh * S + tap / KS - PAD;
  let iw = ow * S + tap % KS - PAD;
  if (ih >= H || iw >= W) { return 0.0; }
  return act(x[((b * H + ih) * W + iw) * CIN + ci], ci, b);
}`;
}

export const shapeLabel = (s: ConvShape): string => `${s.k}x${s.k}/s${s.stride} ${s.inC}->${s.outC} ${s.inH}x${s.inW} B${s.batch}`;

/** Options of the kernels that read x (forward, backward-filter). */
export interface ConvInputOptions {
  /**
   * Fused BatchNorm(+ReLU) prologue: x is the BatchNorm's input, and the kernel convolves its output,
   * folded per (shard, channel) from the BatchNorm's forward partials into workgroup memory first and
   * applied as x is loaded (bn_state.ts bnPrologue; padding stays 0), so that the activation is never
   * written. Adds the bindings `state read, [gamma read (unless fixGamma),] beta read` after x and w
   * (forward) or dy and x (backward-filter).
   */
  bn?: BnApply;
}

/** The bindings a fused BatchNorm adds, and its WGSL (declarations, prologue, workgroup bytes). */
export function bnInput(bn: BnApply | undefined, wgSize: number): { names: string[]; decls: string; body: string; bytes: number } {
  if (!bn) return { names: [], decls: '', body: '', bytes: 0 };
  const p = bnPrologue(bn, wgSize);
  return { names: ['state', ...(bn.fixGamma ? [] : ['gamma']), 'beta'], ...p };
}

/**
 * The WGSL declarations of a kernel that gathers x (forward, backward-filter): its bindings, the
 * shape's constants, a fused BatchNorm's declarations and `fn loadX` ({@link im2colFn}), or with
 * `vec4` x as `array<vec4<f32>>` and `fn loadX4`.
 */
export function xReaderDecls(s: ConvShape, names: string[], bindings: BindingKind[], bnDecls: string, bn: BnApply | undefined, vec4 = false): string {
  return `${declare(names, bindings, vec4 ? ['x'] : [])}\n${shapeConsts(s)}\n${bnDecls}\n${im2colFn(s, bn, vec4)}`;
}

/** The label's mark of a fused BatchNorm. */
export const bnLabel = (bn: BnApply | undefined): string => (bn ? (bn.relu ? '+bnrelu' : '+bn') : '');

/** Workgroup bytes of a fused BatchNorm's scale and shift arrays. */
export function bnBytes(bn: BnApply | undefined): number {
  return bn ? 8 * bn.shape.shards * bn.shape.channels : 0;
}

/** Invocations of a GEMM workgroup of these tiles. */
export function gemmInvocations(t: GemmTiles): number {
  return (t.BM / t.TM) * (t.BN / t.TN);
}

/** Floats a fused BatchNorm's fold reads (its forward statistics, γ, β), for the cost model. */
export function bnInputFloats(bn: BnApply | undefined): number {
  return bn ? bnLayout(bn.shape).bwd + 2 * bn.shape.channels : 0;
}

/** The GEMM tiles of {@link conv2dForward} for a shape (and its input's fused BatchNorm). */
export function forwardTiles(s: ConvShape, bn: BnApply | undefined): GemmTiles {
  const { outH, outW } = convOutSize(s);
  return occupancyTiles(s.batch * outH * outW, s.outC, s.k * s.k * s.inC, bnBytes(bn));
}

/**
 * Whether {@link conv2dForward} can write the statistics of a BatchNorm of `shards` shards over its
 * output in its epilogue (bn_epilogue.ts tileStatsFit: every row tile inside one shard).
 */
export function forwardStatsFit(s: ConvShape, bn: BnApply | undefined, shards: number): boolean {
  const { outH, outW } = convOutSize(s);
  const rows = s.batch * outH * outW;
  return s.batch % shards === 0 && tileStatsFit(rows, rows / shards, forwardTiles(s, bn));
}

/**
 * The forward convolution `y[B,OH,OW,Cout] = conv(x[B,H,W,Cin], w[k,k,Cin,Cout])`, plus
 * `r[B,OH,OW,Cout]` when `residual` (the unit's residual add folded into conv2's epilogue).
 * Implicit GEMM: rows B·OH·OW, cols Cout, reduction k·k·Cin (module comment); y is overwritten.
 * `stats` (a BatchNorm of `stats` shards reads y; needs {@link forwardStatsFit}): the epilogue also
 * writes per-(row tile, channel) (mean, M2) of the stored values to `bnpart` `[B·OH·OW/BM, Cout, 2]`
 * (bn_epilogue.ts), for bnFinalizeKernel with `tileRows` = the returned tiles' BM.
 * Bindings: x read, w read, [state read, [gamma read,] beta read (bn),] [r read (residual),] y read_write, [bnpart read_write (stats)].
 * FLOPs: {@link convFlops}.
 * @throws Error for `stats` where a row tile would straddle two shards.
 */
export function conv2dForward(s: ConvShape, o: { residual?: boolean; stats?: number } & ConvInputOptions = {}): Kernel & { tiles: GemmTiles } {
  const { outH, outW } = convOutSize(s);
  const rows = s.batch * outH * outW;
  const red = s.k * s.k * s.inC;
  const tiles = forwardTiles(s, o.bn);
  if (o.stats !== undefined && !forwardStatsFit(s, o.bn, o.stats)) throw new Error(`conv2d_fwd ${shapeLabel(s)}: row tiles of ${tiles.BM} straddle BatchNorm shards of ${rows / o.stats} rows`);
  const xg = xGather(s);
  // vec4 loads of x along Cin where Cin % 4 = 0 (every conv but conv0).
  const vec4 = s.inC % 4 === 0;
  const bn = bnInput(o.bn, gemmInvocations(tiles));
  const stats = o.stats !== undefined;
  const names = ['x', 'w', ...bn.names, ...(o.residual ? ['r'] : []), 'y', ...(stats ? ['bnpart'] : [])];
  const bindings: BindingKind[] = names.map((n) => (n === 'y' || n === 'bnpart' ? 'read_write' : 'read'));
  const partFloats = stats ? tileStatsFloats(rows, s.outC, tiles) : 0;
  const kernel = gemmKernel({
    label: `conv2d_fwd${bnLabel(o.bn)}${o.residual ? '+res' : ''}${stats ? '+stats' : ''} ${shapeLabel(s)}`,
    rows,
    cols: s.outC,
    red,
    tiles,
    chunk: roundUp(red, tiles.BK),
    aFast: 'red',
    bFast: 'col',
    bindings,
    aVec4: vec4,
    aRowInfo: vec4,
    decls: `${xReaderDecls(s, names, bindings, bn.decls, o.bn, vec4)}
${vec4 ? 'fn rowA(row: u32) -> vec4<u32> { return rowX(row); }\nfn loadA4(ri: vec4<u32>, red: u32) -> vec4<f32> { return loadX4(ri, red); }' : 'fn loadA(row: u32, red: u32) -> f32 { return loadX(row, red); }'}
fn loadB(red: u32, col: u32) -> f32 { return w[red * COUT + col]; }${stats ? '\nfn statValue(row: u32, col: u32) -> f32 { return y[row * COUT + col]; }' : ''}`,
    store: o.residual ? 'y[row * COUT + col] = v + r[row * COUT + col];' : 'y[row * COUT + col] = v;',
    prologue: bn.body,
    epilogue: stats ? tileStatsEpilogue(tiles, rows, s.outC) : undefined,
    cost: {
      class: 'conv_fwd',
      aReads: xg.reads,
      bReads: red * s.outC,
      read: 4 * (xg.distinct + red * s.outC + (o.residual ? rows * s.outC : 0) + bnInputFloats(o.bn)),
      written: 4 * (rows * s.outC + partFloats),
      // The statistics epilogue reads back the values it stored (cache hits: requested, not distinct).
      epilogueReads: (o.residual ? rows * s.outC : 0) + (stats ? rows * s.outC : 0),
      perWorkgroupReads: bnInputFloats(o.bn),
    },
  });
  return { ...kernel, tiles };
}
