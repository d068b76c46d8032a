/**
 * What native code writes to the process's stderr (file descriptor 2) during one synchronous call,
 * captured instead of shown, so that a native library's notices can be filtered before a user sees
 * them. Used for Dawn (./webgpu.ts), whose C++ logging writes with `fprintf(stderr, …)` and has no
 * switch to turn it off.
 *
 * Node has no `dup2`, so descriptor 2 is swapped by what it does have (Linux only):
 * 1. open `/proc/self/fd/2` again: a second descriptor on the same terminal or pipe;
 * 2. create a capture file in the temporary directory and unlink it at once (nothing is left
 *    behind, even after a crash); close descriptor 2 and open the capture file through
 *    `/proc/self/fd/N`: POSIX `open` returns the lowest free descriptor, which is 2;
 * 3. run the call; close 2 and reopen the saved terminal or pipe, which is 2 again;
 * 4. read the capture file.
 * Reopening makes a new open file description. For a terminal or a pipe that writes to the same
 * place; for a regular file it would not share the offset that a `>log 2>&1` redirection shares
 * with stdout, so stdout would overwrite what stderr wrote; a socket cannot be opened this way
 * (Node's child_process gives its children socket pairs, not pipes). So only a terminal, a pipe
 * (FIFO: a shell's `|`) or a file opened for appending (`>>log`, where every write goes to the end)
 * is swapped; with any other stderr, or where a step fails, the call runs uncaptured (its output
 * then reaches stderr as before). Descriptors 0 and 1 must be open (else step 2 would get 0 or 1).
 * Run it while no other thread opens files: between the close and the open another thread's file
 * could take descriptor 2 (the check after each open then gives up capturing).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The result of {@link captureNativeStderr}. */
export interface CapturedStderr<T> {
  /** What the call returned. */
  value: T;
  /** What was written to descriptor 2 during the call (UTF-8); '' when nothing or not captured. */
  text: string;
  /** False when the call ran uncaptured (not Linux; stderr a socket or a file not opened for appending; a failed step). */
  captured: boolean;
}

/** Whether descriptor `fd` was opened with O_APPEND (Linux: the octal `flags:` of /proc/self/fdinfo/FD). */
function isAppending(fd: number): boolean {
  try {
    const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m !== null && (parseInt(m[1]!, 8) & constants.O_APPEND) !== 0;
  } catch {
    return false;
  }
}

/** Whether descriptor `fd` is open. */
function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/**
 * Closes descriptor 2 and opens `path` in its place.
 * @returns true when the new descriptor is 2; otherwise it closes what it opened and returns false.
 */
function reopenStderr(path: string): boolean {
  closeSync(2);
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOCTTY);
  if (fd === 2) return true;
  closeSync(fd);
  return false;
}

/**
 * Runs `fn` (synchronous) with descriptor 2 pointing at a capture file, then restores it.
 * Node's own `process.stderr` writes during `fn` are captured too (they are synchronous here).
 * @returns what `fn` returned and what was written to descriptor 2 meanwhile.
 * @throws what `fn` throws (stderr restored first); an Error when stderr cannot be restored.
 */
export function captureNativeStderr<T>(fn: () => T): CapturedStderr<T> {
  const uncaptured = (): CapturedStderr<T> => ({ value: fn(), text: '', captured: false });
  if (process.platform !== 'linux' || !isOpen(0) || !isOpen(1)) return uncaptured();
  let saved: number | null = null;
  try {
    const st = fstatSync(2);
    if (st.isCharacterDevice() || st.isFIFO() || (st.isFile() && isAppending(2))) saved = openSync('/proc/self/fd/2', constants.O_WRONLY | constants.O_NOCTTY);
  } catch {
    /* a socket (ENXIO) or no /proc */
  }
  if (saved === null) return uncaptured();
  let capture: number;
  try {
    const path = join(tmpdir(), `mixup-stderr-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    capture = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
    unlinkSync(path);
  } catch {
    closeSync(saved);
    return uncaptured();
  }
  const restore = () => {
    if (!reopenStderr(`/proc/self/fd/${saved}`)) throw new Error('could not restore stderr (descriptor 2) after capturing it');
    closeSync(saved);
  };
  let swapped = false;
  try {
    swapped = reopenStderr(`/proc/self/fd/${capture}`);
  } catch {
    /* descriptor 2 is closed: restored below */
  }
  if (!swapped) {
    if (!isOpen(2)) restore();
    else closeSync(saved);
    closeSync(capture);
    return uncaptured();
  }
  let value: T;
  try {
    value = fn();
  } finally {
    restore();
  }
  try {
    const size = fstatSync(capture).size;
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = readSync(capture, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return { value, text: buf.subarray(0, got).toString('utf8'), captured: true };
  } finally {
    closeSync(capture);
  }
}
