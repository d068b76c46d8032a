/**
 * The reference's recipe: the settings its published figures were trained with, as this project's
 * shipped configs reproduce them (`configs/<experiment>-<epochs>.json`: ResNet-50, all 50,000 training
 * images, 28×28 crops, batch 128, ...); for the paper's networks (`model.arch` preact-resnet18,
 * wrn-28-10) its authors' recipe, `configs/paper/<experiment>-<preact18|wrn28-10>.json`. A run that differs from it in a key that changes what is
 * learned (a depth-8 smoke test, `data.limit=256`, a 1-epoch trial) does not compare with the
 * published figure; the report names those keys in the row label and leaves the reference columns empty.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { findPackageRoot } from '../root.js';
import type { Experiment } from '../config/schema.js';
import { flatSettings, ignoredForGrouping, type Run } from './runs.js';
import { isPaperArch, PAPER_EPOCHS, REFERENCE_ACCURACY } from './reference.js';

/** The `configs/` directory of this package (found from this file, in src/ or dist/src/). */
function shippedConfigs(): string | null {
  const root = findPackageRoot();
  return root === null ? null : join(root, 'configs');
}

const recipes = new Map<string, Readonly<Record<string, string>> | null>();

/**
 * The reference's recipe for `experiment` trained `epochs` epochs, as flat `dotted.key → value`
 * settings (see {@link flatSettings}), from the shipped `configs/<experiment>-<epochs>.json`; null
 * when the reference published no such run (or the config is not there).
 */
export function referenceRecipe(experiment: Experiment, epochs: number, arch?: string): Readonly<Record<string, string>> | null {
  // The paper's networks: configs/paper/<experiment>-<preact18|wrn28-10>.json, 200 epochs.
  const paper = isPaperArch(arch) ? `paper/${experiment}-${arch === 'wrn-28-10' ? 'wrn28-10' : 'preact18'}` : null;
  if (paper !== null && epochs !== PAPER_EPOCHS) return null;
  const key = paper ?? `${experiment}-${epochs}`;
  if (!recipes.has(key)) {
    const configs = shippedConfigs();
    const file = configs === null ? null : join(configs, `${key}.json`);
    recipes.set(key, file !== null && existsSync(file) ? flatSettings(loadConfig(file), ignoredForGrouping(experiment)) : null);
  }
  return recipes.get(key)!;
}

/**
 * The keys in which a run differs from the reference's recipe for its experiment (sorted), or null
 * when the experiment has no recipe to compare with. The recipe is the shipped config of the run's
 * experiment and number of epochs; a run of another length (a 1-epoch trial of `erm-300`, a
 * `quick` 10-epoch run) is compared with the reference's full-length run (300 epochs: its 90/200
 * figures are checkpoints of it) and is off-recipe in `train.epochs` too, whatever else it shares.
 * A key the run lacks (an older config.json) is not counted: its default was the recipe's when the
 * run was made.
 */
export function offRecipeKeys(run: Pick<Run, 'experiment' | 'epochs' | 'settings'>): string[] | null {
  const arch = run.settings['model.arch'];
  const published = referenceRecipe(run.experiment, run.epochs, arch);
  const recipe = published ?? referenceRecipe(run.experiment, isPaperArch(arch) ? PAPER_EPOCHS : fullLength(run.experiment), arch);
  if (recipe === null) return null;
  // keys that change nothing for this experiment (ERM's mixup section) are no difference, however the settings were made
  const ignored = ignoredForGrouping(run.experiment);
  const keys = new Set([...Object.keys(recipe), ...Object.keys(run.settings)].filter((k) => !ignored.some((i) => k === i || k.startsWith(`${i}.`))));
  const off = [...keys].filter((k) => run.settings[k] !== undefined && run.settings[k] !== (recipe[k] ?? '-'));
  if (published === null) off.push('train.epochs');
  return off.sort();
}

/** The length of the reference's runs of an experiment: the most epochs it published a figure for (300). */
function fullLength(experiment: Experiment): number {
  return Math.max(...Object.keys(REFERENCE_ACCURACY[experiment]).map(Number));
}
