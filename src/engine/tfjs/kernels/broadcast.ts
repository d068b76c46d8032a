/**
 * Per-channel Multiply / Add / Sub for the wasm backend: an NHWC activation times, plus or minus a
 * `[C]` vector (BatchNorm's `x·γs`, `x − μ`, `+ β` and their gradients). tfjs-backend-wasm 4.22
 * runs these through XNNPACK's broadcasting binary operators at about half the speed of the same
 * operation without broadcasting; a 1×1 depthwise convolution does the same arithmetic at the
 * speed of the non-broadcast op (~0.6 ms against ~1.25 ms at [128,28,28,16]):
 *   x·v  = DepthwiseConv2dNative(x, filter v)               (one rounding, as x·v)
 *   x + v = FusedDepthwiseConv2D(x, filter 1, bias v)        (x·1 is exact, then one rounding)
 *   x − v = FusedDepthwiseConv2D(x, filter 1, bias −v)
 * so the results equal the built-in kernels' bit for bit. The activation is viewed as
 * `[1, size/C, 1, C]`. Everything else (other dtypes, other broadcasts, v − x, small tensors) goes
 * to the built-in kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WasmScope } from './wasm_scope.js';

/** Below this many elements the built-in kernel is as fast (per-call overhead dominates). */
const MIN_SIZE = 4096;

const sizeOf = (shape: number[]) => shape.reduce((p, q) => p * q, 1);

/**
 * True when `v` broadcasts against `x` as a vector along x's last axis: v has rank ≤ x's rank,
 * all its dimensions but the last are 1, and its last equals x's last (C), with C < size(x).
 */
export function isChannelVector(xShape: number[], vShape: number[]): boolean {
  if (vShape.length === 0 || xShape.length < 2 || vShape.length > xShape.length) return false;
  const c = xShape[xShape.length - 1]!;
  if (vShape[vShape.length - 1] !== c) return false;
  for (let i = 0; i < vShape.length - 1; i++) if (vShape[i] !== 1) return false;
  return sizeOf(xShape) > c;
}

function binaryKernel(name: 'Multiply' | 'Add' | 'Sub') {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const a = inputs['a']!;
    const b = inputs['b']!;
    const s = new WasmScope(backend);
    try {
      let x: tf.TensorInfo | null = null;
      let v: tf.TensorInfo | null = null;
      if (a.dtype === 'float32' && b.dtype === 'float32') {
        if (isChannelVector(a.shape, b.shape)) [x, v] = [a, b];
        else if (name !== 'Sub' && isChannelVector(b.shape, a.shape)) [x, v] = [b, a];
      }
      if (x === null || v === null || sizeOf(x.shape) < MIN_SIZE) return s.keep(s.runBuiltin(name, inputs, attrs));
      const c = x.shape[x.shape.length - 1]!;
      const xv = WasmScope.reshaped(x, [1, sizeOf(x.shape) / c, 1, c]);
      const conv = { strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC' };
      let out: tf.TensorInfo;
      if (name === 'Multiply') {
        out = s.run('DepthwiseConv2dNative', { x: xv, filter: WasmScope.reshaped(v, [1, 1, c, 1]) }, conv);
      } else {
        const ones = s.alloc([1, 1, c, 1]);
        s.view(ones).fill(1);
        const bias = s.alloc([c]);
        const bv = s.view(bias);
        const vv = s.view(v);
        for (let i = 0; i < c; i++) bv[i] = name === 'Add' ? vv[i]! : -vv[i]!;
        out = s.run('FusedDepthwiseConv2D', { x: xv, filter: ones, bias }, { ...conv, activation: 'linear' });
      }
      out.shape = x.shape.slice();
      return s.keep(out);
    } finally {
      s.dispose();
    }
  };
}

/** Multiply for wasm (see the module comment). Inputs `{a, b}`. */
export const multiplyWasm = binaryKernel('Multiply');
/** Add for wasm (see the module comment). Inputs `{a, b}`. */
export const addWasm = binaryKernel('Add');
/** Sub for wasm (see the module comment). Inputs `{a, b}`. */
export const subWasm = binaryKernel('Sub');
