/**
 * BatchNorm statistics produced where the BatchNorm's input is written (issue 24): the GEMM epilogue
 * of a convolution computes per-(row tile, channel) statistics of the values it has just stored, and
 * a small finalize kernel (as cuDNN's BN-finalize) folds the tiles of each (shard, channel) into the
 * BatchNorm's state in bn_state.ts's format with one partial per shard (`BnShape.fwdFinal`), so the consumers
 * ({@link bnMomentsFn}, bnPrologue, bnForwardKernel, bnBackwardKernel) read final values, and no
 * statistics kernel re-reads the activation.
 *
 * Forward, per tile of BM rows (all inside one shard: {@link tileStatsFit}) and channel: the tile mean
 * and M2 = Σ(v − tile mean)² (two reductions, so no cancellation), written as `[tiles, C, 2]` partials.
 * The finalize kernel folds a shard's T tiles of n = BM rows each in a fixed order: per invocation a
 * strided subset of tiles exactly (equal counts: mean of the means, M2 = Σ M2_t + n·Σ(mean_t − mean)²),
 * then those subsets with Chan et al.'s pairwise formula (Chan, Golub & LeVeque 1979). No atomics:
 * the result depends only on the values, so resumed runs stay byte-identical.
 */
import type { BindingKind, Kernel } from './kernel.js';
import type { GemmTiles } from './conv_gemm.js';
import { bnLayout, type BnShape } from './bn_state.js';
import { storage, WG } from './wgsl.js';

/**
 * Whether a GEMM of `rows` output rows in shards of `shardRows` (rows of one BatchNorm shard) can
 * produce the statistics in its epilogue with these tiles: every row tile lies inside one shard
 * (shardRows a multiple of BM). Otherwise the BatchNorm's statistics kernel runs (bn.ts).
 */
export function tileStatsFit(rows: number, shardRows: number, t: GemmTiles): boolean {
  return rows % shardRows === 0 && shardRows % t.BM === 0;
}

/** Floats of the tile partials of a GEMM's statistics epilogue: `[rows / BM, cols, 2]`. */
export function tileStatsFloats(rows: number, cols: number, t: GemmTiles): number {
  return (rows / t.BM) * cols * 2;
}

/**
 * WGSL statements for a GEMM's epilogue hook (conv_gemm.ts GemmSpec.epilogue, run after the stores in
 * uniform control flow): the column statistics of the workgroup's `BM×BN` tile of stored values.
 * Needs from the caller's declarations `fn statValue(row: u32, col: u32) -> f32` (the value stored at
 * (row, col), read back: the invocation reads its own stores) and a read_write binding `bnpart`;
 * uses gemmKernel's `lid`, `tx`, `rowT`, `colT`, `col0`, `wid` and its operand tiles `As`, `Bs` as
 * scratch (free after the reduction's last barrier).
 * Each invocation holds its 4×4 block's values; per column j of its block, the block's column sums
 * go to As (one float per invocation), the `BN/4` invocations lid < BN/4 add the `BM/4` sums of their
 * column in order and keep the tile mean in Bs; then the same for Σ(v − mean)². Writes
 * `bnpart[(wid.y·COLS + col)·2 + {0, 1}]` = (tile mean, M2) for the columns inside the GEMM.
 * @throws Error when the tile is not 4×4 blocks or not every row of it lies inside the GEMM.
 */
export function tileStatsEpilogue(t: GemmTiles, rows: number, cols: number): string {
  if (t.TM !== 4 || t.TN !== 4) throw new Error('tileStatsEpilogue: needs 4×4 blocks per invocation');
  if (rows % t.BM !== 0) throw new Error(`tileStatsEpilogue: ${rows} rows are not whole tiles of ${t.BM}`);
  const tn = t.BN / 4;
  const tm = t.BM / 4;
  const inCol = (c: string) => (cols % t.BN === 0 ? 'true' : `${c} < COLS`);
  // The per-invocation floats of column j to As, then invocation lid < tn adds column group lid's in order.
  const reduce = (what: string, then: string) => `for (var j = 0u; j < 4u; j++) {
    As[lid / 4u][lid % 4u] = ${what}[j];
    workgroupBarrier();
    if (lid < ${tn}u) {
      var t = 0.0;
      for (var q = 0u; q < ${tm}u; q++) { let i = q * ${tn}u + lid; t += As[i / 4u][i % 4u]; }
      ${then}
    }
    workgroupBarrier();
  }`;
  return `// BatchNorm statistics of the stored tile (bn_epilogue.ts): per column, mean and M2 over its ${t.BM} rows.
  workgroupBarrier();
  var sv: array<vec4<f32>, 4>;
  for (var r = 0u; r < 4u; r++) {
    for (var j = 0u; j < 4u; j++) {
      if (${inCol('colT + j')}) { sv[r][j] = statValue(rowT + r, colT + j); }
    }
  }
  let blockSum = sv[0] + sv[1] + sv[2] + sv[3];
  ${reduce('blockSum', `Bs[lid][j] = t / ${t.BM}.0;`)}
  let tileMean = Bs[tx];
  let d0 = sv[0] - tileMean; let d1 = sv[1] - tileMean; let d2 = sv[2] - tileMean; let d3 = sv[3] - tileMean;
  let blockM2 = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
  ${reduce(
    'blockM2',
    `let col = col0 + lid * 4u + j;
      if (${inCol('col')}) {
        let o = (wid.y * COLS + col) * 2u;
        bnpart[o] = Bs[lid][j];
        bnpart[o + 1u] = t;
      }`,
  )}`;
}

/**
 * The finalize kernel of a BatchNorm whose statistics a GEMM epilogue wrote ({@link tileStatsEpilogue}):
 * folds the `tiles` partials `[S·tiles, C, 2]` of `tileRows` rows each per (shard, channel) into the
 * state's forward statistics (one partial per shard: (mean, M2), bn.ts), and writes the shards'
 * average mean and biased variance to `batch` ([mean C | var C], for the moving update).
 * Dispatch `[⌈C/CW⌉, 1, 1]` workgroups of 256, CW = min(C, 256): invocation (r, c) = (lid / CW, lid % CW)
 * folds tiles r, r + R, … (R = ⌊256/CW⌋) of each shard exactly (equal counts), then invocation r = 0
 * of each channel combines the R results in order with Chan et al.'s formula (module comment).
 * Bindings: part read, state read_write, batch read_write.
 * @throws Error when the tiles do not cover the shards' rows.
 */
export function bnFinalizeKernel(s: BnShape, tileRows: number): Kernel {
  if (!s.fwdFinal) throw new Error('bnFinalizeKernel: the BatchNorm shape must say fwdFinal');
  if (s.rows % tileRows !== 0) throw new Error(`bnFinalizeKernel: ${s.rows} rows per shard are not whole tiles of ${tileRows}`);
  const T = s.rows / tileRows;
  const C = s.channels;
  const CW = Math.min(C, WG);
  const R = Math.floor(WG / CW);
  const bindings: BindingKind[] = ['read', 'read_write', 'read_write'];
  const code = `// BatchNorm finalize: ${s.shards} shards x ${T} tiles of ${tileRows} rows, ${C} channels.
const S = ${s.shards}u; const C = ${C}u; const T = ${T}u; const NT = ${tileRows}.0; const M = ${s.rows}u;
const CW = ${CW}u; const R = ${R}u;
${storage(0, 'part', 'read')}
${storage(1, 'state', 'read_write')}
${storage(2, 'batch', 'read_write')}
var<workgroup> wn: array<f32, ${WG}>;
var<workgroup> wm: array<f32, ${WG}>;
var<workgroup> wq: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let cl = lid % CW;
  let r = lid / CW;
  let c = wid.x * CW + cl;
  let on = r < R && c < C;
  var bm = 0.0;
  var bv = 0.0;
  for (var s = 0u; s < S; s++) {
    var n = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    if (on) {
      var sum = 0.0;
      var k = 0u;
      for (var t = r; t < T; t += R) { sum += part[((s * T + t) * C + c) * 2u]; k++; }
      if (k > 0u) {
        mean = sum / f32(k);
        for (var t = r; t < T; t += R) {
          let o = ((s * T + t) * C + c) * 2u;
          let d = part[o] - mean;
          m2 += part[o + 1u] + NT * d * d;
        }
        n = f32(k) * NT;
      }
    }
    wn[lid] = n;
    wm[lid] = mean;
    wq[lid] = m2;
    workgroupBarrier();
    if (r == 0u && c < C) {
      for (var q = 1u; q < R; q++) {
        let i = q * CW + cl;
        let nb = wn[i];
        if (nb > 0.0) {
          let nn = n + nb;
          let d = wm[i] - mean;
          mean += d * (nb / nn);
          m2 += wq[i] + d * d * (n * nb / nn);
          n = nn;
        }
      }
      let o = (s * C + c) * 2u;
      state[o] = mean;
      state[o + 1u] = m2;
      bm += mean;
      bv += max(m2 / f32(M), 0.0);
    }
    workgroupBarrier();
  }
  if (r == 0u && c < C) {
    batch[c] = bm / f32(S);
    batch[C + c] = bv / f32(S);
  }
}
`;
  const partFloats = 2 * s.shards * T * C;
  return {
    label: `bn_finalize S${s.shards} T${T}x${tileRows} C${C}`,
    code,
    bindings,
    workgroups: [Math.ceil(C / CW), 1, 1],
    cost: { class: 'bn', flops: 6 * partFloats, usefulFlops: 6 * partFloats, read: 4 * partFloats, written: 4 * (bnLayout(s).bwd + 2 * C), requested: 8 * partFloats },
  };
}
