/**
 * The tiled GEMM behind the convolution kernels (conv.ts): `C[rows, cols] = Σ_red A(row, red)·B(red, col)`
 * in WGSL, with A and B gathered from tensors by WGSL functions the caller supplies (`loadA`, `loadB`),
 * so that a convolution is an implicit GEMM (nothing unfolded in memory).
 *
 * Tiling (see {@link gemmTiles}): a workgroup computes a `BM×BN` tile of C; each invocation a `TM×TN`
 * (4×4) block of it in registers. Per step of the reduction the workgroup stages a `BM×BK` tile of A
 * and a `BK×BN` tile of B in workgroup memory (as vec4 along rows/cols, reduction-major), each
 * invocation loading whole vec4s with the lanes of a warp along the tensor's contiguous dimension,
 * then accumulates `BK` rank-1 updates from vec4 reads. `workgroup_id.z` selects a chunk of the
 * reduction (split-K; the caller's store writes that chunk's partial sums), or a phase: an independent
 * sub-GEMM of its own size (`phases`, stride-2 backward-data). A may be loaded as vec4 along the
 * reduction (`aVec4`, one 16-byte load per 4 terms), with its per-row indexing done once per tile
 * (`aRowInfo`). Bounds checks are emitted only where the static shapes need them. An optional
 * `epilogue` runs after the stores (the BatchNorm statistics of the stored tile, bn_epilogue.ts).
 */
import { MAX_WORKGROUPS_PER_DIMENSION, type BindingKind, type Kernel } from './kernel.js';
import { MODEL_SMS, type KernelClass } from './cost.js';

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
export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
export const roundUp = (a: number, b: number) => ceilDiv(a, b) * b;

/**
 * The tiles of `C[rows, cols] = Σ A·B` over a reduction of `red` terms per workgroup: 4×4 outputs per
 * invocation; `BN` the columns rounded up to a power of two within 4..64 (the network's 16/32/64
 * channels fill it exactly, 256 takes four column tiles); up to 256 invocations and 256 rows, with `BM` no taller
 * than the rows need (rounded so that a workgroup fills whole 32-lane warps); `BK` from 32/16/8/4,
 * the cheapest for the reduction (tiles × (BK + 8), 8 standing for a step's barriers and loads) among
 * those whose two tiles fit 16 KiB of workgroup memory beside `reservedBytes` (a fused prologue's arrays). `maxInvocations` (a power of two ≥ 16) caps
 * the workgroup below 256 where more, smaller tiles are wanted.
 */
export function gemmTiles(rows: number, cols: number, red: number, maxInvocations = MAX_INVOCATIONS, reservedBytes = 0): GemmTiles {
  const TM = 4;
  const TN = 4;
  const BN = Math.min(64, Math.max(4, nextPow2(cols)));
  const tn = BN / TN;
  const rowThreads = Math.min(Math.max(1, maxInvocations / tn), MAX_TILE_ROWS / TM, roundUp(ceilDiv(rows, TM), Math.max(1, 32 / tn)));
  const BM = rowThreads * TM;
  let best = { BK: 0, cost: Infinity };
  for (const BK of [32, 16, 8, 4]) {
    if ((BM + BN) * BK * 4 + reservedBytes > MAX_WORKGROUP_BYTES) continue;
    const cost = ceilDiv(red, BK) * (BK + 8);
    if (cost < best.cost) best = { BK, cost };
  }
  if (best.BK === 0) throw new Error(`gemmTiles: no reduction step fits ${BM}x${BN} tiles in ${MAX_WORKGROUP_BYTES} bytes`);
  return { BM, BN, BK: best.BK, TM, TN };
}

/** Workgroups a convolution GEMM aims at: two waves on a 132-SM GPU (cost.ts MODEL_SMS). */
export const TARGET_WORKGROUPS = 2 * MODEL_SMS;

/** Output tiles of a GEMM's dispatch with these tiles. */
export function tileCount(rows: number, cols: number, t: GemmTiles): number {
  return ceilDiv(rows, t.BM) * ceilDiv(cols, t.BN);
}

/**
 * {@link gemmTiles} with the largest workgroup (256, 128, 64 or 32 invocations) whose tiles still
 * number {@link TARGET_WORKGROUPS} (two waves on a 132-SM GPU), else the smallest: smaller tiles for
 * the GEMMs with few rows (stage 3's 6,272 output positions at batch 128 make 98 tiles of 64 rows).
 */
export function occupancyTiles(rows: number, cols: number, red: number, reservedBytes = 0): GemmTiles {
  let t = gemmTiles(rows, cols, red, MAX_INVOCATIONS, reservedBytes);
  for (const inv of [128, 64, 32]) {
    if (tileCount(rows, cols, t) >= TARGET_WORKGROUPS) break;
    t = gemmTiles(rows, cols, red, inv, reservedBytes);
  }
  return t;
}

/** One GEMM to generate (see the module comment). */
export interface GemmSpec {
  label: string;
  rows: number;
  cols: number;
  /** Length of the whole reduction. */
  red: number;
  tiles: GemmTiles;
  /** Reduction terms per `workgroup_id.z` (a multiple of BK), `red` rounded up when not split. */
  chunk: number;
  /**
   * A is loaded as vec4 along the reduction: `decls` then provide `fn loadA4(row: u32, red: u32) -> vec4<f32>`
   * (A(row, red..red+3), red a multiple of 4) instead of loadA; needs `aFast: 'red'` and every
   * reduction length a multiple of 4 (4 consecutive terms never cross a tap when C % 4 = 0).
   */
  aVec4?: boolean;
  /**
   * With aVec4: what depends only on A's row (a pixel's base offset, its image) is computed once per
   * tile before the reduction loop (each invocation loads the same rows at every reduction step):
   * `decls` provide `fn rowA(row: u32) -> vec4<u32>` and take its value as `loadA4(ri: vec4<u32>, red: u32)`.
   */
  aRowInfo?: boolean;
  /** Along which index consecutive addresses of A and B lie (which way the warp's lanes go when loading). */
  aFast: 'row' | 'red';
  bFast: 'red' | 'col';
  bindings: BindingKind[];
  /** Binding declarations, constants and `fn loadA(row: u32, red: u32) -> f32`, `fn loadB(red: u32, col: u32) -> f32` (inside bounds). */
  decls: string;
  /** WGSL statements storing `v` (f32) at `row`, `col` (both in bounds). */
  store: string;
  /** WGSL statements run first in `main` (uniform control flow, `lid` in scope), e.g. a fused BatchNorm's fold. */
  prologue?: string;
  /**
   * WGSL statements run last in `main`, after every store (uniform control flow; `lid`, `tx`, `ty`,
   * `wid`, `col0`, `row0`, `rowT`, `colT` in scope, the tiles `As`, `Bs` free for reuse), e.g. the
   * BatchNorm statistics of the stored values (bn_epilogue.ts).
   */
  epilogue?: string;
  /** What the caller's indexing touches, for the kernel's {@link KernelCost}. */
  cost: GemmCostInput;
  /**
   * Independent sub-GEMMs in one dispatch, one per `workgroup_id.z` (which then selects a phase, not a
   * reduction chunk; `chunk` is unused): phase z has its own `rows` and `red` (`rows`/`red` of the
   * spec are their maxima), and `bReads`, the (red, col) pairs its loadB reads per row tile. loadA and
   * loadB take z as a third argument, `store` sees `z`; workgroups past their phase's rows return at once.
   */
  phases?: GemmPhase[];
}

/** One phase of a phased GEMM ({@link GemmSpec.phases}). */
export interface GemmPhase {
  rows: number;
  red: number;
  bReads: number;
}

/** The operand and epilogue traffic of one GEMM, counted by its caller from the gather's indexing. */
export interface GemmCostInput {
  class: KernelClass;
  /** (row, red) pairs whose loadA reads memory (padding and stride holes return 0 without a load). */
  aReads: number;
  /** (red, col) pairs whose loadB reads memory. */
  bReads: number;
  /** Distinct bytes read and written by the whole dispatch (operands, epilogue). */
  read: number;
  written: number;
  /** Floats the epilogue loads (a residual, an accumulated output), once per output. */
  epilogueReads: number;
  /** Floats each workgroup's prologue loads (a fused BatchNorm's partials, γ, β). */
  perWorkgroupReads?: number;
}

/**
 * The start of a phased GEMM's `main`: its phase `z`, that phase's rows and reduction (uniform: from
 * `workgroup_id`), an early return for the workgroups past its rows, and the whole reduction.
 */
function phaseMain(ph: GemmPhase[]): string {
  const table = (name: string, v: number[]) => `var ${name} = array<u32, ${v.length}>(${v.map((n) => `${n}u`).join(', ')});`;
  return [
    'let z = wid.z;',
    table('phaseRows', ph.map((p) => p.rows)),
    table('phaseRed', ph.map((p) => p.red)),
    'let rowsP = phaseRows[z];',
    'let redP = phaseRed[z];',
    'if (row0 >= rowsP) { return; }',
    'let redStart = 0u;',
    'let redEnd = redP;',
  ].join('\n  ');
}

/**
 * The signature of a GEMM kernel's entry point `main` (after `@compute @workgroup_size(n)`):
 * gemm_group.ts turns it into an ordinary function of `(lid, wid)` to run two GEMMs in one dispatch.
 */
export const GEMM_MAIN = 'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>)';

/** `@group(0) @binding(i)` declarations for the given names and kinds, `array<vec4<f32>>` for the names in `vec4`. */
export function declare(names: string[], kinds: BindingKind[], vec4: readonly string[] = []): string {
  return names
    .map((n, i) => `@group(0) @binding(${i}) var<storage, ${kinds[i] === 'read' ? 'read' : 'read_write'}> ${n}: array<${vec4.includes(n) ? 'vec4<f32>' : 'f32'}>;`)
    .join('\n');
}

/**
 * The WGSL of one tiled GEMM (module comment) and its dispatch `[col tiles, row tiles, chunks]`.
 * @throws Error when a dispatch dimension exceeds 65,535 workgroups.
 */
export function gemmKernel(g: GemmSpec): Kernel {
  const { BM, BN, BK, TM, TN } = g.tiles;
  const tn = BN / TN;
  const tm = BM / TM;
  const wg = tm * tn;
  const ph = g.phases;
  const splits = ph ? ph.length : ceilDiv(g.red, g.chunk);
  const workgroups: [number, number, number] = [ceilDiv(g.cols, BN), ceilDiv(g.rows, BM), splits];
  if (workgroups.some((n) => n > MAX_WORKGROUPS_PER_DIMENSION)) throw new Error(`${g.label}: ${workgroups.join('×')} workgroups exceed ${MAX_WORKGROUPS_PER_DIMENSION} per dimension`);
  const rowMask = ph ? ph.some((p) => p.rows !== g.rows) || g.rows % BM !== 0 : g.rows % BM !== 0;
  const colMask = g.cols % BN !== 0;
  const redMask = ph ? ph.some((p) => p.red % BK !== 0) : g.red % BK !== 0;
  // A phased GEMM's bounds are per phase (`rowsP`, `redP` in main, passed to the guards with z).
  const [ROWS, RED] = ph ? ['rowsP', 'redP'] : ['ROWS', 'RED'];
  const zSig = ph ? ', z: u32, rowsP: u32, redP: u32' : '';
  const zArg = ph ? ', z, rowsP, redP' : '';
  const zLoad = ph ? ', z' : '';
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
  const aElem = (x: string, r: string) => `tileA(${x}, ${r}${zArg})`;
  const bElem = (r: string, x: string) => `tileB(${r}, ${x}${zArg})`;
  const guardFn = (name: string, sig: string, args: string, c: string, inner: string) =>
    c === '' ? `fn ${name}(${sig}) -> f32 { return ${inner}(${args}); }` : `fn ${name}(${sig}) -> f32 {\n  if (!(${c})) { return 0.0; }\n  return ${inner}(${args});\n}`;
  if (g.aVec4 && (g.aFast !== 'red' || (ph ? ph.some((p) => p.red % 4 !== 0) : g.red % 4 !== 0))) throw new Error(`${g.label}: vec4 loads of A need a reduction-major A and reductions of whole vec4s`);
  // vec4 A: one invocation loads 4 consecutive reduction terms of one row (one 16-byte load, lanes
  // along the reduction, i.e. along C) and writes them to 4 reduction steps of the tile.
  const tileLoadA4 = () => {
    const vecs = (BK * BM) / 4;
    const slots = ceilDiv(vecs, wg);
    const body = [
      `let q = e % ${BK / 4}u;`,
      `let m = e / ${BK / 4}u;`,
      `let v = tileA4(row0 + m, r0 + q * 4u${g.aRowInfo ? `, aRi[${slots === 1 ? '0u' : 'sl'}]` : ''}${zArg});`,
      `for (var c = 0u; c < 4u; c++) { As[(q * 4u + c) * ${BM / 4}u + m / 4u][m % 4u] = v[c]; }`,
    ];
    const inner = vecs % wg !== 0 ? [`if (e < ${vecs}u) {`, ...body.map((l) => `  ${l}`), '}'] : body;
    const lines =
      slots === 1 ? ['{', '  let e = lid;', ...inner.map((l) => `  ${l}`), '}'] : [`for (var sl = 0u; sl < ${slots}u; sl++) {`, `  let e = lid + sl * ${wg}u;`, ...inner.map((l) => `  ${l}`), '}'];
    return lines.join('\n    ');
  };
  const aCond = cond([[rowMask, `row < ${ROWS}`], [redMask, `red < ${RED}`]]);
  const tileA4 = `fn tileA4(row: u32, red: u32${g.aRowInfo ? ', ri: vec4<u32>' : ''}${zSig}) -> vec4<f32> {\n  ${aCond === '' ? '' : `if (!(${aCond})) { return vec4<f32>(0.0); }\n  `}return loadA4(${g.aRowInfo ? 'ri' : 'row'}, red${zLoad});\n}`;
  // The row information of each A vec4 this invocation loads (the same rows at every reduction step).
  const aSlots = ceilDiv((BK * BM) / 4, wg);
  const rowInfo = g.aRowInfo
    ? `var aRi: array<vec4<u32>, ${aSlots}>;
  for (var sl = 0u; sl < ${aSlots}u; sl++) { aRi[sl] = rowA(row0 + (lid + sl * ${wg}u) / ${BK / 4}u${zLoad}); }`
    : '';
  const tileFns = [
    g.aVec4 ? tileA4 : guardFn('tileA', `row: u32, red: u32${zSig}`, `row, red${zLoad}`, aCond, 'loadA'),
    guardFn('tileB', `red: u32, col: u32${zSig}`, `red, col${zLoad}`, cond([[colMask, 'col < COLS'], [redMask, `red < ${RED}`]]), 'loadB'),
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
    stores.push(rowMask ? `if (rowT + ${r}u < ${ROWS}) ${block}` : block);
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
${GEMM_MAIN} {
  let tx = lid % ${tn}u;
  let ty = lid / ${tn}u;
  let col0 = wid.x * ${BN}u;
  let row0 = wid.y * ${BM}u;
  ${ph ? phaseMain(ph) : 'let redStart = wid.z * CHUNK;\n  let redEnd = min(redStart + CHUNK, RED);'}
  ${g.prologue ?? ''}
  ${rowInfo}
  ${accs.join('\n  ')}
  for (var r0 = redStart; r0 < redEnd; r0 += ${BK}u) {
    ${g.aVec4 ? tileLoadA4() : tileLoad('As', BM, g.aFast === 'red' ? 'red' : 'x', aElem)}
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
  ${g.epilogue ?? ''}
}
`;
  // Every invocation runs the whole reduction on its 4×4 block, in bounds or not; each A element is
  // loaded once per column tile, each B element once per row tile (module comment of cost.ts).
  const c = g.cost;
  const cost = {
    class: c.class,
    flops: 2 * workgroups[0] * BN * (ph ? ph.reduce((a, p) => a + ceilDiv(p.rows, BM) * BM * p.red, 0) : workgroups[1] * BM * g.red),
    usefulFlops: 2 * c.aReads * g.cols,
    read: c.read,
    written: c.written,
    requested:
      4 *
      (workgroups[0] * c.aReads +
        (ph ? ph.reduce((a, p) => a + ceilDiv(p.rows, BM) * p.bReads, 0) : workgroups[1] * c.bReads) +
        c.epilogueReads +
        workgroups[0] * workgroups[1] * workgroups[2] * (c.perWorkgroupReads ?? 0)),
  };
  return { label: g.label, code, bindings: g.bindings, workgroups, cost };
}
