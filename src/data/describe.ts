/**
 * The one-line descriptions of an opened split that a run prints at its start, and the note for
 * a CIFAR-10 training directory or archive lacking some of its five batches (see
 * {@link OpenedSource.description}).
 */
import { basename } from 'node:path';
import { plural } from '../format.js';
import { naturalCompare } from './cifarbin.js';
import type { ImageEncoding } from './decode.js';
import type { OpenedSource } from './sourcetypes.js';

/** The CIFAR-10 binary training files of the published archive, in order. */
export const CIFAR10_TRAIN_BATCHES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];

/** Which CIFAR version a split was read from: the binary (`data_batch_1.bin`) or the python one (`data_batch_1`). */
export type CifarVersion = 'binary' | 'python';

/** The five training batch names of a version. */
function trainBatches(version: CifarVersion): string[] {
  return version === 'binary' ? CIFAR10_TRAIN_BATCHES : CIFAR10_TRAIN_BATCHES.map((n) => n.replace(/\.bin$/, ''));
}

/**
 * The note for a CIFAR-10 training directory (or archive) that lacks some of `data_batch_1..5.bin`
 * (python version: `data_batch_1..5`), e.g. `/d: data_batch_2.bin, data_batch_3.bin,
 * data_batch_4.bin, data_batch_5.bin missing: training on data_batch_1.bin only, 10000 samples
 * instead of the usual 50000`.
 * @param where the directory or archive, for the message.
 * @param names the training files found (base names).
 * @param numSamples the samples taken from them.
 * @returns null when all five are there.
 */
export function missingBatchesNote(where: string, names: string[], numSamples: number, version: CifarVersion = 'binary'): string | null {
  const have = new Set(names.map((n) => basename(n)));
  const missing = trainBatches(version).filter((n) => !have.has(n));
  if (missing.length === 0) return null;
  const found = [...have].sort(naturalCompare);
  return `${where}: ${missing.join(', ')} missing: training on ${found.join(', ')} only, ${numSamples} samples instead of the usual 50000`;
}

/**
 * `data_batch_{1,2,3}.bin` (python version: `data_batch_{1,2,3}`) for several files of the
 * `data_batch_N` pattern, else the names joined by `, `; a single name as is.
 */
function joinBatchNames(names: string[]): string {
  if (names.length === 1) return names[0]!;
  const parts = names.map((n) => /^data_batch_(\d+)(\.bin)?$/.exec(n));
  const ext = parts[0]?.[2] ?? '';
  if (parts.every((x) => x !== null && (x[2] ?? '') === ext)) return `data_batch_{${parts.map((x) => x![1]).join(',')}}${ext}`;
  return names.join(', ');
}

/**
 * The one-line description of a CIFAR binary or python split (see {@link OpenedSource.description}):
 * `CIFAR-10 binary, <files> (<k> of the usual 5 files | the usual 5 files), <n> samples`, the
 * files as `<dir>/data_batch_{1,2}.bin`; `CIFAR-10 python, <dir>/data_batch_{1,2}, ...` for the
 * python version; CIFAR-100 says which label field; `<n> of <total> samples (data.limit)` when a
 * limit cut the split.
 * @param where the directory of the files, or `<archive>:` for a .tar.gz.
 */
export function describeBins(
  dataset: 'cifar10' | 'cifar100',
  where: string,
  names: string[],
  train: boolean,
  numSamples: number,
  total: number,
  labelField: 'fine' | 'coarse',
  version: CifarVersion = 'binary',
): string {
  const files = `${where}${joinBatchNames(names)}`;
  const batch = version === 'binary' ? /^data_batch_\d+\.bin$/ : /^data_batch_\d+$/;
  const c10train = dataset === 'cifar10' && train && names.every((n) => batch.test(n));
  const usual = !c10train
    ? ''
    : names.length === 5 && trainBatches(version).every((n) => names.includes(n))
      ? ' (the usual 5 files)'
      : ` (${names.length} of the usual 5 files)`;
  const label = dataset === 'cifar100' ? ` (${labelField} labels)` : '';
  const count = numSamples < total ? `${numSamples} of ${plural(total, 'sample')} (${train ? 'data.limit' : 'data.valLimit'})` : plural(numSamples, 'sample');
  return `${dataset === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} ${version}, ${files}${usual}${label}, ${count}`;
}

const ENCODING_NAMES: Record<ImageEncoding, string> = { jpeg: 'JPEG', png: 'PNG', raw: 'raw 3x32x32', unknown: 'unknown encoding' };

/**
 * The one-line description of a RecordIO split (see {@link OpenedSource.description}):
 * `RecordIO <path> (JPEG, with .idx), <n> records`; `without .idx (scanned)`; `label <i> of <k>`
 * when records carry several; `first <n> records (data.limit)` when the limit stopped the read.
 */
export function describeRec(
  path: string,
  encodings: ImageEncoding[],
  hasIdx: boolean,
  labelsPerRecord: number,
  labelIndex: number,
  numRecords: number,
  limit: number | null,
  train: boolean,
): string {
  const enc = encodings.length === 0 ? 'no images' : encodings.map((e) => ENCODING_NAMES[e]).join('+');
  const label = labelsPerRecord > 1 ? `, label ${labelIndex} of ${labelsPerRecord}` : '';
  const count = limit !== null && numRecords === limit ? `first ${plural(numRecords, 'record')} (${train ? 'data.limit' : 'data.valLimit'})` : plural(numRecords, 'record');
  return `RecordIO ${path} (${enc}, ${hasIdx ? 'with .idx' : 'without .idx (scanned)'}${label}), ${count}`;
}
