/// <reference types="@webgpu/types" />
/**
 * The static engine's framework: buffers made once (an arena that destroys them all), flat buffers
 * of named 256-byte-aligned ranges (parameters, gradients, momentum), pipelines made once per
 * distinct WGSL source, and programs: recorded lists of (pipeline, bind group, workgroups) whose bind
 * groups are made when recorded and which are replayed into one compute pass per step.
 *
 * Nothing here creates a GPU object after recording: {@link Program.encode} only sets pipelines and
 * bind groups and dispatches.
 */
import { STORAGE_OFFSET_ALIGNMENT, type BindingKind, type Kernel } from './kernel.js';
import { BufferUsage } from './device.js';
import type { DispatchCost, KernelCost } from './cost.js';

/** A binding: a whole buffer, or a range of one (offset and size in bytes). */
export interface Slice {
  buffer: GPUBuffer;
  /** Byte offset, a multiple of 256. */
  offset: number;
  /** Bytes. */
  size: number;
}

/** Floats per 256-byte alignment unit. */
export const ALIGN_FLOATS = STORAGE_OFFSET_ALIGNMENT / 4;

/** `n` rounded up to a multiple of {@link ALIGN_FLOATS} (at least one unit). */
export function alignFloats(n: number): number {
  return Math.max(ALIGN_FLOATS, Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS);
}

/** Named ranges of a flat float buffer, each starting at a 256-byte boundary. */
export class FlatLayout {
  /** name → [offset, length] in floats. */
  readonly ranges = new Map<string, [number, number]>();
  /** Total floats, padding included. */
  readonly floats: number;

  /** @param entries names and lengths (floats), laid out in this order. */
  constructor(entries: readonly { name: string; floats: number }[]) {
    let at = 0;
    for (const e of entries) {
      if (this.ranges.has(e.name)) throw new Error(`FlatLayout: ${e.name} twice`);
      this.ranges.set(e.name, [at, e.floats]);
      at += alignFloats(e.floats);
    }
    this.floats = Math.max(at, ALIGN_FLOATS);
  }

  /** [offset, length] in floats of a name. @throws Error for an unknown name. */
  range(name: string): [number, number] {
    const r = this.ranges.get(name);
    if (!r) throw new Error(`FlatLayout: no range ${name}`);
    return r;
  }

  /** The binding of a name's range in a buffer of this layout. */
  slice(buffer: GPUBuffer, name: string): Slice {
    const [o, n] = this.range(name);
    return { buffer, offset: o * 4, size: n * 4 };
  }
}

/** Every buffer of an engine, created here and destroyed together. */
export class Arena {
  private readonly buffers: GPUBuffer[] = [];
  /** Bytes allocated so far. */
  bytes = 0;

  constructor(readonly device: GPUDevice) {}

  /**
   * A zero-initialised storage buffer (also copy source and destination) of `floats` 4-byte values.
   * @param usage extra usage flags.
   */
  storage(label: string, floats: number, usage = 0): GPUBuffer {
    const size = Math.max(16, Math.ceil((floats * 4) / 16) * 16);
    const b = this.device.createBuffer({ label, size, usage: BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC | usage });
    this.buffers.push(b);
    this.bytes += size;
    return b;
  }

  /** A mappable buffer for reading results back, of `bytes` bytes. */
  readback(label: string, bytes: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const b = this.device.createBuffer({ label, size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.buffers.push(b);
    this.bytes += size;
    return b;
  }

  /** Destroys every buffer. */
  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}

/** Pipelines (and their layouts) made once per distinct WGSL source. */
export class Pipelines {
  private readonly cache = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  constructor(readonly device: GPUDevice) {}

  /** The pipeline of a kernel, compiled on first use with an explicit layout from `kernel.bindings`. */
  get(kernel: Kernel): { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } {
    const key = `${kernel.bindings.join(',')}\n${kernel.code}`;
    let p = this.cache.get(key);
    if (!p) {
      const type = (k: BindingKind): GPUBufferBindingType => (k === 'read' ? 'read-only-storage' : k === 'uniform' ? 'uniform' : 'storage');
      const layout = this.device.createBindGroupLayout({
        label: kernel.label,
        entries: kernel.bindings.map((k, i) => ({ binding: i, visibility: 0x4 /* COMPUTE */, buffer: { type: type(k) } })),
      });
      const module = this.device.createShaderModule({ label: kernel.label, code: kernel.code });
      const pipeline = this.device.createComputePipeline({
        label: kernel.label,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
      p = { pipeline, layout };
      this.cache.set(key, p);
    }
    return p;
  }

  /** Distinct pipelines compiled. */
  get size(): number {
    return this.cache.size;
  }
}

/** One recorded dispatch. */
interface Op {
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  stage: string;
  cost: KernelCost;
}

/** A recorded list of dispatches, replayed in order into a compute pass. */
export class Program {
  private readonly ops: Op[] = [];
  /** The part of the network the next dispatches belong to (`stem`, `stage1`, …), for the cost report. */
  stage = '';
  constructor(
    readonly label: string,
    private readonly pipelines: Pipelines,
  ) {}

  /**
   * Records a dispatch of `kernel` with its bindings (buffers or slices, in `kernel.bindings` order);
   * makes the bind group now.
   * @throws Error when the number of bindings differs from the kernel's.
   */
  add(kernel: Kernel, bindings: readonly (GPUBuffer | Slice)[]): void {
    if (bindings.length !== kernel.bindings.length) {
      throw new Error(`${kernel.label}: ${bindings.length} bindings for ${kernel.bindings.length}`);
    }
    const { pipeline, layout } = this.pipelines.get(kernel);
    const entries = bindings.map((b, i) => ({
      binding: i,
      resource: 'buffer' in b ? { buffer: b.buffer, offset: b.offset, size: b.size } : { buffer: b },
    }));
    const bindGroup = this.pipelines.device.createBindGroup({ label: kernel.label, layout, entries });
    // Without a cost from the kernel: every read binding read once, every read_write one written once.
    const sum = (kind: BindingKind) => bindings.reduce((a, b, i) => a + (kernel.bindings[i] === kind ? b.size : 0), 0);
    const cost: KernelCost = kernel.cost ?? { class: 'other', flops: 0, usefulFlops: 0, read: sum('read'), written: sum('read_write'), requested: sum('read') };
    this.ops.push({ label: kernel.label, pipeline, bindGroup, workgroups: kernel.workgroups, stage: this.stage, cost });
  }

  /** Every dispatch's stage, workgroups and modelled cost (cost.ts), in order. */
  costs(): DispatchCost[] {
    return this.ops.map((o) => ({ label: o.label, stage: o.stage, workgroups: o.workgroups[0] * o.workgroups[1] * o.workgroups[2], cost: o.cost }));
  }

  /** Dispatches recorded. */
  get dispatches(): number {
    return this.ops.length;
  }

  /** Labels of the recorded dispatches, in order (for tests and reports). */
  labels(): string[] {
    return this.ops.map((o) => o.label);
  }

  /**
   * Encodes every dispatch in a compute pass of its own that writes timestamps `2i` and `2i + 1` of
   * `querySet` at its beginning and end (profile.ts; needs the `timestamp-query` feature).
   */
  encodeTimed(encoder: GPUCommandEncoder, querySet: GPUQuerySet): void {
    this.ops.forEach((op, i) => {
      const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
      pass.setPipeline(op.pipeline);
      pass.setBindGroup(0, op.bindGroup);
      pass.dispatchWorkgroups(op.workgroups[0], op.workgroups[1], op.workgroups[2]);
      pass.end();
    });
  }

  /** Replays every dispatch into `pass` (setPipeline only when it changes). */
  encode(pass: GPUComputePassEncoder): void {
    let last: GPUComputePipeline | null = null;
    for (const op of this.ops) {
      if (op.pipeline !== last) pass.setPipeline(op.pipeline);
      last = op.pipeline;
      pass.setBindGroup(0, op.bindGroup);
      pass.dispatchWorkgroups(op.workgroups[0], op.workgroups[1], op.workgroups[2]);
    }
  }
}

/**
 * Encodes `program` as one compute pass in one command encoder, then optional copies, and submits.
 * @param copies buffer-to-buffer copies after the pass (e.g. results into a readback buffer).
 */
export function submit(device: GPUDevice, program: Program, copies: readonly [GPUBuffer, number, GPUBuffer, number, number][] = []): void {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  program.encode(pass);
  pass.end();
  for (const [src, so, dst, dO, size] of copies) encoder.copyBufferToBuffer(src, so, dst, dO, size);
  device.queue.submit([encoder.finish()]);
}
