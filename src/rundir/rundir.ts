/**
 * The run directory: what `mixup train` writes and how a run is found again.
 *
 * ```
 * <out>/config.json                    the resolved config (what `mixup report` reads)
 * <out>/run.json                       where the config came from: file, overrides (for --resume checks)
 * <out>/status.json                    running | finished | interrupted | failed, last finished epoch
 * <out>/curves.csv                     one row per finished epoch
 * <out>/train.log                      every line the run printed, with its time (appended on resume)
 * <out>/checkpoints/epoch-NNNN/        state after NNNN finished epochs
 * <out>/checkpoints/epoch-NNNN+batch-BBBBBB/   ... plus BBBBBB batches of the next epoch (Ctrl-C)
 * <out>/checkpoints/epoch-NNNN.damaged/        one that did not load, set aside by --resume (never deleted)
 * ```
 *
 * A checkpoint is written into `checkpoints/.tmp-<name>-<pid>` and renamed into place, so a directory
 * named `epoch-*` is always complete; the newest one (by epoch, then batch) is the one to resume from.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { ensureDirectory } from '../fsutil.js';
import { UserError } from '../errors.js';
import type { Config } from '../config/schema.js';
import { validateConfig } from '../config/load.js';
import { crashPoint, pausePoint } from './testhooks.js';

/** Life cycle of a run, as recorded in status.json. */
export const RUN_STATUSES = ['running', 'finished', 'interrupted', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Contents of `<out>/status.json`. */
export interface StatusFile {
  status: RunStatus;
  /** Last finished epoch (1-based; 0 before the first). */
  epoch: number;
  /** Planned epochs (train.epochs). */
  epochs: number;
  /** ISO 8601 time of the last update. */
  updated: string;
  /** One line on why the run stopped, for interrupted / failed. */
  message?: string;
  /** Process id of the writer while running. */
  pid?: number;
  /** Host name of the writer while running (a pid means nothing on another machine). */
  host?: string;
}

/** Contents of `<out>/run.json`: where the config came from. */
export interface RunSource {
  /** Config file as given on the command line, resolved to an absolute path. */
  configFile: string;
  /** `[key, value]` overrides from the command line, in order. */
  overrides: [string, unknown][];
  /** mixup version that started the run. */
  version: string;
  created: string;
  /** Directory the run was started from (relative data paths were resolved against it). */
  cwd?: string;
}

/**
 * Where a checkpoint sits in training: `epoch` finished (trained and evaluated) epochs plus `batch`
 * batches of the next. `batch` equal to the batches per epoch means that epoch is trained but not
 * evaluated (an interrupt during its evaluation): resuming evaluates it first.
 */
export interface CheckpointPosition {
  epoch: number;
  batch: number;
}

/** Paths of the files in a run directory. */
export function runPaths(out: string) {
  return {
    dir: out,
    config: join(out, 'config.json'),
    source: join(out, 'run.json'),
    status: join(out, 'status.json'),
    curves: join(out, 'curves.csv'),
    log: join(out, 'train.log'),
    checkpoints: join(out, 'checkpoints'),
  };
}

/**
 * Writes JSON atomically (temp file + rename), pretty-printed, ending in a newline.
 * @throws UserError naming the directory and the file (not write-file-atomic's temp file), e.g.
 *   `runs/x: cannot write config.json there (EACCES: permission denied)`.
 */
export function writeJsonAtomic(file: string, value: unknown): void {
  try {
    writeFileAtomic.sync(file, JSON.stringify(value, null, 2) + '\n');
  } catch (e) {
    throw new UserError(`${dirname(file)}: cannot write ${basename(file)} there (${errorSummary(e)})`, 2, { cause: e });
  }
}

/** `EACCES: permission denied` from a Node file-system error (its message without the paths). */
function errorSummary(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/,\s*\w+\s+'.*$/, '');
}

/**
 * Reads a JSON file the project wrote (also `mixup report`'s reader of run directories).
 * @param detailed say why the file cannot be read or parsed (the error code, the parser's message)
 *   instead of the short `no such file` / `a damaged run directory?`.
 * @throws UserError naming the file when it is missing or not JSON.
 */
export function readJson<T>(file: string, detailed = false): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(detailed ? `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` : `${file}: no such file`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UserError(detailed ? `${file}: not valid JSON (${(e as Error).message})` : `${file}: not valid JSON (a damaged run directory?)`);
  }
}

/** status.json of a run, or null when there is none. */
export function readStatus(out: string): StatusFile | null {
  const f = runPaths(out).status;
  return existsSync(f) ? readJson<StatusFile>(f) : null;
}

/**
 * Updates status.json: atomically, or, when the run directory does not take a new file (no write
 * permission on it, a full disk) but status.json itself is writable, in place, so that a run never
 * keeps saying `running` because its last word could not be written.
 * @throws UserError when neither works.
 */
export function writeStatus(out: string, s: Omit<StatusFile, 'updated'>): void {
  const file = runPaths(out).status;
  const value = { ...s, updated: new Date().toISOString() };
  try {
    writeJsonAtomic(file, value);
  } catch (e) {
    if (!existsSync(file)) throw e;
    try {
      writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
    } catch {
      throw e;
    }
  }
}

/** Whether process `pid` exists on this machine (signal 0; EPERM means it exists but is not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The process that status.json says is training `out` right now, or null: status `running` with the pid
 * of a live process on this host other than this one. A `running` status left behind by a process that
 * died (kill -9, out of memory, power loss) or that ran on another host yields null.
 */
export function liveTrainer(out: string): number | null {
  const st = readStatus(out);
  if (st?.status !== 'running' || st.pid === undefined || st.pid === process.pid) return null;
  if (st.host !== undefined && st.host !== hostname()) return null;
  return processAlive(st.pid) ? st.pid : null;
}

/**
 * Refuses to touch a run that another live process is training (see {@link liveTrainer}).
 * @throws UserError `<out>: another process (pid N) is training this run; ...`.
 */
export function assertNotTraining(out: string): void {
  const pid = liveTrainer(out);
  if (pid !== null) throw new UserError(`${out}: another process (pid ${pid}) is training this run; wait for it or stop it (kill -INT ${pid}) first`);
}

/** Whether `out` already holds (part of) a run: a status, curves or checkpoints. */
export function holdsRun(out: string): boolean {
  const p = runPaths(out);
  return existsSync(p.status) || existsSync(p.curves) || existsSync(p.checkpoints);
}

/** Names a run directory holds (and a temporary file of an atomic write of them). */
const RUN_ENTRIES = new Set(['config.json', 'run.json', 'status.json', 'curves.csv', 'train.log', 'checkpoints']);

/** Entries of directory `out` that a run does not write, sorted (none when `out` does not exist). */
function foreignEntries(out: string): string[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .filter((n) => !RUN_ENTRIES.has(n) && !/^(config|run|status)\.json\.[0-9a-z]+$/.test(n))
    .sort();
}

/**
 * The checks of {@link prepareNewRun}, without writing anything (so bad data can be found first).
 * @throws UserError when `out` is a file, is being trained by a live process, or, unless
 *   `overwrite`, holds a run or files that are not a run's (a `notes/` folder given as --out).
 */
export function assertCanStartNewRun(out: string, overwrite: boolean): void {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UserError(`--out ${out}: exists and is not a directory`);
  assertNotTraining(out);
  const foreign = foreignEntries(out);
  if (foreign.length > 0 && !holdsRun(out) && !overwrite) {
    const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, ... (${foreign.length} entries)` : '');
    throw new UserError(`--out ${out}: holds files that are not a run (${shown}); choose another --out, or pass --overwrite to write the run beside them (they are kept)`);
  }
  if (holdsRun(out) && !overwrite) {
    const st = readStatus(out);
    const sameHost = st?.host === undefined || st.host === hostname();
    const gone = st?.status === 'running' && st.pid !== undefined && sameHost ? `, but its process ${st.pid} is gone` : '';
    const what = st ? `${/^[aeiou]/.test(st.status) ? 'an' : 'a'} ${st.status} run (epoch ${st.epoch}/${st.epochs}${gone})` : 'a run';
    throw new UserError(`${out} already holds ${what}; continue it with --resume ${out}, choose another --out, or pass --overwrite to replace it`);
  }
}

/**
 * Prepares `out` for a new run.
 * @param overwrite remove an existing run's files first (config, status, curves, log, checkpoints).
 * @throws UserError when `out` holds a run and `overwrite` is false, another live process trains it, or `out` is a file.
 */
export function prepareNewRun(out: string, overwrite: boolean): void {
  assertCanStartNewRun(out, overwrite);
  if (holdsRun(out)) {
    const p = runPaths(out);
    for (const f of [p.config, p.source, p.status, p.curves, p.log]) rmSync(f, { force: true });
    rmSync(p.checkpoints, { recursive: true, force: true });
  }
  ensureDirectory(runPaths(out).checkpoints, 'run directory');
}

/** Directory name of a checkpoint: `epoch-0003`, or `epoch-0003+batch-000120` inside epoch 4. */
export function checkpointName(pos: CheckpointPosition): string {
  const e = `epoch-${String(pos.epoch).padStart(4, '0')}`;
  return pos.batch > 0 ? `${e}+batch-${String(pos.batch).padStart(6, '0')}` : e;
}

/** Inverse of {@link checkpointName}; null for other names (temporary directories among them). */
export function parseCheckpointName(name: string): CheckpointPosition | null {
  const m = /^epoch-(\d{4,})(?:\+batch-(\d{6,}))?$/.exec(name);
  return m ? { epoch: Number(m[1]), batch: m[2] ? Number(m[2]) : 0 } : null;
}

/** Complete checkpoints of a run, oldest first. */
export function listCheckpoints(out: string): { name: string; dir: string; pos: CheckpointPosition }[] {
  const dir = runPaths(out).checkpoints;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => ({ name, dir: join(dir, name), pos: parseCheckpointName(name) }))
    .filter((c): c is { name: string; dir: string; pos: CheckpointPosition } => c.pos !== null)
    .sort((a, b) => a.pos.epoch - b.pos.epoch || a.pos.batch - b.pos.batch);
}

/**
 * Tidies `<out>/checkpoints` after a crash: removes the temporary directories of unfinished checkpoint
 * writes, and puts back a complete checkpoint that a crash caught while it was being replaced by a new
 * one of the same name (`.tmp-old-<name>-<pid>` while `<name>` is missing). Call before resuming.
 */
export function cleanCheckpoints(out: string): void {
  const root = runPaths(out).checkpoints;
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const old = /^\.tmp-old-(.+)-\d+$/.exec(name);
    if (old && parseCheckpointName(old[1]!) && !existsSync(join(root, old[1]!))) renameSync(join(root, name), join(root, old[1]!));
    else if (name.startsWith('.tmp-')) rmSync(join(root, name), { recursive: true, force: true });
  }
}

/**
 * Writes a checkpoint crash-safely: `write` fills a fresh temporary directory, which is then
 * renamed to its final name (replacing an older one of the same name). A crash at any point leaves
 * either no new checkpoint or a complete one; leftover temporary directories are removed on the next call.
 * @param write fills the directory it is given.
 * @returns the final directory.
 */
export async function writeCheckpoint(out: string, pos: CheckpointPosition, write: (dir: string) => Promise<void>): Promise<string> {
  const root = runPaths(out).checkpoints;
  ensureDirectory(root, 'run directory');
  cleanCheckpoints(out);
  const name = checkpointName(pos);
  const tmp = join(root, `.tmp-${name}-${process.pid}`);
  mkdirSync(tmp);
  await pausePoint('checkpoint-before-write', name);
  await write(tmp);
  crashPoint('checkpoint-before-rename', name);
  const final = join(root, name);
  if (existsSync(final)) {
    const old = join(root, `.tmp-old-${name}-${process.pid}`);
    renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, final);
  }
  return final;
}

/**
 * Removes older checkpoints so that at most `keep` remain besides those of `keepEpochs` and the
 * best epoch's, and every partial (mid-epoch) checkpoint older than the newest checkpoint.
 * @param keep number of newest checkpoints to keep; null keeps all (partials are still pruned).
 * @param keepEpochs epochs whose end-of-epoch checkpoints are never removed (`train.keepEpochs`).
 * @param best the best epoch (best.ts `bestEpoch`), whose end-of-epoch checkpoint is kept too; null: none.
 */
export function pruneCheckpoints(out: string, keep: number | null, keepEpochs: readonly number[] = [], best: number | null = null): void {
  const isKept = (c: { pos: CheckpointPosition }) => c.pos.batch === 0 && keepEpochs.includes(c.pos.epoch);
  const isBest = (c: { pos: CheckpointPosition }) => c.pos.batch === 0 && c.pos.epoch === best;
  const all = listCheckpoints(out);
  const newest = all[all.length - 1];
  const others = all.filter((c) => !isKept(c));
  others.forEach((c, i) => {
    const tooOld = keep !== null && i < others.length - keep && !isBest(c);
    const stalePartial = c.pos.batch > 0 && c !== newest;
    if (tooOld || stalePartial) {
      // Renamed first, so that a crash while deleting never leaves half a directory named epoch-*.
      const doomed = join(runPaths(out).checkpoints, `.tmp-del-${c.name}-${process.pid}`);
      renameSync(c.dir, doomed);
      rmSync(doomed, { recursive: true, force: true });
    }
  });
}

/**
 * Moves a checkpoint that does not load out of the way, never deleting it: to `<name>.damaged` (or
 * `<name>.damaged-2`, ...) beside it, a name that {@link listCheckpoints}, pruning and a new
 * checkpoint of the same position all leave alone.
 * @returns the new path.
 */
export function setAsideCheckpoint(dir: string): string {
  let to = `${dir}.damaged`;
  for (let k = 2; existsSync(to); k++) to = `${dir}.damaged-${k}`;
  renameSync(dir, to);
  return to;
}

/**
 * Finds a checkpoint of a run: the newest, or the one at the end of epoch `epoch`.
 * Accepts a run directory or a checkpoint directory itself.
 * @throws UserError when there is none (naming what exists).
 */
export function findCheckpoint(path: string, epoch?: number): { dir: string; pos: CheckpointPosition } {
  const self = parseCheckpointName(path.replace(/\/+$/, '').split('/').pop() ?? '');
  // a checkpoint directory itself (also one that lost its model.json: loading it says so)
  if (self && existsSync(path) && statSync(path).isDirectory() && !existsSync(join(path, 'checkpoints'))) {
    if (epoch !== undefined) throw new UserError(`${path} is a single checkpoint; --epoch needs a run directory`);
    return { dir: path, pos: self };
  }
  if (!existsSync(path)) throw new UserError(`${path}: no such run or checkpoint directory`);
  const base = path.replace(/\/+$/, '');
  if (/\.damaged(-\d+)?$/.test(base) && parseCheckpointName(basename(base).replace(/\.damaged(-\d+)?$/, ''))) {
    const run = dirname(dirname(base));
    throw new UserError(`${path}: a checkpoint that did not load, set aside by --resume (kept, never used again); give the run directory ${run}, or --epoch N of it`);
  }
  const all = listCheckpoints(path);
  if (all.length === 0) {
    // a checkpoint's files in a folder of another name (copied out of its run and renamed): checkpoints are found by name
    if (existsSync(join(path, 'state.json')) && existsSync(join(path, 'model.json'))) {
      let pos: CheckpointPosition | null = null;
      try {
        const st = readJson<Partial<CheckpointPosition>>(join(path, 'state.json'));
        if (Number.isInteger(st.epoch) && Number.isInteger(st.batch)) pos = { epoch: st.epoch!, batch: st.batch! };
      } catch {
        // a damaged state.json: the line below names no epoch
      }
      const name = pos === null ? 'epoch-NNNN' : checkpointName(pos);
      throw new UserError(`${path}: holds a checkpoint's files, but a checkpoint directory is known by its name (${name}${pos === null ? '' : ', from its state.json'}); rename it ${name}, or give its run directory`);
    }
    throw new UserError(`${path}: no checkpoint found (expected ${join(path, 'checkpoints', 'epoch-NNNN')})`);
  }
  if (epoch === undefined) return all[all.length - 1]!;
  const hit = all.find((c) => c.pos.epoch === epoch && c.pos.batch === 0);
  if (!hit) {
    const have = all.filter((c) => c.pos.batch === 0).map((c) => c.pos.epoch);
    throw new UserError(`${path}: no checkpoint of epoch ${epoch}; epochs with a checkpoint: ${have.join(', ') || 'none'}`);
  }
  return hit;
}

/**
 * The checkpoint `mixup test` would score and its config, without loading weights (the backend is
 * chosen from the config before any tensor exists). For a run directory without `epoch`, the config
 * is that of the newest checkpoint whose config.json reads (the newest may be damaged).
 * @throws UserError for a missing checkpoint or a damaged config.json.
 */
export function findRunConfig(path: string, epoch?: number): { dir: string; pos: CheckpointPosition; cfg: Config } {
  const ck = findCheckpoint(path, epoch);
  const configOf = (dir: string) => validateConfig(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
  if (epoch !== undefined || ck.dir === path) return { ...ck, cfg: configOf(ck.dir) };
  // The newest checkpoint is the one scored unless it does not load (then an older one is, and
  // mixup test says why): its config only picks the backend, so the newest readable one will do.
  let first: unknown = null;
  for (const c of listCheckpoints(path).reverse()) {
    try {
      return { ...ck, cfg: configOf(c.dir) };
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      first ??= e;
    }
  }
  throw first;
}
