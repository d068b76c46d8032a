/**
 * The two gradients of a 2-D convolution for the wasm backend, computed with the backend's own
 * forward Conv2D (XNNPACK's convolution, ~6–7 GMAC/s on one thread here) instead of a dedicated
 * backward kernel: tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter at all, and its
 * Conv2DBackpropInput (XNNPACK deconvolution) runs at about 0.8 GMAC/s.
 *
 * Layout NHWC only (`dataFormat: 'NHWC'`), dilation 1 (tfjs has no conv gradient for dilation > 1).
 * Shapes: x `[N,H,W,Cin]`, filter `[KH,KW,Cin,Cout]`, dy `[N,OH,OW,Cout]`, all float32.
 * Index bookkeeping in ./conv_geometry.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { filterGradAxis, inputGradAxis } from './conv_geometry.js';
import { WasmScope, builtinKernel } from './wasm_scope.js';

interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function convInfo(inShape: number[], filterShape: number[], a: ConvGradAttrs, kernel: string): tf.backend_util.Conv2DInfo {
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(a.dataFormat),
  );
  if (info.dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} on wasm (mixup kernels) supports dataFormat 'NHWC' only, got '${a.dataFormat}'`);
  }
  return info;
}

/** Explicit NHWC padding for a Conv2D attrs object. */
function explicitPad(top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/**
 * Conv2DBackpropFilter: dW `[KH,KW,Cin,Cout]` from x `[N,H,W,Cin]` and dy `[N,OH,OW,Cout]`.
 *
 * dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·sh+kh−pt, ow·sw+kw−pl, ci] · dy[n,oh,ow,co]. This is a
 * Conv2D of xᵀ = transpose(x, [3,1,2,0]) (`[Cin,H,W,N]`: batch Cin, channels N) with the filter
 * dyᵀ = transpose(dy, [1,2,0,3]) (`[OH,OW,N,Cout]`) at dilation (sh, sw) and stride 1, padding from
 * {@link filterGradAxis}; its `[Cin,KH,KW,Cout]` output transposed by [1,2,0,3] is dW.
 */
export function conv2DBackpropFilterWasm(args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const { inputs, backend } = args;
  const attrs = args.attrs as unknown as ConvGradAttrs & { filterShape: [number, number, number, number] };
  const x = inputs['x']!;
  const dy = inputs['dy']!;
  const info = convInfo(x.shape, attrs.filterShape, attrs, 'Conv2DBackpropFilter');
  const gh = filterGradAxis(info.inHeight, info.filterHeight, info.strideHeight, info.padInfo.top, info.outHeight);
  const gw = filterGradAxis(info.inWidth, info.filterWidth, info.strideWidth, info.padInfo.left, info.outWidth);
  const s = new WasmScope(backend);
  try {
    if (info.filterHeight === 1 && info.filterWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0) {
      // 1×1: dW = xₛᵀ · dy with xₛ the strided input rows as an [N·OH·OW, Cin] matrix.
      const m = info.batchSize * info.outHeight * info.outWidth;
      const xt = gatherTransposed(s, x, info.strideHeight, info.strideWidth, info.outHeight, info.outWidth);
      const g = s.run('BatchMatMul', { a: WasmScope.reshaped(xt, [1, info.inChannels, m]), b: WasmScope.reshaped(dy, [1, m, info.outChannels]) }, { transposeA: false, transposeB: false });
      g.shape = [1, 1, info.inChannels, info.outChannels];
      return s.keep(g);
    }
    let xs = x;
    if (gh.keepLen < info.inHeight || gw.keepLen < info.inWidth) {
      xs = s.run('Slice', { x }, { begin: [0, 0, 0, 0], size: [info.batchSize, gh.keepLen, gw.keepLen, info.inChannels] });
    }
    const xt = s.run('Transpose', { x: xs }, { perm: [3, 1, 2, 0] });
    const dyt = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const g = s.run(
      'Conv2D',
      { x: xt, filter: dyt },
      {
        strides: [1, 1],
        pad: explicitPad(gh.padBefore, gh.padAfter, gw.padBefore, gw.padAfter),
        dilations: [info.strideHeight, info.strideWidth],
        dataFormat: 'NHWC',
      },
    );
    return s.keep(s.run('Transpose', { x: g }, { perm: [1, 2, 0, 3] }));
  } finally {
    s.dispose();
  }
}

/**
 * x `[N,H,W,C]` sampled at rows i·sh, columns j·sw (i < oh, j < ow) and transposed to
 * `[C, N·oh·ow]`: a JS copy of the sampled C-vectors (when a stride is > 1), then wasm's
 * Transpose of `[N, oh·ow, C]` by [2,0,1] (its fastest layout here: ~1 ms for 1.6 M floats).
 */
function gatherTransposed(s: WasmScope, x: tf.TensorInfo, sh: number, sw: number, oh: number, ow: number): tf.TensorInfo {
  const [n, h, w, c] = x.shape as [number, number, number, number];
  let xs = x;
  if (sh !== 1 || sw !== 1 || oh !== h || ow !== w) {
    xs = s.alloc([n, oh, ow, c]);
    const dst = s.view(xs);
    const src = s.view(x);
    let di = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < oh; i++) {
        let si = (b * h + i * sh) * w * c;
        for (let k = 0; k < ow; k++, si += sw * c) {
          for (let ci = 0; ci < c; ci++) dst[di++] = src[si + ci]!;
        }
      }
    }
  }
  const t = s.run('Transpose', { x: WasmScope.reshaped(xs, [n, oh * ow, c]) }, { perm: [2, 0, 1] });
  return WasmScope.reshaped(t, [c, n * oh * ow]);
}

/**
 * Writes dy `[N,OH,OW,C]` into a zero tensor `[N,(OH−1)·sh+1+extraH,(OW−1)·sw+1+extraW,C]` at rows
 * oh·sh and columns ow·sw (zero-dilation by the stride; the extra rows/columns stay zero).
 */
function zeroDilate(s: WasmScope, dy: tf.TensorInfo, sh: number, sw: number, extraH = 0, extraW = 0): tf.TensorInfo {
  const [n, oh, ow, c] = dy.shape as [number, number, number, number];
  const hd = (oh - 1) * sh + 1 + extraH;
  const wd = (ow - 1) * sw + 1 + extraW;
  const out = s.alloc([n, hd, wd, c]);
  const dst = s.view(out);
  const src = s.view(dy);
  dst.fill(0);
  let si = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      let di = ((b * hd + i * sh) * wd) * c;
      for (let j = 0; j < ow; j++) {
        for (let k = 0; k < c; k++) dst[di + k] = src[si + k]!;
        si += c;
        di += sw * c;
      }
    }
  }
  return out;
}

/**
 * Conv2DBackpropInput: dx `[N,H,W,Cin]` (attr `inputShape`) from dy `[N,OH,OW,Cout]` and the filter
 * `[KH,KW,Cin,Cout]`.
 *
 * dx is a stride-1 Conv2D of dy zero-dilated by the stride with the filter reversed in KH and KW and
 * transposed to `[KH,KW,Cout,Cin]`, padded per {@link inputGradAxis}. A 1×1 filter without
 * padding is a 1×1 Conv2D on dy followed by scattering its rows/columns to positions
 * (oh·sh, ow·sw) of a zero dx, which does no multiply-adds on the zeros. Other cases (padding
 * before > filter size − 1, possible only with explicit paddings) fall back to the built-in kernel.
 */
export function conv2DBackpropInputWasm(args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const { inputs, backend } = args;
  const attrs = args.attrs as unknown as ConvGradAttrs & { inputShape: [number, number, number, number] };
  const dy = inputs['dy']!;
  const filter = inputs['filter']!;
  const info = convInfo(attrs.inputShape, filter.shape, attrs, 'Conv2DBackpropInput');
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, padInfo } = info;
  const supported = padInfo.top <= kh - 1 && padInfo.left <= kw - 1 && padInfo.top >= 0 && padInfo.left >= 0;
  const s = new WasmScope(backend);
  try {
    if (!supported) {
      if (!builtinKernel('Conv2DBackpropInput')) throw new Error(`Conv2DBackpropInput on wasm: unsupported padding ${JSON.stringify(attrs.pad)}`);
      return s.keep(s.runBuiltin('Conv2DBackpropInput', inputs, args.attrs));
    }
    const [n, h, w, cin] = info.inShape;
    const cout = info.outChannels;
    if (kh === 1 && kw === 1 && padInfo.top === 0 && padInfo.left === 0) {
      const wt = s.run('Transpose', { x: WasmScope.reshaped(filter, [cin, cout]) }, { perm: [1, 0] });
      const g = s.run('Conv2D', { x: dy, filter: WasmScope.reshaped(wt, [1, 1, cout, cin]) }, { strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC' });
      if (sh === 1 && sw === 1 && info.outHeight === h && info.outWidth === w) return s.keep(g);
      return s.keep(zeroDilate(s, g, sh, sw, h - ((info.outHeight - 1) * sh + 1), w - ((info.outWidth - 1) * sw + 1)));
    }
    const gh = inputGradAxis(h, kh, sh, padInfo.top, info.outHeight);
    const gw = inputGradAxis(w, kw, sw, padInfo.left, info.outWidth);
    const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
    const wt = s.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    let src = sh === 1 && sw === 1 ? dy : zeroDilate(s, dy, sh, sw);
    if (gh.cropAfter > 0 || gw.cropAfter > 0) {
      src = s.run('Slice', { x: src }, { begin: [0, 0, 0, 0], size: [n, gh.dilatedLen - gh.cropAfter, gw.dilatedLen - gw.cropAfter, cout] });
    }
    return s.keep(
      s.run('Conv2D', { x: src, filter: wt }, { strides: [1, 1], pad: explicitPad(gh.padBefore, gh.padAfter, gw.padBefore, gw.padAfter), dilations: [1, 1], dataFormat: 'NHWC' }),
    );
  } finally {
    s.dispose();
  }
}
