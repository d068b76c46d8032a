/**
 * Calling the wasm backend's own kernels from inside another wasm kernel, the way
 * tfjs-backend-wasm's kernels call each other: the kernel function is invoked directly with
 * `{inputs, backend, attrs}` (no engine, no tape, no `Tensor` objects), and every intermediate
 * output is freed with `backend.disposeData` once the composite kernel is done. Nothing is tracked
 * by the engine, so `tf.memory().numTensors` is untouched, and `backend.numDataIds()` returns to its
 * value before the call except for the one output the composite kernel returns.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** A kernel function as tfjs registers it. */
export type KernelImpl = (args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }) => tf.TensorInfo;

/**
 * Built-in wasm kernels captured before this project replaces some of them
 * (see {@link captureBuiltin}); keyed by kernel name.
 */
const builtins = new Map<string, tf.KernelConfig>();

/**
 * Remembers the wasm backend's own kernel `name` (once), so that it can still be called after
 * the name is re-registered with a replacement (benchmarks compare the two; replacements fall back
 * to it for cases they do not handle).
 * @returns the built-in config, or undefined when wasm has no such kernel.
 */
export function captureBuiltin(name: string): tf.KernelConfig | undefined {
  if (!builtins.has(name)) {
    const k = tf.getKernel(name, 'wasm');
    if (k) builtins.set(name, k);
  }
  return builtins.get(name);
}

/** The wasm backend's own kernel `name` as captured by {@link captureBuiltin}, or undefined. */
export function builtinKernel(name: string): tf.KernelConfig | undefined {
  return builtins.get(name);
}

/**
 * One composite kernel invocation: runs wasm kernels, allocates outputs on the wasm heap, and
 * frees every intermediate in {@link WasmScope.dispose}. Use as
 * `const s = new WasmScope(backend); try { ...; return s.keep(out); } finally { s.dispose(); }`.
 */
export class WasmScope {
  private readonly temps: tf.TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  /**
   * Runs the wasm kernel registered as `name` (the current registration, i.e. a replacement when
   * one is registered) and tracks its output as an intermediate.
   * @throws Error when wasm has no such kernel.
   */
  run(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    const k = tf.getKernel(name, 'wasm');
    if (!k) throw new Error(`wasm backend has no kernel ${name}`);
    return this.track((k.kernelFunc as unknown as KernelImpl)({ inputs, backend: this.backend, attrs }));
  }

  /** Like {@link run} but calls the captured built-in kernel `name`. */
  runBuiltin(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): tf.TensorInfo {
    const k = builtins.get(name);
    if (!k) throw new Error(`built-in wasm kernel ${name} was not captured`);
    return this.track((k.kernelFunc as unknown as KernelImpl)({ inputs, backend: this.backend, attrs }));
  }

  /** Allocates an uninitialised float32 tensor of `shape` on the wasm heap (tracked). */
  alloc(shape: number[]): tf.TensorInfo {
    return this.track(this.backend.makeOutput(shape, 'float32'));
  }

  /**
   * The float32 view of `t` on the wasm heap. Take it right before use: any later allocation can
   * grow the heap and detach earlier views.
   */
  view(t: tf.TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(t) as Float32Array;
  }

  /** A view of `t`'s data with another shape of the same size (no copy, not tracked, never disposed). */
  static reshaped(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return { dataId: t.dataId, shape, dtype: t.dtype };
  }

  /** Stops tracking `t` (the composite kernel's result) and returns it. */
  keep(t: tf.TensorInfo): tf.TensorInfo {
    const i = this.temps.indexOf(t);
    if (i < 0) throw new Error('WasmScope.keep: tensor is not an intermediate of this scope');
    this.temps.splice(i, 1);
    return t;
  }

  /** Frees every tracked intermediate. */
  dispose(): void {
    for (const t of this.temps.splice(0)) this.backend.disposeData(t.dataId);
  }

  private track(t: tf.TensorInfo): tf.TensorInfo {
    this.temps.push(t);
    return t;
  }
}
