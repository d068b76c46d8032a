/// <reference types="@webgpu/types" />
/**
 * Reading results back from the device: mapping a MAP_READ buffer, and the readback slots of queued
 * inference logits, so that batch i+1 runs on the device while JavaScript scores batch i. Every
 * buffer is made once, at build (by the engine's {@link Arena}); nothing here creates one later.
 */
import { MAP_READ } from './device.js';
import type { Arena } from './program.js';

/**
 * Maps the first `bytes` of a MAP_READ buffer, copies them out and unmaps it.
 * dawn.node's pending map does not keep Node's event loop alive: a timer does, until it resolves.
 * @returns the bytes as float32 values.
 */
export async function mapRead(buf: GPUBuffer, bytes: number): Promise<Float32Array> {
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await buf.mapAsync(MAP_READ, 0, bytes);
  } finally {
    clearInterval(keepAlive);
  }
  try {
    return new Float32Array(buf.getMappedRange(0, bytes).slice(0));
  } finally {
    buf.unmap();
  }
}

/** Readback buffers of queued inference logits, each in use from {@link take} until read or released. */
export class LogitSlots {
  private readonly buffers: GPUBuffer[] = [];
  private readonly busy: boolean[] = [];

  /**
   * @param count slots (queued batches that may be unread at once); 0 for an engine without inference.
   * @param bytes size of one slot: evalBatch · numClasses · 4.
   */
  constructor(arena: Arena, count: number, bytes: number) {
    for (let i = 0; i < count; i++) {
      this.buffers.push(arena.readback(`logits${i}`, bytes));
      this.busy.push(false);
    }
  }

  /**
   * Claims a free slot.
   * @returns the slot and its buffer, to copy the logits into.
   * @throws RangeError when every slot is queued and unread.
   */
  take(): { slot: number; buffer: GPUBuffer } {
    const slot = this.busy.indexOf(false);
    if (slot < 0) throw new RangeError(`LogitSlots: ${this.buffers.length} inference batches queued and unread`);
    this.busy[slot] = true;
    return { slot, buffer: this.buffers[slot]! };
  }

  /**
   * Reads the first `bytes` of a taken slot and frees it.
   * @throws RangeError when the slot is not taken.
   */
  async read(slot: number, bytes: number): Promise<Float32Array> {
    const buf = this.buffers[slot];
    if (!buf || !this.busy[slot]) throw new RangeError(`LogitSlots: slot ${slot} is not queued`);
    try {
      return await mapRead(buf, bytes);
    } finally {
      this.busy[slot] = false;
    }
  }

  /** Frees a slot without reading it. */
  release(slot: number): void {
    this.busy[slot] = false;
  }
}
