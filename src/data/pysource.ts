/**
 * Opening the CIFAR-10 python version as a source for one split (see cifarpy.ts for the format):
 * the batches' images go into one SharedArrayBuffer that the workers read.
 */
import { existsSync, readFileSync } from 'node:fs';
import { RAW_CIFAR_BYTES } from './decode.js';
import { decodePyBatch, pyClassNames } from './cifarpy.js';
import { describeBins, missingBatchesNote } from './describe.js';
import { checkLabel, defaultClassNames } from './labels.js';
import type { OpenedSource, SourceOptions } from './sourcetypes.js';

/** `batches.meta` as bytes, or null when there is none. */
export function readMeta(path: string): { bytes: Uint8Array; where: string } | null {
  return existsSync(path) ? { bytes: readFileSync(path), where: path } : null;
}

/** One python-version batch to open: its base name, where it is (for messages) and its bytes. */
export interface PyBatchFile {
  name: string;
  where: string;
  bytes: () => Uint8Array;
}

/**
 * Opens CIFAR-10 python-version batches (cifarpy.ts): every batch is decoded (for the total
 * count), and the images of the first `data.limit` samples go into one SharedArrayBuffer that the
 * workers read (`mem` spec, 3,072 bytes per image, no label byte).
 * @param where.dir the directory or archive the batches were found in (a training split lacking some
 *   of data_batch_1..5 then gets a note), or null for a file named directly.
 * @param where.prefix what the description puts before the batch names (`/d/`, `/d/x.tar.gz:`).
 * @param where.meta `batches.meta` (class names), when there is one.
 * @throws UserError naming the file for a damaged pickle, one that is no CIFAR batch, or a label
 *   outside [0, numClasses).
 */
export function openPy(
  files: PyBatchFile[],
  opts: SourceOptions,
  split: 'train' | 'val',
  where: { dir: string | null; prefix: string; meta: () => { bytes: Uint8Array; where: string } | null },
): OpenedSource {
  const limit = opts.limit ?? Infinity;
  const kept: Uint8Array[] = [];
  const labels: number[] = [];
  let total = 0;
  for (const f of files) {
    const b = decodePyBatch(f.bytes(), f.where);
    const n = b.labels.length;
    const take = Math.max(0, Math.min(n, limit - total));
    for (let i = 0; i < take; i++) labels.push(checkLabel(b.labels[i]!, opts.numClasses, `${f.where}: image ${i}`));
    if (take > 0) kept.push(b.images.subarray(0, take * RAW_CIFAR_BYTES));
    total += n;
  }
  const records = new Uint8Array(new SharedArrayBuffer(labels.length * RAW_CIFAR_BYTES));
  let at = 0;
  for (const k of kept) {
    records.set(k, at);
    at += k.length;
  }
  const meta = where.meta();
  const train = split === 'train';
  const names = files.map((f) => f.name);
  const notes: string[] = [];
  if (where.dir !== null && train) {
    const note = missingBatchesNote(where.dir, names, total, 'python');
    if (note !== null) notes.push(note);
  }
  const archive = where.prefix.endsWith(':');
  return {
    format: archive ? 'cifar-python-tar.gz' : 'cifar-python',
    path: names.length === 1 ? `${where.prefix}${names[0]}` : `${where.prefix}{${names.join(',')}}`,
    numSamples: labels.length,
    labels: Int32Array.from(labels),
    classNames: meta ? pyClassNames(meta.bytes, meta.where) : defaultClassNames(opts.numClasses),
    notes,
    description: describeBins('cifar10', where.prefix, names, train, labels.length, total, opts.labelField, 'python'),
    spec: { kind: 'mem', records: records.buffer as SharedArrayBuffer, recordBytes: RAW_CIFAR_BYTES },
  };
}
