/**
 * What backend loading (./backend.ts) needs from the outside world, {@link BackendEnv}, and the
 * real machine's, {@link nodeBackendEnv}: packages, CUDA devices (nvidia-smi), Dawn and Vulkan.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type { AdapterInfo } from '../dawn.js';
import { hardwareGpuPossible } from '../gpu-devices.js';
import { hasVulkanLoader, useLocalLavapipe, vulkanDrivers } from '../vulkan.js';

const require = createRequire(import.meta.url);

/**
 * What backend loading needs from the outside world; tests replace it to simulate machines
 * with tfjs-node installed or a CUDA device present.
 */
export interface BackendEnv {
  /** `require.resolve`: throws when the package is not installed. */
  resolve(id: string): string;
  /** `require`: loads a package (registers its tfjs backend as a side effect). */
  load(id: string): unknown;
  /**
   * Name of CUDA device `gpu` (nvidia-smi's index), or of the first one `CUDA_VISIBLE_DEVICES`
   * allows when `gpu` is undefined; null when there is none.
   */
  cudaDevice(gpu?: number): string | null;
  /** `tf.setBackend` + `tf.ready`: resolves false when the backend fails to initialise. */
  activate(tfName: string): Promise<boolean>;
  /**
   * Before the wasm backend is activated: registers the project's wasm training kernels and asks
   * for `threads` XNNPACK threads. Optional; default `registerWasmTrainingKernels({ threads })`.
   */
  prepareWasm?(threads: number): void;
  /**
   * Threads the activated wasm backend runs, or null when unknown. Optional; default the wasm
   * package's `getThreadsCount()`.
   */
  wasmThreads?(): number | null;
  /**
   * After tensorflow-gpu is activated: tfjs-node's `isUsingGpuDevice` (true only when TensorFlow
   * lists a GPU device). Optional; default reads it from `tf.backend()`.
   */
  usingGpuDevice?(): boolean;
  /**
   * Sets up Dawn as `navigator.gpu` on adapter `gpu` (see ../dawn.ts `setUpDawn`), before
   * tfjs-backend-webgpu is loaded. Optional; default `setUpDawn`.
   * @throws WebgpuUnavailable saying why webgpu cannot run.
   */
  setUpWebgpu?(gpu?: number): Promise<AdapterInfo>;
  /** Undoes setUpWebgpu (Dawn would keep the process alive). Optional; default `releaseWebgpu`. */
  releaseWebgpu?(): void;
  /**
   * Whether a hardware GPU can be present, known without starting Dawn (./gpu-devices.ts); when
   * false, `auto` passes over webgpu unstarted (only a software adapter). Optional; absent: true.
   */
  hardwareGpu?(): boolean;
  /**
   * Whether webgpu could run on a software adapter, known without starting Dawn: the webgpu
   * package is installed and the Vulkan loader and a Vulkan driver are there (the project-local
   * lavapipe of scripts/setup-lavapipe.sh, or a driver manifest). `auto`, passing over webgpu for
   * want of a GPU, suggests `--backend webgpu` only then. Optional; absent: true.
   */
  softwareWebgpu?(): boolean;
}

/** Threads the wasm package says its backend runs, or null (not initialised). */
export function wasmPackageThreads(): number | null {
  try {
    const n = (require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number }).getThreadsCount();
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Name of CUDA device `gpu` as `nvidia-smi` numbers them, or (gpu undefined) of the first device
 * that `nvidia-smi` lists and `CUDA_VISIBLE_DEVICES` allows.
 */
function nvidiaSmiDevice(gpu?: number): string | null {
  let text: string;
  try {
    text = execFileSync('nvidia-smi', ['--query-gpu=index,name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
  const visible = gpu !== undefined ? String(gpu) : process.env['CUDA_VISIBLE_DEVICES'];
  const allowed = visible === undefined ? null : visible.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s*,\s*(.+?)\s*$/.exec(line);
    if (m && (allowed === null || allowed.includes(m[1]!))) return m[2]!;
  }
  return null;
}

/** The real machine. */
export const nodeBackendEnv: BackendEnv = {
  resolve: (id) => require.resolve(id),
  load: (id) => require(id),
  cudaDevice: nvidiaSmiDevice,
  hardwareGpu: hardwareGpuPossible,
  softwareWebgpu: () => {
    useLocalLavapipe();
    return hasVulkanLoader() && vulkanDrivers().length > 0;
  },
  async activate(tfName) {
    try {
      const ok = await tf.setBackend(tfName);
      if (ok) await tf.ready();
      return ok;
    } catch {
      return false;
    }
  },
};

/** Whether package `pkg` is installed (`env.resolve` finds it). */
export function installed(env: BackendEnv, pkg: string): boolean {
  try {
    env.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}
