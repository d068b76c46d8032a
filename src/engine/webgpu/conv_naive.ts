/**
 * Direct convolutions, one invocation per output element: the obviously-correct stand-in for the
 * implicit-GEMM kernels of conv.ts, with the same API (convs.ts chooses which one the engine uses).
 *
 * Layouts: x `[B,inH,inW,inC]`, w `[k,k,inC,outC]`, y `[B,outH,outW,outC]`, all NHWC float32;
 * a 3×3 convolution pads one pixel on every side (MXNet `pad=(1,1)`), a 1×1 none.
 */
import type { Kernel } from './kernel.js';
import { elementwiseMain, storage } from './wgsl.js';

/** Shape of one convolution. */
export interface ConvShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  k: 1 | 3;
  stride: 1 | 2;
}

/** Output size: ⌊(in + 2·pad − k)/stride⌋ + 1, pad = 1 for 3×3, 0 for 1×1. */
export function convOutSize(s: ConvShape): { outH: number; outW: number } {
  const pad = s.k === 3 ? 1 : 0;
  return { outH: Math.floor((s.inH + 2 * pad - s.k) / s.stride) + 1, outW: Math.floor((s.inW + 2 * pad - s.k) / s.stride) + 1 };
}

function consts(s: ConvShape): string {
  const { outH, outW } = convOutSize(s);
  return `const B = ${s.batch}; const IH = ${s.inH}; const IW = ${s.inW}; const IC = ${s.inC}; const OC = ${s.outC};
const K = ${s.k}; const S = ${s.stride}; const PAD = ${s.k === 3 ? 1 : 0}; const OH = ${outH}; const OW = ${outW};`;
}

function tag(s: ConvShape): string {
  return `${s.k}x${s.k}/s${s.stride} ${s.inC}->${s.outC} ${s.inH}x${s.inW} B${s.batch}`;
}

/**
 * Forward: y[b,oy,ox,co] = Σ_{ky,kx,ci} x[b, oy·S−pad+ky, ox·S−pad+kx, ci]·w[ky,kx,ci,co] (+ r[b,oy,ox,co]).
 * One invocation per element of y. Bindings: x, w, [r,] y.
 */
export function conv2dForward(s: ConvShape, o: { residual?: boolean } = {}): Kernel {
  const { outH, outW } = convOutSize(s);
  const n = s.batch * outH * outW * s.outC;
  const res = o.residual === true;
  const main = elementwiseMain(
    n,
    `  let co = i32(i % u32(OC)); var t = i32(i / u32(OC));
  let ox = t % OW; t = t / OW; let oy = t % OH; let b = t / OH;
  var acc = 0.0;
  for (var ky = 0; ky < K; ky++) {
    let iy = oy * S - PAD + ky;
    if (iy < 0 || iy >= IH) { continue; }
    for (var kx = 0; kx < K; kx++) {
      let ix = ox * S - PAD + kx;
      if (ix < 0 || ix >= IW) { continue; }
      let xb = ((b * IH + iy) * IW + ix) * IC;
      let wb = (ky * K + kx) * IC * OC + co;
      for (var ci = 0; ci < IC; ci++) { acc += x[xb + ci] * w[wb + ci * OC]; }
    }
  }
  y[i] = acc${res ? ' + r[i]' : ''};`,
  );
  const decl = [storage(0, 'x', 'read'), storage(1, 'w', 'read')];
  if (res) decl.push(storage(2, 'r', 'read'));
  decl.push(storage(res ? 3 : 2, 'y', 'read_write'));
  return {
    label: `conv2d_fwd_naive ${tag(s)}${res ? ' +r' : ''}`,
    code: `${consts(s)}\n${decl.join('\n')}\n${main.code}`,
    bindings: res ? ['read', 'read', 'read', 'read_write'] : ['read', 'read', 'read_write'],
    workgroups: main.workgroups,
  };
}

/**
 * Backward data: dx[b,iy,ix,ci] (+)= Σ_{ky,kx,co} dy[b,oy,ox,co]·w[ky,kx,ci,co] over the (oy, ox)
 * with oy·S−pad+ky = iy, ox·S−pad+kx = ix. One invocation per element of dx. Bindings: dy, w, dx.
 */
export function conv2dBackwardData(s: ConvShape, o: { accumulate?: boolean } = {}): Kernel {
  const n = s.batch * s.inH * s.inW * s.inC;
  const main = elementwiseMain(
    n,
    `  let ci = i32(i % u32(IC)); var t = i32(i / u32(IC));
  let ix = t % IW; t = t / IW; let iy = t % IH; let b = t / IH;
  var acc = 0.0;
  for (var ky = 0; ky < K; ky++) {
    let ty = iy + PAD - ky;
    if (ty < 0 || ty % S != 0 || ty / S >= OH) { continue; }
    let oy = ty / S;
    for (var kx = 0; kx < K; kx++) {
      let tx = ix + PAD - kx;
      if (tx < 0 || tx % S != 0 || tx / S >= OW) { continue; }
      let ox = tx / S;
      let yb = ((b * OH + oy) * OW + ox) * OC;
      let wb = ((ky * K + kx) * IC + ci) * OC;
      for (var co = 0; co < OC; co++) { acc += dy[yb + co] * w[wb + co]; }
    }
  }
  dx[i] = ${o.accumulate ? 'dx[i] + ' : ''}acc;`,
  );
  return {
    label: `conv2d_bwd_data_naive ${tag(s)}${o.accumulate ? ' +=' : ''}`,
    code: `${consts(s)}\n${storage(0, 'dy', 'read')}\n${storage(1, 'w', 'read')}\n${storage(2, 'dx', 'read_write')}\n${main.code}`,
    bindings: ['read', 'read', 'read_write'],
    workgroups: main.workgroups,
  };
}

/**
 * Backward filter: dw[ky,kx,ci,co] (+)= Σ_{b,oy,ox} x[b, oy·S−pad+ky, ox·S−pad+kx, ci]·dy[b,oy,ox,co].
 * One pass, one invocation per element of dw (no split-K, so no scratch). Bindings: dy, x, dw.
 */
export function conv2dBackwardFilter(s: ConvShape, o: { accumulate?: boolean } = {}): { passes: Kernel[]; scratchFloats: number } {
  const n = s.k * s.k * s.inC * s.outC;
  const main = elementwiseMain(
    n,
    `  let co = i32(i % u32(OC)); var t = i32(i / u32(OC));
  let ci = t % IC; t = t / IC; let kx = t % K; let ky = t / K;
  var acc = 0.0;
  for (var b = 0; b < B; b++) {
    for (var oy = 0; oy < OH; oy++) {
      let iy = oy * S - PAD + ky;
      if (iy < 0 || iy >= IH) { continue; }
      for (var ox = 0; ox < OW; ox++) {
        let ix = ox * S - PAD + kx;
        if (ix < 0 || ix >= IW) { continue; }
        acc += x[((b * IH + iy) * IW + ix) * IC + ci] * dy[((b * OH + oy) * OW + ox) * OC + co];
      }
    }
  }
  dw[i] = ${o.accumulate ? 'dw[i] + ' : ''}acc;`,
  );
  return {
    passes: [
      {
        label: `conv2d_bwd_filter_naive ${tag(s)}${o.accumulate ? ' +=' : ''}`,
        code: `${consts(s)}\n${storage(0, 'dy', 'read')}\n${storage(1, 'x', 'read')}\n${storage(2, 'dw', 'read_write')}\n${main.code}`,
        bindings: ['read', 'read', 'read_write'],
        workgroups: main.workgroups,
      },
    ],
    scratchFloats: 0,
  };
}
