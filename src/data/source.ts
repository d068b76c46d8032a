/**
 * Opening a data path for one split: finding the files, detecting the format from the content
 * (RecordIO magic, gzip signature, CIFAR binary record size), indexing the records and reading and
 * checking every label. The result's {@link SourceSpec} is plain data (typed arrays and shared
 * memory) that worker threads use to read the images themselves (see reader.ts).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../errors.js';
import { RECORDIO_MAGIC, fileSize, forEachRecord, idxPathFor, readHead } from './recordio.js';
import { parseImageRecord } from './imagerecord.js';
import {
  CIFAR10_CLASSES,
  badBinSize,
  binLayout,
  classNamesNear,
  isSplitFile,
  naturalCompare,
  readTarSplit,
  type BinLayout,
} from './cifarbin.js';
import { RAW_CIFAR_BYTES } from './decode.js';

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
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or directory`);
  }
  if (st.isDirectory()) {
    const names = readdirSync(path);
    const bins = names.filter((n) => isSplitFile(n, split)).sort(naturalCompare);
    const hasRec = REC_NAMES.some(([t, v]) => names.includes(t) && names.includes(v));
    if (bins.length > 0 && !hasRec) return openBins(bins.map((n) => join(path, n)), opts);
    const found = findInDir(path);
    if (!found) throw new UserError(`${path}: no CIFAR data for the ${split} split here; looked for ${LOOKED_FOR}`);
    return openSource(found[split], split, opts);
  }
  const size = fileSize(path);
  const head = readHead(path, 4);
  if (size >= 4 && head.readUInt32LE(0) === RECORDIO_MAGIC) return openRec(path, opts);
  if (head[0] === 0x1f && head[1] === 0x8b) return openTar(path, split, opts);
  if (binLayout(size, path, opts.labelField)) return openBins([path], opts);
  if (/\.bin$/i.test(path)) throw badBinSize(path, size);
  throw new UserError(
    `${path}: unknown format: not a RecordIO file (first word 0x${size >= 4 ? head.readUInt32LE(0).toString(16).padStart(8, '0') : '?'} at byte offset 0, expected magic 0xced7230a), not gzip, and its size ${size} is not a multiple of the CIFAR record size 3073`,
  );
}

function defaultClassNames(n: number): string[] {
  return n === 10 ? [...CIFAR10_CLASSES] : Array.from({ length: n }, (_, i) => `class ${i}`);
}

function openRec(path: string, opts: SourceOptions): OpenedSource {
  const labels: number[] = [];
  const notes: string[] = [];
  let multi: number | null = null;
  const onRecord = (payload: Buffer, index: number, offset: number) => {
    const where = `${path}: record ${index} at byte offset ${offset}`;
    const rec = parseImageRecord(payload, where);
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
  const locs = forEachRecord(path, { idx: idxPathFor(path), limit: opts.limit }, onRecord);
  return {
    format: 'recordio',
    path,
    numSamples: locs.length,
    labels: Int32Array.from(labels),
    classNames: defaultClassNames(opts.numClasses),
    notes,
    spec: {
      kind: 'rec',
      path,
      offsets: Float64Array.from(locs, (l) => l.offset),
      spans: Float64Array.from(locs, (l) => l.span),
    },
  };
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

function openBins(paths: string[], opts: SourceOptions): OpenedSource {
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
    // Stream the labels in chunks; the pixels stay on disk until a worker reads them.
    const fd = openSync(p, 'r');
    try {
      const per = 1024;
      const buf = Buffer.alloc(per * l.recordBytes);
      for (let start = 0; start < count; start += per) {
        const n = Math.min(per, count - start);
        readSync(fd, buf, 0, n * l.recordBytes, start * l.recordBytes);
        binLabels(buf, l, n, p, start, opts, labels);
      }
    } finally {
      closeSync(fd);
    }
    files.push({ path: p, count });
    remaining -= count;
  }
  const names = classNamesNear(paths[0]!, layout!, opts.labelField);
  return {
    format: layout!.dataset === 'cifar100' ? 'cifar100-binary' : 'cifar-binary',
    path: paths.length === 1 ? paths[0]! : `${paths[0]!.replace(/[^/]*$/, '')}{${paths.map((p) => basename(p)).join(',')}}`,
    numSamples: labels.length,
    labels: Int32Array.from(labels),
    classNames: names ?? defaultClassNames(opts.numClasses),
    notes: [],
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
  const shared = new SharedArrayBuffer(count * t.layout.recordBytes);
  new Uint8Array(shared).set(t.records.subarray(0, count * t.layout.recordBytes));
  return {
    format: t.layout.dataset === 'cifar100' ? 'cifar100-binary-tar.gz' : 'cifar-binary-tar.gz',
    path: `${path}:{${t.members.map((m) => basename(m)).join(',')}}`,
    numSamples: count,
    labels: Int32Array.from(labels),
    classNames: t.classNames ?? defaultClassNames(opts.numClasses),
    notes: [],
    spec: { kind: 'mem', records: shared, recordBytes: t.layout.recordBytes },
  };
}

/** Pixel bytes of a CIFAR binary record start after its label byte(s). */
export function pixelOffset(recordBytes: number): number {
  return recordBytes - RAW_CIFAR_BYTES;
}
