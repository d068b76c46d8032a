/**
 * File-system helpers shared by the data, training and report modules.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from './errors.js';

function errCode(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? err.message;
}

/**
 * Creates `dir` and its missing parents one level at a time, like `mkdir -p`.
 * (Not `mkdirSync(dir, { recursive: true })`: on Node 20 that loops forever, burning CPU, when
 * mkdir answers ENOENT under an existing parent, as it does for `/proc/nope`.)
 * @param purpose what the directory is for, in the message (`download directory`, `run directory`).
 * @throws UserError (exit 2) naming `dir`, the component that failed and the error code, e.g.
 *   `/tmp/f/x: cannot create the run directory: /tmp/f is not a directory (ENOTDIR)`.
 */
export function ensureDirectory(dir: string, purpose = 'directory'): void {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      const code = errCode(e);
      // ENOTDIR: some ancestor is a file; walking up names it in the error below.
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(p) !== p) {
        missing.push(p);
        p = dirname(p);
        continue;
      }
      throw new UserError(`${dir}: cannot create the ${purpose}: stat ${p} failed (${code})`, 2, { cause: e });
    }
    if (!isDir) throw new UserError(`${dir}: cannot create the ${purpose}: ${p} is not a directory (ENOTDIR)`);
    break;
  }
  for (const m of missing.reverse()) {
    try {
      mkdirSync(m);
    } catch (e) {
      const code = errCode(e);
      if (code === 'EEXIST' && statSync(m, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw new UserError(`${dir}: cannot create the ${purpose}: mkdir ${m} failed (${code})`, 2, { cause: e });
    }
  }
}
