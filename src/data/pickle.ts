/**
 * Reading Python pickles as plain data, executing nothing. The opcodes are interpreted by the
 * `pickleparser` package; this module gives it the two things that decide what may happen:
 *
 * - the byte reader ({@link StrictReader}): Python 2 `str` (BINSTRING, SHORT_BINSTRING, the
 *   arguments of GLOBAL) is read as latin1, one byte per character, which is what Python 3's
 *   `pickle.load(f, encoding='latin1')` does and what the CIFAR python batches need (they were
 *   written by Python 2's cPickle; their pixels are a `str`). pickleparser's own reader decodes
 *   them as WHATWG "ascii" (windows-1252). Lengths that are negative or run past the end are
 *   refused, so a damaged length can neither move the reader backwards (a loop) nor read beyond
 *   the file.
 * - the name resolver: a pickle names Python callables (GLOBAL / STACK_GLOBAL) that the unpickler
 *   calls (REDUCE, NEWOBJ, OBJ, INST) or whose `__setstate__` it calls (BUILD). Only the few that
 *   rebuild a numpy array, a numpy dtype and a latin1-encoded `bytes` are answered, each with a
 *   function of this module that builds an inert description ({@link NdArray}); any other name is
 *   refused with an error, before anything is called. Persistent ids and extension codes are
 *   refused (pickleparser's defaults throw). pickleparser itself has no `eval` or `Function`.
 *
 * Python values come out as: None → null, bool → boolean, int → number, float → number, str
 * (Python 2) → latin1 string, unicode → string, bytes / bytearray → Uint8Array (a view into the
 * input), list and tuple → Array, dict → Map (never a plain object, so no key can reach a
 * prototype), numpy array → {@link NdArray}.
 * Format: https://docs.python.org/3/library/pickle.html and CPython's Lib/pickletools.py.
 */
import { Parser } from 'pickleparser';

/** A numpy array as a pickle describes it (numpy's `ndarray.__reduce__` / `__setstate__`). */
export class NdArray {
  /** Dimensions, e.g. `[10000, 3072]`. */
  shape: number[] = [];
  /** The dtype's type string as pickled, e.g. `u1` (uint8), `i8`, `f4`. */
  dtype = '';
  /** Byte order of the dtype as pickled: `|` (not applicable), `<`, `>` or `=`. */
  byteOrder = '|';
  /** Fortran (column-major) order. */
  fortran = false;
  /** The raw element bytes, or null when the pickle never set them. */
  data: Uint8Array | null = null;

  /** numpy's `ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))`. */
  __setstate__(state: unknown): void {
    if (!Array.isArray(state) || state.length < 4) throw new Error('numpy array state is not a (version, shape, dtype, fortran, data) tuple');
    const [shape, dtype, fortran, raw] = state.length >= 5 ? state.slice(1) : state;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error('numpy array shape is not a tuple of sizes');
    if (!(dtype instanceof DType)) throw new Error('numpy array dtype is not a numpy.dtype');
    this.shape = shape as number[];
    this.dtype = dtype.str;
    this.byteOrder = dtype.byteOrder;
    this.fortran = fortran === true;
    this.data = asBytes(raw);
    if (this.data === null) throw new Error('numpy array data is neither bytes nor a str');
  }
}

/** A numpy dtype as pickled: `numpy.dtype('u1', 0, 1)` then `__setstate__((3, '|', ...))`. */
class DType {
  byteOrder = '|';
  constructor(readonly str: string) {}
  __setstate__(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.byteOrder = state[1];
  }
}

/** Python 2 `str` (a latin1 string here) or `bytes` as bytes; null for anything else. */
export function asBytes(v: unknown): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Buffer.from(v, 'latin1');
  return null;
}

/** The class `numpy.ndarray` as a marker: `_reconstruct` is given it. */
function ndarrayClass(): never {
  throw new Error('numpy.ndarray is not called directly');
}

/**
 * The Python callables a pickle may name, as the inert functions that stand for them. Each builds
 * a description and calls nothing else. Sources: numpy/_core/numeric.py (`_frombuffer`),
 * numpy/_core/src/multiarray/methods.c (`array_reduce`: `_reconstruct(ndarray, (0,), b'b')` then
 * `__setstate__`), Python 3's protocol-2 pickling of `bytes` as `_codecs.encode(str, 'latin1')`.
 */
const GLOBALS: Record<string, (...args: never[]) => unknown> = {
  'numpy.ndarray': ndarrayClass,
  'numpy.dtype': function (str: unknown) {
    if (typeof str !== 'string') throw new Error('numpy.dtype called without a type string');
    return new DType(str);
  },
  'numpy.core.multiarray._reconstruct': reconstruct,
  'numpy._core.multiarray._reconstruct': reconstruct,
  'numpy.core.numeric._frombuffer': frombuffer,
  'numpy._core.numeric._frombuffer': frombuffer,
  '_codecs.encode': function (s: unknown, encoding: unknown) {
    if (typeof s !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) throw new Error(`_codecs.encode is read only for latin1 strings (got ${String(encoding)})`);
    return Buffer.from(s, 'latin1');
  },
};

function reconstruct(cls: unknown): NdArray {
  if (cls !== ndarrayClass) throw new Error('_reconstruct of something other than numpy.ndarray');
  return new NdArray();
}

function frombuffer(buf: unknown, dtype: unknown, shape: unknown, order: unknown): NdArray {
  const a = new NdArray();
  a.__setstate__([1, shape, dtype, order === 'F', buf]);
  return a;
}

/** What a pickle refers to that is not read: a Python name outside {@link GLOBALS}. */
export class RefusedGlobal extends Error {}

/**
 * pickleparser's reader interface, over one buffer, strict about lengths (see the module comment).
 * Error messages give the byte offset.
 */
class StrictReader {
  private pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get position(): number {
    return this.pos;
  }
  skip(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad length ${n} at byte offset ${this.pos}`);
    if (this.pos + n > this.buf.length) {
      throw new Error(`truncated: ${n} bytes wanted at byte offset ${this.pos}, the file ends at ${this.buf.length}`);
    }
    this.pos += n;
  }
  byte(): number {
    const p = this.pos;
    this.skip(1);
    return this.buf[p]!;
  }
  bytes(n: number): Uint8Array {
    const p = this.pos;
    this.skip(n);
    return this.buf.subarray(p, p + n);
  }
  uint16(): number {
    const p = this.pos;
    this.skip(2);
    return this.view.getUint16(p, true);
  }
  int32(): number {
    const p = this.pos;
    this.skip(4);
    return this.view.getInt32(p, true);
  }
  uint32(): number {
    const p = this.pos;
    this.skip(4);
    return this.view.getUint32(p, true);
  }
  uint64(): number {
    const p = this.pos;
    this.skip(8);
    const v = this.view.getUint32(p, true) + 2 ** 32 * this.view.getUint32(p + 4, true);
    if (!Number.isSafeInteger(v)) throw new Error(`length ${v} at byte offset ${p} is beyond any file`);
    return v;
  }
  float64(): number {
    const p = this.pos;
    this.skip(8);
    return this.view.getFloat64(p, false);
  }
  string(n: number, encoding: 'ascii' | 'utf-8'): string {
    const b = this.bytes(n);
    return encoding === 'utf-8' ? this.utf8.decode(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  }
  line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0) throw new Error(`truncated: no end of line after byte offset ${this.pos}`);
    const s = this.string(end - this.pos, 'ascii');
    this.skip(1);
    return s;
  }
  hasNext(): boolean {
    return this.pos < this.buf.length;
  }
}

const parser = new Parser({
  unpicklingTypeOfDictionary: 'Map',
  unpicklingTypeOfSet: 'array',
  nameResolver: {
    resolve(module: string, name: string) {
      const key = `${module}.${name}`;
      const f = Object.hasOwn(GLOBALS, key) ? GLOBALS[key] : undefined;
      if (f === undefined) throw new RefusedGlobal(`it names the Python object ${module}.${name}, which is not read (only numpy arrays, lists, dicts, numbers and strings are)`);
      return f as (...args: unknown[]) => unknown;
    },
  },
});

/**
 * Unpickles `bytes` (protocols 0-5; the CIFAR python batches are protocol 2) into plain values
 * (see the module comment), running no code the pickle names.
 * @throws Error with a one-line reason (byte offset where known): truncated, an unknown opcode, a
 *   refused Python name ({@link RefusedGlobal}), or a malformed structure.
 */
export function unpickle(bytes: Uint8Array): unknown {
  const reader = new StrictReader(bytes);
  try {
    return parser.read(reader as unknown as Parameters<Parser['read']>[0]);
  } catch (e) {
    if (e instanceof RefusedGlobal) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const where = /byte offset/.test(msg) ? '' : ` (near byte offset ${reader.position})`;
    throw new Error(msg.replace(/\.$/, '') + where);
  }
}
