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

/**
 * Writes `model.json` and `weights.bin` into `dir`, creating it (and its parents) when missing;
 * the caller handles temporary directories and renaming.
 * @param tensors by name, written in the map's order; float32 and int32 tensors.
 * @param meta JSON-serialisable object stored as `userDefinedMetadata`.
 */
export async function saveTensors(dir: string, tensors: Map<string, tf.Tensor>, meta: object = {}): Promise<void> {
  const named = [...tensors].map(([name, tensor]) => ({ name, tensor }));
  const { data, specs } = await tf.io.encodeWeights(named);
  const buffer = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(tf.io.concatenateArrayBuffers(data));
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
  const decoded = tf.io.decodeWeights(buffer, specs);
  const tensors = new Map<string, tf.Tensor>();
  for (const s of specs) tensors.set(s.name, decoded[s.name]!);
  const meta = (parsed as { userDefinedMetadata?: unknown }).userDefinedMetadata;
  return { tensors, meta: meta !== null && typeof meta === 'object' ? meta : {} };
}
