/**
 * What a WGSL kernel of the static WebGPU engine is: a pure description, made once at build from
 * static shapes (the network's shapes are the same every step), compiled into a pipeline once, bound
 * once and replayed every step. No kernel is generated, compiled or bound inside the training loop.
 */
import type { KernelCost } from './cost.js';

/** How a kernel sees one binding of `@group(0)`: storage read-only, storage read-write, or uniform. */
export type BindingKind = 'read' | 'read_write' | 'uniform';

/**
 * One compute kernel.
 *
 * The WGSL in `code` has its entry point named `main`, declares `@group(0) @binding(i)` for every
 * entry of `bindings` in order (storage buffers as `array<f32>`/`array<u32>`/`array<i32>`, bounds in
 * the code are static), and is dispatched as `dispatchWorkgroups(...workgroups)`. At most 8 storage
 * bindings (WebGPU's default `maxStorageBuffersPerShaderStage`), workgroups of at most 256
 * invocations and 16 KiB of workgroup memory, each dimension of `workgroups` at most 65,535.
 */
export interface Kernel {
  /** Human-readable, e.g. `conv2d_fwd 3x3/s1 16->16 28x28 B128`; also the pipeline's label. */
  label: string;
  /** WGSL source. */
  code: string;
  /** `@group(0) @binding(i)` kinds, in binding order; the caller binds buffers (or ranges of one) in the same order. */
  bindings: BindingKind[];
  /** Workgroups of the dispatch, `[x, y, z]`. */
  workgroups: [number, number, number];
  /**
   * Operations and global-memory bytes of one dispatch, from the kernel's own indexing (cost.ts).
   * Absent: a program counts every read binding read once and every read_write binding written once.
   */
  cost?: KernelCost;
}

/** Largest size of one dimension of a dispatch (WebGPU's default `maxComputeWorkgroupsPerDimension`). */
export const MAX_WORKGROUPS_PER_DIMENSION = 65535;

/** Alignment of a storage-buffer binding's offset (WebGPU's default `minStorageBufferOffsetAlignment`), in bytes. */
export const STORAGE_OFFSET_ALIGNMENT = 256;
