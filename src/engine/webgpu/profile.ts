/// <reference types="@webgpu/types" />
/**
 * Where a training step's device time goes (issue 24 item 7): with the adapter's `timestamp-query`
 * feature, one profiled step encodes every dispatch of the program in its own compute pass with a
 * timestamp at its beginning and end, and the per-dispatch durations are summed per kernel class and
 * per stage beside each dispatch's modelled FLOPs and bytes (cost.ts), giving achieved TFLOPS and GB/s.
 *
 * Diagnostic only: a profiler makes its query set and buffers when built (never inside the training
 * loop), and a profiled step computes exactly what an ordinary one does (only its pass boundaries
 * differ). Durations include the pass boundaries, so per-dispatch times of tiny kernels read high.
 */
import { KERNEL_CLASSES, type DispatchCost, type KernelClass } from './cost.js';
import { BufferUsage, MAP_READ } from './device.js';
import type { Program } from './program.js';

/** WebGPU's GPUBufferUsage.QUERY_RESOLVE. */
const QUERY_RESOLVE = 0x200;

/** Times the dispatches of one program, one profiled submission at a time. */
export class StepProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;
  private readonly count: number;

  /**
   * @param dispatches the program's dispatches (two timestamps each).
   * @throws Error when the device lacks the `timestamp-query` feature.
   */
  constructor(
    private readonly device: GPUDevice,
    dispatches: number,
  ) {
    if (!device.features.has('timestamp-query')) throw new Error('StepProfiler: the device has no timestamp-query feature');
    this.count = 2 * dispatches;
    this.querySet = device.createQuerySet({ type: 'timestamp', count: this.count });
    this.resolve = device.createBuffer({ size: 8 * this.count, usage: QUERY_RESOLVE | BufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ size: 8 * this.count, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  }

  /** Encodes and submits `program` with a timestamped pass per dispatch, then the timestamps' resolve. */
  submit(program: Program): void {
    if (2 * program.dispatches !== this.count) throw new Error(`StepProfiler: built for ${this.count / 2} dispatches, the program has ${program.dispatches}`);
    const encoder = this.device.createCommandEncoder();
    program.encodeTimed(encoder, this.querySet);
    encoder.resolveQuerySet(this.querySet, 0, this.count, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 8 * this.count);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Nanoseconds of each dispatch of the last {@link submit}, in program order. */
  async durations(): Promise<number[]> {
    await this.readback.mapAsync(MAP_READ);
    const t = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    const ns: number[] = [];
    for (let i = 0; i < this.count; i += 2) ns.push(t[i + 1]! >= t[i]! ? Number(t[i + 1]! - t[i]!) : 0);
    return ns;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}

/** Measured time of a group of dispatches with its modelled work. */
export interface TimedGroup {
  class: KernelClass | 'all';
  stage: string;
  dispatches: number;
  ms: number;
  /** Modelled FLOPs executed and distinct bytes (cost.ts) per measured second. */
  tflops: number;
  gbps: number;
}

/**
 * The per-class and per-stage sums of one profiled step: one group per (class, stage) present, one
 * per class over all stages, one per stage over all classes, and the step.
 * @param costs the program's dispatches ({@link Program.costs}); `ns` their durations.
 */
export function timeBreakdown(costs: readonly DispatchCost[], ns: readonly number[]): TimedGroup[] {
  if (costs.length !== ns.length) throw new Error(`timeBreakdown: ${costs.length} dispatches, ${ns.length} durations`);
  const group = (cls: KernelClass | 'all', stage: string, pick: (d: DispatchCost) => boolean): TimedGroup | null => {
    let n = 0;
    let t = 0;
    let flops = 0;
    let bytes = 0;
    costs.forEach((d, i) => {
      if (!pick(d)) return;
      n++;
      t += ns[i]!;
      flops += d.cost.flops;
      bytes += d.cost.read + d.cost.written;
    });
    if (n === 0) return null;
    const s = t * 1e-9;
    return { class: cls, stage, dispatches: n, ms: t * 1e-6, tflops: s > 0 ? flops / s / 1e12 : 0, gbps: s > 0 ? bytes / s / 1e9 : 0 };
  };
  const stages = [...new Set(costs.map((d) => d.stage))];
  const out: TimedGroup[] = [];
  for (const c of KERNEL_CLASSES) {
    for (const st of stages) {
      const g = group(c, st, (d) => d.cost.class === c && d.stage === st);
      if (g) out.push(g);
    }
    const g = group(c, 'all', (d) => d.cost.class === c);
    if (g) out.push(g);
  }
  for (const st of stages) out.push(group('all', st, (d) => d.stage === st)!);
  out.push(group('all', 'all', () => true)!);
  return out;
}
