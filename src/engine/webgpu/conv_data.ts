/**
 * Backward-data of the static engine's convolutions (issue 17, 24): the input gradient as an implicit
 * GEMM (conv.ts module comment: rows B·H·W, cols Cin, reduction k·k·Cout), and stride 2 as four
 * phase GEMMs in one dispatch, so that no stride-hole product is executed. Layouts as in conv.ts.
 */
import type { BindingKind, Kernel } from './kernel.js';
import { declare, gemmKernel, gemmTiles, occupancyTiles, roundUp, type GemmCostInput, type GemmTiles } from './conv_gemm.js';
import { convOutSize, gatherSide, shapeConsts, shapeLabel, type ConvShape } from './conv.js';

/**
 * The input gradient `dx[B,H,W,Cin]` of a convolution from `dy[B,OH,OW,Cout]` and `w[k,k,Cin,Cout]`
 * (the transposed convolution): `dx[b,h,w,ci] = Σ_{kh,kw,co} dy[b,(h+p−kh)/s,(w+p−kw)/s,co]·w[kh,kw,ci,co]`
 * over the taps where the division is exact and the position lies inside dy. Implicit GEMM: rows
 * B·H·W, cols Cin, reduction k·k·Cout. dx is overwritten, or added to when `accumulate` (a unit's act1
 * takes gradient from conv1 and from the shortcut). Stride 2 runs as four phases in one dispatch
 * ({@link strideTwoPhases}), so that it executes no stride-hole products.
 * Bindings: dy read, w read, dx read_write. FLOPs: {@link convFlops}.
 * `invocations`: tiles of at most that many invocations ({@link gemmTiles}; conv_fused.ts matches the
 * backward-filter's workgroup) instead of {@link occupancyTiles}'s.
 */
export function conv2dBackwardData(s: ConvShape, o: { accumulate?: boolean; invocations?: number } = {}): Kernel {
  const rows = s.batch * s.inH * s.inW;
  const red = s.k * s.k * s.outC;
  const bindings: BindingKind[] = ['read', 'read', 'read_write'];
  const { outH, outW } = convOutSize(s);
  const gh = gatherSide(s.inH, outH, s.k, s.stride, 'dy');
  const gw = gatherSide(s.inW, outW, s.k, s.stride, 'dy');
  const cost = {
    class: 'conv_bwd_data' as const,
    aReads: s.batch * s.outC * gh.pairs * gw.pairs,
    bReads: red * s.inC,
    read: 4 * (s.batch * s.outC * gh.distinct * gw.distinct + red * s.inC + (o.accumulate ? rows * s.inC : 0)),
    written: 4 * rows * s.inC,
    epilogueReads: o.accumulate ? rows * s.inC : 0,
  };
  const label = `conv2d_bwd_data${o.accumulate ? '+acc' : ''} ${shapeLabel(s)}`;
  // vec4 loads of dy along Cout where Cout % 4 = 0 (4 consecutive reduction terms share a tap).
  const v = dyLoad(s.outC % 4 === 0);
  const head = `${declare(['dy', 'w', 'dx'], bindings, v.vec4 ? ['dy'] : [])}\n${shapeConsts(s)}`;
  if (s.stride === 2) return strideTwoBackwardData(s, o, { label, bindings, head, cost, v });
  const tiles = dataTiles(rows, s.inC, red, o.invocations);
  const loadA =
    s.k === 1
      ? v.rowFns('', 'let base = row * COUT;', ['base'], '', `return ${v.at('base + red')};`)
      : v.rowFns(
          '',
          `let iw = row % W;
  let t = row / W;
  let ih = t % H;
  let b = t / H;`,
          ['b', 'ih', 'iw'],
          '',
          `let tap = red / COUT;
  let co = red % COUT;
  // dy at the tap: oh = h + p − kh; unsigned wrap-around makes a negative one fail \`< OH\`.
  let oh = ih + PAD - tap / KS;
  let ow = iw + PAD - tap % KS;
  if (oh >= OH || ow >= OW) { return ${v.zero}; }
  return ${v.at('((b * OH + oh) * OW + ow) * COUT + co')};`,
        );
  return gemmKernel({
    label,
    ...dataGemm(s, rows, red, tiles, bindings, v),
    decls: `${head}
${loadA}
fn loadB(red: u32, col: u32) -> f32 { return w[((red / COUT) * CIN + col) * COUT + red % COUT]; }`,
    store: o.accumulate ? 'dx[row * CIN + col] = dx[row * CIN + col] + v;' : 'dx[row * CIN + col] = v;',
    cost,
  });
}

/** Backward-data's tiles: {@link occupancyTiles}, or {@link gemmTiles} of at most `invocations`. */
function dataTiles(rows: number, cols: number, red: number, invocations: number | undefined): GemmTiles {
  return invocations === undefined ? occupancyTiles(rows, cols, red) : gemmTiles(rows, cols, red, invocations);
}

/** How backward-data's loadA reads dy: scalar `loadA`, or `loadA4` of 4 channels from `array<vec4<f32>>`. */
interface DyLoad {
  vec4: boolean;
  zero: string;
  /** The load of dy's element (or vec4 of elements) at a float index. */
  at: (i: string) => string;
  /**
   * The WGSL of loading A from a row decode (statements defining `vars`) and a body (statements
   * returning the element from them and `red`): scalar `fn loadA(row, red[, z])` runs both at every
   * load; vec4 splits them into `fn rowA(row[, z]) -> vec4<u32>` of the vars, run once per tile, and
   * `fn loadA4(ri, red[, z])` (conv_gemm.ts aRowInfo), which first runs `pre` (what the body needs
   * besides the vars).
   */
  rowFns: (zSig: string, decode: string, vars: string[], pre: string, body: string) => string;
}

/** The GEMM shape and operand layout of backward-data (rows of dx, cols Cin, reduction over taps × Cout). */
function dataGemm(s: ConvShape, rows: number, red: number, tiles: GemmTiles, bindings: BindingKind[], v: DyLoad) {
  return { rows, cols: s.inC, red, tiles, chunk: roundUp(red, tiles.BK), aFast: 'red' as const, aVec4: v.vec4, aRowInfo: v.vec4, bFast: 'red' as const, bindings };
}

function dyLoad(vec4: boolean): DyLoad {
  const rowFns = (zSig: string, decode: string, vars: string[], pre: string, body: string) =>
    vec4
      ? `fn rowA(row: u32${zSig}) -> vec4<u32> {
  ${decode}
  return vec4<u32>(${[...vars, '0u', '0u', '0u'].slice(0, 4).join(', ')});
}
fn loadA4(ri: vec4<u32>, red: u32${zSig}) -> vec4<f32> {
  ${pre}
  ${vars.map((n, i) => `let ${n} = ri.${'xyzw'[i]};`).join(' ')}
  ${body}
}`
      : `fn loadA(row: u32, red: u32${zSig}) -> f32 {
  ${decode}
  ${body}
}`;
  return vec4
    ? { vec4, zero: 'vec4<f32>(0.0)', at: (i) => `dy[(${i}) / 4u]`, rowFns }
    : { vec4, zero: '0.0', at: (i) => `dy[${i}]`, rowFns };
}

/**
 * The phase decomposition of a stride-2 backward-data along one side of n input positions (pad p, k
 * taps): input position i = 2·j + ph takes exactly the taps kh = k0 + 2·t (t < taps) with
 * `i + p − kh` even, from dy at `j + d − t` (d = (ph + p − k0)/2), so each parity ph is a dense
 * convolution with its own subset of taps. 3×3 pad 1: even positions take the middle tap, odd ones
 * taps 0 and 2; 1×1 pad 0: even positions tap 0, odd ones none (their dx is 0).
 */
export function strideTwoPhases(n: number, k: number): { size: number; k0: number; taps: number; d: number }[] {
  const p = (k - 1) / 2;
  return [0, 1].map((ph) => {
    const k0 = (ph + p) % 2;
    return { size: Math.ceil((n - ph) / 2), k0, taps: k0 < k ? Math.ceil((k - k0) / 2) : 0, d: (ph + p - k0) / 2 };
  });
}

/**
 * Stride-2 backward-data as four dense GEMMs in one dispatch, phase z = 2·(h parity) + (w parity) from
 * `workgroup_id.z` (conv_gemm.ts phases): phase rows (b, i, j) are the input positions
 * (b, 2i + ph, 2j + pw), its reduction (th, tw, co) the taps of that parity ({@link strideTwoPhases}),
 * so only the taps that divide are multiplied (dy's border, where a tap falls outside, still loads 0).
 */
function strideTwoBackwardData(
  s: ConvShape,
  o: { accumulate?: boolean; invocations?: number },
  k: { label: string; bindings: BindingKind[]; head: string; cost: GemmCostInput; v: DyLoad },
): Kernel {
  const v = k.v;
  const hs = strideTwoPhases(s.inH, s.k);
  const ws = strideTwoPhases(s.inW, s.k);
  const phases = [0, 1, 2, 3].map((z) => {
    const [h, w] = [hs[z >> 1]!, ws[z & 1]!];
    const red = h.taps * w.taps * s.outC;
    return { rows: s.batch * h.size * w.size, red, bReads: red * s.inC };
  });
  const rows = Math.max(...phases.map((p) => p.rows));
  const red = Math.max(...phases.map((p) => p.red));
  const tiles = dataTiles(s.batch * s.inH * s.inW, s.inC, red, o.invocations);
  const pick = (name: string, v: [number, number], bit: string) => `let ${name} = select(${v[0]}u, ${v[1]}u, ${bit} == 1u);`;
  const two = <T,>(a: T[], f: (x: T) => number): [number, number] => [f(a[0]!), f(a[1]!)];
  // Per phase: sizes hp × wp, taps th × tw starting at kh0/kw0, dy offsets dh/dw.
  const phaseLets = [
    'let ph = z / 2u;',
    'let pw = z % 2u;',
    pick('hp', two(hs, (x) => x.size), 'ph'),
    pick('wp', two(ws, (x) => x.size), 'pw'),
    pick('tw', two(ws, (x) => x.taps), 'pw'),
  ].join('\n  ');
  const decls = `${k.head}
${v.rowFns(
  ', z: u32',
  `${phaseLets}
  let j = row % wp;
  let t = row / wp;
  let i = t % hp;
  let b = t / hp;`,
  ['b', 'i', 'j'],
  phaseLets,
  `${pick('dh', two(hs, (x) => x.d), 'ph')}
  ${pick('dw', two(ws, (x) => x.d), 'pw')}
  let tap = red / COUT;
  // dy at oh = i + dh − th (unsigned wrap-around makes a negative one fail \`< OH\`).
  let oh = i + dh - tap / tw;
  let ow = j + dw - tap % tw;
  if (oh >= OH || ow >= OW) { return ${v.zero}; }
  return ${v.at('((b * OH + oh) * OW + ow) * COUT + red % COUT')};`,
)}
fn loadB(red: u32, col: u32, z: u32) -> f32 {
  ${phaseLets}
  ${pick('kh0', two(hs, (x) => x.k0), 'ph')}
  ${pick('kw0', two(ws, (x) => x.k0), 'pw')}
  let tap = red / COUT;
  let kh = kh0 + 2u * (tap / tw);
  let kw = kw0 + 2u * (tap % tw);
  return w[((kh * KS + kw) * CIN + col) * COUT + red % COUT];
}
/** dx's row (b, 2i + ph, 2j + pw) of phase z's row (b, i, j). */
fn dxRow(row: u32, z: u32) -> u32 {
  ${phaseLets}
  let j = row % wp;
  let t = row / wp;
  let i = t % hp;
  let b = t / hp;
  return (b * H + 2u * i + ph) * W + 2u * j + pw;
}`;
  return gemmKernel({
    label: k.label,
    ...dataGemm(s, rows, red, tiles, k.bindings, v),
    decls,
    store: o.accumulate ? 'let d = dxRow(row, z) * CIN + col; dx[d] = dx[d] + v;' : 'dx[dxRow(row, z) * CIN + col] = v;',
    phases,
    cost: k.cost,
  });
}
