/**
 * The CIFAR "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html): records of label
 * byte(s) then 3,072 pixel bytes (1,024 R, then G, then B, each 32×32 row-major). CIFAR-10 has one
 * label byte (3,073-byte records, `data_batch_1..5.bin`, `test_batch.bin`); CIFAR-100 has two,
 * coarse then fine (3,074-byte records, `train.bin`, `test.bin`). The `.tar.gz` archives are read
 * directly through gunzip and the `tar` package.
 */
import { basename, dirname, join, resolve } from 'node:path';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { list as tarList, type ReadEntry } from 'tar';
import { UserError } from '../errors.js';
import { RAW_CIFAR_BYTES } from './decode.js';
import { isPySplitFile } from './cifarpy.js';

/** Record layout of a CIFAR binary file. */
export interface BinLayout {
  /** 3,073 (CIFAR-10) or 3,074 (CIFAR-100). */
  recordBytes: number;
  /** Byte of the record that holds the label used (CIFAR-100: 0 coarse, 1 fine). */
  labelByte: number;
  /** Which dataset the layout is. */
  dataset: 'cifar10' | 'cifar100';
}

/** The CIFAR-10 class names, in label order (batches.meta.txt). */
export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/**
 * The layout of a CIFAR binary file from its size and name: a size that is a multiple of 3,073
 * only is CIFAR-10, of 3,074 only CIFAR-100; when both divide it, names `train.bin`/`test.bin`
 * mean CIFAR-100, anything else CIFAR-10.
 * @param labelField which CIFAR-100 label (`data.labelField`).
 * @returns the layout, or null when the size fits neither.
 */
export function binLayout(size: number, name: string, labelField: 'fine' | 'coarse' = 'fine'): BinLayout | null {
  const c10 = size > 0 && size % (RAW_CIFAR_BYTES + 1) === 0;
  const c100 = size > 0 && size % (RAW_CIFAR_BYTES + 2) === 0;
  const named100 = /^(train|test)\.bin$/i.test(basename(name));
  if (c100 && (!c10 || named100)) return { recordBytes: RAW_CIFAR_BYTES + 2, labelByte: labelField === 'fine' ? 1 : 0, dataset: 'cifar100' };
  if (c10) return { recordBytes: RAW_CIFAR_BYTES + 1, labelByte: 0, dataset: 'cifar10' };
  return null;
}

/** Error for a `.bin` whose size fits no CIFAR layout. */
export function badBinSize(path: string, size: number): UserError {
  return new UserError(
    `${path}: size ${size} bytes is not a multiple of the CIFAR-10 record size 3073 (1 label + 3072 pixel bytes) nor of CIFAR-100's 3074; the last record is truncated or this is not a CIFAR binary file`,
  );
}

/**
 * Reads the first `count` records of a CIFAR binary file in chunks of 1,024 records (3 MB), never the
 * whole file: `onChunk(records, first, n)` gets `n` records starting at record `first`; `records` is
 * reused for the next chunk.
 */
export function forEachBinChunk(path: string, layout: BinLayout, count: number, onChunk: (records: Uint8Array, first: number, n: number) => void): void {
  const per = 1024;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(per * layout.recordBytes);
    for (let first = 0; first < count; first += per) {
      const n = Math.min(per, count - first);
      readSync(fd, buf, 0, n * layout.recordBytes, first * layout.recordBytes);
      onChunk(buf.subarray(0, n * layout.recordBytes), first, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Which files of a split a CIFAR binary directory or archive holds. */
export function isSplitFile(name: string, split: 'train' | 'val'): boolean {
  const b = basename(name);
  return split === 'train' ? /^data_batch_\d+\.bin$/.test(b) || b === 'train.bin' : b === 'test_batch.bin' || b === 'test.bin';
}

/** Sorts `data_batch_2.bin` before `data_batch_10.bin`. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * Class names from `batches.meta.txt` (CIFAR-10) or `fine_label_names.txt` /
 * `coarse_label_names.txt` (CIFAR-100) next to a binary file, if present.
 */
export function classNamesNear(file: string, layout: BinLayout, labelField: 'fine' | 'coarse'): string[] | null {
  const names =
    layout.dataset === 'cifar10' ? ['batches.meta.txt'] : [labelField === 'fine' ? 'fine_label_names.txt' : 'coarse_label_names.txt'];
  for (const n of names) {
    const p = join(dirname(file), n);
    if (existsSync(p)) return parseNames(readFileSync(p, 'utf8'));
  }
  return null;
}

function parseNames(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** One split read out of a `cifar-10-binary.tar.gz` (or CIFAR-100) archive. */
export interface TarSplit {
  /** The split's records, concatenated in file order (`data_batch_1` first), in a SharedArrayBuffer. */
  records: Uint8Array;
  layout: BinLayout;
  /** Member names the records came from, and how many records each holds. */
  members: string[];
  counts: number[];
  classNames: string[] | null;
}

/**
 * What one pass through an archive found: the members of each split (binary `data_batch_N.bin`
 * or python `data_batch_N` names, see cifarpy.ts), and the class-name files (`batches.meta.txt`,
 * `*names.txt`, the python `batches.meta`), by base name.
 */
export interface TarContents {
  files: Record<'train' | 'val', Map<string, Buffer>>;
  meta: Map<string, Buffer>;
}

/** The class-name files an archive pass keeps. */
function isMetaFile(name: string): boolean {
  return name.endsWith('names.txt') || name === 'batches.meta.txt' || name === 'batches.meta';
}

/**
 * Archives read and not yet taken apart: one gunzip + tar pass serves both splits (training opens
 * the train split, then the val split); each split's members are handed out once and dropped here,
 * so no split is held twice. Keyed by path, size and modification time.
 */
const archives = new Map<string, { contents: Promise<TarContents>; pending: Set<'train' | 'val'> }>();

/** gunzip + tar passes made so far (tests check that both splits take one). */
export let tarPasses = 0;

/** Reads every member of both splits (and the class-name files) in one pass; each into a buffer of its exact size. */
async function readTarContents(path: string): Promise<TarContents> {
  tarPasses++;
  const contents: TarContents = { files: { train: new Map(), val: new Map() }, meta: new Map() };
  try {
    await tarList({
      file: path,
      onReadEntry: (entry: ReadEntry) => {
        const name = basename(entry.path);
        const split = isSplitFile(name, 'train') || isPySplitFile(name, 'train') ? 'train' : isSplitFile(name, 'val') || isPySplitFile(name, 'val') ? 'val' : null;
        const text = isMetaFile(name);
        if (entry.type !== 'File' || (split === null && !text)) {
          entry.resume();
          return;
        }
        const data = Buffer.allocUnsafe(entry.size);
        let at = 0;
        entry.on('data', (c: Buffer) => {
          c.copy(data, at);
          at += c.length;
        });
        entry.on('end', () => {
          if (split === null) contents.meta.set(name, data.subarray(0, at));
          else contents.files[split].set(entry.path, data.subarray(0, at));
        });
      },
    });
  } catch (e) {
    throw new UserError(`${path}: not a readable .tar.gz archive (${(e as Error).message})`);
  }
  return contents;
}

/**
 * The members of one split of a CIFAR `.tar.gz` (binary or python version) and its class-name
 * files, read through gunzip and tar without unpacking to disk. The archive is read once for both
 * splits: the split not asked for is kept until it is (see {@link archives}).
 * @returns `files`: the split's members (path in the archive → bytes); `meta`: class-name files.
 * @throws UserError when the archive is unreadable.
 */
export async function takeTarSplit(path: string, split: 'train' | 'val'): Promise<{ files: Map<string, Buffer>; meta: Map<string, Buffer> }> {
  const st = statSync(path);
  const key = `${resolve(path)}|${st.size}|${st.mtimeMs}`;
  let entry = archives.get(key);
  if (entry === undefined || !entry.pending.has(split)) {
    entry = { contents: readTarContents(path), pending: new Set(['train', 'val']) };
    archives.set(key, entry);
  }
  entry.pending.delete(split);
  if (entry.pending.size === 0) archives.delete(key);
  let read: TarContents;
  try {
    read = await entry.contents;
  } catch (e) {
    archives.delete(key);
    throw e;
  }
  const files = read.files[split];
  read.files[split] = new Map(); // handed out: not held here any more
  return { files, meta: read.meta };
}

/**
 * Reads one split of a CIFAR binary `.tar.gz` (see {@link takeTarSplit}).
 * @throws UserError when the archive is unreadable or holds no binary file of the split.
 */
export async function readTarSplit(path: string, split: 'train' | 'val', labelField: 'fine' | 'coarse'): Promise<TarSplit> {
  return binTarSplit(path, split, await takeTarSplit(path, split), labelField);
}

/**
 * The binary records of one split's archive members (from {@link takeTarSplit}), in one
 * SharedArrayBuffer.
 * @throws UserError when there is no binary member of the split, or a member's size fits no layout.
 */
export function binTarSplit(path: string, split: 'train' | 'val', taken: { files: Map<string, Buffer>; meta: Map<string, Buffer> }, labelField: 'fine' | 'coarse'): TarSplit {
  const { files, meta } = taken;
  const members = [...files.keys()].filter((m) => isSplitFile(m, split)).sort(naturalCompare);
  if (members.length === 0) {
    const want = split === 'train' ? 'data_batch_*.bin (or train.bin), nor the python version\'s data_batch_*,' : 'test_batch.bin (or test.bin), nor the python version\'s test_batch,';
    throw new UserError(`${path}: the archive holds no ${want} for the ${split} split`);
  }
  let layout: BinLayout | null = null;
  for (const m of members) {
    const size = files.get(m)!.length;
    const l = binLayout(size, m, labelField);
    if (!l) throw badBinSize(`${path}:${m}`, size);
    if (layout && l.recordBytes !== layout.recordBytes) throw new UserError(`${path}:${m}: record size ${l.recordBytes} differs from ${layout.recordBytes} of the other members`);
    layout = l;
  }
  const nameFile = layout!.dataset === 'cifar10' ? 'batches.meta.txt' : labelField === 'fine' ? 'fine_label_names.txt' : 'coarse_label_names.txt';
  const names = meta.get(nameFile)?.toString('utf8');
  // Straight into shared memory, which the training pipeline's workers read (no second copy there).
  const records = new Uint8Array(new SharedArrayBuffer(members.reduce((n, m) => n + files.get(m)!.length, 0)));
  let at = 0;
  for (const m of members) {
    records.set(files.get(m)!, at);
    at += files.get(m)!.length;
  }
  return {
    records,
    layout: layout!,
    members,
    counts: members.map((m) => files.get(m)!.length / layout!.recordBytes),
    classNames: names ? parseNames(names) : null,
  };
}
