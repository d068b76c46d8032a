/**
 * Decoding an encoded image (JPEG via jpeg-js, PNG via pngjs, or a raw CIFAR payload) into RGB
 * pixels. The format is detected from the bytes, never from a file name.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError, firstLine } from '../errors.js';

/** A decoded image: `[H,W,3]` uint8 RGB, row-major (HWC). */
export interface RgbImage {
  data: Uint8Array;
  height: number;
  width: number;
}

/** Encodings {@link detectEncoding} recognises. */
export type ImageEncoding = 'jpeg' | 'png' | 'raw' | 'unknown';

/** Bytes of a raw CIFAR image: 3 planes (R, G, B) of 32×32. */
export const RAW_CIFAR_BYTES = 3 * 32 * 32;

/** The encoding of `bytes`, from its signature (JPEG SOI `ff d8 ff`, PNG `89 50 4e 47`, or 3,072 bytes raw). */
export function detectEncoding(bytes: Uint8Array): ImageEncoding {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length === RAW_CIFAR_BYTES) return 'raw';
  return 'unknown';
}

/**
 * Converts CIFAR planes (1,024 R, then G, then B bytes, each 32×32 row-major) to HWC RGB.
 * @param planes `[3,32,32]` uint8 (CHW).
 * @param out `[32,32,3]` uint8 (HWC), written in place.
 */
export function planesToHwc(planes: Uint8Array, out: Uint8Array, side = 32): Uint8Array {
  const n = side * side;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[j] = planes[i]!;
    out[j + 1] = planes[n + i]!;
    out[j + 2] = planes[2 * n + i]!;
  }
  return out;
}

/**
 * Decodes an encoded image to RGB. Grayscale becomes R=G=B; an alpha channel is dropped (as
 * OpenCV's `imdecode(..., IMREAD_COLOR)` in MXNet's ImageRecordIter does); CMYK JPEGs are converted.
 * @param bytes JPEG, PNG, or a raw 3,072-byte CIFAR payload (3×32×32 planes).
 * @param where names the record in errors, e.g. `train.rec: record 7 at byte offset 9120`.
 * @throws UserError when the bytes are not a decodable image.
 */
export function decodeImage(bytes: Uint8Array, where: string): RgbImage {
  const enc = detectEncoding(bytes);
  try {
    if (enc === 'jpeg') {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxMemoryUsageInMB: 64 });
      return { data: img.data, height: img.height, width: img.width };
    }
    if (enc === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const n = png.width * png.height;
      const rgb = new Uint8Array(n * 3);
      const src = png.data; // always RGBA 8-bit after pngjs' normalisation
      for (let i = 0, j = 0; i < n * 4; i += 4, j += 3) {
        rgb[j] = src[i]!;
        rgb[j + 1] = src[i + 1]!;
        rgb[j + 2] = src[i + 2]!;
      }
      return { data: rgb, height: png.height, width: png.width };
    }
    if (enc === 'raw') return { data: planesToHwc(bytes, new Uint8Array(RAW_CIFAR_BYTES)), height: 32, width: 32 };
  } catch (e) {
    throw new UserError(`${where}: undecodable ${enc.toUpperCase()} image (${firstLine(e)})`);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new UserError(`${where}: undecodable image: ${bytes.length} bytes starting ${head || '(none)'}, neither JPEG, PNG nor a raw 3,072-byte CIFAR image`);
}
