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
 * Backward-data is the transposed convolution: the gather form above indexes the kernel taps
 * directly, so no flipped copy of the weights is needed, and stride 2 keeps only the taps whose
 * `h + p − kh` is even (the others load 0: a quarter of that GEMM's products are useful, acceptable
 * for the network's two stride-2 units). Backward-filter splits its long reduction (every output
 * position) into chunks, one per `workgroup_id.z`, writes one partial `[k·k·Cin, Cout]` per chunk to a
 * scratch buffer and sums them in a second pass (split-K), because its output is small (2,304 floats at
 * 16→16) and would otherwise occupy only a few workgroups.
 *
 * Tiling (see {@link gemmTiles}): a workgroup computes a `BM×BN` tile of C; each invocation a `TM×TN`
 * (4×4) block of it in registers. Per step of the reduction the workgroup stages a `BM×BK` tile of A
 * and a `BK×BN` tile of B in workgroup memory (as vec4 along rows/cols, reduction-major), each
 * invocation loading whole vec4s with the lanes of a warp along the tensor's contiguous dimension,
 * then accumulates `BK` rank-1 updates from vec4 reads. Bounds and padding checks are emitted only
 * where the static shapes need them.
 */
import { MAX_WORKGROUPS_PER_DIMENSION, type BindingKind, type Kernel } from './kernel.js';

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

/** The tiling of one GEMM: workgroup tile `BM×BN`, reduction step `BK`, per-invocation block `TM×TN`. */
export interface GemmTiles {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** Most invocations in a workgroup (WebGPU's default limit). */
const MAX_INVOCATIONS = 256;
/** Bytes of workgroup memory a kernel may use (WebGPU's default limit). */
const MAX_WORKGROUP_BYTES = 16384;
/** Tallest row tile: 256 rows, so that narrow GEMMs (3 or 8 columns) keep a reduction step of at least 8. */
const MAX_TILE_ROWS = 256;

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const roundUp = (a: number, b: number) => ceilDiv(a, b) * b;

/**
 * The tiles of `C[rows, cols] = Σ A·B` over a reduction of `red` terms per workgroup: 4×4 outputs per
 * invocation; `BN` the columns rounded up to a power of two within 4..64 (the network's 16/32/64
 * channels fill it exactly, 256 takes four column tiles); up to 256 invocations and 256 rows, with `BM` no taller
 * than the rows need (rounded so that a workgroup fills whole 32-lane warps); `BK` from 32/16/8/4,
 * the cheapest for the reduction (tiles × (BK + 8), 8 standing for a step's barriers and loads) among
 * those whose two tiles fit 16 KiB of workgroup memory.
 */
export function gemmTiles(rows: number, cols: number, red: number): GemmTiles {
  const TM = 4;
  const TN = 4;
  const BN = Math.min(64, Math.max(4, nextPow2(cols)));
  const tn = BN / TN;
  const rowThreads = Math.min(MAX_INVOCATIONS / tn, MAX_TILE_ROWS / TM, roundUp(ceilDiv(rows, TM), Math.max(1, 32 / tn)));
  const BM = rowThreads * TM;
  let best = { BK: 0, cost: Infinity };
  for (const BK of [32, 16, 8, 4]) {
    if ((BM + BN) * BK * 4 > MAX_WORKGROUP_BYTES) continue;
    const cost = ceilDiv(red, BK) * (BK + 8);
    if (cost < best.cost) best = { BK, cost };
  }
  if (best.BK === 0) throw new Error(`gemmTiles: no reduction step fits ${BM}x${BN} tiles in ${MAX_WORKGROUP_BYTES} bytes`);
  return { BM, BN, BK: best.BK, TM, TN };
}

/** One GEMM to generate (see the module comment). */
interface GemmSpec {
  label: string;
  rows: number;
  cols: number;
  /** Length of the whole reduction. */
  red: number;
  tiles: GemmTiles;
  /** Reduction terms per `workgroup_id.z` (a multiple of BK), `red` rounded up when not split. */
  chunk: number;
  /** Along which index consecutive addresses of A and B lie (which way the warp's lanes go when loading). */
  aFast: 'row' | 'red';
  bFast: 'red' | 'col';
  bindings: BindingKind[];
  /** Binding declarations, constants and `fn loadA(row: u32, red: u32) -> f32`, `fn loadB(red: u32, col: u32) -> f32` (inside bounds). */
  decls: string;
  /** WGSL statements storing `v` (f32) at `row`, `col` (both in bounds). */
  store: string;
}

/** `@group(0) @binding(i)` declarations for the given names and kinds. */
function declare(names: string[], kinds: BindingKind[]): string {
  return names
    .map((n, i) => `@group(0) @binding(${i}) var<storage, ${kinds[i] === 'read' ? 'read' : 'read_write'}> ${n}: array<f32>;`)
    .join('\n');
}

/** The WGSL of one tiled GEMM (module comment) and its dispatch size. */
function gemmKernel(g: GemmSpec): Kernel {
  const { BM, BN, BK, TM, TN } = g.tiles;
  const tn = BN / TN;
  const tm = BM / TM;
  const wg = tm * tn;
  const splits = ceilDiv(g.red, g.chunk);
  const workgroups: [number, number, number] = [ceilDiv(g.cols, BN), ceilDiv(g.rows, BM), splits];
  if (workgroups.some((n) => n > MAX_WORKGROUPS_PER_DIMENSION)) throw new Error(`${g.label}: ${workgroups.join('×')} workgroups exceed ${MAX_WORKGROUPS_PER_DIMENSION} per dimension`);
  const rowMask = g.rows % BM !== 0;
  const colMask = g.cols % BN !== 0;
  const redMask = g.red % BK !== 0;
  const cond = (parts: [boolean, string][]) => parts.filter(([need]) => need).map(([, c]) => c).join(' && ');

  // One operand tile: `X` is its non-reduction extent (BM or BN), stored as `[BK][X/4]` vec4.
  // The loads are WGSL loops (constant trip counts: a GPU compiler unrolls them) rather than
  // unrolled here, which keeps the shader small for software rasterisers (lavapipe JIT-compiles it).
  const tileLoad = (name: 'As' | 'Bs', X: number, fast: 'x' | 'red', elem: (x: string, r: string) => string) => {
    const vecs = (BK * X) / 4;
    const slots = ceilDiv(vecs, wg);
    const decode = fast === 'red' ? [`let k = e % ${BK}u;`, `let g = e / ${BK}u;`] : [`let k = e / ${X / 4}u;`, `let g = e % ${X / 4}u;`];
    const body = [
      ...decode,
      'var v: vec4<f32>;',
      `for (var c = 0u; c < 4u; c++) { v[c] = ${elem(`${name === 'As' ? 'row0' : 'col0'} + g * 4u + c`, 'r0 + k')}; }`,
      `${name}[k * ${X / 4}u + g] = v;`,
    ];
    const inner = vecs % wg !== 0 ? [`if (e < ${vecs}u) {`, ...body.map((l) => `  ${l}`), '}'] : body;
    const lines =
      slots === 1 ? ['{', '  let e = lid;', ...inner.map((l) => `  ${l}`), '}'] : [`for (var sl = 0u; sl < ${slots}u; sl++) {`, `  let e = lid + sl * ${wg}u;`, ...inner.map((l) => `  ${l}`), '}'];
    return lines.join('\n    ');
  };
  // Elements outside the GEMM (tile edges, a reduction that is not a multiple of BK) are 0; the
  // guard is a branch rather than select(), which would evaluate (and read) both sides.
  const aElem = (x: string, r: string) => `tileA(${x}, ${r})`;
  const bElem = (r: string, x: string) => `tileB(${r}, ${x})`;
  const guardFn = (name: string, sig: string, args: string, c: string, inner: string) =>
    c === '' ? `fn ${name}(${sig}) -> f32 { return ${inner}(${args}); }` : `fn ${name}(${sig}) -> f32 {\n  if (!(${c})) { return 0.0; }\n  return ${inner}(${args});\n}`;
  const tileFns = [
    guardFn('tileA', 'row: u32, red: u32', 'row, red', cond([[rowMask, 'row < ROWS'], [redMask, 'red < RED']]), 'loadA'),
    guardFn('tileB', 'red: u32, col: u32', 'red, col', cond([[colMask, 'col < COLS'], [redMask, 'red < RED']]), 'loadB'),
  ].join('\n');

  const accs: string[] = [];
  const fmas: string[] = [];
  const reads: string[] = [];
  for (let i = 0; i < TM / 4; i++) reads.push(`let a${i} = As[k * ${BM / 4}u + ty * ${TM / 4}u + ${i}u];`);
  for (let j = 0; j < TN / 4; j++) reads.push(`let b${j} = Bs[k * ${BN / 4}u + tx * ${TN / 4}u + ${j}u];`);
  const comp = ['x', 'y', 'z', 'w'];
  for (let r = 0; r < TM; r++) {
    for (let j = 0; j < TN / 4; j++) {
      accs.push(`var acc${r}_${j} = vec4<f32>(0.0);`);
      fmas.push(`acc${r}_${j} = fma(vec4<f32>(a${Math.floor(r / 4)}.${comp[r % 4]}), b${j}, acc${r}_${j});`);
    }
  }
  const stores: string[] = [];
  for (let r = 0; r < TM; r++) {
    const inner: string[] = [];
    for (let j = 0; j < TN / 4; j++) {
      for (let c = 0; c < 4; c++) {
        const st = `{ let col = colT + ${j * 4 + c}u; let v = acc${r}_${j}.${comp[c]}; ${g.store} }`;
        inner.push(colMask ? `if (colT + ${j * 4 + c}u < COLS) ${st}` : st);
      }
    }
    const block = `{ let row = rowT + ${r}u;\n      ${inner.join('\n      ')}\n    }`;
    stores.push(rowMask ? `if (rowT + ${r}u < ROWS) ${block}` : block);
  }

  const code = `// ${g.label}
// GEMM C[ROWS, COLS] = sum over RED of A(row, red) * B(red, col), operands gathered by loadA/loadB.
// Workgroup: ${wg} invocations = ${tm} (rows) x ${tn} (cols); tile ${BM}x${BN} of C, reduction step ${BK};
// invocation (tx, ty) = (lid % ${tn}, lid / ${tn}) accumulates rows ty*${TM}.., cols tx*${TN}.. (a ${TM}x${TN} block).
// workgroup_id = (col tile, row tile, reduction chunk of ${g.chunk} terms).
const ROWS = ${g.rows}u;
const COLS = ${g.cols}u;
const RED = ${g.red}u;
const CHUNK = ${g.chunk}u;
${g.decls}
${tileFns}

var<workgroup> As: array<vec4<f32>, ${(BK * BM) / 4}>; // [BK][BM/4]: A tile, reduction-major
var<workgroup> Bs: array<vec4<f32>, ${(BK * BN) / 4}>; // [BK][BN/4]: B tile, reduction-major

@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid % ${tn}u;
  let ty = lid / ${tn}u;
  let col0 = wid.x * ${BN}u;
  let row0 = wid.y * ${BM}u;
  let redStart = wid.z * CHUNK;
  let redEnd = min(redStart + CHUNK, RED);
  ${accs.join('\n  ')}
  for (var r0 = redStart; r0 < redEnd; r0 += ${BK}u) {
    ${tileLoad('As', BM, g.aFast === 'red' ? 'red' : 'x', aElem)}
    ${tileLoad('Bs', BN, g.bFast === 'red' ? 'red' : 'x', (x, r) => bElem(r, x))}
    workgroupBarrier();
    // The last tile of a reduction that is not a multiple of ${BK} stops early. (A bound the compiler
    // cannot see also stops LLVM on lavapipe from unrolling the loop, which made the shader take
    // seconds to JIT-compile; a GPU compiler still unrolls it partially.)
    let kEnd = min(${BK}u, redEnd - r0);
    for (var k = 0u; k < kEnd; k++) {
      ${reads.join('\n      ')}
      ${fmas.join('\n      ')}
    }
    workgroupBarrier();
  }
  let rowT = row0 + ty * ${TM}u;
  let colT = col0 + tx * ${TN}u;
  ${stores.join('\n  ')}
}
`;
  return { label: g.label, code, bindings: g.bindings, workgroups };
}

/** WGSL constants of a convolution's shape. */
function shapeConsts(s: ConvShape): string {
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
 * With `bnRelu` the element inside the image is `max(x·scale[ci] + shift[ci], 0)` (the padding stays 0).
 */
function im2colFn(s: ConvShape, bnRelu: boolean): string {
  const act = bnRelu
    ? `fn act(v: f32, ci: u32) -> f32 { return max(fma(v, scale[ci], shift[ci]), 0.0); }\n`
    : `fn act(v: f32, ci: u32) -> f32 { return v; }\n`;
  return act + im2colBody(s);
}

function im2colBody(s: ConvShape): string {
  if (s.k === 1) {
    return `fn loadX(m: u32, kk: u32) -> f32 {
  let ow = m % OW;
  let t = m / OW;
  let oh = t % OH;
  let b = t / OH;
  return act(x[((b * H + oh * S) * W + ow * S) * CIN + kk], kk);
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
  return act(x[((b * H + ih) * W + iw) * CIN + ci], ci);
}`;
}

const shapeLabel = (s: ConvShape) => `${s.k}x${s.k}/s${s.stride} ${s.inC}->${s.outC} ${s.inH}x${s.inW} B${s.batch}`;

/** Options of the kernels that read x (forward, backward-filter). */
export interface ConvInputOptions {
  /**
   * Fused pre-activation prologue: x is the BatchNorm input, and the kernel convolves
   * `ReLU(x·scale[ci] + shift[ci])` (scale, shift: `[Cin]` float32, BatchNorm folded per channel:
   * `scale = γ/√(σ²+ε)`, `shift = β − μ·scale`), applying it as x is loaded (padding stays 0), so
   * that the activation need not be written. Adds the bindings `scale read, shift read` after the
   * second one.
   */
  bnRelu?: boolean;
}

/**
 * The forward convolution `y[B,OH,OW,Cout] = conv(x[B,H,W,Cin], w[k,k,Cin,Cout])`, plus
 * `r[B,OH,OW,Cout]` when `residual` (the unit's residual add folded into conv2's epilogue).
 * Implicit GEMM: rows B·OH·OW, cols Cout, reduction k·k·Cin (module comment); y is overwritten.
 * Bindings: x read, w read, [scale read, shift read (bnRelu),] [r read (residual),] y read_write.
 * FLOPs: {@link convFlops}.
 */
export function conv2dForward(s: ConvShape, o: { residual?: boolean } & ConvInputOptions = {}): Kernel {
  const { outH, outW } = convOutSize(s);
  const rows = s.batch * outH * outW;
  const red = s.k * s.k * s.inC;
  const tiles = gemmTiles(rows, s.outC, red);
  const names = ['x', 'w', ...(o.bnRelu ? ['scale', 'shift'] : []), ...(o.residual ? ['r'] : []), 'y'];
  const bindings: BindingKind[] = names.map((n) => (n === 'y' ? 'read_write' : 'read'));
  return gemmKernel({
    label: `conv2d_fwd${o.bnRelu ? '+bnrelu' : ''}${o.residual ? '+res' : ''} ${shapeLabel(s)}`,
    rows,
    cols: s.outC,
    red,
    tiles,
    chunk: roundUp(red, tiles.BK),
    aFast: 'red',
    bFast: 'col',
    bindings,
    decls: `${declare(names, bindings)}
${shapeConsts(s)}
${im2colFn(s, o.bnRelu === true)}
fn loadA(row: u32, red: u32) -> f32 { return loadX(row, red); }
fn loadB(red: u32, col: u32) -> f32 { return w[red * COUT + col]; }`,
    store: o.residual ? 'y[row * COUT + col] = v + r[row * COUT + col];' : 'y[row * COUT + col] = v;',
  });
}

/**
 * The input gradient `dx[B,H,W,Cin]` of a convolution from `dy[B,OH,OW,Cout]` and `w[k,k,Cin,Cout]`
 * (the transposed convolution): `dx[b,h,w,ci] = Σ_{kh,kw,co} dy[b,(h+p−kh)/s,(w+p−kw)/s,co]·w[kh,kw,ci,co]`
 * over the taps where the division is exact and the position lies inside dy. Implicit GEMM: rows
 * B·H·W, cols Cin, reduction k·k·Cout. dx is overwritten, or added to when `accumulate` (a unit's act1
 * takes gradient from conv1 and from the shortcut).
 * Bindings: dy read, w read, dx read_write. FLOPs: {@link convFlops} (the stride-2 GEMM runs 4× that).
 */
export function conv2dBackwardData(s: ConvShape, o: { accumulate?: boolean } = {}): Kernel {
  const rows = s.batch * s.inH * s.inW;
  const red = s.k * s.k * s.outC;
  const tiles = gemmTiles(rows, s.inC, red);
  const bindings: BindingKind[] = ['read', 'read', 'read_write'];
  // dy at the tap: oh·s = h + p − kh; unsigned wrap-around makes a negative one fail `< OH`.
  const ohOf = (v: string, kv: string) => (s.stride === 1 ? `${v} + PAD - ${kv}` : `(${v} + PAD - ${kv}) / S`);
  const loadA =
    s.k === 1 && s.stride === 1
      ? `fn loadA(row: u32, red: u32) -> f32 { return dy[row * COUT + red]; }`
      : `fn loadA(row: u32, red: u32) -> f32 {
  let iw = row % W;
  let t = row / W;
  let ih = t % H;
  let b = t / H;
  let tap = red / COUT;
  let co = red % COUT;
  let kh = tap / KS;
  let kw = tap % KS;
  let oh = ${ohOf('ih', 'kh')};
  let ow = ${ohOf('iw', 'kw')};
  ${s.stride === 2 ? 'if (((ih + PAD - kh) & 1u) != 0u || ((iw + PAD - kw) & 1u) != 0u) { return 0.0; }\n  ' : ''}if (oh >= OH || ow >= OW) { return 0.0; }
  return dy[((b * OH + oh) * OW + ow) * COUT + co];
}`;
  return gemmKernel({
    label: `conv2d_bwd_data${o.accumulate ? '+acc' : ''} ${shapeLabel(s)}`,
    rows,
    cols: s.inC,
    red,
    tiles,
    chunk: roundUp(red, tiles.BK),
    aFast: 'red',
    bFast: 'red',
    bindings,
    decls: `${declare(['dy', 'w', 'dx'], bindings)}
${shapeConsts(s)}
${loadA}
fn loadB(red: u32, col: u32) -> f32 { return w[((red / COUT) * CIN + col) * COUT + red % COUT]; }`,
    store: o.accumulate ? 'dx[row * CIN + col] = dx[row * CIN + col] + v;' : 'dx[row * CIN + col] = v;',
  });
}

/** Workgroups a split backward-filter aims at in its first pass (enough to occupy a large GPU). */
const FILTER_TARGET_WORKGROUPS = 512;
/** Shortest reduction chunk of a split backward-filter (output positions per partial sum). */
const FILTER_MIN_CHUNK = 256;
/** The reduce pass: invocations per workgroup along the outputs and along the chunks. */
const REDUCE_COLS = 32;
const REDUCE_LANES = 8;

/**
 * How backward-filter splits its reduction over the B·OH·OW output positions: chunks of `chunk`
 * positions (a multiple of BK, at least {@link FILTER_MIN_CHUNK}) so that tiles × chunks reaches about
 * {@link FILTER_TARGET_WORKGROUPS} workgroups; one chunk means one pass without scratch.
 */
export function filterSplit(s: ConvShape): { tiles: GemmTiles; chunk: number; chunks: number } {
  const { outH, outW } = convOutSize(s);
  const positions = s.batch * outH * outW;
  const rows = s.k * s.k * s.inC;
  // Tiles are picked for a chunk of the minimum length; BK then fits any longer chunk equally well.
  const tiles = gemmTiles(rows, s.outC, Math.min(positions, FILTER_MIN_CHUNK));
  const tileCount = ceilDiv(rows, tiles.BM) * ceilDiv(s.outC, tiles.BN);
  const want = Math.max(FILTER_MIN_CHUNK, ceilDiv(positions * tileCount, FILTER_TARGET_WORKGROUPS));
  const chunk = want >= positions ? roundUp(positions, tiles.BK) : roundUp(want, tiles.BK);
  return { tiles, chunk, chunks: ceilDiv(positions, chunk) };
}

/**
 * The filter gradient `dw[k,k,Cin,Cout] = Σ_{b,oh,ow} x[b, oh·s−p+kh, ow·s−p+kw, ci]·dy[b,oh,ow,co]`
 * (=, or += when `accumulate`). Implicit GEMM: rows k·k·Cin, cols Cout, reduction B·OH·OW split into
 * chunks ({@link filterSplit}). Pass 0 writes each chunk's partial sums to `scratch`
 * (`[chunks][k·k·Cin·Cout]`, `scratchFloats` floats); pass 1 adds them up into dw, each workgroup
 * summing 32 consecutive outputs with 8 invocations per output over the chunks, then a tree in
 * workgroup memory. With a single chunk there is one pass and `scratchFloats` is 0.
 * Bindings: pass 0 dy read, x read, [scale read, shift read (bnRelu),] scratch|dw read_write; pass 1
 * scratch read, dw read_write.
 * FLOPs: {@link convFlops} (plus the reduce's `chunks·k·k·Cin·Cout` additions).
 */
export function conv2dBackwardFilter(s: ConvShape, o: { accumulate?: boolean } & ConvInputOptions = {}): { passes: Kernel[]; scratchFloats: number } {
  const { outH, outW } = convOutSize(s);
  const positions = s.batch * outH * outW;
  const rows = s.k * s.k * s.inC;
  const total = rows * s.outC;
  const { tiles, chunk, chunks } = filterSplit(s);
  const split = chunks > 1;
  const out = split ? 'scratch' : 'dw';
  const names = ['dy', 'x', ...(o.bnRelu ? ['scale', 'shift'] : []), out];
  const bindings: BindingKind[] = names.map((n) => (n === out ? 'read_write' : 'read'));
  const label = `conv2d_bwd_filter${o.bnRelu ? '+bnrelu' : ''}${o.accumulate ? '+acc' : ''} ${shapeLabel(s)}`;
  const store = split
    ? 'scratch[wid.z * (ROWS * COLS) + row * COLS + col] = v;'
    : o.accumulate
      ? 'dw[row * COLS + col] = dw[row * COLS + col] + v;'
      : 'dw[row * COLS + col] = v;';
  const first = gemmKernel({
    label: split ? `${label} partial ${chunks}x${chunk}` : label,
    rows,
    cols: s.outC,
    red: positions,
    tiles,
    chunk,
    aFast: 'row',
    bFast: 'col',
    bindings,
    decls: `${declare(names, bindings)}
${shapeConsts(s)}
${im2colFn(s, o.bnRelu === true)}
fn loadA(row: u32, red: u32) -> f32 { return loadX(red, row); }
fn loadB(red: u32, col: u32) -> f32 { return dy[red * COUT + col]; }`,
    store,
  });
  if (!split) return { passes: [first], scratchFloats: 0 };
  const groups = ceilDiv(total, REDUCE_COLS);
  if (groups > MAX_WORKGROUPS_PER_DIMENSION) throw new Error(`${label}: ${groups} reduce workgroups exceed ${MAX_WORKGROUPS_PER_DIMENSION}`);
  const reduce: Kernel = {
    label: `${label} reduce ${chunks}`,
    bindings: ['read', 'read_write'],
    workgroups: [groups, 1, 1],
    code: `// ${label}: sums the ${chunks} partial filter gradients in scratch[${chunks}][${total}] into dw[${total}]${o.accumulate ? ' (adding to dw)' : ''}.
// Workgroup ${REDUCE_COLS * REDUCE_LANES} = ${REDUCE_COLS} outputs x ${REDUCE_LANES} lanes: invocation (c, l) = (lid % ${REDUCE_COLS}, lid / ${REDUCE_COLS})
// sums chunks l, l+${REDUCE_LANES}, ... of output wid.x*${REDUCE_COLS} + c (coalesced along c); the lanes are then added in workgroup memory.
@group(0) @binding(0) var<storage, read> scratch: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
const TOTAL = ${total}u;
const CHUNKS = ${chunks}u;
var<workgroup> part: array<f32, ${REDUCE_COLS * REDUCE_LANES}>;

@compute @workgroup_size(${REDUCE_COLS * REDUCE_LANES})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = lid % ${REDUCE_COLS}u;
  let l = lid / ${REDUCE_COLS}u;
  let i = wid.x * ${REDUCE_COLS}u + c;
  var sum = 0.0;
  if (i < TOTAL) {
    for (var z = l; z < CHUNKS; z += ${REDUCE_LANES}u) { sum += scratch[z * TOTAL + i]; }
  }
  part[lid] = sum;
  workgroupBarrier();
  for (var hw = ${REDUCE_LANES / 2}u; hw > 0u; hw = hw / 2u) {
    if (l < hw) { part[lid] = part[lid] + part[lid + hw * ${REDUCE_COLS}u]; }
    workgroupBarrier();
  }
  if (l == 0u && i < TOTAL) { dw[i] = ${o.accumulate ? 'dw[i] + ' : ''}part[lid]; }
}
`,
  };
  return { passes: [first, reduce], scratchFloats: chunks * total };
}
