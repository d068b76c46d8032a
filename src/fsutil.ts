/**
 * File-system helpers shared by the data, training and report modules.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { UserError } from './errors.js';

/** The error code of a file-system error (`ENOENT`), else its message. */
export function errCode(e: unknown): string {
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

/**
 * Checks a file a command is about to write, before any work is done, so that nothing the user has
 * is replaced by mistake: the name must end in one of `extensions`, its directory must exist and be
 * writable, and an existing file is refused unless `force` (the command's `--force`).
 * @param flag the option that named the file, for messages (`--plot`, `--out`).
 * @param extensions allowed endings, lower case with the dot (`['.svg', '.png']`); compared ignoring case.
 * @returns the file's extension as given in `extensions`.
 * @throws UserError (exit 2), e.g. `--out notes.txt: expected a file name ending in .png` or
 *   `--out grid.png: already exists; use --force to replace it`.
 */
export function checkOutputFile(flag: string, file: string, extensions: readonly string[], force: boolean): string {
  const ext = extname(file).toLowerCase();
  if (!extensions.includes(ext)) {
    const list = extensions.length === 1 ? extensions[0]! : `${extensions.slice(0, -1).join(', ')} or ${extensions[extensions.length - 1]!}`;
    throw new UserError(`${flag} ${file}: expected a file name ending in ${list}`);
  }
  const dir = dirname(resolve(file));
  let dirStat;
  try {
    dirStat = statSync(dir);
  } catch (e) {
    throw new UserError(`${flag} ${file}: cannot use directory ${dir} (${errCode(e)})`);
  }
  if (!dirStat.isDirectory()) throw new UserError(`${flag} ${file}: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UserError(`${flag} ${file}: directory ${dir} is not writable (${errCode(e)})`);
  }
  const fileStat = statSync(file, { throwIfNoEntry: false });
  if (fileStat === undefined) return ext; // a new file in a writable directory
  if (!fileStat.isFile()) throw new UserError(`${flag} ${file}: exists and is not a regular file`);
  if (!force) throw new UserError(`${flag} ${file}: already exists; use --force to replace it`);
  try {
    accessSync(file, constants.W_OK);
  } catch (e) {
    throw new UserError(`${flag} ${file}: exists and is not writable (${errCode(e)})`);
  }
  return ext;
}
