/**
 * Training kernels for TensorFlow.js's wasm backend (tfjs-backend-wasm 4.22), so that a
 * pre-activation ResNet trains on wasm instead of the ~100× slower pure-JS cpu backend.
 *
 * Measured (running forward + `tf.variableGrads` of conv 3×3/1×1 at strides 1/2, BatchNorm via
 * `tf.moments` + `tf.batchNorm` or plain arithmetic, `tf.layers.batchNormalization`, ReLU, add,
 * mean pooling, dense, softmax / log-softmax cross-entropy on wasm): the only kernel wasm lacks is
 * **Conv2DBackpropFilter**. Conv2DBackpropInput exists but is ~8× slower than Conv2D (XNNPACK's
 * deconvolution path), so it is replaced too. Both are built from wasm's own Conv2D (the 1×1
 * filter gradient from its BatchMatMul), see ./conv2d_grads.ts. Sum and Mean over N,H,W
 * (BatchNorm statistics and gradient), which wasm computes after a full transpose, become one
 * AvgPool (./reduce.ts). Multiply/Add/Sub of an activation and a per-channel [C] vector become a
 * 1×1 depthwise convolution (./broadcast.ts). Identity (every `tf.clone`, every tensor a
 * `tf.customGrad` saves) shares the input's buffer instead of copying it (./identity.ts). `npm run bench:kernels` compares them with the
 * built-in kernels.
 * Multi-threading (opt-in, `MIXUP_WASM_THREADS`): ./wasm_threads.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterWasm, conv2DBackpropInputWasm } from './conv2d_grads.js';
import { addWasm, multiplyWasm, subWasm } from './broadcast.js';
import { identityWasm } from './identity.js';
import { meanWasm, sumWasm } from './reduce.js';
import { captureBuiltin, type KernelImpl } from './wasm_scope.js';
import { enableWasmThreads, wantedWasmThreads } from './wasm_threads.js';

export { builtinKernel } from './wasm_scope.js';
export { wantedWasmThreads, MAX_WASM_THREADS } from './wasm_threads.js';

/** Marker on kernel functions this module registers. */
const MIXUP = Symbol.for('mixup.wasmTrainingKernel');

function isOurs(name: string): boolean {
  const k = tf.getKernel(name, 'wasm');
  return k !== undefined && (k.kernelFunc as unknown as Record<symbol, unknown>)[MIXUP] === true;
}

function register(name: string, impl: KernelImpl, replace: boolean): void {
  if (isOurs(name)) return;
  const builtin = captureBuiltin(name);
  if (builtin && !replace) return;
  if (builtin) tf.unregisterKernel(name, 'wasm');
  const kernelFunc = impl as unknown as tf.KernelFunc;
  (kernelFunc as unknown as Record<symbol, unknown>)[MIXUP] = true;
  const config: tf.KernelConfig = { kernelName: name, backendName: 'wasm', kernelFunc };
  // The built-in kernel's setup (its cwrap of the C++ function) still has to run when the
  // backend initialises after this call, so that the fallback path can call it.
  if (builtin?.setupFunc) config.setupFunc = builtin.setupFunc;
  tf.registerKernel(config);
}

/** Names of the kernels {@link registerWasmTrainingKernels} registers for 'wasm'. */
export const WASM_TRAINING_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Sum', 'Mean', 'Multiply', 'Add', 'Sub', 'Identity'] as const;

/**
 * Registers the project's wasm training kernels (idempotent): Conv2DBackpropFilter (missing in
 * tfjs-backend-wasm 4.22), and faster Conv2DBackpropInput, Sum, Mean, Multiply, Add, Sub and a copy-free Identity
 * (falling back to the built-in kernels for the cases they do not cover). When called before the wasm backend is
 * initialised, also makes it start multi-threaded (./wasm_threads.ts) with `threads` threads
 * (default {@link wantedWasmThreads}: `MIXUP_WASM_THREADS`, else 1 = the single-threaded build).
 * Call it after `@tensorflow/tfjs-backend-wasm` is loaded (its kernels must be registered first so
 * the built-in ones are kept for fallback and benchmarks), before `tf.setBackend('wasm')`.
 * @returns false (and does nothing) when the wasm package's kernels are not registered yet.
 * @throws Error when `MIXUP_WASM_THREADS` is set but not a positive integer.
 */
export function registerWasmTrainingKernels(opts: { threads?: number } = {}): boolean {
  if (!tf.getKernel('Conv2D', 'wasm')) return false;
  register('Conv2DBackpropFilter', conv2DBackpropFilterWasm, false);
  register('Conv2DBackpropInput', conv2DBackpropInputWasm, true);
  register('Sum', sumWasm, true);
  register('Mean', meanWasm, true);
  register('Multiply', multiplyWasm, true);
  register('Add', addWasm, true);
  register('Sub', subWasm, true);
  register('Identity', identityWasm, true);
  enableWasmThreads(opts.threads ?? wantedWasmThreads());
  return true;
}
