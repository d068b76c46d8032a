/**
 * Reading run directories for `mixup report`: `<run>/config.json` (the resolved config),
 * `<run>/curves.csv` (one row per finished epoch), `<run>/status.json` and `<run>/run.json`
 * (the config file the run started from), as `mixup train` writes them. A run that cannot be reported (no config.json, no curves.csv, a malformed
 * file) is returned as a {@link SkippedRun} with a one-line reason, never thrown, so that one
 * bad directory among `runs/*` does not stop the report.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { EXPERIMENTS, type Experiment } from '../config/schema.js';
import { UserError } from '../errors.js';
import { parseCurves, type EpochCurve } from '../rundir/curves.js';
import { readJson as readRunJson } from '../rundir/rundir.js';

/** One row of `curves.csv` as the report reads it (rundir/curves.ts `parseCurves`). */
export type { EpochCurve as CurveRow } from '../rundir/curves.js';

/** Status values `mixup train` writes into `status.json` (defined with the run directory layout). */
export { RUN_STATUSES, type RunStatus } from '../rundir/rundir.js';
import { RUN_STATUSES, type RunStatus } from '../rundir/rundir.js';

/** A run directory that has at least one finished epoch. */
export interface Run {
  /** The directory as given on the command line. */
  dir: string;
  /**
   * Name of the config the run was started from (`erm-90` for configs/erm-90.json, from
   * run.json); `<experiment>-<epochs>` when the run has no run.json.
   */
  name: string;
  experiment: Experiment;
  /** α of Beta(α, α). */
  alpha: number;
  /** Share of each batch that is mixed (reference: mix_rate). */
  mixRate: number;
  /** Initial learning rate. */
  lr: number;
  batchSize: number;
  seed: number;
  /** `data.valLimit`: how many validation images were evaluated (the first N), null for all. */
  valLimit: number | null;
  /** Planned number of epochs: `status.json` `epochs` when present, else `train.epochs`. */
  epochs: number;
  /** What status.json says, or null when there is no status.json. */
  status: RunStatus | null;
  /** True when curves.csv has a row for every planned epoch. */
  complete: boolean;
  /** Rows of curves.csv, epochs strictly increasing. */
  curves: EpochCurve[];
  /**
   * The config name, the epochs and the config's {@link settings} as canonical JSON, without the keys that do not change
   * the result (seed, paths, backend, logging, checkpointing; see {@link IGNORED_FOR_GROUPING}):
   * runs with equal keys are seeds of one experiment.
   */
  groupKey: string;
  /**
   * The same config as flat `dotted.key → value` text (strings bare, other values as JSON), without
   * {@link IGNORED_FOR_GROUPING}: what {@link configLabels} compares.
   */
  settings: Readonly<Record<string, string>>;
}

/** A run directory left out of the report, with why. */
export interface SkippedRun {
  dir: string;
  /** One line, naming the file and what was expected. */
  reason: string;
}

/**
 * Config keys that differ between seeds of the same experiment, or do not change what is
 * learned, and are therefore ignored when runs are grouped into table rows.
 */
export const IGNORED_FOR_GROUPING = [
  'out',
  'backend',
  'train.seed',
  'train.epochs',
  'train.logEvery',
  'train.checkpointEvery',
  'train.keepCheckpoints',
  'train.keepEpochs',
  'train.evalBatchSize',
  'data.dir',
  'data.train',
  'data.val',
  'data.workers',
  'data.cache',
  'wasmThreads',
  'train.readEvery',
  'train.tensorboard',
  'train.cleanTrainEval',
] as const;

/**
 * The keys left out of a run's settings ({@link flatSettings}) for its experiment: {@link
 * IGNORED_FOR_GROUPING}, and for ERM the whole `mixup` section, which does nothing without mixing (an
 * ERM run given `--alpha 0.4` is the same experiment as one without, and as the recipe's ERM).
 */
export function ignoredForGrouping(experiment: Experiment): readonly string[] {
  return experiment === 'erm' ? [...IGNORED_FOR_GROUPING, 'mixup'] : IGNORED_FOR_GROUPING;
}

/** The part of config.json the report needs; other keys are kept for grouping but not checked. */
const configFields = z.looseObject({
  experiment: z.enum(EXPERIMENTS),
  mixup: z.looseObject({ alpha: z.number(), mixRate: z.number() }),
  train: z.looseObject({
    lr: z.number(),
    batchSize: z.number().int(),
    epochs: z.number().int().positive(),
    seed: z.number().int(),
  }),
  data: z.looseObject({ valLimit: z.number().int().positive().nullable().default(null) }).prefault({}),
});

const sourceFields = z.looseObject({ configFile: z.string() });

const statusFields = z.looseObject({
  status: z.enum(RUN_STATUSES),
  epoch: z.number().int().min(0).optional(),
  epochs: z.number().int().positive().optional(),
});

class RunProblem extends Error {}

function readJson(file: string): unknown {
  try {
    return readRunJson<unknown>(file, true);
  } catch (e) {
    if (e instanceof UserError) throw new RunProblem(e.message);
    throw e;
  }
}

function zodProblem(file: string, err: z.ZodError): RunProblem {
  const issue = err.issues[0]!;
  const key = issue.path.map(String).join('.') || '(top level)';
  return new RunProblem(`${file}: ${key}: ${issue.message.replace(/^Invalid input: /, '')}`);
}

/**
 * Flattens a config to `dotted.key → value` text, without the dotted `ignored` keys; arrays are
 * leaves (`data.imageShape → [3,28,28]`), strings are bare (`experiment → mixup`).
 */
export function flatSettings(obj: unknown, ignored: readonly string[], prefix = '', into: Record<string, string> = {}): Record<string, string> {
  if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const k of Object.keys(obj).sort()) {
      const path = prefix + k;
      if (!ignored.includes(path)) flatSettings((obj as Record<string, unknown>)[k], ignored, path + '.', into);
    }
  } else if (prefix !== '') {
    into[prefix.slice(0, -1)] = typeof obj === 'string' ? obj : (JSON.stringify(obj) ?? 'null');
  }
  return into;
}

/** The value of `key` in a run's label: its setting, the planned epochs for `train.epochs` (not a setting), `-` when absent. */
function labelValue(r: Run, key: string): string {
  return key === 'train.epochs' ? String(r.epochs) : (r.settings[key] ?? '-');
}

/**
 * Label of each run's config for the table and the plot legend: the config name (`erm-90`), and
 * when runs of one name differ in config (overrides such as `--set data.limit=1000`), the keys in
 * which they differ, sorted: `quick (data.limit=1000, mixup.alpha=1)`. A key one run lacks shows `-`.
 * Seeds and the other {@link IGNORED_FOR_GROUPING} keys never make a difference; nor does the number
 * of epochs, which has its own column in the table, unless `always` names `train.epochs` (a run of a
 * length the reference did not train: `erm-300 (train.epochs=1)`).
 * @param omit keys left out of the labels where runs of one name differ in them (the table's own
 *   columns, such as `mixup.alpha`).
 * @param always keys a run's label shows even when every run of its name shares them, columns or
 *   not (the keys in which it differs from the reference's recipe, see recipe.ts's offRecipeKeys).
 * @returns labels in the order of `runs`.
 */
export function configLabels(runs: readonly Run[], omit: readonly string[] = [], always: (r: Run) => readonly string[] = () => []): string[] {
  const byName = new Map<string, Run[]>();
  for (const r of runs) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  const differing = new Map<string, string[]>();
  for (const [name, group] of byName) {
    const keys = [...new Set(group.flatMap((r) => Object.keys(r.settings)))].filter((k) => !omit.includes(k)).sort();
    differing.set(name, keys.filter((k) => new Set(group.map((r) => r.settings[k] ?? '-')).size > 1));
  }
  return runs.map((r) => {
    // every key off the recipe is named, even one with a column of its own (train.batchSize=32)
    const keys = [...new Set([...differing.get(r.name)!, ...always(r)])].sort();
    return keys.length === 0 ? r.name : `${r.name} (${keys.map((k) => `${k}=${labelValue(r, k)}`).join(', ')})`;
  });
}

/**
 * Reads one run directory.
 * @param dir the run directory (as the user wrote it; used in messages).
 * @returns a {@link Run} when config.json is valid and curves.csv has at least one epoch, else a
 *   {@link SkippedRun} whose reason names the missing or malformed file.
 */
export function readRun(dir: string): Run | SkippedRun {
  try {
    if (!existsSync(dir)) throw new RunProblem(`${dir}: no such directory`);
    if (!statSync(dir).isDirectory()) throw new RunProblem(`${dir}: not a directory, expected a run directory`);
    const configFile = join(dir, 'config.json');
    if (!existsSync(configFile)) throw new RunProblem(`${configFile}: missing, expected the run's resolved config`);
    const raw = readJson(configFile);
    const parsed = configFields.safeParse(raw);
    if (!parsed.success) throw zodProblem(configFile, parsed.error);
    const cfg = parsed.data;

    let status: z.output<typeof statusFields> | null = null;
    const statusFile = join(dir, 'status.json');
    if (existsSync(statusFile)) {
      const s = statusFields.safeParse(readJson(statusFile));
      if (!s.success) throw zodProblem(statusFile, s.error);
      status = s.data;
    }
    const epochs = status?.epochs ?? cfg.train.epochs;

    let name = `${cfg.experiment}-${epochs}`;
    const sourceFile = join(dir, 'run.json');
    if (existsSync(sourceFile)) {
      const src = sourceFields.safeParse(readJson(sourceFile));
      if (!src.success) throw zodProblem(sourceFile, src.error);
      name = basename(src.data.configFile).replace(/\.json$/i, '');
    }

    const curvesFile = join(dir, 'curves.csv');
    if (!existsSync(curvesFile)) {
      const st = status ? ` (status.json: ${status.status}, epoch ${status.epoch ?? 0}/${epochs})` : '';
      throw new RunProblem(`${curvesFile}: missing, no epoch finished yet${st}`);
    }
    let curves: EpochCurve[];
    try {
      curves = parseCurves(readFileSync(curvesFile, 'utf8'), curvesFile);
    } catch (e) {
      if (e instanceof UserError) throw new RunProblem(e.message);
      throw e;
    }
    if (curves.length === 0) {
      throw new RunProblem(`${curvesFile}: no epoch finished yet (header only, 0/${epochs} epochs)`);
    }
    const last = curves[curves.length - 1]!.epoch;
    // One walk of the config: the flat settings (sorted keys) are also its canonical form for grouping.
    const settings = flatSettings(raw, ignoredForGrouping(cfg.experiment));
    return {
      dir,
      name,
      experiment: cfg.experiment,
      alpha: cfg.mixup.alpha,
      mixRate: cfg.mixup.mixRate,
      lr: cfg.train.lr,
      batchSize: cfg.train.batchSize,
      seed: cfg.train.seed,
      valLimit: cfg.data.valLimit,
      epochs,
      status: status?.status ?? null,
      complete: last >= epochs,
      curves,
      groupKey: `${name}|epochs=${epochs}|${JSON.stringify(Object.entries(settings))}`,
      settings,
    };
  } catch (e) {
    if (e instanceof RunProblem) return { dir, reason: e.message };
    throw e;
  }
}

/** True when `r` is a run that was read, false for a skipped one. */
export function isRun(r: Run | SkippedRun): r is Run {
  return 'curves' in r;
}
