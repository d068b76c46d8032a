/**
 * Identity for the wasm backend without a copy. tfjs-backend-wasm 4.22's Identity allocates a new
 * buffer and copies the input into it; the cpu backend (and wasm's own Reshape) instead return the
 * input's data id with its reference count raised, which is safe because no kernel writes into an
 * input. Identity runs for every `tf.clone`, and the engine clones every tensor a `tf.customGrad`
 * function saves for its gradient (engine.ts `saveFunc`): the BatchNorm of src/engine/tfjs/batchnorm.ts
 * saves its centred activation `[N,H,W,C]`, so a depth-50 training step copied ~50 activations
 * (measured: ~2% of a batch-128 step on one thread). String tensors go to the built-in kernel.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { builtinKernel } from './wasm_scope.js';

/** Identity: the input's data, shared (reference count + 1), same shape and dtype. */
export function identityWasm(args: { inputs: tf.NamedTensorInfoMap; backend: BackendWasm; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs['x']!;
  if (x.dtype === 'string') {
    const k = builtinKernel('Identity');
    if (!k) throw new Error('Identity on wasm: string tensors need the built-in kernel');
    return (k.kernelFunc as unknown as (a: typeof args) => tf.TensorInfo)(args);
  }
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}
