/**
 * TensorBoard event files (`events.out.tfevents.<secs>.<host>`): scalar summaries that TensorBoard,
 * W&B (`wandb sync --sync-tensorboard`) and other tools read, written without TensorFlow.
 *
 * Record framing (TensorFlow's `tensorflow/core/lib/io/record_writer.cc`): each record is
 *   uint64 little-endian length n · uint32 LE masked CRC32C of those 8 bytes · n bytes of data ·
 *   uint32 LE masked CRC32C of the data,
 * with mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 mod 2³² (`tensorflow/core/lib/hash/crc32c.h`).
 * Each record's data is one `Event` message (`tensorflow/core/util/event.proto`): wall_time = 1
 * (double, seconds since 1970), step = 2 (int64), file_version = 3 (string, the first event of a
 * file: `brain.Event:2`), summary = 5 (`Summary`, `tensorflow/core/framework/summary.proto`:
 * value = 1, repeated `Summary.Value`: tag = 1 string, simple_value = 2 float).
 *
 * CRC32C comes from `@aws-crypto/crc32c`, the protobuf wire format from `@bufbuild/protobuf`.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@aws-crypto/crc32c';
import { BinaryReader, BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import writeFileAtomic from 'write-file-atomic';

/** The `file_version` of the first event of every file. */
export const FILE_VERSION = 'brain.Event:2';

/** One scalar summary value. */
export interface Scalar {
  tag: string;
  /** Stored as a float32 (`simple_value`). */
  value: number;
}

/** A decoded `Event` (only the fields this module writes). */
export interface TfEvent {
  /** Seconds since 1970-01-01 UTC. */
  wallTime: number;
  step: number;
  /** Set on a file's first event only. */
  fileVersion?: string;
  scalars: Scalar[];
}

/** The masked CRC32C of `data`, as TensorFlow's record files store it (uint32). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data) >>> 0;
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames `data` as one record (see the module comment). */
export function encodeRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Serialises an `Event` message. */
export function encodeEvent(e: TfEvent): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.Bit64).double(e.wallTime);
  w.tag(2, WireType.Varint).int64(e.step);
  if (e.fileVersion !== undefined) w.tag(3, WireType.LengthDelimited).string(e.fileVersion);
  if (e.scalars.length > 0) {
    w.tag(5, WireType.LengthDelimited).fork();
    for (const s of e.scalars) {
      w.tag(1, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).string(s.tag);
      w.tag(2, WireType.Bit32).float(s.value);
      w.join();
    }
    w.join();
  }
  return w.finish();
}

/** Parses an `Event` message written by {@link encodeEvent} (other fields are skipped). */
export function decodeEvent(data: Uint8Array): TfEvent {
  const r = new BinaryReader(data);
  const e: TfEvent = { wallTime: 0, step: 0, scalars: [] };
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === WireType.Bit64) e.wallTime = r.double();
    else if (field === 2 && type === WireType.Varint) e.step = Number(r.int64());
    else if (field === 3 && type === WireType.LengthDelimited) e.fileVersion = r.string();
    else if (field === 5 && type === WireType.LengthDelimited) {
      const s = new BinaryReader(r.bytes());
      while (s.pos < s.len) {
        const [f, t] = s.tag();
        if (f !== 1 || t !== WireType.LengthDelimited) {
          s.skip(t, f);
          continue;
        }
        const v = new BinaryReader(s.bytes());
        const scalar: Scalar = { tag: '', value: NaN };
        while (v.pos < v.len) {
          const [vf, vt] = v.tag();
          if (vf === 1 && vt === WireType.LengthDelimited) scalar.tag = v.string();
          else if (vf === 2 && vt === WireType.Bit32) scalar.value = v.float();
          else v.skip(vt, vf);
        }
        e.scalars.push(scalar);
      }
    } else r.skip(type, field);
  }
  return e;
}

/**
 * Splits a file's bytes into records, stopping at the first one that is cut short or whose CRCs do
 * not match (the tail a kill -9 can leave).
 * @returns the records' data and the number of bytes they span.
 */
export function splitRecords(buf: Uint8Array): { records: Uint8Array[]; validBytes: number } {
  const records: Uint8Array[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  while (pos + 12 <= buf.length) {
    const n = Number(view.getBigUint64(pos, true));
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(buf.subarray(pos, pos + 8))) break;
    if (pos + 12 + n + 4 > buf.length) break;
    const data = buf.subarray(pos + 12, pos + 12 + n);
    if (view.getUint32(pos + 12 + n, true) !== maskedCrc32c(data)) break;
    records.push(data);
    pos += 16 + n;
  }
  return { records, validBytes: pos };
}

/** Whether a file name is an event file (TensorBoard reads every file whose name holds `tfevents`). */
export function isEventFile(name: string): boolean {
  return name.startsWith('events.out.tfevents.');
}

/**
 * Appends events to a new event file in `dir` (created when missing), one record per write, so a
 * reader (or a crash) sees whole records only, up to the last one written.
 */
export class EventFileWriter {
  /** Path of the file. */
  readonly file: string;
  private fd: number | null;

  /**
   * Creates `<dir>/events.out.tfevents.<secs>.<host>` (with `.<pid>.<k>` added when that name is
   * taken) and writes its first event, `file_version`.
   * @param now wall clock in seconds (tests pass a fixed one).
   */
  constructor(
    dir: string,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {
    mkdirSync(dir, { recursive: true });
    const t = now();
    const base = `events.out.tfevents.${Math.floor(t)}.${hostname()}`;
    let name = base;
    for (let k = 1; existsSync(join(dir, name)); k++) name = `${base}.${process.pid}.${k}`;
    this.file = join(dir, name);
    this.fd = openSync(this.file, 'wx');
    this.write({ wallTime: t, step: 0, fileVersion: FILE_VERSION, scalars: [] });
  }

  /** Writes one event with the given scalars at `step` (nothing when `values` is empty). */
  scalars(step: number, values: Scalar[], wallTime = this.now()): void {
    if (values.length > 0) this.write({ wallTime, step, scalars: values });
  }

  private write(e: TfEvent): void {
    if (this.fd === null) throw new Error(`${this.file}: event file is closed`);
    writeSync(this.fd, encodeRecord(encodeEvent(e)));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Rewrites the event files of `dir` keeping only the whole records (a torn tail is dropped) whose
 * scalars `keep` accepts; an event left without scalars is dropped, the file_version event kept.
 * For `--resume`: events logged after the checkpoint the run goes on from are removed, so that the
 * resumed run continues the curves without repeated steps. Files are replaced atomically.
 * @param onTorn told of each file whose tail was cut off (bytes after its last whole record).
 * @returns the number of scalars removed (those of a torn record cannot be counted).
 */
export function trimEventFiles(dir: string, keep: (tag: string, step: number) => boolean, onTorn?: (file: string, bytes: number) => void): number {
  if (!existsSync(dir)) return 0;
  let removed = 0;
  for (const name of readdirSync(dir).filter(isEventFile).sort()) {
    const file = join(dir, name);
    const buf = readFileSync(file);
    const { records, validBytes } = splitRecords(buf);
    const kept: Uint8Array[] = [];
    let changed = validBytes !== buf.length;
    if (changed) onTorn?.(file, buf.length - validBytes);
    for (const data of records) {
      const e = decodeEvent(data);
      const scalars = e.scalars.filter((s) => keep(s.tag, e.step));
      removed += e.scalars.length - scalars.length;
      if (scalars.length === e.scalars.length) kept.push(encodeRecord(data));
      else {
        changed = true;
        if (scalars.length > 0) kept.push(encodeRecord(encodeEvent({ ...e, scalars })));
      }
    }
    if (changed) writeFileAtomic.sync(file, Buffer.concat(kept));
  }
  return removed;
}

/**
 * The steps at which the (whole) events of the files in `dir` hold a scalar whose tag starts with
 * `prefix`, e.g. `epoch/`; empty when `dir` does not exist.
 */
export function scalarSteps(dir: string, prefix: string): Set<number> {
  const steps = new Set<number>();
  if (!existsSync(dir)) return steps;
  for (const name of readdirSync(dir).filter(isEventFile)) {
    for (const data of splitRecords(readFileSync(join(dir, name))).records) {
      const e = decodeEvent(data);
      if (e.scalars.some((x) => x.tag.startsWith(prefix))) steps.add(e.step);
    }
  }
  return steps;
}
