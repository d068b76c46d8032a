/**
 * `mixup train --resume`: the config of a run to resume, and whether it may be resumed. Apart from
 * the run loop (run.ts) so that the CLI can check a resume before TensorFlow.js loads.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { Config } from '../config/schema.js';
import { absoluteDataPaths, loadConfig, validateConfig } from '../config/load.js';
import { DEFAULT_DATA_DIR } from '../data/paths.js';
import { readJson, readStatus, runPaths, type RunSource } from '../rundir/rundir.js';

/**
 * Config keys that `--resume` may change with `--set`: how the run copes with damage, not what it
 * trains (so the run stays the same experiment).
 */
export const RESUME_KEYS = ['data.skipUndecodable'] as const;

/**
 * The line for `--resume` of a run that has trained all its epochs (`runs/x: already trained 300 of
 * 300 epochs; nothing to do (raise the total with --epochs N)`), or null when epochs are left (by
 * status.json; the newest checkpoint decides where training goes on).
 */
export function finishedRunLine(cfg: Config): string | null {
  const st = readStatus(cfg.out!);
  return st && st.epoch >= cfg.train.epochs ? nothingToDo(cfg.out!, st.epoch, cfg.train.epochs) : null;
}

/** `runs/x: already trained 3 of 3 epochs; nothing to do (raise the total with --epochs N)`. */
export function nothingToDo(out: string, done: number, epochs: number): string {
  return `${out}: already trained ${done} of ${epochs} epochs; nothing to do (raise the total with --epochs N)`;
}

/**
 * Loads the config of a run to resume and checks that its config file has not changed since.
 * @param out the run directory.
 * @param epochs a new total number of epochs (--epochs), or undefined to keep it.
 * @param force resume even when the config file changed.
 * @param overrides `--set` pairs, only of {@link RESUME_KEYS}.
 * @throws UserError when the run cannot be resumed (no run, finished and not extended, config
 *   changed), or an override is of another key or an invalid value.
 */
export function prepareResume(out: string, epochs: number | undefined, force: boolean, overrides: [string, unknown][] = []): Config {
  const p = runPaths(out);
  if (!existsSync(p.config)) throw new UserError(`--resume ${out}: no run there (no ${p.config})`);
  let cfg = validateConfig(readJson(p.config), p.config);
  for (const [key, value] of overrides) {
    if (!(RESUME_KEYS as readonly string[]).includes(key)) {
      throw new UserError(`train --resume: --set ${key} would change the run's recipe; with --resume only --set ${RESUME_KEYS.join(', ')} (the run keeps its config.json)`);
    }
    cfg = validateConfig({ ...cfg, data: { ...cfg.data, skipUndecodable: value } }, `--set ${key}`);
  }
  if (existsSync(p.source) && !force) {
    const src = readJson<RunSource>(p.source);
    if (existsSync(src.configFile)) {
      const now = absoluteDataPaths(loadConfig(src.configFile, { overrides: src.overrides }), src.cwd);
      // A run started without data paths got the default data directory (cli/train.ts), which its
      // config.json holds but the file and overrides do not: compare like with like.
      const { dir, train, val } = now.data;
      if (dir === null && train === null && val === null && cfg.data.dir === resolve(src.cwd ?? process.cwd(), DEFAULT_DATA_DIR)) now.data = { ...now.data, dir: cfg.data.dir };
      now.out = cfg.out;
      now.train.epochs = cfg.train.epochs;
      now.data.skipUndecodable = cfg.data.skipUndecodable; // RESUME_KEYS: not part of what the run trains
      if (JSON.stringify(now) !== JSON.stringify(cfg)) {
        throw new UserError(`--resume ${out}: ${src.configFile} (or a file it extends) changed since the run started; resume anyway with --force (the run keeps its own config.json)`);
      }
    }
  }
  const done = readStatus(out)?.epoch ?? 0;
  if (epochs !== undefined && epochs < done) {
    throw new UserError(`--resume ${out} --epochs ${epochs}: the run has already trained ${done} epochs; --epochs sets the new total and must be at least ${done}`);
  }
  if (epochs !== undefined) cfg = { ...cfg, train: { ...cfg.train, epochs } };
  cfg.out = out;
  return cfg;
}
