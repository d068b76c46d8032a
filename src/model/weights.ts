/**
 * Named tensors on disk in TensorFlow.js's weights format: `model.json` holding a
 * `weightsManifest` (one group, path `weights.bin`, entries from tf.io.encodeWeights) and
 * `weights.bin` holding the little-endian tensor data back to back. Any TensorFlow.js backend
 * (and tf.io.loadWeights) reads it. Extra information (config, epoch, ...) goes into
 * `userDefinedMetadata`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { ensureDirectory } from '../fsutil.js';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { UserError, firstLine } from '../errors.js';

/** File names inside a weights directory. */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
/** `format` field of the model.json this module writes. */
export const WEIGHTS_FORMAT = 'mixup-weights';

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
    userDefinedMetadata: meta,
  };
  ensureDirectory(dir, 'weights directory');
  await writeFile(join(dir, WEIGHTS_BIN), buffer);
  await writeFile(join(dir, MODEL_JSON), JSON.stringify(modelJson, null, 1) + '\n');
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2 };

/**
 * Reads tensors written by {@link saveTensors} (or any single-file TensorFlow.js weights manifest).
 * @returns the tensors by name (the caller disposes them) and `userDefinedMetadata` ({} when absent).
 * @throws UserError naming the file when model.json or weights.bin is missing, not JSON, lacks a
 *   weights manifest, or the data does not match the manifest's size.
 */
export async function loadTensors(dir: string): Promise<{ tensors: Map<string, tf.Tensor>; meta: object }> {
  const { tensors, meta } = await loadHostTensors(dir);
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of tensors) out.set(name, tf.tensor(t.values, t.shape, t.values instanceof Int32Array ? 'int32' : 'float32'));
  return { tensors: out, meta };
}

/**
 * {@link loadTensors} onto the host: float32 entries as Float32Array, int32 ones as Int32Array.
 * @throws UserError as {@link loadTensors}, and for a float16 or bool entry.
 */
export async function loadHostTensors(dir: string): Promise<{ tensors: Map<string, HostTensor>; meta: object }> {
  const jsonPath = join(dir, MODEL_JSON);
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (e) {
    throw new UserError(`${jsonPath}: cannot read the checkpoint's weights manifest: ${firstLine(e)}`);
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
    paths.push(...(group.paths as string[]));
    specs.push(...(group.weights as tf.io.WeightsManifestEntry[]));
  }
  let expected = 0;
  for (const s of specs) {
    const bytes = DTYPE_BYTES[s.dtype];
    if (typeof s.name !== 'string' || !Array.isArray(s.shape) || bytes === undefined || s.quantization) {
      throw new UserError(`${jsonPath}: weight entry ${JSON.stringify(s).slice(0, 120)} is not a plain float32/int32 tensor`);
    }
    expected += s.shape.reduce((a, b) => a * b, 1) * bytes;
  }
  const chunks: Buffer[] = [];
  for (const p of paths) {
    const binPath = join(dir, p);
    try {
      chunks.push(await readFile(binPath));
    } catch (e) {
      throw new UserError(`${binPath}: cannot read the checkpoint's weights: ${firstLine(e)}`);
    }
  }
  const bin = Buffer.concat(chunks);
  if (bin.byteLength !== expected) {
    throw new UserError(`${join(dir, paths.join('+'))}: ${bin.byteLength} bytes, the manifest in ${MODEL_JSON} describes ${expected}; the checkpoint is truncated or corrupt`);
  }
  const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
  const tensors = new Map<string, HostTensor>();
  let at = 0;
  for (const s of specs) {
    const size = s.shape.reduce((a, b) => a * b, 1);
    if (s.dtype !== 'float32' && s.dtype !== 'int32') {
      throw new UserError(`${jsonPath}: weight ${s.name} is ${s.dtype}; expected float32 or int32`);
    }
    const values = s.dtype === 'int32' ? new Int32Array(buffer, at, size) : new Float32Array(buffer, at, size);
    tensors.set(s.name, { shape: [...s.shape], values });
    at += size * 4;
  }
  const meta = (parsed as { userDefinedMetadata?: unknown }).userDefinedMetadata;
  return { tensors, meta: meta !== null && typeof meta === 'object' ? meta : {} };
}
