/**
 * The user's choices for backend loading (./backend.ts): which GPU (`--gpu`, `MIXUP_GPU`) and how
 * many wasm threads (`wasmThreads`, `MIXUP_WASM_THREADS`).
 */
import { UserError, firstLine } from '../../errors.js';
import { wantedWasmThreads } from './kernels/index.js';

/** Options of backend selection. */
export interface BackendOptions {
  /**
   * XNNPACK threads for the wasm backend (config key `wasmThreads`, default 1); the environment
   * variable `MIXUP_WASM_THREADS` overrides it. Takes effect only when wasm is first initialised.
   */
  wasmThreads?: number;
  /**
   * Which GPU (0-based; config key `gpu`, `--gpu`; the environment variable `MIXUP_GPU` when this
   * is undefined): webgpu's Nth hardware adapter, tensorflow-gpu's CUDA device N (sets
   * `CUDA_VISIBLE_DEVICES=N`). Undefined: the default device.
   */
  gpu?: number;
}

/**
 * The GPU index to use: `options.gpu`, else `MIXUP_GPU` when set, else undefined.
 * @throws UserError when `MIXUP_GPU` is not a non-negative integer.
 */
export function requestedGpu(options: BackendOptions = {}, environ: NodeJS.ProcessEnv = process.env): number | undefined {
  if (options.gpu !== undefined) return options.gpu;
  const v = environ['MIXUP_GPU'];
  return v === undefined || v === '' ? undefined : parseGpuIndex(v, 'MIXUP_GPU');
}

/**
 * A GPU index as written by a user (`--gpu`, `MIXUP_GPU`).
 * @param source what to name in the error, e.g. `--gpu`.
 * @throws UserError when `value` is not a non-negative integer.
 */
export function parseGpuIndex(value: string, source: string): number {
  if (!/^\d+$/.test(value.trim())) throw new UserError(`${source}: expected a GPU index (0, 1, ...), got '${value}'`);
  return Number(value.trim());
}

/**
 * The wasm thread count to ask for: `MIXUP_WASM_THREADS` when set, else `options.wasmThreads`, else 1.
 * @throws UserError when `MIXUP_WASM_THREADS` is not a positive integer.
 */
export function requestedWasmThreads(options: BackendOptions = {}, environ: NodeJS.ProcessEnv = process.env): number {
  const v = environ['MIXUP_WASM_THREADS'];
  if (v !== undefined && v !== '') {
    try {
      return wantedWasmThreads(environ);
    } catch (e) {
      throw new UserError(firstLine(e));
    }
  }
  return options.wasmThreads ?? 1;
}
