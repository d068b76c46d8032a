/**
 * Named tensors on disk in TensorFlow.js's weights format: `model.json` holding a
 * `weightsManifest` (one group, path `weights.bin`, entries from tf.io.encodeWeights) and
 * `weights.bin` holding the little-endian tensor data back to back. Any TensorFlow.js backend
 * (and tf.io.loadWeights) reads it. Extra information (config, epoch, ...) goes into
 * `userDefinedMetadata`; the SHA-256 of weights.bin into `sha256`.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { ensureDirectory } from '../fsutil.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError, firstLine } from '../errors.js';

/** File names inside a weights directory. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
/** `format` field of the model.json this module writes. */
export const WEIGHTS_FORMAT = 'mixup-weights';

/**
 * `sha256` field of the model.json this module writes: weights file name → SHA-256 of its bytes
 * (lower-case hex), checked by {@link loadHostTensors}. TensorFlow.js ignores the field; files
 * written before it existed have none, and load unchecked.
 */
export const SHA256_FIELD = 'sha256';

/** SHA-256 of `bytes`, lower-case hex (node:crypto). */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * One line on a file-system error without Node's raw text: `no such file` for ENOENT, else the
 * error code (`EACCES`, `EISDIR`, ...).
 */
function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  return code ?? firstLine(e);
}

/** A tensor on the host: its shape and its values, row-major. What passes between executors. */
export interface HostTensor {
  shape: number[];
  values: Float32Array | Int32Array;
}

/**
 * Writes `model.json` and `weights.bin` into `dir`, creating it (and its parents) when missing;
 * the caller handles temporary directories and renaming.
 * @param tensors by name, written in the map's order; float32 and int32 tensors.
 * @param meta JSON-serialisable object stored as `userDefinedMetadata`.
 */
export async function saveTensors(dir: string, tensors: Map<string, tf.Tensor>, meta: object = {}): Promise<void> {
  const host = new Map<string, HostTensor>();
  for (const [name, t] of tensors) host.set(name, { shape: [...t.shape], values: (await t.data()) as Float32Array | Int32Array });
  await saveHostTensors(dir, host, meta);
}

/**
 * {@link saveTensors} for host tensors: the same bytes as tf.io.encodeWeights writes (the values
 * little-endian, back to back, in the map's order; manifest entries `{name, shape, dtype}`).
 * @param tensors by name; a Float32Array is stored as float32, an Int32Array as int32.
 * @throws RangeError when a tensor's values do not fill its shape.
 */
export async function saveHostTensors(dir: string, tensors: Map<string, HostTensor>, meta: object = {}): Promise<void> {
  const specs: tf.io.WeightsManifestEntry[] = [];
  let bytes = 0;
  for (const [name, t] of tensors) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (t.values.length !== size) throw new RangeError(`saveHostTensors: ${name} has ${t.values.length} values for shape [${t.shape.join(',')}]`);
    specs.push({ name, shape: [...t.shape], dtype: t.values instanceof Int32Array ? 'int32' : 'float32' });
    bytes += t.values.byteLength;
  }
  const buffer = new Uint8Array(bytes);
  let at = 0;
  for (const t of tensors.values()) {
    buffer.set(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength), at);
    at += t.values.byteLength;
  }
  const modelJson = {
    format: WEIGHTS_FORMAT,
    generatedBy: `TensorFlow.js tfjs-core v${tf.version_core}`,
    convertedBy: null,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: specs }],
    [SHA256_FIELD]: { [WEIGHTS_BIN]: sha256Hex(buffer) },
    userDefinedMetadata: meta,
  };
  ensureDirectory(dir, 'weights directory');
  await writeFile(join(dir, WEIGHTS_BIN), buffer);
  await writeFile(join(dir, MODEL_JSON), JSON.stringify(modelJson, null, 1) + '\n');
}

/** Bytes per value of the dtypes a checkpoint may hold (what the executors exchange: float32 and int32). */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4 };

/**
 * Why `p` is not a plain file name beside model.json, or null when it is: a manifest path may not
 * be empty, `.` or `..`, hold a `/`, `\\`, `:` or control character, or be absolute.
 */
function unsafePathReason(p: unknown): string | null {
  if (typeof p !== 'string' || p === '') return 'is not a file name';
  if (p === '.' || p === '..' || /[/\\:]/.test(p) || isAbsolute(p) || /[\u0000-\u001f]/.test(p)) {
    return 'is not a plain file name in the checkpoint\'s directory (no "/", "\\", ":", ".." or absolute paths)';
  }
  return null;
}

/**
 * Bytes of one manifest entry, checked: every dimension a non-negative integer and the product a
 * safe integer; else the reason, to follow the entry's name in a message.
 */
function entryBytes(shape: unknown, bytesPerValue: number): number | string {
  if (!Array.isArray(shape)) return 'has no shape array';
  let n = bytesPerValue;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return `has shape ${JSON.stringify(shape).slice(0, 80)}: a dimension is not a non-negative integer`;
    n *= d;
    if (!Number.isSafeInteger(n)) return `has shape ${JSON.stringify(shape).slice(0, 80)}, whose size overflows`;
  }
  return n;
}

/**
 * Reads tensors written by {@link saveTensors} (or any TensorFlow.js weights manifest of plain
 * float32/int32 tensors). A checkpoint may come from anyone, so nothing it names is trusted:
 * every manifest path must be a plain file name in `dir` (a symbolic link must stay inside `dir`
 * and lead to a regular file), and every entry's shape must be non-negative integers whose total
 * size, dtype by dtype, fits the bytes of the files; all of this is checked from file sizes before
 * any file is read or any tensor allocated. When model.json carries SHA-256 digests of its files
 * ({@link SHA256_FIELD}; every file this module wrote since they were added), each file's digest
 * is checked; a model.json without them (older checkpoints, other tools) loads unchecked.
 * @returns the tensors by name (the caller disposes them) and `userDefinedMetadata` ({} when absent).
 * @throws UserError naming `<dir>/model.json` and the bad path or entry, or the weights file, when
 *   model.json or a weights file is missing, not JSON, lacks a weights manifest, names a path
 *   outside `dir`, holds an entry with another dtype, quantization, a duplicate name or a bad or
 *   overflowing shape, the data does not match the manifest's size, or a file's SHA-256 differs
 *   from the recorded one.
 */
export async function loadTensors(dir: string): Promise<{ tensors: Map<string, tf.Tensor>; meta: object }> {
  const { tensors, meta } = await loadHostTensors(dir);
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of tensors) out.set(name, tf.tensor(t.values, t.shape, t.values instanceof Int32Array ? 'int32' : 'float32'));
  return { tensors: out, meta };
}

/**
 * {@link loadTensors} onto the host: float32 entries as Float32Array, int32 ones as Int32Array.
 * @throws UserError as {@link loadTensors}.
 */
export async function loadHostTensors(dir: string): Promise<{ tensors: Map<string, HostTensor>; meta: object }> {
  const jsonPath = join(dir, MODEL_JSON);
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (e) {
    throw new UserError(`${jsonPath}: cannot read the weights manifest (${fsReason(e)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${jsonPath}: not valid JSON (${firstLine(e)}); the checkpoint is corrupt`);
  }
  const manifest = (parsed as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(manifest) || manifest.length === 0) {
    throw new UserError(`${jsonPath}: no "weightsManifest" array; expected a TensorFlow.js weights manifest`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const paths: string[] = [];
  for (const group of manifest as { paths?: unknown; weights?: unknown }[]) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new UserError(`${jsonPath}: a weightsManifest group lacks "paths" or "weights"`);
    }
    for (const p of group.paths as unknown[]) {
      const why = unsafePathReason(p);
      if (why !== null) throw new UserError(`${jsonPath}: weightsManifest path ${JSON.stringify(p)} ${why}`);
      paths.push(p as string);
    }
    specs.push(...(group.weights as tf.io.WeightsManifestEntry[]));
  }
  const realDir = await realpath(dir).catch(() => resolve(dir));
  const files: { name: string; path: string; bytes: number }[] = [];
  let available = 0;
  for (const p of paths) {
    const binPath = join(dir, p);
    let info;
    try {
      info = await stat(binPath);
    } catch (e) {
      throw new UserError(`${binPath}: cannot read the weights (${fsReason(e)})`);
    }
    const real = await realpath(binPath).catch(() => binPath);
    if (dirname(real) !== realDir) {
      throw new UserError(`${jsonPath}: weightsManifest path ${JSON.stringify(p)} is a link to ${real}, outside the checkpoint's directory`);
    }
    if (!info.isFile()) throw new UserError(`${binPath}: not a regular file; expected the checkpoint's weights`);
    files.push({ name: p, path: binPath, bytes: info.size });
    available += info.size;
  }
  const binName = paths.join('+');
  const names = new Set<string>();
  let expected = 0;
  for (const s of specs) {
    const label = `weight ${JSON.stringify(typeof s?.name === 'string' ? s.name : s).slice(0, 120)}`;
    if (typeof s?.name !== 'string' || s.name === '') throw new UserError(`${jsonPath}: ${label} has no name`);
    if (names.has(s.name)) throw new UserError(`${jsonPath}: ${label} appears twice in the manifest`);
    names.add(s.name);
    const bytes = DTYPE_BYTES[s.dtype];
    if (bytes === undefined || s.quantization) {
      throw new UserError(
        `${jsonPath}: ${label} has dtype ${JSON.stringify(s.dtype)}${s.quantization ? ' with quantization' : ''}; expected a plain float32 or int32 tensor`,
      );
    }
    const size = entryBytes(s.shape, bytes);
    if (typeof size === 'string') throw new UserError(`${jsonPath}: ${label} ${size}`);
    if (expected + size > available) {
      throw new UserError(
        `${jsonPath}: ${label} with shape [${s.shape.join(',')}] ${s.dtype} needs ${size} bytes from offset ${expected}, but ${binName} holds ${available}; the checkpoint is truncated or corrupt`,
      );
    }
    expected += size;
  }
  if (available !== expected) {
    throw new UserError(`${join(dir, binName)}: ${available} bytes, the manifest in ${MODEL_JSON} describes ${expected}; the checkpoint is corrupt`);
  }
  const rawSums = (parsed as Record<string, unknown>)[SHA256_FIELD];
  if (rawSums !== undefined && (rawSums === null || typeof rawSums !== 'object' || Array.isArray(rawSums))) {
    throw new UserError(`${jsonPath}: "${SHA256_FIELD}" is not an object of file name → hex digest; the checkpoint is corrupt`);
  }
  const sums = (rawSums ?? null) as Record<string, unknown> | null;
  const bin = new Uint8Array(expected);
  let offset = 0;
  for (const f of files) {
    let chunk: Buffer;
    try {
      chunk = await readFile(f.path);
    } catch (e) {
      throw new UserError(`${f.path}: cannot read the weights (${fsReason(e)})`);
    }
    if (chunk.byteLength !== f.bytes) throw new UserError(`${f.path}: changed size while being read (${f.bytes} → ${chunk.byteLength} bytes)`);
    if (sums !== null) {
      const want = sums[f.name];
      if (typeof want !== 'string') throw new UserError(`${jsonPath}: its "${SHA256_FIELD}" holds no digest of ${f.name}; the checkpoint is corrupt`);
      const got = sha256Hex(chunk);
      if (got !== want.toLowerCase()) {
        throw new UserError(`${f.path}: SHA-256 ${got.slice(0, 12)}… differs from the ${want.slice(0, 12)}… saved with it in ${MODEL_JSON}; the file was damaged or changed after it was written`);
      }
    }
    bin.set(chunk, offset);
    offset += chunk.byteLength;
  }
  const tensors = new Map<string, HostTensor>();
  let at = 0;
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const values = s.dtype === 'int32' ? new Int32Array(bin.buffer, at, size) : new Float32Array(bin.buffer, at, size);
    tensors.set(s.name, { shape: [...s.shape], values });
    at += size * 4;
  }
  const meta = (parsed as { userDefinedMetadata?: unknown }).userDefinedMetadata;
  return { tensors, meta: meta !== null && typeof meta === 'object' ? meta : {} };
}
