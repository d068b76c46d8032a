/**
 * The CIFAR-10 "python version" (https://www.cs.toronto.edu/~kriz/cifar.html,
 * `cifar-10-python.tar.gz` → `cifar-10-batches-py/`), what torchvision and Keras download:
 * `data_batch_1..5` and `test_batch`, each a pickled dict (protocol 2, written by Python 2's cPickle,
 * so its keys are byte strings) with `data`, a numpy uint8 array [10000, 3072] whose rows are the
 * images as 1,024 R, then G, then B bytes (32×32 row-major each, as in the binary version), and
 * `labels`, a list of 10,000 ints in [0, 9]; `batches.meta` holds `label_names`. The pickles are
 * read by ./pickle.ts, which executes nothing.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import { RAW_CIFAR_BYTES } from './decode.js';
import { NdArray, asBytes, unpickle } from './pickle.js';

/** The training batches of the python version, in order. */
export const CIFAR10_PY_TRAIN_BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5'];

/** Which files of a split a python-version directory or archive holds (`data_batch_N`, `test_batch`). */
export function isPySplitFile(name: string, split: 'train' | 'val'): boolean {
  const b = basename(name);
  return split === 'train' ? /^data_batch_\d+$/.test(b) : b === 'test_batch';
}

/** One decoded batch. */
export interface PyBatch {
  /** `[N,3072]` uint8, each row 1,024 R, then G, then B bytes. */
  images: Uint8Array;
  /** N labels, as pickled (checked against the class count by the caller). */
  labels: number[];
}

/** The dict's entries with byte-string keys (Python 2 `str` or `bytes`) as JS strings. */
function entries(v: unknown, where: string, expected: string): Map<string, unknown> {
  if (!(v instanceof Map)) throw new UserError(`${where}: the pickle holds ${pyTypeName(v)}, expected ${expected}`);
  const out = new Map<string, unknown>();
  for (const [k, x] of v) {
    const key = typeof k === 'string' ? k : k instanceof Uint8Array ? Buffer.from(k).toString('latin1') : null;
    if (key !== null) out.set(key, x);
  }
  return out;
}

function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof NdArray) return `a numpy ${v.dtype} array [${v.shape.join(',')}]`;
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (typeof v === 'string') return `a string of ${v.length} characters`;
  return `a ${typeof v}`;
}

function load(bytes: Uint8Array, where: string, expected: string): unknown {
  try {
    return unpickle(bytes);
  } catch (e) {
    throw new UserError(`${where}: not a readable pickle: ${(e as Error).message}; expected ${expected}`);
  }
}

const BATCH = 'a CIFAR-10 python batch (a pickled dict with data, uint8 [N,3072], and labels)';

/**
 * Decodes one CIFAR-10 python batch (see the module comment). `data` may also be plain bytes (a
 * `str` or `bytes` of N·3,072) instead of a numpy array.
 * @param where the file (or `archive:member`), for messages.
 * @throws UserError naming the file when it is not a readable pickle, not a dict, lacks `data` or
 *   `labels`, `data` is not uint8 [N,3072] in C order, or the label count differs from N.
 */
export function decodePyBatch(bytes: Uint8Array, where: string): PyBatch {
  return structural(where, BATCH, () => decodeBatch(bytes, where));
}

/**
 * Runs a structural check of unpickled values; anything but its own UserErrors (a crafted pickle
 * can give a list the prototype of a dict it built, which then fails as a JS TypeError) becomes
 * one line naming the file.
 */
function structural<T>(where: string, expected: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${where}: a malformed pickle (${(e as Error).message}); expected ${expected}`);
  }
}

function decodeBatch(bytes: Uint8Array, where: string): PyBatch {
  const dict = entries(load(bytes, where, BATCH), where, BATCH);
  const data = dict.get('data');
  const labels = dict.get('labels');
  if (data === undefined || labels === undefined) {
    const keys = [...dict.keys()].join(', ') || 'none';
    throw new UserError(`${where}: the pickled dict has no ${data === undefined ? 'data' : 'labels'} entry (keys: ${keys}); expected ${BATCH}`);
  }
  let images: Uint8Array | null;
  if (data instanceof NdArray) {
    const uint8 = data.dtype === 'u1' || data.dtype === '|u1';
    const okShape = data.shape.length === 2 && data.shape[1] === RAW_CIFAR_BYTES && !data.fortran;
    if (!uint8 || !okShape) {
      throw new UserError(`${where}: data is a numpy ${data.dtype} array [${data.shape.join(',')}]${data.fortran ? ' in Fortran order' : ''}, expected uint8 [N,3072] in C order`);
    }
    images = data.data!;
    if (images.length !== data.shape[0]! * RAW_CIFAR_BYTES) {
      throw new UserError(`${where}: data holds ${images.length} bytes, its shape [${data.shape.join(',')}] needs ${data.shape[0]! * RAW_CIFAR_BYTES}`);
    }
  } else {
    images = asBytes(data);
    if (images === null || images.length % RAW_CIFAR_BYTES !== 0) {
      throw new UserError(`${where}: data is ${pyTypeName(data)}, expected uint8 [N,3072] (a numpy array or N·3072 bytes)`);
    }
  }
  const n = images.length / RAW_CIFAR_BYTES;
  if (!Array.isArray(labels)) throw new UserError(`${where}: labels is ${pyTypeName(labels)}, expected a list of ${n} ints`);
  if (labels.length !== n) throw new UserError(`${where}: labels has ${labels.length} entries, data ${n} images`);
  return { images, labels: labels as number[] };
}

/** Reads and decodes a batch file; see {@link decodePyBatch}. */
export function readPyBatchFile(path: string): PyBatch {
  return decodePyBatch(readFileSync(path), path);
}

/**
 * The class names of `batches.meta` (its `label_names`).
 * @throws UserError naming the file when it is not a readable pickle of a dict with a list of names.
 */
export function pyClassNames(bytes: Uint8Array, where: string): string[] {
  const expected = 'the CIFAR-10 python batches.meta (a pickled dict with label_names)';
  return structural(where, expected, () => {
    const names = entries(load(bytes, where, expected), where, expected).get('label_names');
    if (!Array.isArray(names) || !names.every((x) => typeof x === 'string' || x instanceof Uint8Array)) {
      throw new UserError(`${where}: label_names is ${pyTypeName(names)}, expected a list of strings`);
    }
    return names.map((x) => (typeof x === 'string' ? x : Buffer.from(x).toString('latin1')));
  });
}
