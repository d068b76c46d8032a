/**
 * The safetensors format (huggingface/safetensors, docs "Format"): an unsigned little-endian 64-bit
 * header length N, N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, ...,
 * "__metadata__": {string: string}}` (optionally padded with spaces), then the tensors' raw
 * little-endian bytes. Offsets are relative to the first byte after the header; the tensors cover
 * that buffer exactly, without holes or overlaps.
 *
 * {@link encodeSafetensors} writes it; {@link decodeSafetensors} reads it back, checking the header
 * against those rules (the same checks as the reference implementation's `validate`).
 */
import type { ExportTensor } from './graph.js';

/** Bytes per value of the safetensors dtypes this module reads and writes. */
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** safetensors dtype of an exported tensor. */
const DTYPE_OF: Record<ExportTensor['dtype'], string> = { float32: 'F32', int64: 'I64' };
/** The header's JSON is padded with spaces to this many bytes (so every tensor starts 8-aligned). */
const HEADER_ALIGN = 8;
/** Largest header accepted when reading (the reference implementation's limit: 100 MB). */
const MAX_HEADER = 100_000_000;

/**
 * The bytes of a safetensors file.
 * @param tensors by name, stored in the map's order; little-endian (this platform's order, checked).
 * @param metadata string → string, stored as `__metadata__` (omitted when empty).
 * @throws RangeError on a big-endian platform, or a name `__metadata__`.
 */
export function encodeSafetensors(tensors: Map<string, ExportTensor>, metadata: Record<string, string> = {}): Uint8Array {
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new RangeError('encodeSafetensors: needs a little-endian platform');
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  let at = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new RangeError('encodeSafetensors: a tensor may not be named __metadata__');
    const bytes = t.values.byteLength;
    header[name] = { dtype: DTYPE_OF[t.dtype], shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / HEADER_ALIGN) * HEADER_ALIGN;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength), p);
    p += t.values.byteLength;
  }
  return out;
}

/** One tensor of a decoded safetensors file: its entry and its bytes. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
  /** The tensor's bytes (a view into the file). */
  bytes: Uint8Array;
}

/** A decoded safetensors file. */
export interface Safetensors {
  /** Header length N (bytes of JSON, padding included). */
  headerBytes: number;
  /** `__metadata__`, {} when absent. */
  metadata: Record<string, string>;
  /** Tensors in the header's order. */
  tensors: Map<string, SafetensorsEntry>;
}

/**
 * Reads and validates a safetensors file: the header length fits the file, the header is a JSON
 * object (starting with `{`, trailing spaces only), `__metadata__` (when present) maps strings to
 * strings, every other entry has exactly a known `dtype`, a `shape` of non-negative integers and
 * `data_offsets` [begin, end] with end − begin = values × dtype size, and the entries, sorted by
 * offset, tile the data buffer from 0 to its end without holes or overlaps.
 * @param file the file's bytes; `label` names it in errors.
 * @throws Error with one line naming `label` and what is wrong.
 */
export function decodeSafetensors(file: Uint8Array, label = 'safetensors'): Safetensors {
  const fail = (why: string): never => {
    throw new Error(`${label}: ${why}`);
  };
  if (file.length < 8) fail(`${file.length} bytes, too short for the 8-byte header length`);
  const n64 = new DataView(file.buffer, file.byteOffset, file.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER, file.length - 8))) fail(`header length ${n64} exceeds the file (${file.length} bytes) or ${MAX_HEADER}`);
  const n = Number(n64);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + n));
  if (!text.startsWith('{')) fail('the header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not JSON (${(e as Error).message})`);
  }
  if (/[^ ]/.test(text.slice(text.lastIndexOf('}') + 1))) fail('the header is padded with something other than spaces (0x20)');
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: [string, Omit<SafetensorsEntry, 'bytes'>][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('__metadata__ is not an object');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (e === null || typeof e !== 'object') fail(`${name}: not an object`);
    const extra = Object.keys(e!).filter((k) => !['dtype', 'shape', 'data_offsets'].includes(k));
    if (extra.length > 0) fail(`${name}: unknown field ${extra[0]}`);
    const size = typeof e!.dtype === 'string' ? DTYPE_BYTES[e!.dtype] : undefined;
    if (size === undefined) fail(`${name}: dtype ${JSON.stringify(e!.dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
    const shape = e!.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    const raw = e!.data_offsets;
    if (!Array.isArray(raw) || raw.length !== 2 || raw.some((d) => !Number.isSafeInteger(d) || d < 0) || raw[1] < raw[0]) {
      fail(`${name}: data_offsets ${JSON.stringify(raw)} is not [begin, end] with 0 ≤ begin ≤ end`);
    }
    const off = raw as [number, number];
    const values = (shape as number[]).reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== values * size!) fail(`${name}: data_offsets [${off[0]}, ${off[1]}] hold ${off[1] - off[0]} bytes, shape [${shape}] ${e!.dtype} needs ${values * size!}`);
    entries.push([name, { dtype: e!.dtype as string, shape: shape as number[], dataOffsets: [off[0], off[1]] }]);
  }
  const data = file.subarray(8 + n);
  const sorted = [...entries].sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  let end = 0;
  for (const [name, e] of sorted) {
    if (e.dataOffsets[0] !== end) fail(`${name}: data_offsets begin at ${e.dataOffsets[0]}, expected ${end} (a hole or an overlap)`);
    end = e.dataOffsets[1];
  }
  if (end !== data.length) fail(`the tensors end at byte ${end} of the data, which holds ${data.length}`);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, e] of entries) tensors.set(name, { ...e, bytes: data.subarray(e.dataOffsets[0], e.dataOffsets[1]) });
  return { headerBytes: n, metadata, tensors };
}
