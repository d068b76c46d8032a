/**
 * MXNet's image record: the payload of one RecordIO record as `im2rec` / `mx.recordio.pack`
 * write it (mxnet python/mxnet/recordio.py, `IRHeader`): a 24-byte little-endian header
 * (uint32 flag, float32 label, uint64 id, uint64 id2); when flag > 0, `flag` float32 labels follow
 * and the header's label is unused; then the encoded image.
 */
import { UserError } from '../errors.js';

/** Size of the fixed image-record header. */
export const IMAGE_RECORD_HEADER_BYTES = 24;

/** A parsed image record. */
export interface ImageRecord {
  /** Number of extra labels (0: the header's single label). */
  flag: number;
  /** The record's labels: one (flag 0) or `flag` of them. */
  labels: number[];
  id: bigint;
  id2: bigint;
  /** The encoded image bytes (a view into the payload). */
  image: Uint8Array;
}

/**
 * Parses an image record payload.
 * @param payload the record's bytes.
 * @param where names the record in errors, e.g. `train.rec: record 12 at byte offset 4096`.
 * @throws UserError when the payload is shorter than its header says.
 */
export function parseImageRecord(payload: Uint8Array, where: string): ImageRecord {
  if (payload.length < IMAGE_RECORD_HEADER_BYTES) {
    throw new UserError(`${where}: ${payload.length} bytes, shorter than the 24-byte image record header`);
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flag = dv.getUint32(0, true);
  const id = dv.getBigUint64(8, true);
  const id2 = dv.getBigUint64(16, true);
  let labels: number[];
  let start = IMAGE_RECORD_HEADER_BYTES;
  if (flag > 0) {
    if (payload.length < start + 4 * flag) {
      throw new UserError(`${where}: header says ${flag} labels follow, but the record holds only ${payload.length - start} more bytes`);
    }
    labels = [];
    for (let i = 0; i < flag; i++) labels.push(dv.getFloat32(start + 4 * i, true));
    start += 4 * flag;
  } else {
    labels = [dv.getFloat32(4, true)];
  }
  return { flag, labels, id, id2, image: payload.subarray(start) };
}

/**
 * Builds an image record payload (as `mx.recordio.pack`), for test fixtures and tools.
 * @param labels one label (written into the header, flag 0) or several (flag = count).
 */
export function encodeImageRecord(labels: number | number[], id: number | bigint, image: Uint8Array, id2: number | bigint = 0): Buffer {
  const many = Array.isArray(labels);
  const extra = many ? labels.length : 0;
  const head = Buffer.alloc(IMAGE_RECORD_HEADER_BYTES + 4 * extra);
  head.writeUInt32LE(extra, 0);
  head.writeFloatLE(many ? 0 : labels, 4);
  head.writeBigUInt64LE(BigInt(id), 8);
  head.writeBigUInt64LE(BigInt(id2), 16);
  if (many) labels.forEach((l, i) => head.writeFloatLE(l, IMAGE_RECORD_HEADER_BYTES + 4 * i));
  return Buffer.concat([head, Buffer.from(image)]);
}
