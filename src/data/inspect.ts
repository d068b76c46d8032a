/**
 * `mixup data inspect`: what a data file (RecordIO, CIFAR binary or python version, or a `.tar.gz`
 * of either) holds — format, record count, image size and encoding,
 * label histogram, id range — and anything odd (several labels per record, non-integer or
 * out-of-range labels, undecodable images, images that are not 32×32). Every image is decoded, so
 * an inspect that finds nothing odd means the file trains.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError, firstLine } from '../errors.js';
import { fileSize, forEachRecord, idxPathFor, statDataPath } from './recordio.js';
import { parseImageRecord } from './imagerecord.js';
import { decodeImage, detectEncoding } from './decode.js';
import { CIFAR10_CLASSES, badBinSize, binLayout, binTarSplit, forEachBinChunk, isSplitFile, naturalCompare, takeTarSplit, type BinLayout } from './cifarbin.js';
import { decodePyBatch, isPySplitFile } from './cifarpy.js';
import { missingBatchesNote } from './describe.js';
import { detectFormat, findInDir } from './source.js';

/** What one file (or one split of an archive) holds. */
export interface InspectReport {
  path: string;
  format: string;
  records: number;
  /** `WxH` → count. */
  sizes: Map<string, number>;
  /** encoding → count. */
  encodings: Map<string, number>;
  /** label value → count (the label used: data.labelIndex for multi-label records). */
  labels: Map<number, number>;
  /** Records per label count (1 = a single label). */
  labelsPerRecord: Map<number, number>;
  idMin: bigint | null;
  idMax: bigint | null;
  /** Odd things found, each a line naming the record. */
  odd: string[];
  /** How many odd things there were in all (odd lists at most a few of each kind). */
  oddCount: number;
  notes: string[];
}

const MAX_ODD_PER_KIND = 5;

function newReport(path: string, format: string): InspectReport {
  return {
    path,
    format,
    records: 0,
    sizes: new Map(),
    encodings: new Map(),
    labels: new Map(),
    labelsPerRecord: new Map(),
    idMin: null,
    idMax: null,
    odd: [],
    oddCount: 0,
    notes: [],
  };
}

function bump<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function oddOne(r: InspectReport, kinds: Map<string, number>, kind: string, line: string): void {
  r.oddCount++;
  const n = (kinds.get(kind) ?? 0) + 1;
  kinds.set(kind, n);
  if (n <= MAX_ODD_PER_KIND) r.odd.push(line);
  else if (n === MAX_ODD_PER_KIND + 1) r.odd.push(`(more records with ${kind}; counting only)`);
}

function inspectRec(path: string, numClasses: number, labelIndex: number): InspectReport {
  const idx = idxPathFor(path);
  const r = newReport(path, `MXNet RecordIO image records${idx ? `, index ${basename(idx)}` : ', no .idx'}`);
  const kinds = new Map<string, number>();
  const onRecord = (payload: Buffer, i: number, offset: number) => {
    const where = `record ${i} at byte offset ${offset}`;
    r.records++;
    let rec;
    try {
      rec = parseImageRecord(payload, where);
    } catch (e) {
      oddOne(r, kinds, 'a short header', firstLine(e));
      return;
    }
    bump(r.labelsPerRecord, rec.labels.length);
    if (r.idMin === null || rec.id < r.idMin) r.idMin = rec.id;
    if (r.idMax === null || rec.id > r.idMax) r.idMax = rec.id;
    const label = rec.labels[rec.flag > 0 ? Math.min(labelIndex, rec.labels.length - 1) : 0]!;
    bump(r.labels, label);
    if (!Number.isInteger(label)) oddOne(r, kinds, 'non-integer labels', `${where}: label ${label} is not an integer`);
    else if (label < 0 || label >= numClasses) oddOne(r, kinds, 'out-of-range labels', `${where}: label ${label} is outside [0, ${numClasses})`);
    const enc = detectEncoding(rec.image);
    bump(r.encodings, enc);
    try {
      const img = decodeImage(rec.image, where);
      bump(r.sizes, `${img.width}x${img.height}`);
      if (img.width !== 32 || img.height !== 32) oddOne(r, kinds, 'non-32x32 images', `${where}: image is ${img.width}x${img.height}, expected 32x32`);
    } catch (e) {
      oddOne(r, kinds, 'undecodable images', firstLine(e));
    }
  };
  forEachRecord(path, { idx }, onRecord);
  const multi = [...r.labelsPerRecord.keys()].filter((k) => k > 1);
  if (multi.length > 0) {
    r.notes.push(`records carry ${multi.join('/')} labels; the histogram counts label ${labelIndex} (data.labelIndex)`);
  }
  return r;
}

function inspectBinRecords(r: InspectReport, records: Uint8Array, layout: BinLayout, numClasses: number, where: (i: number) => string, kinds: Map<string, number>): void {
  const n = records.length / layout.recordBytes;
  for (let i = 0; i < n; i++) {
    const label = records[i * layout.recordBytes + layout.labelByte]!;
    bump(r.labels, label);
    if (label >= numClasses) oddOne(r, kinds, 'out-of-range labels', `${where(i)}: label ${label} is outside [0, ${numClasses})`);
  }
  r.records += n;
  r.labelsPerRecord.set(layout.dataset === 'cifar100' ? 2 : 1, r.records);
  r.sizes.set('32x32', r.records);
  r.encodings.set('raw planes (R, G, B)', r.records);
}

function inspectBin(path: string, numClasses: number, labelField: 'fine' | 'coarse'): InspectReport {
  const size = fileSize(path);
  const layout = binLayout(size, path, labelField);
  if (!layout) throw badBinSize(path, size);
  const r = newReport(path, layout.dataset === 'cifar100' ? `CIFAR-100 binary (3074-byte records, ${labelField} labels)` : 'CIFAR-10 binary (3073-byte records)');
  const kinds = new Map<string, number>();
  forEachBinChunk(path, layout, size / layout.recordBytes, (records, start) =>
    inspectBinRecords(r, records, layout, numClasses, (i) => `record ${start + i} at byte offset ${(start + i) * layout.recordBytes}`, kinds),
  );
  return r;
}

/** Labels of a CIFAR python batch into the report (the images are raw planes: nothing to decode). */
function inspectPyBatch(r: InspectReport, bytes: Uint8Array, where: string, numClasses: number, kinds: Map<string, number>): void {
  const b = decodePyBatch(bytes, where);
  b.labels.forEach((label, i) => {
    bump(r.labels, label);
    if (!Number.isInteger(label)) oddOne(r, kinds, 'non-integer labels', `${where}: image ${i}: label ${String(label)} is not an integer`);
    else if (label < 0 || label >= numClasses) oddOne(r, kinds, 'out-of-range labels', `${where}: image ${i}: label ${label} is outside [0, ${numClasses})`);
  });
  r.records += b.labels.length;
  r.labelsPerRecord.set(1, r.records);
  r.sizes.set('32x32', r.records);
  r.encodings.set('raw planes (R, G, B)', r.records);
}

const PY_FORMAT = 'CIFAR-10 python version (pickled dict: numpy uint8 [N,3072] data + labels)';

function inspectPy(path: string, numClasses: number): InspectReport {
  const r = newReport(path, PY_FORMAT);
  inspectPyBatch(r, readFileSync(path), path, numClasses, new Map());
  return r;
}

async function inspectTar(path: string, numClasses: number, labelField: 'fine' | 'coarse'): Promise<InspectReport[]> {
  const out: InspectReport[] = [];
  for (const split of ['train', 'val'] as const) {
    const taken = await takeTarSplit(path, split);
    const members = [...taken.files.keys()];
    const py = members.filter((m) => isPySplitFile(m, split)).sort(naturalCompare);
    if (py.length > 0 && !members.some((m) => isSplitFile(m, split))) {
      const r = newReport(`${path}:{${py.map((m) => basename(m)).join(',')}}`, `CIFAR-10 python archive (.tar.gz), ${split} split`);
      const kinds = new Map<string, number>();
      for (const m of py) inspectPyBatch(r, taken.files.get(m)!, `${path}:${m}`, numClasses, kinds);
      if (split === 'train') addNote(r, missingBatchesNote(path, py, r.records, 'python'));
      out.push(r);
      continue;
    }
    const t = binTarSplit(path, split, taken, labelField);
    const r = newReport(`${path}:{${t.members.map((m) => basename(m)).join(',')}}`, `CIFAR binary archive (.tar.gz), ${split} split`);
    inspectBinRecords(r, t.records, t.layout, numClasses, (i) => `record ${i} of the ${split} split`, new Map());
    if (split === 'train' && t.layout.dataset === 'cifar10') addNote(r, missingBatchesNote(path, t.members, r.records));
    out.push(r);
  }
  return out;
}

function addNote(r: InspectReport, note: string | null): void {
  if (note !== null) r.notes.push(note);
}

/**
 * Inspects a `.rec`, a CIFAR `.bin`, a CIFAR python batch, a CIFAR binary or python `.tar.gz`, or
 * a directory holding them (each file found is reported; a CIFAR-10 batch directory lacking some of
 * data_batch_1..5 or the test batch gets a note saying so).
 * @throws UserError when the file is missing, empty, of an unknown format or structurally broken
 *   (bad RecordIO framing, truncated record, `.bin` size).
 */
export async function inspectPath(path: string, opts: { numClasses?: number; labelIndex?: number; labelField?: 'fine' | 'coarse' } = {}): Promise<InspectReport[]> {
  const numClasses = opts.numClasses ?? 10;
  const labelField = opts.labelField ?? 'fine';
  const st = statDataPath(path);
  if (st.isDirectory()) {
    const found = findInDir(path);
    const files: string[] = [];
    // Without both splits, the batch files that are there (a folder with data_batch_1.bin only).
    for (const p of found ? [found.train, found.val] : [path]) {
      if (statSync(p).isDirectory()) {
        files.push(...statDir(p));
      } else if (!files.includes(p)) files.push(p);
    }
    if (files.length === 0) throw new UserError(`${path}: no CIFAR data files found in this directory`);
    const out: InspectReport[] = [];
    for (const f of files) out.push(...(await inspectPath(f, opts)));
    batchDirNotes(files, out);
    return out;
  }
  const format = detectFormat(path, labelField);
  if (format === 'rec') return [inspectRec(path, numClasses, opts.labelIndex ?? 0)];
  if (format === 'tar.gz') return inspectTar(path, numClasses, labelField);
  if (format === 'pickle') return [inspectPy(path, numClasses)];
  return [inspectBin(path, numClasses, labelField)];
}

/** The binary and python-version batch files of a directory. */
function statDir(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => isSplitFile(n, 'train') || isSplitFile(n, 'val') || isPySplitFile(n, 'train') || isPySplitFile(n, 'val'))
    .sort(naturalCompare)
    .map((n) => join(dir, n));
}

/**
 * What training would say of a CIFAR-10 batch directory, on the report of its first training
 * file: the training batches missing of data_batch_1..5 (training would use fewer samples than
 * the usual 50,000), or no test batch (no validation split).
 */
function batchDirNotes(files: string[], reports: InspectReport[]): void {
  for (const version of ['binary', 'python'] as const) {
    const isTrain = (f: string) => (version === 'binary' ? isSplitFile(f, 'train') && basename(f) !== 'train.bin' : isPySplitFile(f, 'train'));
    const isVal = (f: string) => (version === 'binary' ? basename(f) === 'test_batch.bin' : isPySplitFile(f, 'val'));
    const train = files.map((f, k) => ({ f, r: reports[k]! })).filter((x) => isTrain(x.f));
    if (train.length === 0 || reports.length !== files.length) continue;
    const first = train[0]!.r;
    const dir = dirname(train[0]!.f);
    const records = train.reduce((n, x) => n + x.r.records, 0);
    addNote(first, missingBatchesNote(dir, train.map((x) => basename(x.f)), records, version));
    if (!files.some(isVal)) addNote(first, `${dir}: no ${version === 'binary' ? 'test_batch.bin' : 'test_batch'}: no validation split here (training needs one)`);
  }
}

/** The report as text lines. */
export function formatInspect(r: InspectReport, classNames: string[] = CIFAR10_CLASSES): string[] {
  const fmtMap = (m: Map<string, number>) => [...m].map(([k, v]) => `${k} ×${v}`).join(', ') || '-';
  const lines = [
    `${r.path}`,
    `  format:   ${r.format}`,
    `  records:  ${r.records}`,
    `  images:   ${fmtMap(r.sizes)}; encoding ${fmtMap(r.encodings)}`,
  ];
  const labelCounts = [...r.labelsPerRecord].sort((a, b) => a[0] - b[0]);
  if (labelCounts.some(([k]) => k !== 1)) lines.push(`  labels per record: ${labelCounts.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  const keys = [...r.labels.keys()].sort((a, b) => a - b);
  lines.push(`  labels:   ${keys.length} distinct`);
  for (const k of keys) {
    const name = Number.isInteger(k) && k >= 0 && k < classNames.length ? ` ${classNames[k]}` : '';
    lines.push(`    ${String(k).padStart(4)}${name.padEnd(12)} ${r.labels.get(k)}`);
  }
  if (r.idMin !== null) lines.push(`  ids:      ${r.idMin}..${r.idMax}`);
  for (const n of r.notes) lines.push(`  note:     ${n}`);
  if (r.oddCount === 0) lines.push('  odd:      nothing');
  else {
    lines.push(`  odd:      ${r.oddCount} problem(s)`);
    for (const o of r.odd) lines.push(`    ${o}`);
  }
  return lines;
}
