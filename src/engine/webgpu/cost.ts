/**
 * A model of what a static-engine kernel asks of a GPU, computed by each kernel generator from its own
 * indexing (no GPU involved): floating-point operations executed, the structurally useful ones, and
 * global-memory bytes. Printed by `npm run bench:engine` per kernel class and per stage; these are
 * modelled figures, not measurements.
 *
 * Bytes are counted two ways:
 * - `read` / `written`: the distinct bytes of global memory a dispatch reads and writes (each element
 *   its indexing touches counted once, as if every re-read hit a cache): the DRAM traffic a perfect
 *   cache would leave, the figure a roofline's memory side uses;
 * - `requested`: the bytes its load instructions ask for (a GEMM's tile loads re-read an input once
 *   per tile along the other dimension; im2col reads a pixel once per tap), the L1/L2 traffic.
 */
/**
 * Kernel classes of the per-class breakdown. `conv_bwd`: a convolution's backward-data and
 * backward-filter GEMMs run as one dispatch (gemm_group.ts); its cost lists the two as `parts`
 * (classes conv_bwd_data and conv_bwd_filter), which the model table counts in their own classes,
 * while a measured time (profile.ts) can only be given to the dispatch as a whole.
 */
export type KernelClass = 'conv_fwd' | 'conv_bwd' | 'conv_bwd_data' | 'conv_bwd_filter' | 'bn' | 'other';
export const KERNEL_CLASSES: readonly KernelClass[] = ['conv_fwd', 'conv_bwd', 'conv_bwd_data', 'conv_bwd_filter', 'bn', 'other'];

/** What one dispatch costs (see the module comment); bytes and operations per dispatch. */
export interface KernelCost {
  class: KernelClass;
  /** Floating-point operations executed (an FMA is 2), zero products and tile padding included. */
  flops: number;
  /** Operations whose operands are not structural zeros (padding, stride holes, tile edges excluded). */
  usefulFlops: number;
  /** Distinct bytes read. */
  read: number;
  /** Distinct bytes written. */
  written: number;
  /** Bytes requested by load instructions (≥ read). */
  requested: number;
  /**
   * The sub-kernels of a dispatch that runs several (gemm_group.ts), each with its own workgroups and
   * cost; the dispatch's figures are their sums, except `read`, which counts a binding they share once.
   */
  parts?: KernelPart[];
}

/** One sub-kernel of a grouped dispatch ({@link KernelCost.parts}). */
export interface KernelPart {
  label: string;
  workgroups: number;
  cost: KernelCost;
}

/** The cost of an element-wise kernel: `flopsPer` operations per element, read/written floats. */
export function elementwiseCost(cls: KernelClass, elements: number, flopsPer: number, readFloats: number, writtenFloats: number): KernelCost {
  return { class: cls, flops: elements * flopsPer, usefulFlops: elements * flopsPer, read: readFloats * 4, written: writtenFloats * 4, requested: readFloats * 4 };
}

/** Streaming multiprocessors of the GPU the waves are counted on (an H100 SXM). */
export const MODEL_SMS = 132;

/** One dispatch of a program with its stage (`stem`, `stage1`…, `head`, `update`) and cost. */
export interface DispatchCost {
  label: string;
  stage: string;
  workgroups: number;
  cost: KernelCost;
}

/**
 * The dispatches with each grouped one ({@link KernelCost.parts}) replaced by its sub-kernels (same
 * stage), for the per-class model table and the wave count of every GEMM.
 */
export function withParts(ds: readonly DispatchCost[]): DispatchCost[] {
  return ds.flatMap((d) => (d.cost.parts ? d.cost.parts.map((p) => ({ label: p.label, stage: d.stage, workgroups: p.workgroups, cost: p.cost })) : [d]));
}

/** Sums of a group of dispatches. */
export interface CostTotals {
  dispatches: number;
  flops: number;
  usefulFlops: number;
  read: number;
  written: number;
  requested: number;
  workgroups: number;
  /** Fewest waves (workgroups / {@link MODEL_SMS}) of any dispatch in the group. */
  minWaves: number;
}

/** The totals of `ds`. */
export function totals(ds: readonly DispatchCost[]): CostTotals {
  const t: CostTotals = { dispatches: 0, flops: 0, usefulFlops: 0, read: 0, written: 0, requested: 0, workgroups: 0, minWaves: Infinity };
  for (const d of ds) {
    t.dispatches++;
    t.flops += d.cost.flops;
    t.usefulFlops += d.cost.usefulFlops;
    t.read += d.cost.read;
    t.written += d.cost.written;
    t.requested += d.cost.requested;
    t.workgroups += d.workgroups;
    t.minWaves = Math.min(t.minWaves, d.workgroups / MODEL_SMS);
  }
  return t;
}
