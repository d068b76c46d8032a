/**
 * Whether a run's steps fit the active backend's memory, checked before any data is read or any
 * tensor made: the estimate of src/model/memory.ts against what the backend can hold. Without the
 * check, a batch too large for wasm ends in emscripten's `Aborted()` (or `memory access out of
 * bounds`) partway through the first step.
 *
 * Limits known:
 * - wasm: the heap's maximum, {@link WASM_HEAP_MAX}, the same for the SIMD and threaded builds.
 * - webgpu: the largest buffer a kernel may bind, the device's `maxStorageBufferBindingSize` (and
 *   `maxBufferSize`), against the largest single tensor (one feature map of the whole batch). WebGPU
 *   does not say how much memory the GPU has, so the total is not checked.
 * - cpu, tensorflow, tensorflow-gpu: none checked (JavaScript / libtensorflow allocate from the
 *   system, and an allocation that fails there is reported by them).
 */
import * as tf from '@tensorflow/tfjs';
import type { Config, ModelArch } from '../config/schema.js';
import { UserError } from '../errors.js';
import { bytesText } from '../format.js';
import { largestBatch, networkSizeOf, stepBytes, WASM_MEMORY_COST, wasmMemoryCost, type MemoryCost, type MemoryUse, type NetworkSize } from '../model/memory.js';
import { networkSpecOf } from '../model/spec.js';

/**
 * The wasm heap's hard limit in bytes: tfjs-backend-wasm 4.22's emscripten glue
 * (dist/tf-backend-wasm.node.js, `getHeapMax()`) returns 4294901760, the wasm32 address space of
 * 65536 pages of 64 KiB less one page; `_emscripten_resize_heap` refuses to grow past it, and the
 * allocation that needed more aborts.
 */
export const WASM_HEAP_MAX = 4294901760;

/** What a backend can hold: a total (wasm's heap) or a per-buffer limit (webgpu). */
export interface MemoryLimit {
  bytes: number;
  /** The estimate's constants for a total (default {@link WASM_MEMORY_COST}). */
  cost?: MemoryCost;
  /** True when `bytes` limits one tensor rather than all of them together. */
  perBuffer: boolean;
  /** For messages, e.g. `the wasm backend's heap limit (4.0 GiB)`. */
  what: string;
}

/**
 * The memory limit of the active tfjs backend `name`, or null when none is known (see the module comment).
 * @param arch `model.arch`, which picks wasm's estimate constants (model/memory.ts wasmMemoryCost).
 */
export function backendMemoryLimit(name: string = tf.getBackend(), arch?: ModelArch): MemoryLimit | null {
  if (name === 'wasm') return { bytes: WASM_HEAP_MAX, cost: wasmMemoryCost(arch), perBuffer: false, what: `the wasm backend's heap limit (${bytesText(WASM_HEAP_MAX)}, tfjs-backend-wasm's maximum)` };
  if (name === 'webgpu') {
    const limits = (tf.backend() as unknown as { device?: { limits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number } } }).device?.limits;
    const sizes = [limits?.maxStorageBufferBindingSize, limits?.maxBufferSize].filter((x): x is number => typeof x === 'number' && x > 0);
    if (sizes.length === 0) return null;
    const bytes = Math.min(...sizes);
    return { bytes, perBuffer: true, what: `the largest buffer the webgpu device binds (maxStorageBufferBindingSize, ${bytesText(bytes)})` };
  }
  return null;
}

/** One check: a batch size of a config key, what it is used for, and how to change it. */
interface BatchUse {
  key: string;
  batch: number;
  use: MemoryUse;
  /** `a training step`, `an evaluation batch`. */
  what: string;
  /** Batches must be a multiple of this (train.shards for training). */
  multipleOf: number;
  /** How to set another value (`--batch-size N`), or null when the command offers none. */
  flag: ((n: number) => string) | null;
}

/**
 * The one-line refusal for a batch that does not fit `limit`, or null when it fits.
 * @param size the network's sizes ({@link networkSizeOf}).
 * @param label names the network and input (`ResNet-50 on 28×28 crops`).
 */
export function memoryRefusal(size: NetworkSize, u: BatchUse, limit: MemoryLimit, label: string): string | null {
  if (limit.perBuffer) {
    const bytes = 4 * u.batch * size.largestMap;
    if (bytes <= limit.bytes) return null;
    const fit = Math.floor(limit.bytes / (4 * size.largestMap));
    const best = fit - (fit % u.multipleOf);
    return `${u.key} ${u.batch}: the largest tensor of ${u.what} of ${label} holds ${bytesText(bytes)}, more than ${limit.what}; the largest batch that fits is ${best}${u.flag && best > 0 ? ` (${u.flag(best)})` : ''}`;
  }
  const bytes = stepBytes(size, u.batch, u.use, limit.cost);
  if (bytes <= limit.bytes) return null;
  const best = largestBatch(size, limit.bytes, u.use, u.multipleOf, limit.cost);
  return (
    `${u.key} ${u.batch}: ${u.what} of ${label} needs about ${bytesText(bytes)}, more than ${limit.what}; ` +
    `the largest batch that fits is ${best}${u.flag && best > 0 ? ` (${u.flag(best)})` : ''}, or use a GPU backend (--backend webgpu or tensorflow-gpu)`
  );
}

/**
 * Refuses, before anything is allocated, a run whose training step (`train.batchSize`) or
 * evaluation batch (`train.evalBatchSize`) would not fit the active backend's memory.
 * @param purpose `train`: a training step and the evaluation after each epoch; `test`: `mixup test`'s
 *   evaluation (with `--attack` its batches also back-propagate to the images, which needs more
 *   than the inference estimate checked here: a lower bound, not calibrated for attacks).
 * @param backend the active tfjs backend (default `tf.getBackend()`).
 * @throws UserError (exit 2), one line with the estimate, the limit and the largest batch that fits, e.g.
 *   `train.batchSize 512: a training step of ResNet-50 on 28×28 crops needs about 10.0 GiB, more than
 *   the wasm backend's heap limit (4.0 GiB, tfjs-backend-wasm's maximum); the largest batch that fits
 *   is 204 (--batch-size 204), or use a GPU backend (--backend webgpu or tensorflow-gpu)`.
 */
export function assertMemoryFits(cfg: Config, purpose: 'train' | 'test', backend: string = tf.getBackend()): void {
  const limit = backendMemoryLimit(backend, cfg.model.arch);
  if (limit === null) return;
  const [, h, w] = cfg.data.imageShape as [number, number, number];
  const size = networkSizeOf(cfg.model, h, w);
  const label = `${networkSpecOf(cfg.model).label} on ${h}×${w} crops`;
  const uses: BatchUse[] = [];
  if (purpose === 'train') {
    uses.push({ key: 'train.batchSize', batch: cfg.train.batchSize, use: 'train', what: 'a training step', multipleOf: cfg.train.shards, flag: (n) => `--batch-size ${n}` });
  }
  const flag = purpose === 'train' ? (n: number) => `--set train.evalBatchSize=${n}` : null;
  uses.push({ key: 'train.evalBatchSize', batch: cfg.train.evalBatchSize, use: 'inference', what: 'an evaluation batch', multipleOf: 1, flag });
  for (const u of uses) {
    const refusal = memoryRefusal(size, u, limit, label);
    if (refusal !== null) throw new UserError(refusal);
  }
}
