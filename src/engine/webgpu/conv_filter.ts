/**
 * The filter gradient of a convolution (conv.ts's table: rows k·k·Cin, cols Cout, reduction over the
 * B·OH·OW output positions), an implicit GEMM split along its reduction (split-K): its output is small
 * (2,304 floats at 16→16) and its reduction long (100,352 positions at batch 128, 28×28), so one
 * workgroup per output tile would leave a GPU nearly idle. Each `workgroup_id.z` sums one chunk of
 * positions and writes its partial `[k·k·Cin, Cout]`; the SGD update (update.ts) adds the partials up
 * as it reads the gradient, so no reduce pass runs and the partials are read once.
 *
 * Chunks: enough for two waves of workgroups on a 132-SM GPU, in workgroups of at most 64
 * invocations (more, smaller tiles), within 4 MB of partials per layer ({@link filterSplit}). The
 * partials of every layer persist until the update: about 1 MB per layer at depth 50, batch 128.
 */
import type { BindingKind, Kernel } from './kernel.js';
import { ceilDiv, gemmKernel, gemmTiles, roundUp, TARGET_WORKGROUPS, tileCount, type GemmTiles } from './conv_gemm.js';
import { bnBytes, bnInput, bnInputFloats, bnLabel, convOutSize, gemmInvocations, shapeLabel, xGather, xReaderDecls, type ConvInputOptions, type ConvShape } from './conv.js';

/** Floats of one layer's partials the split may use (4 MB): a small filter gradient takes more chunks. */
const FILTER_PARTIAL_FLOATS = 2 ** 20;
/** Most chunks of one filter gradient. */
const FILTER_MAX_CHUNKS = 512;
/** Shortest reduction chunk of a split backward-filter (output positions per partial sum). */
const FILTER_MIN_CHUNK = 64;

/**
 * How backward-filter splits its reduction over the B·OH·OW output positions (module comment):
 * workgroups of 64 invocations (32 where 64 cannot reach the target), `chunks` chunks of `chunk`
 * positions (a multiple of BK, at least {@link FILTER_MIN_CHUNK}) so that tiles × chunks reaches
 * {@link TARGET_WORKGROUPS} within {@link FILTER_PARTIAL_FLOATS} of partials; one chunk means the
 * gradient itself is written.
 * @param o.split false: always one chunk.
 */
export function filterSplit(s: ConvShape, o: { split?: boolean } & ConvInputOptions = {}): { tiles: GemmTiles; chunk: number; chunks: number } {
  const { outH, outW } = convOutSize(s);
  const positions = s.batch * outH * outW;
  const rows = s.k * s.k * s.inC;
  const total = rows * s.outC;
  let best: { tiles: GemmTiles; chunk: number; chunks: number } | null = null;
  for (const inv of [64, 32]) {
    // Tiles are picked for a chunk of the minimum length; BK then fits any longer chunk equally well.
    const tiles = gemmTiles(rows, s.outC, Math.min(positions, FILTER_MIN_CHUNK), inv, bnBytes(o.bn));
    const tc = tileCount(rows, s.outC, tiles);
    const want = o.split === false ? 1 : Math.max(1, Math.min(FILTER_MAX_CHUNKS, Math.floor(FILTER_PARTIAL_FLOATS / total), ceilDiv(TARGET_WORKGROUPS, tc)));
    let chunk = Math.min(roundUp(Math.max(FILTER_MIN_CHUNK, ceilDiv(positions, want)), tiles.BK), roundUp(positions, tiles.BK));
    // Rounding to BK can leave the chunks a few short of the target: shorten them while that helps.
    const most = Math.min(FILTER_MAX_CHUNKS, Math.floor(FILTER_PARTIAL_FLOATS / total));
    while (want > 1 && tc * ceilDiv(positions, chunk) < TARGET_WORKGROUPS && chunk - tiles.BK >= FILTER_MIN_CHUNK && ceilDiv(positions, chunk - tiles.BK) <= most) {
      chunk -= tiles.BK;
    }
    best = { tiles, chunk, chunks: ceilDiv(positions, chunk) };
    if (o.split === false || tc * best.chunks >= TARGET_WORKGROUPS) break;
  }
  return best!;
}

/** A backward-filter kernel and how many partials it writes. */
export interface FilterGradient {
  kernel: Kernel;
  /** Chunks of the reduction: partials written, `[chunks][k·k·Cin·Cout]`; 1: the gradient itself. */
  chunks: number;
  /** Floats of one partial (k·k·Cin·Cout). */
  total: number;
  /** Invocations of its workgroup. */
  invocations: number;
}

/**
 * The filter gradient `dw[k,k,Cin,Cout] = Σ_{b,oh,ow} x[b, oh·s−p+kh, ow·s−p+kw, ci]·dy[b,oh,ow,co]`
 * (implicit GEMM, rows k·k·Cin, cols Cout, reduction B·OH·OW in {@link filterSplit}'s chunks).
 * With one chunk it writes dw (or adds to it with `accumulate`); with more, chunk z writes its partial
 * sum at `dw[z·k·k·Cin·Cout + …]` (`[chunks][k·k·Cin·Cout]`), for the update to add up (update.ts).
 * Bindings: dy read, x read, [state read, [gamma read,] beta read (bn),] dw read_write.
 * FLOPs: {@link convFlops}.
 * @throws Error for `accumulate` with a split reduction (pass `split: false`).
 */
export function conv2dBackwardFilter(s: ConvShape, o: { accumulate?: boolean; split?: boolean } & ConvInputOptions = {}): FilterGradient {
  const { outH, outW } = convOutSize(s);
  const positions = s.batch * outH * outW;
  const rows = s.k * s.k * s.inC;
  const total = rows * s.outC;
  const { tiles, chunk, chunks } = filterSplit(s, o);
  const split = chunks > 1;
  const label = `conv2d_bwd_filter${bnLabel(o.bn)}${o.accumulate ? '+acc' : ''} ${shapeLabel(s)}`;
  if (split && o.accumulate) throw new Error(`${label}: accumulate needs one chunk (split: false)`);
  const xg = xGather(s);
  const bn = bnInput(o.bn, gemmInvocations(tiles));
  const names = ['dy', 'x', ...bn.names, 'dw'];
  const bindings: BindingKind[] = names.map((n) => (n === 'dw' ? 'read_write' : 'read'));
  const store = split
    ? 'dw[wid.z * (ROWS * COLS) + row * COLS + col] = v;'
    : o.accumulate
      ? 'dw[row * COLS + col] = dw[row * COLS + col] + v;'
      : 'dw[row * COLS + col] = v;';
  const kernel = gemmKernel({
    label: split ? `${label} partial ${chunks}x${chunk}` : label,
    rows,
    cols: s.outC,
    red: positions,
    tiles,
    chunk,
    aFast: 'row',
    bFast: 'col',
    bindings,
    decls: `${xReaderDecls(s, names, bindings, bn.decls, o.bn)}
fn loadA(row: u32, red: u32) -> f32 { return loadX(red, row); }
fn loadB(red: u32, col: u32) -> f32 { return dy[red * COUT + col]; }`,
    store,
    prologue: bn.body,
    cost: {
      class: 'conv_bwd_filter',
      aReads: xg.reads,
      bReads: positions * s.outC,
      read: 4 * (xg.distinct + positions * s.outC + bnInputFloats(o.bn) + (o.accumulate ? total : 0)),
      written: 4 * chunks * total,
      epilogueReads: o.accumulate ? total : 0,
      perWorkgroupReads: bnInputFloats(o.bn),
    },
  });
  return { kernel, chunks, total, invocations: gemmInvocations(tiles) };
}
