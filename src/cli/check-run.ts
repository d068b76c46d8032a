/**
 * `mixup train --config FILE ... --check-run`: is the run already in --out the one this command
 * would train? scripts/reproduce-table.sh asks before it skips a finished run or resumes a started
 * one, so that a short trial (`--set train.epochs=1 --set model.depth=8`) is never taken for the
 * real thing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { parseJsonFile, validateConfig } from '../config/load.js';
import { configDifferences, showValue } from '../config/diff.js';
import { UserError } from '../errors.js';

/**
 * Keys that say where and on what a run ran, not what it trains: a run's identity is its recipe, so
 * `--check-run` leaves them out (a run trained on wasm is resumed on webgpu as the same run).
 */
export const NOT_RECIPE = ['out', 'backend', 'gpu', 'wasmThreads'] as const;

/** Exit code of `--check-run` when the run in --out was trained with another config (0: same, or no run; 2: bad input; 1 stays the internal error). */
export const EXIT_RUN_DIFFERS = 4;

/**
 * Compares the resolved config of a command line with the config.json of the run in its `out`
 * directory (both validated, so defaults are filled alike; {@link NOT_RECIPE} is not compared: `out`
 * may be written differently, and the backend, GPU and threads do not change the recipe).
 * @param cfg the config this command would train (file, flags, --set and the default data
 *   directory applied, data paths absolute), with `out` set.
 * @returns null when `out` holds no run (no config.json) or one with the same config; else one line
 *   `<out>: config.json differs from this command: <key> <run's value> (this command: <value>), ...`,
 *   values as JSON, keys sorted.
 * @throws UserError when `<out>/config.json` cannot be read, is not JSON or not a valid config.
 */
export function checkRun(cfg: Config): string | null {
  const out = cfg.out!;
  const file = join(out, 'config.json');
  if (!existsSync(file)) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`--check-run: ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const run = validateConfig(parseJsonFile(text, file), file);
  const diffs = configDifferences(run, cfg, NOT_RECIPE);
  if (diffs.length === 0) return null;
  return `${out}: config.json differs from this command: ${diffs.map((d) => `${d.key} ${showValue(d.a)} (this command: ${showValue(d.b)})`).join(', ')}`;
}
