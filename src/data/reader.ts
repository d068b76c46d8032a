/**
 * Reading one sample's decoded pixels from a {@link SourceSpec}, on the main thread or in a
 * worker thread, with an optional cache of decoded images in shared memory (uint8, 3,072 bytes per
 * CIFAR image: about 150 MB for the 50,000 training images) that every thread fills and reads.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors.js';
import { readRecordAt } from './recordio.js';
import { parseImageRecord } from './imagerecord.js';
import { decodeImage, planesToHwc, RAW_CIFAR_BYTES } from './decode.js';
import { pixelOffset, type SourceSpec } from './source.js';

/** Side of the images the pipeline takes (CIFAR). */
export const IMAGE_SIDE = 32;

/** Shared decoded-image cache: `pixels` holds N·3,072 bytes (HWC), `ready[i]` = 1 once image i is in. */
export interface CacheBuffers {
  pixels: SharedArrayBuffer;
  ready: SharedArrayBuffer;
}

/** Allocates a cache for `n` images. */
export function allocCache(n: number): CacheBuffers {
  return { pixels: new SharedArrayBuffer(n * RAW_CIFAR_BYTES), ready: new SharedArrayBuffer(n) };
}

/**
 * Reads samples of one source. Not thread-safe by itself: each thread makes its own reader (own
 * file descriptors and scratch), sharing only the cache.
 */
export class SampleReader {
  private fds = new Map<string, number>();
  private scratch = { buf: Buffer.alloc(1 << 16) };
  private planes = Buffer.alloc(RAW_CIFAR_BYTES);
  private own = new Uint8Array(RAW_CIFAR_BYTES);
  private readonly pixels: Uint8Array | null;
  private readonly ready: Uint8Array | null;
  private readonly memRecords: Uint8Array | null;

  constructor(
    private readonly spec: SourceSpec,
    cache: CacheBuffers | null,
  ) {
    this.pixels = cache ? new Uint8Array(cache.pixels) : null;
    this.ready = cache ? new Uint8Array(cache.ready) : null;
    this.memRecords = spec.kind === 'mem' ? new Uint8Array(spec.records) : null;
  }

  private fd(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      try {
        fd = openSync(path, 'r');
      } catch (e) {
        throw new UserError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      this.fds.set(path, fd);
    }
    return fd;
  }

  /**
   * The `[32,32,3]` uint8 RGB pixels of sample `i`: a view into the cache, or into a scratch buffer
   * that the next call overwrites.
   * @throws UserError naming the file and record when the image is undecodable or not 32×32.
   */
  read(i: number): Uint8Array {
    const ready = this.ready;
    if (ready && Atomics.load(ready, i) === 1) return this.pixels!.subarray(i * RAW_CIFAR_BYTES, (i + 1) * RAW_CIFAR_BYTES);
    const dst = this.pixels ? this.pixels.subarray(i * RAW_CIFAR_BYTES, (i + 1) * RAW_CIFAR_BYTES) : this.own;
    this.load(i, dst);
    if (ready) Atomics.store(ready, i, 1);
    return dst;
  }

  private load(i: number, dst: Uint8Array): void {
    const spec = this.spec;
    if (spec.kind === 'rec') {
      const loc = { offset: spec.offsets[i]!, span: spec.spans[i]! };
      const where = `${spec.path}: record ${i} at byte offset ${loc.offset}`;
      const payload = readRecordAt(this.fd(spec.path), spec.path, loc, this.scratch);
      const img = decodeImage(parseImageRecord(payload, where).image, where);
      if (img.height !== IMAGE_SIDE || img.width !== IMAGE_SIDE) {
        throw new UserError(`${where}: image is ${img.width}x${img.height}, expected 32x32 (CIFAR)`);
      }
      dst.set(img.data);
      return;
    }
    if (spec.kind === 'mem') {
      const start = i * spec.recordBytes + pixelOffset(spec.recordBytes);
      planesToHwc(this.memRecords!.subarray(start, start + RAW_CIFAR_BYTES), dst);
      return;
    }
    let k = i;
    for (const f of spec.files) {
      if (k < f.count) {
        const pos = k * spec.recordBytes + pixelOffset(spec.recordBytes);
        const n = readSync(this.fd(f.path), this.planes, 0, RAW_CIFAR_BYTES, pos);
        if (n !== RAW_CIFAR_BYTES) throw new UserError(`${f.path}: record ${k} at byte offset ${pos}: truncated (${n} of ${RAW_CIFAR_BYTES} pixel bytes)`);
        planesToHwc(this.planes, dst);
        return;
      }
      k -= f.count;
    }
    throw new Error(`sample ${i} out of range`);
  }

  /** Closes the files this reader opened. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
