/**
 * dmlc RecordIO framing, as MXNet's `.rec` files use it (dmlc-core include/dmlc/recordio.h,
 * src/recordio.cc).
 *
 * A file is a sequence of frames. Each frame is a little-endian uint32 magic `0xced7230a`, a
 * uint32 `lrec` (upper 3 bits: cflag, lower 29 bits: payload length), the payload, then zero
 * padding to a multiple of 4 bytes. cflag 0 is a whole record; 1/2/3 are the first/middle/last
 * part of a record that the writer split wherever the payload held the magic at a 4-byte-aligned
 * offset; the reader joins the parts with the magic put back between them.
 *
 * Files are never read whole: {@link scanRecordIO} streams through the file in chunks, and
 * {@link readRecordAt} reads one record's bytes with a positioned read.
 */
import { closeSync, openSync, readSync, fstatSync, existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { UserError } from '../errors.js';

/** The dmlc RecordIO magic number. */
export const RECORDIO_MAGIC = 0xced7230a;
const LEN_MASK = (1 << 29) - 1;
const MAGIC_BYTES = Buffer.from([0x0a, 0x23, 0xd7, 0xce]);

/**
 * The first `n` bytes of a file, to detect its format from the content (RecordIO magic
 * {@link RECORDIO_MAGIC} as a little-endian uint32 at offset 0, gzip signature `1f 8b`).
 * @param path the file; the caller has checked it exists (e.g. with {@link fileSize}).
 * @param n how many bytes to read.
 * @returns a buffer of exactly `n` bytes; bytes past the end of a shorter file are 0.
 * @throws the node:fs error when the file cannot be opened or read.
 */
export function readHead(path: string, n: number): Buffer {
  const head = Buffer.alloc(n);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, n, 0);
  } finally {
    closeSync(fd);
  }
  return head;
}

/** Where one record sits in a file. */
export interface RecordLocation {
  /** Byte offset of the record's first frame header. */
  offset: number;
  /** Bytes from `offset` to the end of the record's last frame (padding included). */
  span: number;
}

/**
 * Packs payloads into RecordIO bytes exactly as dmlc's RecordIOWriter does (used to build test
 * fixtures): a payload holding the magic at a 4-byte-aligned offset is split there into parts
 * with cflag 1 (first), 2 (middle), 3 (last), the magic itself dropped.
 * @param payloads record payloads.
 * @returns the file bytes.
 */
export function encodeRecordIO(payloads: Uint8Array[]): Buffer {
  const out: Buffer[] = [];
  const frame = (cflag: number, data: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(RECORDIO_MAGIC, 0);
    head.writeUInt32LE(((cflag << 29) | data.length) >>> 0, 4);
    out.push(head, Buffer.from(data), Buffer.alloc((4 - (data.length % 4)) % 4));
  };
  for (const p of payloads) {
    if (p.length > LEN_MASK) throw new Error(`record of ${p.length} bytes exceeds the RecordIO limit of ${LEN_MASK}`);
    const cuts: number[] = [];
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    for (let i = 0; i + 4 <= p.length; i += 4) if (dv.getUint32(i, true) === RECORDIO_MAGIC) cuts.push(i);
    if (cuts.length === 0) {
      frame(0, p);
      continue;
    }
    let start = 0;
    cuts.forEach((c, k) => {
      frame(k === 0 ? 1 : 2, p.subarray(start, c));
      start = c + 4;
    });
    frame(3, p.subarray(start));
  }
  return Buffer.concat(out);
}

/**
 * Joins the frames of the record that starts at `buf[0]` (a record's bytes read from `file` at
 * `fileOffset`).
 * @returns the payload and the number of bytes the record's frames occupy.
 * @throws UserError on a bad magic, an unexpected cflag or a record that runs past `buf`.
 */
export function parseRecord(buf: Uint8Array, file: string, fileOffset: number, atEof = true): { payload: Buffer; span: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const parts: Uint8Array[] = [];
  let pos = 0;
  for (;;) {
    if (pos + 8 > buf.length) {
      throw new UserError(
        `${file}: truncated record at byte offset ${fileOffset + pos}: ${buf.length - pos} bytes left, a frame header needs 8${atEof ? ' (file ends inside a record)' : ''}`,
      );
    }
    const magic = dv.getUint32(pos, true);
    if (magic !== RECORDIO_MAGIC) {
      throw new UserError(
        `${file}: bad RecordIO magic 0x${magic.toString(16).padStart(8, '0')} at byte offset ${fileOffset + pos} (expected 0xced7230a)${fileOffset + pos === 0 ? '; not a RecordIO file' : ''}`,
      );
    }
    const lrec = dv.getUint32(pos + 4, true);
    const cflag = lrec >>> 29;
    const len = lrec & LEN_MASK;
    const first = parts.length === 0;
    if ((first && (cflag === 2 || cflag === 3)) || (!first && (cflag === 0 || cflag === 1))) {
      throw new UserError(`${file}: RecordIO frame at byte offset ${fileOffset + pos} has cflag ${cflag}, out of sequence`);
    }
    const end = pos + 8 + len;
    if (end > buf.length) {
      throw new UserError(
        `${file}: truncated record at byte offset ${fileOffset + pos}: frame holds ${len} bytes, only ${buf.length - pos - 8} follow`,
      );
    }
    parts.push(buf.subarray(pos + 8, end));
    pos = end + ((4 - (len % 4)) % 4);
    if (cflag === 0 || cflag === 3) break;
  }
  const span = Math.min(pos, buf.length);
  if (parts.length === 1) return { payload: Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength), span };
  const joined: Uint8Array[] = [];
  parts.forEach((p, i) => {
    if (i > 0) joined.push(MAGIC_BYTES);
    joined.push(p);
  });
  return { payload: Buffer.concat(joined), span };
}

/**
 * `statSync` for a data path the user named (a file or a directory).
 * @throws UserError `<path>: no such file or directory` when it does not exist.
 */
export function statDataPath(path: string): Stats {
  try {
    return statSync(path);
  } catch {
    throw new UserError(`${path}: no such file or directory`);
  }
}

/** Size of a regular file; UserError when it is missing or empty. */
export function fileSize(path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? String(e)})`}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new UserError(`${path}: is a directory, expected a file`);
    if (st.size === 0) throw new UserError(`${path}: empty file`);
    return st.size;
  } finally {
    closeSync(fd);
  }
}

/**
 * Finds every record of a RecordIO file in one streaming pass (chunks of `chunkSize` bytes).
 * @param path the `.rec` file.
 * @param limit stop after this many records (null = all).
 * @param onRecord called with each record's payload (e.g. to read its header), in file order.
 * @returns the records' locations in file order.
 * @throws UserError naming the byte offset on a bad magic, a truncated record or an empty file.
 */
export function scanRecordIO(
  path: string,
  limit: number | null = null,
  onRecord?: (payload: Buffer, index: number, offset: number) => void,
  chunkSize = 4 << 20,
): RecordLocation[] {
  const size = fileSize(path);
  const fd = openSync(path, 'r');
  const locs: RecordLocation[] = [];
  try {
    let buf = Buffer.alloc(chunkSize);
    let bufStart = 0; // file offset of buf[0]
    let bufLen = 0;
    let pos = 0; // file offset of the next record
    while (pos < size && (limit === null || locs.length < limit)) {
      // Make sure the buffer holds at least the frame header and, if possible, the whole record.
      let rel = pos - bufStart;
      const need = () => {
        const avail = bufLen - rel;
        if (avail < 8) return 8;
        const len = buf.readUInt32LE(rel + 4) & LEN_MASK;
        return 8 + len + 8; // this frame plus the next header (to follow split records)
      };
      for (;;) {
        const want = need();
        if (bufLen - rel >= want || bufStart + bufLen >= size) break;
        // Move the unread tail to the front and refill.
        if (rel > 0) {
          buf.copy(buf, 0, rel, bufLen);
          bufLen -= rel;
          bufStart += rel;
          rel = 0;
        }
        if (want > buf.length) {
          const bigger = Buffer.alloc(Math.max(want, buf.length * 2));
          buf.copy(bigger, 0, 0, bufLen);
          buf = bigger;
        }
        const n = readSync(fd, buf, bufLen, buf.length - bufLen, bufStart + bufLen);
        if (n === 0) break;
        bufLen += n;
      }
      let rec: { payload: Buffer; span: number };
      try {
        rec = parseRecord(buf.subarray(rel, bufLen), path, pos, bufStart + bufLen >= size);
      } catch (e) {
        // A split record may need more than one frame beyond the buffer: grow and retry.
        if (e instanceof UserError && /truncated/.test(e.message) && bufStart + bufLen < size) {
          const bigger = Buffer.alloc(buf.length * 2);
          buf.copy(bigger, 0, rel, bufLen);
          bufLen -= rel;
          bufStart += rel;
          buf = bigger;
          const n = readSync(fd, buf, bufLen, buf.length - bufLen, bufStart + bufLen);
          bufLen += n;
          continue;
        }
        throw e;
      }
      onRecord?.(rec.payload, locs.length, pos);
      locs.push({ offset: pos, span: rec.span });
      pos += rec.span;
    }
  } finally {
    closeSync(fd);
  }
  return locs;
}

/**
 * Reads an MXNet `.idx` file: one `key<TAB>byte offset` line per record.
 * @returns the records' offsets sorted in file order, with spans up to the next record (the last
 *   one up to `recSize`).
 * @throws UserError naming the line of a malformed entry or an unaligned offset; naming the `.rec`
 *   and both sizes when an offset lies past its end (a truncated `.rec`, or an `.idx` of another file).
 */
export function readIdx(idxPath: string, recPath: string, recSize: number): RecordLocation[] {
  const text = readFileSync(idxPath, 'utf8');
  const offsets: number[] = [];
  let beyond: { off: number; line: number } | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = /^(\S+)\s+(\d+)$/.exec(line);
    if (!m) throw new UserError(`${idxPath}: line ${i + 1}: expected "key<TAB>byte offset", got ${JSON.stringify(line.slice(0, 60))}`);
    const off = Number(m[2]);
    if (off % 4 !== 0) throw new UserError(`${idxPath}: line ${i + 1}: offset ${off} is not a 4-byte-aligned position (RecordIO records start at multiples of 4)`);
    if (off >= recSize && (beyond === null || off > beyond.off)) beyond = { off, line: i + 1 };
    offsets.push(off);
  }
  if (offsets.length === 0) throw new UserError(`${idxPath}: no entries`);
  if (beyond !== null) {
    // The index is well formed but points past the end: the .rec is what is wrong (cut off, or another file's).
    throw new UserError(
      `${recPath}: shorter than its index expects: the file has ${recSize} bytes, but ${idxPath} line ${beyond.line} has a record at byte offset ${beyond.off} ` +
        `(the .rec is truncated, or the .idx belongs to another file)`,
    );
  }
  offsets.sort((a, b) => a - b);
  return offsets.map((offset, i) => ({ offset, span: (i + 1 < offsets.length ? offsets[i + 1]! : recSize) - offset }));
}

/** The `.idx` file next to a `.rec` (same name, `.idx` extension), or null when there is none. */
export function idxPathFor(recPath: string): string | null {
  const p = recPath.replace(/\.rec$/i, '') + '.idx';
  return p !== recPath && existsSync(p) ? p : null;
}

/**
 * Reads the record at `loc` with one positioned read on an open file.
 * @param fd an open file descriptor of `path`.
 * @param scratch a reusable buffer; a bigger one is allocated when the record does not fit.
 * @returns the payload (may share memory with `scratch`: copy it before the next read).
 */
export function readRecordAt(fd: number, path: string, loc: RecordLocation, scratch: { buf: Buffer }): Buffer {
  if (scratch.buf.length < loc.span) scratch.buf = Buffer.alloc(Math.max(loc.span, scratch.buf.length * 2));
  const n = readSync(fd, scratch.buf, 0, loc.span, loc.offset);
  return parseRecord(scratch.buf.subarray(0, n), path, loc.offset, n < loc.span).payload;
}

/**
 * Calls `onRecord` for every record of a `.rec`, in file order: through its `.idx` when given
 * (one positioned read per record, see {@link readRecordAt}), else by one streaming pass
 * ({@link scanRecordIO}).
 * @param path the `.rec` file.
 * @param opts.idx the `.idx` file next to it (see {@link idxPathFor}), or null to scan.
 * @param opts.limit stop after this many records (null or absent = all).
 * @param onRecord called with each record's payload, its index and the byte offset of its first
 *   frame; the payload may share memory with a reused buffer: copy it to keep it.
 * @returns the visited records' locations in file order.
 * @throws UserError from {@link readIdx} (malformed `.idx`), {@link parseRecord} (bad magic,
 *   truncated record) or {@link fileSize} (missing or empty file).
 */
export function forEachRecord(
  path: string,
  opts: { idx: string | null; limit?: number | null },
  onRecord: (payload: Buffer, index: number, offset: number) => void,
): RecordLocation[] {
  const limit = opts.limit ?? null;
  if (opts.idx === null) return scanRecordIO(path, limit, onRecord);
  let locs = readIdx(opts.idx, path, fileSize(path));
  if (limit !== null) locs = locs.slice(0, limit);
  const fd = openSync(path, 'r');
  const scratch = { buf: Buffer.alloc(1 << 16) };
  try {
    locs.forEach((loc, i) => onRecord(readRecordAt(fd, path, loc, scratch), i, loc.offset));
  } finally {
    closeSync(fd);
  }
  return locs;
}
