/**
 * Opening a data path for one split: finding the files, detecting the format from the content
 * (RecordIO magic, gzip signature, CIFAR binary record size), indexing the records and reading and
 * checking every label. The result's {@link SourceSpec} is plain data (typed arrays and shared
 * memory) that worker threads use to read the images themselves (see reader.ts).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { plural } from '../format.js';
import { RECORDIO_MAGIC, fileSize, forEachRecord, idxPathFor, readHead, statDataPath } from './recordio.js';
import { parseImageRecord } from './imagerecord.js';
import {
  CIFAR10_CLASSES,
  badBinSize,
  binLayout,
  classNamesNear,
  forEachBinChunk,
  isSplitFile,
  naturalCompare,
  readTarSplit,
  type BinLayout,
} from './cifarbin.js';
import { RAW_CIFAR_BYTES, detectEncoding, type ImageEncoding } from './decode.js';

/** How worker threads read the images of a source. */
export type SourceSpec =
  | {
      kind: 'rec';
      path: string;
      /** Byte offset and span of each sample's record, in sample order. */
      offsets: Float64Array;
      spans: Float64Array;
    }
  | {
      kind: 'bin';
      /** The files in order, with how many of the split's samples each contributes. */
      files: { path: string; count: number }[];
      recordBytes: number;
    }
  | {
      kind: 'mem';
      /** CIFAR binary records held in memory (from a .tar.gz), `recordBytes` each. */
      records: SharedArrayBuffer;
      recordBytes: number;
    };

/** Options of {@link openSource}, from the config. */
export interface SourceOptions {
  numClasses: number;
  labelIndex: number;
  labelField: 'fine' | 'coarse';
  /** Keep only the first N samples (file order), null = all. */
  limit: number | null;
}

/** An opened split. */
export interface OpenedSource {
  /** What was read: `recordio`, `cifar-binary` or `cifar-binary-tar.gz`. */
  format: string;
  /** The file(s) read, for messages. */
  path: string;
  numSamples: number;
  /** Label of every sample, in [0, numClasses). */
  labels: Int32Array;
  classNames: string[];
  /** Things the user should be told once (e.g. several labels per record). */
  notes: string[];
  /**
   * One line saying what was picked, for the start of a run, e.g.
   * `CIFAR-10 binary, /d/data_batch_1.bin (1 of the usual 5 files), 10000 samples` or
   * `RecordIO /d/cifar10_train.rec (JPEG, with .idx), 50000 records`; see {@link describeBins}.
   */
  description: string;
  spec: SourceSpec;
}

/** The data files found in a directory. */
export interface FoundFiles {
  train: string;
  val: string;
}

const REC_NAMES: [string, string][] = [
  ['cifar10_train.rec', 'cifar10_val.rec'],
  ['train.rec', 'val.rec'],
];

/**
 * Finds the usual CIFAR file names in `dir`: `cifar10_train.rec` + `cifar10_val.rec`; the binary
 * batches (`data_batch_*.bin` + `test_batch.bin`, or CIFAR-100's `train.bin` + `test.bin`: train is
 * then the directory itself); `cifar-10-binary.tar.gz` (both splits); or a `cifar-10-batches-bin/`
 * (or `cifar-100-binary/`) subdirectory holding the batches.
 * @returns null when none is there.
 */
export function findInDir(dir: string): FoundFiles | null {
  for (const [t, v] of REC_NAMES) {
    if (existsSync(join(dir, t)) && existsSync(join(dir, v))) return { train: join(dir, t), val: join(dir, v) };
  }
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  const trainBins = names.filter((n) => isSplitFile(n, 'train'));
  const valBin = names.find((n) => isSplitFile(n, 'val'));
  if (trainBins.length > 0 && valBin) return { train: dir, val: join(dir, valBin) };
  for (const tgz of ['cifar-10-binary.tar.gz', 'cifar-100-binary.tar.gz']) {
    if (names.includes(tgz)) return { train: join(dir, tgz), val: join(dir, tgz) };
  }
  for (const sub of ['cifar-10-batches-bin', 'cifar-100-binary']) {
    if (names.includes(sub)) {
      const found = findInDir(join(dir, sub));
      if (found) return found;
    }
  }
  return null;
}

/** What {@link findInDir} looks for, for error messages. */
export const LOOKED_FOR =
  'cifar10_train.rec + cifar10_val.rec, data_batch_*.bin + test_batch.bin, cifar-10-binary.tar.gz, or a cifar-10-batches-bin/ subdirectory';

function checkLabel(value: number, numClasses: number, where: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= numClasses) {
    throw new UserError(`${where}: label ${value} is not an integer in [0, ${numClasses})`);
  }
  return value;
}

/**
 * Opens `path` (a `.rec`, a CIFAR `.bin`, a directory, or a CIFAR binary `.tar.gz`) for `split`.
 * The format is detected from the content, not the name.
 * @throws UserError (one line naming the file and the byte offset or record) on a missing or
 *   empty file, an unknown format, bad RecordIO framing, a truncated record, a `.bin` whose size
 *   is not a multiple of the record size, or a label that is not an integer in [0, numClasses).
 */
export async function openSource(path: string, split: 'train' | 'val', opts: SourceOptions): Promise<OpenedSource> {
  const st = statDataPath(path);
  if (st.isDirectory()) {
    const names = readdirSync(path);
    const bins = names.filter((n) => isSplitFile(n, split)).sort(naturalCompare);
    const hasRec = REC_NAMES.some(([t, v]) => names.includes(t) && names.includes(v));
    if (bins.length > 0 && !hasRec) return openBins(bins.map((n) => join(path, n)), opts, split, path);
    const found = findInDir(path);
    if (!found) throw new UserError(`${path}: no CIFAR data for the ${split} split here; looked for ${LOOKED_FOR}`);
    return openSource(found[split], split, opts);
  }
  const format = detectFormat(path, opts.labelField);
  if (format === 'rec') return openRec(path, opts, split);
  if (format === 'tar.gz') return openTar(path, split, opts);
  return openBins([path], opts, split, null);
}

/**
 * The format of a data file, from its content (`data inspect` and training use this one test):
 * `rec` (RecordIO magic in the first word), `tar.gz` (gzip signature), `bin` (a size that is a
 * whole number of CIFAR-10 or CIFAR-100 records, or a `.bin` name; its size is checked when read).
 * @throws UserError for a missing or empty file, or none of these.
 */
export function detectFormat(path: string, labelField: 'fine' | 'coarse'): 'rec' | 'tar.gz' | 'bin' {
  const size = fileSize(path);
  const head = readHead(path, 4);
  if (size >= 4 && head.readUInt32LE(0) === RECORDIO_MAGIC) return 'rec';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (binLayout(size, path, labelField) || /\.bin$/i.test(path)) return 'bin';
  throw new UserError(
    `${path}: unknown format: not a RecordIO file (first word 0x${size >= 4 ? head.readUInt32LE(0).toString(16).padStart(8, '0') : '?'} at byte offset 0, expected magic 0xced7230a), not gzip, and its size ${size} is not a multiple of the CIFAR record size 3073`,
  );
}

/** The CIFAR-10 binary training files of the published archive, in order. */
export const CIFAR10_TRAIN_BATCHES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];

/**
 * The note for a CIFAR-10 binary training directory (or archive) that lacks some of
 * `data_batch_1..5.bin`, e.g. `/d: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin,
 * data_batch_5.bin missing: training on data_batch_1.bin only, 10000 samples instead of the usual 50000`.
 * @param where the directory or archive, for the message.
 * @param names the training files found (base names).
 * @param numSamples the samples taken from them.
 * @returns null when all five are there.
 */
export function missingBatchesNote(where: string, names: string[], numSamples: number): string | null {
  const have = new Set(names.map((n) => basename(n)));
  const missing = CIFAR10_TRAIN_BATCHES.filter((n) => !have.has(n));
  if (missing.length === 0) return null;
  const found = [...have].sort(naturalCompare);
  return `${where}: ${missing.join(', ')} missing: training on ${found.join(', ')} only, ${numSamples} samples instead of the usual 50000`;
}

/**
 * `data_batch_{1,2,3}.bin` for several files of the `data_batch_N.bin` pattern, else the names
 * joined by `, `; a single name as is.
 */
function joinBatchNames(names: string[]): string {
  if (names.length === 1) return names[0]!;
  const nums = names.map((n) => /^data_batch_(\d+)\.bin$/.exec(n)?.[1]);
  if (nums.every((x) => x !== undefined)) return `data_batch_{${nums.join(',')}}.bin`;
  return names.join(', ');
}

/**
 * The one-line description of a CIFAR binary split (see {@link OpenedSource.description}):
 * `CIFAR-10 binary, <files> (<k> of the usual 5 files | the usual 5 files), <n> samples`, the
 * files as `<dir>/data_batch_{1,2}.bin`; CIFAR-100 says which label field; `<n> of <total>
 * samples (data.limit)` when a limit cut the split.
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
): string {
  const files = `${where}${joinBatchNames(names)}`;
  const c10train = dataset === 'cifar10' && train && names.every((n) => /^data_batch_\d+\.bin$/.test(n));
  const usual = !c10train
    ? ''
    : names.length === 5 && CIFAR10_TRAIN_BATCHES.every((n) => names.includes(n))
      ? ' (the usual 5 files)'
      : ` (${names.length} of the usual 5 files)`;
  const label = dataset === 'cifar100' ? ` (${labelField} labels)` : '';
  const count = numSamples < total ? `${numSamples} of ${plural(total, 'sample')} (${train ? 'data.limit' : 'data.valLimit'})` : plural(numSamples, 'sample');
  return `${dataset === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} binary, ${files}${usual}${label}, ${count}`;
}

function defaultClassNames(n: number): string[] {
  return n === 10 ? [...CIFAR10_CLASSES] : Array.from({ length: n }, (_, i) => `class ${i}`);
}

function openRec(path: string, opts: SourceOptions, split: 'train' | 'val'): OpenedSource {
  const labels: number[] = [];
  const notes: string[] = [];
  const encodings = new Set<ImageEncoding>();
  let multi: number | null = null;
  const onRecord = (payload: Buffer, index: number, offset: number) => {
    const where = `${path}: record ${index} at byte offset ${offset}`;
    const rec = parseImageRecord(payload, where);
    encodings.add(detectEncoding(rec.image));
    if (rec.flag > 0) {
      if (opts.labelIndex >= rec.flag) throw new UserError(`${where}: data.labelIndex ${opts.labelIndex} but the record has ${rec.flag} labels`);
      if (multi === null) {
        multi = rec.flag;
        notes.push(`${path}: records carry ${rec.flag} labels each; using label ${opts.labelIndex} (data.labelIndex)`);
      }
    } else if (opts.labelIndex !== 0 && multi === null) {
      multi = 1;
      notes.push(`${path}: records carry one label; data.labelIndex ${opts.labelIndex} ignored`);
    }
    labels.push(checkLabel(rec.labels[rec.flag > 0 ? opts.labelIndex : 0]!, opts.numClasses, where));
  };
  const idx = idxPathFor(path);
  const locs = forEachRecord(path, { idx, limit: opts.limit }, onRecord);
  return {
    format: 'recordio',
    path,
    numSamples: locs.length,
    labels: Int32Array.from(labels),
    classNames: defaultClassNames(opts.numClasses),
    notes,
    description: describeRec(path, [...encodings], idx !== null, multi ?? 0, opts.labelIndex, locs.length, opts.limit, split === 'train'),
    spec: {
      kind: 'rec',
      path,
      offsets: Float64Array.from(locs, (l) => l.offset),
      spans: Float64Array.from(locs, (l) => l.span),
    },
  };
}

/** `1 sample`, `2 samples`. */
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

function binLabels(records: Uint8Array, layout: BinLayout, count: number, file: string, firstIndex: number, opts: SourceOptions, out: number[]): void {
  for (let i = 0; i < count; i++) {
    const v = records[i * layout.recordBytes + layout.labelByte]!;
    if (v >= opts.numClasses) {
      throw new UserError(`${file}: record ${firstIndex + i} at byte offset ${(firstIndex + i) * layout.recordBytes}: label ${v} is not an integer in [0, ${opts.numClasses})`);
    }
    out.push(v);
  }
}

/**
 * @param dir the directory the files were found in (then a CIFAR-10 training split lacking some of
 *   data_batch_1..5.bin gets a note), or null for a file named directly.
 */
function openBins(paths: string[], opts: SourceOptions, split: 'train' | 'val', dir: string | null): OpenedSource {
  let layout: BinLayout | null = null;
  const files: { path: string; count: number }[] = [];
  const labels: number[] = [];
  let remaining = opts.limit ?? Infinity;
  for (const p of paths) {
    if (remaining <= 0) break;
    const size = fileSize(p);
    const l = binLayout(size, p, opts.labelField);
    if (!l) throw badBinSize(p, size);
    if (layout && l.recordBytes !== layout.recordBytes) throw new UserError(`${p}: record size ${l.recordBytes} differs from ${layout.recordBytes} of ${files[0]!.path}`);
    layout = l;
    const count = Math.min(size / l.recordBytes, remaining);
    // The labels, in chunks; the pixels stay on disk until a worker reads them.
    forEachBinChunk(p, l, count, (records, start, n) => binLabels(records, l, n, p, start, opts, labels));
    files.push({ path: p, count });
    remaining -= count;
  }
  const names = classNamesNear(paths[0]!, layout!, opts.labelField);
  // Samples of all the files, also those a limit left unread (their size only).
  let total = 0;
  for (const p of paths) total += Math.floor((statSync(p, { throwIfNoEntry: false })?.size ?? 0) / layout!.recordBytes);
  const train = split === 'train';
  const notes: string[] = [];
  if (dir !== null && train && layout!.dataset === 'cifar10') {
    const note = missingBatchesNote(dir, paths.map((p) => basename(p)), total);
    if (note !== null) notes.push(note);
  }
  const description = describeBins(layout!.dataset, paths[0]!.replace(/[^/]*$/, ''), paths.map((p) => basename(p)), train, labels.length, total, opts.labelField);
  return {
    format: layout!.dataset === 'cifar100' ? 'cifar100-binary' : 'cifar-binary',
    path: paths.length === 1 ? paths[0]! : `${paths[0]!.replace(/[^/]*$/, '')}{${paths.map((p) => basename(p)).join(',')}}`,
    numSamples: labels.length,
    labels: Int32Array.from(labels),
    classNames: names ?? defaultClassNames(opts.numClasses),
    notes,
    description,
    spec: { kind: 'bin', files, recordBytes: layout!.recordBytes },
  };
}

async function openTar(path: string, split: 'train' | 'val', opts: SourceOptions): Promise<OpenedSource> {
  const t = await readTarSplit(path, split, opts.labelField);
  const total = t.records.length / t.layout.recordBytes;
  const count = Math.min(total, opts.limit ?? Infinity);
  const labels: number[] = [];
  let first = 0;
  t.members.forEach((m, k) => {
    const n = Math.min(t.counts[k]!, count - first);
    if (n <= 0) return;
    const rb = t.layout.recordBytes;
    binLabels(t.records.subarray(first * rb, (first + n) * rb), t.layout, n, `${path}:${m}`, 0, opts, labels);
    first += n;
  });
  const train = split === 'train';
  const names = t.members.map((m) => basename(m));
  const notes: string[] = [];
  if (train && t.layout.dataset === 'cifar10') {
    const note = missingBatchesNote(path, names, total);
    if (note !== null) notes.push(note);
  }
  // The whole split is already in shared memory; a limit copies only its first records.
  let shared = t.records.buffer as SharedArrayBuffer;
  if (count < total) {
    shared = new SharedArrayBuffer(count * t.layout.recordBytes);
    new Uint8Array(shared).set(t.records.subarray(0, count * t.layout.recordBytes));
  }
  return {
    format: t.layout.dataset === 'cifar100' ? 'cifar100-binary-tar.gz' : 'cifar-binary-tar.gz',
    path: `${path}:{${t.members.map((m) => basename(m)).join(',')}}`,
    numSamples: count,
    labels: Int32Array.from(labels),
    classNames: t.classNames ?? defaultClassNames(opts.numClasses),
    notes,
    description: describeBins(t.layout.dataset, `${path}:`, names, train, count, total, opts.labelField),
    spec: { kind: 'mem', records: shared, recordBytes: t.layout.recordBytes },
  };
}

/** Pixel bytes of a CIFAR binary record start after its label byte(s). */
export function pixelOffset(recordBytes: number): number {
  return recordBytes - RAW_CIFAR_BYTES;
}
