/**
 * Sum and Mean over a contiguous block of non-innermost axes for the wasm backend, as a matrix
 * product with a constant row vector. tfjs-backend-wasm 4.22 reduces only innermost axes and
 * transposes the input first otherwise; BatchNorm's statistics and gradient (Σ over N, H, W of an
 * NHWC tensor) and global average pooling (mean over H, W) are exactly that case. Viewing x as
 * `[B,R,C]` (B = product of the axes before the reduced block, R = of the block, C = after it),
 * the result is `[1,1,R] × [B,R,C] → [B,1,C]` with a vector of ones (Sum) or of 1/R (Mean), on
 * wasm's BatchMatMul (XNNPACK GEMM): ~7× faster than transpose + reduce at [128,28,28,16].
 *
 * Other cases (innermost axes, non-float32 input, non-contiguous axes) go to the built-in kernel.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WasmScope } from './wasm_scope.js';

/** `[B, R, C]` split of `shape` when `axes` is a contiguous block that excludes the last axis, else null. */
export function blockReduction(shape: number[], axes: number[]): { b: number; r: number; c: number } | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((p, q) => p - q);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1]! + 1) return null;
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (last >= shape.length - 1) return null;
  const prod = (a: number[]) => a.reduce((p, q) => p * q, 1);
  return { b: prod(shape.slice(0, first)), r: prod(shape.slice(first, last + 1)), c: prod(shape.slice(last + 1)) };
}

function reduceKernel(name: 'Sum' | 'Mean') {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }): tf.TensorInfo => {
    const { inputs, backend, attrs } = args;
    const x = inputs['x']!;
    const axes = tf.util.parseAxisParam(attrs['axis'] as number | number[], x.shape);
    const split = x.dtype === 'float32' ? blockReduction(x.shape, axes) : null;
    const s = new WasmScope(backend);
    try {
      if (split === null || split.r === 1) return s.keep(s.runBuiltin(name, inputs, attrs));
      const { b, r, c } = split;
      const v = s.alloc([1, 1, r]);
      s.view(v).fill(name === 'Sum' ? 1 : 1 / r);
      const out = s.run('BatchMatMul', { a: v, b: WasmScope.reshaped(x, [b, r, c]) }, { transposeA: false, transposeB: false });
      const outShape = attrs['keepDims'] ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
      out.shape = outShape;
      return s.keep(out);
    } finally {
      s.dispose();
    }
  };
}

/** Sum for wasm (see the module comment). Inputs `{x}`, attrs `{axis, keepDims}`. */
export const sumWasm = reduceKernel('Sum');
/** Mean for wasm (see the module comment). Inputs `{x}`, attrs `{axis, keepDims}`. */
export const meanWasm = reduceKernel('Mean');
