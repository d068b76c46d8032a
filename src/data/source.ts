/**
 * Opening a data path for one split: finding the files, detecting the format from the content
 * (RecordIO magic, gzip signature, pickle protocol header, CIFAR binary record size), indexing the
 * records (the CIFAR python version's pixels are read into shared memory) and reading and
 * checking every label. The result's {@link SourceSpec} is plain data (typed arrays and shared
 * memory) that worker threads use to read the images themselves (see reader.ts).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import { RECORDIO_MAGIC, fileSize, forEachRecord, idxPathFor, readHead, statDataPath } from './recordio.js';
import { parseImageRecord } from './imagerecord.js';
import {
  badBinSize,
  binLayout,
  classNamesNear,
  forEachBinChunk,
  isSplitFile,
  naturalCompare,
  binTarSplit,
  takeTarSplit,
  type BinLayout,
} from './cifarbin.js';
import { RAW_CIFAR_BYTES, detectEncoding, type ImageEncoding } from './decode.js';
import { isPySplitFile } from './cifarpy.js';
import { openPy, readMeta } from './pysource.js';
import { checkLabel, defaultClassNames } from './labels.js';
import { describeBins, describeRec, missingBatchesNote } from './describe.js';
import type { OpenedSource, SourceOptions, SourceSpec } from './sourcetypes.js';

export type { OpenedSource, SourceOptions, SourceSpec } from './sourcetypes.js';


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
 * then the directory itself); the python version's batches (`data_batch_*` + `test_batch`, train
 * again the directory); a `cifar-10-batches-bin/`, `cifar-10-batches-py/` (or `cifar-100-binary/`)
 * subdirectory holding the batches; or, when none of these is there, `cifar-10-binary.tar.gz` or
 * `cifar-10-python.tar.gz` (both splits).
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
  const trainPy = names.filter((n) => isPySplitFile(n, 'train'));
  if (trainPy.length > 0 && names.includes('test_batch')) return { train: dir, val: join(dir, 'test_batch') };
  // An unpacked archive before the archive itself (torchvision keeps both): no gunzip pass.
  for (const sub of ['cifar-10-batches-bin', 'cifar-10-batches-py', 'cifar-100-binary']) {
    if (names.includes(sub)) {
      const found = findInDir(join(dir, sub));
      if (found) return found;
    }
  }
  for (const tgz of ['cifar-10-binary.tar.gz', 'cifar-10-python.tar.gz', 'cifar-100-binary.tar.gz']) {
    if (names.includes(tgz)) return { train: join(dir, tgz), val: join(dir, tgz) };
  }
  return null;
}

/** What {@link findInDir} looks for, for error messages. */
export const LOOKED_FOR =
  'cifar10_train.rec + cifar10_val.rec, data_batch_*.bin + test_batch.bin, data_batch_* + test_batch (python version), cifar-10-binary.tar.gz, cifar-10-python.tar.gz, or a cifar-10-batches-bin/ or cifar-10-batches-py/ subdirectory';

/**
 * Opens `path` (a `.rec`, a CIFAR `.bin`, a CIFAR python batch, a directory, or a CIFAR binary or
 * python `.tar.gz`) for `split`. The format is detected from the content, not the name.
 * @throws UserError (one line naming the file and the byte offset or record) on a missing or
 *   empty file, an unknown format, bad RecordIO framing, a truncated record, a `.bin` whose size
 *   is not a multiple of the record size, a damaged pickle or one that is no CIFAR batch (see
 *   cifarpy.ts), or a label that is not an integer in [0, numClasses).
 */
export async function openSource(path: string, split: 'train' | 'val', opts: SourceOptions): Promise<OpenedSource> {
  const st = statDataPath(path);
  if (st.isDirectory()) {
    const names = readdirSync(path);
    const bins = names.filter((n) => isSplitFile(n, split)).sort(naturalCompare);
    const hasRec = REC_NAMES.some(([t, v]) => names.includes(t) && names.includes(v));
    if (bins.length > 0 && !hasRec) return openBins(bins.map((n) => join(path, n)), opts, split, path);
    const pys = names.filter((n) => isPySplitFile(n, split)).sort(naturalCompare);
    if (pys.length > 0 && !hasRec) {
      const batches = pys.map((n) => ({ name: n, where: join(path, n), bytes: () => readFileSync(join(path, n)) }));
      return openPy(batches, opts, split, { dir: path, prefix: join(path, '/'), meta: () => readMeta(join(path, 'batches.meta')) });
    }
    const found = findInDir(path);
    if (!found) throw new UserError(`${path}: no CIFAR data for the ${split} split here; looked for ${LOOKED_FOR}`);
    return openSource(found[split], split, opts);
  }
  const format = detectFormat(path, opts.labelField);
  if (format === 'rec') return openRec(path, opts, split);
  if (format === 'tar.gz') return openTar(path, split, opts);
  if (format === 'pickle') {
    const batch = { name: basename(path), where: path, bytes: () => readFileSync(path) };
    return openPy([batch], opts, split, { dir: null, prefix: join(dirname(path), '/'), meta: () => readMeta(join(dirname(path), 'batches.meta')) });
  }
  return openBins([path], opts, split, null);
}

/**
 * The format of a data file, from its content (`data inspect` and training use this one test):
 * `rec` (RecordIO magic in the first word), `tar.gz` (gzip signature), `pickle` (the PROTO opcode
 * 0x80 with protocol 2 to 5: the CIFAR python version; not for a `.bin` name), `bin` (a size that
 * is a whole number of CIFAR-10 or CIFAR-100 records, or a `.bin` name; its size is checked when read).
 * @throws UserError for a missing or empty file, or none of these.
 */
export function detectFormat(path: string, labelField: 'fine' | 'coarse'): 'rec' | 'tar.gz' | 'pickle' | 'bin' {
  const size = fileSize(path);
  const head = readHead(path, 4);
  if (size >= 4 && head.readUInt32LE(0) === RECORDIO_MAGIC) return 'rec';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (size >= 2 && head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5 && !/\.bin$/i.test(path)) return 'pickle';
  if (binLayout(size, path, labelField) || /\.bin$/i.test(path)) return 'bin';
  throw new UserError(
    `${path}: unknown format: not a RecordIO file (first word 0x${size >= 4 ? head.readUInt32LE(0).toString(16).padStart(8, '0') : '?'} at byte offset 0, expected magic 0xced7230a), not gzip, not a Python pickle of protocol 2 or later (0x80 0x02..0x05), and its size ${size} is not a multiple of the CIFAR record size 3073`,
  );
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
  const taken = await takeTarSplit(path, split);
  const members = [...taken.files.keys()];
  if (!members.some((m) => isSplitFile(m, split)) && members.some((m) => isPySplitFile(m, split))) {
    const batches = members
      .filter((m) => isPySplitFile(m, split))
      .sort(naturalCompare)
      .map((m) => ({ name: basename(m), where: `${path}:${m}`, bytes: () => taken.files.get(m)! }));
    const meta = [...taken.meta].find(([n]) => n === 'batches.meta');
    return openPy(batches, opts, split, { dir: path, prefix: `${path}:`, meta: () => (meta ? { bytes: meta[1], where: `${path}:batches.meta` } : null) });
  }
  const t = binTarSplit(path, split, taken, opts.labelField);
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

