/**
 * Small synthetic CIFAR data files for tests (and demos): deterministic images and labels written
 * as MXNet RecordIO (JPEG, PNG or raw records, optional `.idx`) or as CIFAR binary batches. No real
 * data is needed; every test builds what it reads in a temp dir.
 */
import { writeFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { encodeRecordIO } from './recordio.js';
import { encodeImageRecord } from './imagerecord.js';

/** A synthetic 32×32 RGB image: `[32,32,3]` uint8 HWC. */
export function syntheticImage(k: number): Uint8Array {
  const px = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      const o = (y * 32 + x) * 3;
      px[o] = (x * 8 + k * 29) & 255;
      px[o + 1] = (y * 8 + k * 53) & 255;
      px[o + 2] = ((x + y) * 4 + k * 97) & 255;
    }
  }
  return px;
}

/** `[32,32,3]` HWC → CIFAR planes `[3,32,32]` (R, then G, then B). */
export function hwcToPlanes(px: Uint8Array): Uint8Array {
  const out = new Uint8Array(3072);
  for (let i = 0; i < 1024; i++) {
    out[i] = px[i * 3]!;
    out[1024 + i] = px[i * 3 + 1]!;
    out[2048 + i] = px[i * 3 + 2]!;
  }
  return out;
}

/** PNG bytes of an RGB image (colorType 2). */
export function encodePng(px: Uint8Array, w = 32, h = 32): Buffer {
  const png = new PNG({ width: w, height: h, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(px);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/** JPEG bytes of an RGB image (jpeg-js, given quality). */
export function encodeJpeg(px: Uint8Array, quality = 95, w = 32, h = 32): Buffer {
  const rgba = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    rgba[i * 4] = px[i * 3]!;
    rgba[i * 4 + 1] = px[i * 3 + 1]!;
    rgba[i * 4 + 2] = px[i * 3 + 2]!;
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width: w, height: h }, quality).data as Buffer;
}

/** One record to write: label(s) and encoded image bytes. */
export interface FixtureRecord {
  label: number | number[];
  image: Uint8Array;
  id?: number;
}

/**
 * Writes a RecordIO file of image records, and its `.idx` (`id<TAB>offset` lines) when `idx` is set.
 * @returns the byte offset of each record.
 */
export function writeRecFile(path: string, records: FixtureRecord[], idx = false): number[] {
  const offsets: number[] = [];
  const parts: Buffer[] = [];
  let pos = 0;
  records.forEach((r, i) => {
    const bytes = encodeRecordIO([encodeImageRecord(r.label, r.id ?? i, r.image)]);
    offsets.push(pos);
    pos += bytes.length;
    parts.push(bytes);
  });
  writeFileSync(path, Buffer.concat(parts));
  if (idx) writeFileSync(path.replace(/\.rec$/, '') + '.idx', offsets.map((o, i) => `${records[i]!.id ?? i}\t${o}\n`).join(''));
  return offsets;
}

/** Writes a CIFAR-10 binary batch: per record 1 label byte + 3,072 plane bytes. */
export function writeBinFile(path: string, images: Uint8Array[], labels: number[]): void {
  const buf = Buffer.alloc(images.length * 3073);
  images.forEach((px, i) => {
    buf[i * 3073] = labels[i]!;
    buf.set(hwcToPlanes(px), i * 3073 + 1);
  });
  writeFileSync(path, buf);
}
