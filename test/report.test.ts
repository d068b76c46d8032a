import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { Resvg } from '@resvg/resvg-js';
import { configSchema, type ConfigInput } from '../src/config/schema.js';
import { loadConfig } from '../src/config/load.js';
import { meanStd } from '../src/report/stats.js';
import { readRun, isRun, type Run } from '../src/report/runs.js';
import { parseCurves } from '../src/rundir/curves.js';
import { buildTable, dropRepeatedSeeds } from '../src/report/table.js';
import { formatMarkdown } from '../src/report/table-markdown.js';
import { formatCsv, formatJson } from '../src/report/table-records.js';
import { buildPlotSpec, checkPlotFile, renderSvg, svgToPng, seriesLabels } from '../src/report/plot.js';
import { report } from '../src/report/report.js';
import { offRecipeKeys } from '../src/report/recipe.js';
import { tempDir } from './fixtures/tmp.js';
import { REPO_ROOT, runMixup } from './fixtures/cli.js';

/** Runs the compiled CLI (bin/mixup, needs dist/). */
const mixup = (args: string[]) => runMixup(args);
const repoRoot = () => REPO_ROOT;

const HEADER = 'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec';

interface Fixture {
  experiment: 'erm' | 'mixup' | 'mixup-feature';
  epochs: number;
  seed?: number;
  /** val_acc of each finished epoch (fractions). */
  valAcc: number[];
  status?: 'running' | 'finished' | 'interrupted' | 'failed';
  /** Extra config (merged into the config input). */
  extra?: ConfigInput;
  /** Leave out curves.csv. */
  noCurves?: boolean;
  /** Config file name recorded in run.json (none: no run.json). */
  configName?: string;
  /** val_ece of each epoch (fractions): curves.csv then has the calibration columns. */
  valEce?: number[];
}

/** Writes a run directory as `mixup train` does: config.json (resolved), curves.csv, status.json. */
function makeRun(root: string, name: string, f: Fixture): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'checkpoints'), { recursive: true });
  const lr = f.experiment === 'erm' ? 0.05 : 0.7;
  // the reference's recipe of the experiment unless the test says otherwise (the fixture's lr is the recipe's)
  const extra = f.extra ?? shippedConfig(`${f.experiment}-300`);
  const cfg = configSchema.parse({
    ...extra,
    experiment: f.experiment,
    out: dir,
    train: f.extra ? { epochs: f.epochs, lr, seed: f.seed ?? 0, ...f.extra.train } : { ...extra.train, epochs: f.epochs, lr, seed: f.seed ?? 0 },
  });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  if (f.configName) {
    const source = { configFile: `/repo/configs/${f.configName}.json`, overrides: [], version: '0.1.0', created: '2026-11-29T15:00:00.000Z' };
    writeFileSync(join(dir, 'run.json'), JSON.stringify(source));
  }
  if (!f.noCurves) {
    const rows = f.valAcc.map((a, i) => [i + 1, lr, (2 - i * 0.1).toFixed(4), 0.5, 1.1, a, 12.5, 4000, ...(f.valEce ? [f.valEce[i], 0.3, 0.6, 0.5] : [])].join(','));
    writeFileSync(join(dir, 'curves.csv'), [f.valEce ? `${HEADER},val_ece,val_mce,val_confidence,val_brier` : HEADER, ...rows].join('\n') + '\n');
  }
  const status = f.status ?? (f.valAcc.length >= f.epochs ? 'finished' : 'running');
  writeFileSync(
    join(dir, 'status.json'),
    JSON.stringify({ status, epoch: f.valAcc.length, epochs: f.epochs, updated: '2026-11-29T15:00:00.000Z' }),
  );
  return dir;
}

/** The fixture set: 3 seeds of erm-3, one mixup-3, a mixup-feature run in progress, a run without curves. */
/** A shipped config (configs/NAME.json), resolved, as extra config for {@link makeRun}. */
function shippedConfig(name: string): ConfigInput {
  return loadConfig(join(repoRoot(), 'configs', `${name}.json`)) as ConfigInput;
}

function fixtureRuns() {
  const root = tempDir('mixup-report-');
  const dirs = [
    // final 0.90 / 0.92 / 0.91 → 91.00 ± 1.00; best 0.91 / 0.925 / 0.915 → 91.67 ± 0.76
    makeRun(root, 'erm-3-s0', { experiment: 'erm', epochs: 3, seed: 0, valAcc: [0.5, 0.91, 0.9] }),
    makeRun(root, 'erm-3-s1', { experiment: 'erm', epochs: 3, seed: 1, valAcc: [0.6, 0.925, 0.92] }),
    makeRun(root, 'erm-3-s2', { experiment: 'erm', epochs: 3, seed: 2, valAcc: [0.55, 0.915, 0.91] }),
    makeRun(root, 'mixup-3-s0', { experiment: 'mixup', epochs: 3, valAcc: [0.4, 0.8, 0.87], configName: 'mixup-3' }),
    // the reference's recipe (configs/mixup-feature-90.json), so that --compare-reference fills its row
    makeRun(root, 'feature-90-s0', { experiment: 'mixup-feature', epochs: 90, valAcc: [0.3, 0.45], extra: shippedConfig('mixup-feature-90') }),
    makeRun(root, 'empty', { experiment: 'mixup', epochs: 90, valAcc: [], noCurves: true }),
  ];
  return { root, dirs };
}

function readRuns(dirs: string[]): Run[] {
  return dirs.map(readRun).filter(isRun);
}

test('meanStd: mean and sample standard deviation (n − 1)', () => {
  assert.deepEqual(meanStd([5]), { mean: 5, std: null, n: 1 });
  const m = meanStd([90, 92, 91]);
  assert.equal(m.mean, 91);
  assert.ok(Math.abs(m.std! - 1) < 1e-12); // Σ(x − x̄)² = 2, / (3 − 1) = 1
  const b = meanStd([91, 92.5, 91.5]);
  assert.ok(Math.abs(b.mean - 91.666666667) < 1e-8);
  assert.ok(Math.abs(b.std! - Math.sqrt(7 / 12)) < 1e-12); // (4/9 + 25/36 + 1/36) / 2 = 7/12
  assert.throws(() => meanStd([]), RangeError);
});

test('parseCurves: numbers, 1-based increasing epochs, one-line errors naming file and line', () => {
  const rows = parseCurves(`${HEADER}\n1,0.1,2.3,0.1,2.2,0.25,10,500\n2,0.1,NaN,0.2,2.0,0.5,10,500\n`, 'c.csv');
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[0], { epoch: 1, lr: 0.1, trainLoss: 2.3, trainAcc: 0.1, valLoss: 2.2, valAcc: 0.25, corruptNoisyAcc: NaN, corruptTrueAcc: NaN, valEce: NaN, holdoutAcc: NaN, valEceScaled: NaN, trainCleanAcc: NaN });
  // the label-noise columns: fractions, an empty cell is NaN
  const noisy = parseCurves(`${HEADER},corrupt_noisy_acc,corrupt_true_acc\n1,0.1,2.3,0.1,2.2,0.25,10,500,0.125,0.5\n2,0.1,2.3,0.1,2.2,0.25,10,500,,\n`, 'c.csv');
  assert.deepEqual(noisy.map((r) => [r.corruptNoisyAcc, r.corruptTrueAcc]), [[0.125, 0.5], [NaN, NaN]]);
  assert.throws(() => parseCurves(`${HEADER},corrupt_noisy_acc\n1,0.1,2.3,0.1,2.2,0.25,10,500,1.5\n`, 'c.csv'), {
    message: 'c.csv: line 2: corrupt_noisy_acc is 1.5, expected a fraction in [0, 1]',
  });
  assert.ok(Number.isNaN(rows[1]!.trainLoss));
  assert.throws(() => parseCurves(`${HEADER}\n1,0.1,2.3,0.1,2.2,25,10,500\n`, 'c.csv'), {
    message: 'c.csv: line 2: val_acc is 25, expected a fraction in [0, 1]',
  });
  assert.throws(() => parseCurves(`${HEADER}\n2,0.1,2.3,0.1,2.2,0.2,1,1\n1,0.1,2.3,0.1,2.2,0.2,1,1\n`, 'c.csv'), {
    message: 'c.csv: line 3: epoch is 1, expected an integer above 2 (1-based, increasing)',
  });
  assert.throws(() => parseCurves('epoch,lr\n1,0.1\n', 'c.csv'), { message: 'c.csv: line 1: no column "train_loss" in header "epoch,lr"' });
  assert.throws(() => parseCurves(`${HEADER}\n1,0.1,abc,0.1,2.2,0.2,1,1\n`, 'c.csv'), {
    message: 'c.csv: line 2: train_loss is "abc", expected a number',
  });
});

test('readRun: finished, in progress, missing curves.csv, missing config.json', () => {
  const { root, dirs } = fixtureRuns();
  const erm = readRun(dirs[0]!);
  assert.ok(isRun(erm));
  assert.equal(erm.complete, true);
  assert.equal(erm.status, 'finished');
  assert.equal(erm.epochs, 3);
  const feature = readRun(dirs[4]!);
  assert.ok(isRun(feature));
  assert.equal(feature.complete, false);
  assert.equal(feature.status, 'running');
  const empty = readRun(dirs[5]!);
  assert.ok(!isRun(empty));
  assert.equal(empty.reason, `${join(dirs[5]!, 'curves.csv')}: missing, no epoch finished yet (status.json: running, epoch 0/90)`);
  mkdirSync(join(root, 'notarun'));
  const none = readRun(join(root, 'notarun'));
  assert.ok(!isRun(none));
  assert.equal(none.reason, `${join(root, 'notarun', 'config.json')}: missing, expected the run's resolved config`);
  // seeds of one config share a group key; a different α does not
  const s1 = readRun(dirs[1]!);
  assert.ok(isRun(s1));
  assert.equal(s1.groupKey, erm.groupKey);
  const other = readRun(makeRun(root, 'mixup-a4', { experiment: 'mixup', epochs: 3, valAcc: [0.1, 0.2, 0.3], extra: { mixup: { alpha: 0.4 } } }));
  const mix = readRun(dirs[3]!);
  assert.ok(isRun(other) && isRun(mix));
  assert.notEqual(other.groupKey, mix.groupKey);
});

test('buildTable: mean ± std over seeds, final and best, reference and difference, unfinished rows', () => {
  const { dirs } = fixtureRuns();
  const rows = buildTable(readRuns(dirs), { compareReference: true });
  assert.equal(rows.length, 3);
  const [erm, mixup, feature] = rows;
  assert.equal(erm!.experiment, 'erm');
  assert.deepEqual(erm!.seeds, [0, 1, 2]);
  assert.ok(Math.abs(erm!.finalAcc.mean - 91) < 1e-9);
  assert.ok(Math.abs(erm!.finalAcc.std! - 1) < 1e-9);
  assert.ok(Math.abs(erm!.bestAcc.mean - 275 / 3) < 1e-9);
  assert.ok(Math.abs(erm!.bestAcc.std! - Math.sqrt(7 / 12)) < 1e-9);
  assert.equal(erm!.reference, null); // the reference published 90/200/300 epochs only
  assert.equal(mixup!.finalAcc.mean, 87);
  assert.equal(mixup!.finalAcc.std, null);
  assert.equal(feature!.finished, false);
  assert.equal(feature!.lastEpoch, 2);
  assert.equal(feature!.reference, 85.45);
  assert.ok(Math.abs(feature!.diff! - (45 - 85.45)) < 1e-9);
});

test('formatMarkdown: the exact table, notes on the formula', () => {
  const { dirs } = fixtureRuns();
  const md = formatMarkdown(buildTable(readRuns(dirs), { compareReference: true }), { compareReference: true });
  const expected = [
    '| config | experiment | epochs | alpha | mix_rate | test acc % (final) | test acc % (best, picked on test: optimistic) | initial learning rate | batch size | train.seed | reference % | final − reference | status | runs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    '| erm-3 (train.epochs=3) | erm | 3 | - | - | 91.00 ± 1.00 | 91.67 ± 0.76 | 0.05 | 128 | 0, 1, 2 | - | - | finished | erm-3-s0, erm-3-s1, erm-3-s2 |',
    '| mixup-3 (train.epochs=3) | mixup | 3 | 0.2 | 0.7 | 87.00 | 87.00 | 0.7 | 128 | 0 | - | - | finished | mixup-3-s0 |',
    '| mixup-feature-90 | mixup-feature | 90 | 0.2 | 0.7 | 45.00 | 45.00 | 0.7 | 128 | 0 | 85.45 | −40.45 | running, epoch 2/90 | feature-90-s0 |',
    '',
    'test acc: top-1 % on the validation set (all CIFAR-10 test images); final = after the last epoch, best = the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images).',
    'train.seed: the seed of each run of the row. Several seeds of one config: mean ± sample standard deviation, s = sqrt(Σ(x − mean)² / (n − 1)).',
    'reference: the MXNet reference implementation (unsky/mixup, forked as hdjsjyl/mixup), one run each; final − reference in percentage points.',
    'Its 90- and 200-epoch figures are checkpoints of its 300-epoch runs: rows "<config> at epoch N" read them from a longer run\'s curves.',
    'Its ERM 200/300-epoch recipe is inferred (its only ERM log is a 90-epoch run), and its 300-epoch ERM figure (89.32) is no better than its 200-epoch one.',
    // 3 epochs: no published figure to compare with, and the note says so (issue 22 item 15)
    "reference left empty for erm-3 (train.epochs=3) (train.epochs); mixup-3 (train.epochs=3) (train.epochs): trained with other settings than the reference's recipe (configs/<experiment>-<epochs>.json, or -300 for a length it did not publish), so its figure does not compare.",
    'Unfinished runs show the last finished epoch and are in no mean.',
  ].join('\n');
  assert.equal(md, expected);
});

test('formatMarkdown: the note says how many validation images were evaluated (data.valLimit), per row when they differ', () => {
  const root = tempDir('mixup-report-');
  const run = (name: string, valLimit: number | null, acc: number) =>
    makeRun(root, name, { experiment: 'mixup', epochs: 1, valAcc: [acc], configName: 'quick', extra: { data: { valLimit } } });
  const v500 = run('a', 500, 0.25);
  const v1000 = run('c', 1000, 0.5);
  const all = run('b', null, 0.75);
  const note = (rowsDirs: string[]) => formatMarkdown(buildTable(readRuns(rowsDirs))).split('\n');
  const one = note([v500]);
  assert.equal(one[0], '| config | experiment | epochs | alpha | mix_rate | test acc % (final) | test acc % (best, picked on test: optimistic) | initial learning rate | batch size | train.seed | runs |');
  assert.equal(
    one[4],
    'test acc: top-1 % on the validation set (the first 500 CIFAR-10 test images, data.valLimit); final = after the last epoch, best = the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images).',
  );
  assert.equal(note([all])[4], 'test acc: top-1 % on the validation set (all CIFAR-10 test images); final = after the last epoch, best = the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images).');
  const mixed = note([v500, all, v1000]);
  assert.deepEqual(mixed.slice(0, 6).map((l) => l.split(' | ').slice(9).join(' | ')), [
    'val images | train.seed | runs |',
    '---: | ---: | --- |',
    '500 | 0 | a |',
    '1,000 | 0 | c |',
    'all | 0 | b |',
    '',
  ]);
  // every key off the recipe is in the label, data.valLimit too, so rows sort by it
  // (this fixture's config is not the recipe's in loss, gradScale, lrStepEpochs and shards either)
  const off = 'loss=soft-ce, train.epochs=1, train.gradScale=1, train.lrStepEpochs=[200,250], train.shards=1';
  assert.deepEqual(mixed.slice(2, 5).map((l) => l.split(' | ')[0]), [`| quick (data.valLimit=500, ${off})`, `| quick (data.valLimit=1000, ${off})`, `| quick (${off})`]);
  assert.deepEqual(mixed.slice(2, 5).map((l) => l.split(' | ')[5]), ['25.00', '50.00', '75.00']);
  assert.equal(
    mixed[6],
    'test acc: top-1 % on the validation set (the CIFAR-10 test images; column val images: all, or the first N (data.valLimit)); final = after the last epoch, best = the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images).',
  );
  assert.deepEqual(JSON.parse(formatJson(buildTable(readRuns([v500, all])))).map((r: { val_limit: unknown }) => r.val_limit), [500, null]);
});

test('report: rows of one config file with different overrides are labelled by the keys that differ; a runs column names the directories', async () => {
  const root = tempDir('mixup-report-');
  // the recipe (configs/mixup-300.json) with the given data and mixup keys: 1 epoch is off-recipe, so every label names train.epochs
  const recipe = shippedConfig('mixup-300');
  const run = (name: string, seed: number, acc: number, extra: ConfigInput) =>
    makeRun(root, name, {
      experiment: 'mixup',
      epochs: 1,
      seed,
      valAcc: [acc],
      configName: 'quick',
      extra: { ...recipe, data: { ...recipe.data, ...extra.data }, mixup: { ...recipe.mixup, ...extra.mixup }, train: { ...recipe.train, epochs: 1, seed } },
    });
  const lim1000 = { data: { limit: 1000 } };
  const dirs = [
    run('lim1000/s0', 0, 0.3, lim1000),
    run('lim1000/s1', 1, 0.32, lim1000),
    run('lim500/s0', 0, 0.2, { data: { limit: 500 } }),
    run('perm/s0', 0, 0.31, { ...lim1000, mixup: { scheme: 'permutation' } }),
    run('alpha/a1', 0, 0.4, { ...lim1000, mixup: { alpha: 1 } }), // α has its own column
  ];
  const { out, err } = await reportLines(dirs);
  assert.deepEqual(err, []);
  // base names where they are unique (s1, a1), the directory as given where they clash (…/s0)
  assert.deepEqual(out.slice(0, 6), [
    '| config | experiment | epochs | alpha | mix_rate | test acc % (final) | test acc % (best, picked on test: optimistic) | initial learning rate | batch size | train.seed | runs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    `| quick (data.limit=500, mixup.scheme=pairs, train.epochs=1) | mixup | 1 | 0.2 | 0.7 | 20.00 | 20.00 | 0.7 | 128 | 0 | ${dirs[2]} |`,
    '| quick (data.limit=1000, mixup.alpha=1, mixup.scheme=pairs, train.epochs=1) | mixup | 1 | 1 | 0.7 | 40.00 | 40.00 | 0.7 | 128 | 0 | a1 |',
    `| quick (data.limit=1000, mixup.scheme=pairs, train.epochs=1) | mixup | 1 | 0.2 | 0.7 | 31.00 ± 1.41 | 31.00 ± 1.41 | 0.7 | 128 | 0, 1 | ${dirs[0]}, s1 |`,
    `| quick (data.limit=1000, mixup.scheme=permutation, train.epochs=1) | mixup | 1 | 0.2 | 0.7 | 31.00 | 31.00 | 0.7 | 128 | 0 | ${dirs[3]} |`,
  ]);
  // the plot legend has no α column: its labels name every key that differs; seeds share a label
  assert.deepEqual(seriesLabels(readRuns(dirs)), [
    'quick (data.limit=1000, mixup.alpha=0.2, mixup.scheme=pairs, train.epochs=1)',
    'quick (data.limit=1000, mixup.alpha=0.2, mixup.scheme=pairs, train.epochs=1)',
    'quick (data.limit=500, mixup.alpha=0.2, mixup.scheme=pairs, train.epochs=1)',
    'quick (data.limit=1000, mixup.alpha=0.2, mixup.scheme=permutation, train.epochs=1)',
    'quick (data.limit=1000, mixup.alpha=1, mixup.scheme=pairs, train.epochs=1)',
  ]);
  // rows that differ only in the seed share the label (the keys off the recipe); a trailing slash does not change the name
  const plain = formatMarkdown(buildTable(readRuns([`${dirs[0]}/`, dirs[1]!])));
  assert.equal(plain.split('\n')[2], '| quick (data.limit=1000, train.epochs=1) | mixup | 1 | 0.2 | 0.7 | 31.00 ± 1.41 | 31.00 ± 1.41 | 0.7 | 128 | 0, 1 | s0, s1 |');
});

test('reference comparison at 90/200/300 epochs', () => {
  const root = tempDir('mixup-report-');
  const acc = (final: number, n: number) => [...Array(n - 1).fill(0.1), final];
  // The shipped configs are the reference's recipe (mixup: mixture-nll, gradScale 1/64, lr steps at 10, 100, 200).
  const shipped = shippedConfig;
  const dirs = [
    makeRun(root, 'erm-90', { experiment: 'erm', epochs: 90, valAcc: acc(0.88, 90), extra: shipped('erm-90'), configName: 'erm-90' }),
    makeRun(root, 'mixup-200', { experiment: 'mixup', epochs: 200, valAcc: acc(0.92, 200), extra: shipped('mixup-200'), configName: 'mixup-200' }),
  ];
  const rows = buildTable(readRuns(dirs), { compareReference: true });
  assert.deepEqual(
    rows.map((r) => [r.label, r.experiment, r.epochs, r.reference, Number(r.diff!.toFixed(6)), r.offRecipe]),
    [
      ['erm-90', 'erm', 90, 87.9, 0.1, []],
      ['mixup-200', 'mixup', 200, 91.61, 0.39, []],
    ],
  );
});

test('a run that differs from the reference recipe (depth 8 on 256 images) shows those keys always, and --compare-reference leaves its reference empty with a note', () => {
  const root = tempDir('mixup-report-');
  const acc = (final: number, n: number) => [...Array(n - 1).fill(0.1), final];
  const erm90 = shippedConfig('erm-90');
  const tiny = { ...erm90, model: { depth: 8 }, data: { ...erm90.data, limit: 256 } } as ConfigInput;
  const dirs = [
    makeRun(root, 'erm-90', { experiment: 'erm', epochs: 90, valAcc: acc(0.88, 90), extra: erm90, configName: 'erm-90' }),
    makeRun(root, 'erm90-tiny', { experiment: 'erm', epochs: 90, valAcc: acc(0.295, 90), extra: tiny, configName: 'erm-90' }),
    makeRun(root, 'erm90-tiny-s1', { experiment: 'erm', epochs: 90, valAcc: acc(0.305, 90), extra: { ...tiny, train: { ...tiny.train, seed: 1 } }, configName: 'erm-90' }),
  ];
  const runs = readRuns(dirs);
  const rows = buildTable(runs, { compareReference: true });
  assert.deepEqual(
    rows.map((r) => [r.label, r.reference, r.diff === null ? null : Number(r.diff.toFixed(6)), r.offRecipe, r.seeds]),
    [
      // the two rows differ in data.limit and model.depth, so both labels name them (as before)
      ['erm-90 (data.limit=256, model.depth=8)', null, null, ['data.limit', 'model.depth'], [0, 1]],
      ['erm-90 (data.limit=null, model.depth=50)', 87.9, 0.1, [], [0]],
    ],
  );
  const md = formatMarkdown(rows, { compareReference: true });
  assert.match(md, /^\| erm-90 \(data\.limit=256, model\.depth=8\) \| erm \| 90 \| - \| - \| 30\.00 ± 0\.71 \| 30\.00 ± 0\.71 \| 0\.05 \| 128 \| 0, 1 \| - \| - \| erm90-tiny, erm90-tiny-s1 \|$/m);
  assert.match(
    md,
    /^reference left empty for erm-90 \(data\.limit=256, model\.depth=8\) \(data\.limit, model\.depth\): trained with other settings than the reference's recipe \(configs\/<experiment>-<epochs>\.json, or -300 for a length it did not publish\), so its figure does not compare\.$/m,
  );
  // Without the full run beside it the tiny runs still show the keys (nothing in the table differs).
  assert.deepEqual(buildTable(runs.slice(1)).map((r) => r.label), ['erm-90 (data.limit=256, model.depth=8)']);
  assert.deepEqual(seriesLabels(runs.slice(1)), ['erm-90 (data.limit=256, model.depth=8)', 'erm-90 (data.limit=256, model.depth=8)']);
  // A key with a column of its own is named too when it is off the recipe (issue 22 item 15): batch 32
  const b32 = makeRun(root, 'erm90-b32', { experiment: 'erm', epochs: 90, valAcc: acc(0.85, 90), extra: { ...erm90, train: { ...erm90.train, batchSize: 32 } } as ConfigInput, configName: 'erm-90' });
  const alone = buildTable(readRuns([b32]), { compareReference: true });
  assert.deepEqual(alone.map((r) => [r.label, r.batchSize, r.reference]), [['erm-90 (train.batchSize=32)', 32, null]]);
});

test('the short trial of the table (1 epoch, ResNet-8, 500 images) is labelled with its off-recipe keys, whatever its epoch count', async () => {
  const root = tempDir('mixup-report-');
  // what `mixup train --config configs/<c>.json --set train.epochs=1 --set model.depth=8 --set data.limit=500` writes
  const trial: [string, unknown][] = [['train.epochs', 1], ['model.depth', 8], ['data.limit', 500]];
  const dirs = (['erm', 'mixup', 'mixup-feature'] as const).map((e, i) =>
    makeRun(root, `${e}-300-s0`, {
      experiment: e,
      epochs: 1,
      valAcc: [0.2 + i / 100],
      configName: `${e}-300`,
      extra: loadConfig(join(repoRoot(), 'configs', `${e}-300.json`), { overrides: trial }) as ConfigInput,
    }),
  );
  const { out } = await reportLines(dirs, { compareReference: true });
  assert.deepEqual(out.slice(2, 5).map((l) => l.split(' | ').slice(0, 3).join(' | ')), [
    '| erm-300 (data.limit=500, model.depth=8, train.epochs=1) | erm | 1',
    '| mixup-300 (data.limit=500, model.depth=8, train.epochs=1) | mixup | 1',
    '| mixup-feature-300 (data.limit=500, model.depth=8, train.epochs=1) | mixup-feature | 1',
  ]);
  const runs = readRuns(dirs);
  assert.deepEqual(runs.map((r) => offRecipeKeys(r)), Array(3).fill(['data.limit', 'model.depth', 'train.epochs']));
  // the plot legend says the same, in full (no `…`)
  assert.deepEqual(seriesLabels(runs), ['erm-300', 'mixup-300', 'mixup-feature-300'].map((n) => `${n} (data.limit=500, model.depth=8, train.epochs=1)`));
  const svg = await renderSvg(buildPlotSpec(runs));
  assert.ok(svg.includes('>mixup-feature-300 (data.limit=500, model.depth=8, train.epochs=1)</text>'), 'legend label truncated');
  // 1 epoch of the shipped recipe and nothing else: only the epochs; 90 epochs of it: none (a published length)
  const recipe = (epochs: number) => ({ ...shippedConfig('erm-300'), train: { ...shippedConfig('erm-300').train, epochs } }) as ConfigInput;
  const one = readRuns([makeRun(root, 'one', { experiment: 'erm', epochs: 1, valAcc: [0.2], configName: 'erm-300', extra: recipe(1) })]);
  assert.deepEqual([offRecipeKeys(one[0]!), buildTable(one)[0]!.label], [['train.epochs'], 'erm-300 (train.epochs=1)']);
  const ninety = readRuns([makeRun(root, 'ninety', { experiment: 'erm', epochs: 90, valAcc: Array(90).fill(0.5), configName: 'erm-300', extra: recipe(90) })]);
  assert.deepEqual([offRecipeKeys(ninety[0]!), buildTable(ninety)[0]!.label], [[], 'erm-300']);
});

test('ERM runs that differ only in mixup keys (which do nothing without mixing) are one config: one row, on the recipe', () => {
  const root = tempDir('mixup-report-erm-mixup-');
  const erm = shippedConfig('erm-300');
  const run = (name: string, seed: number, mixup: ConfigInput['mixup']) =>
    makeRun(root, name, { experiment: 'erm', epochs: 90, seed, valAcc: Array(90).fill(0.5 + seed / 100), configName: 'erm-300', extra: { ...erm, mixup, train: { ...erm.train, epochs: 90, seed } } as ConfigInput });
  const runs = readRuns([run('a', 0, {}), run('b', 1, { alpha: 0.4, mixRate: 0.5, scheme: 'permutation' })]);
  assert.deepEqual(runs.map((r) => offRecipeKeys(r)), [[], []]);
  const rows = buildTable(runs);
  assert.deepEqual(rows.map((r) => [r.label, r.seeds]), [['erm-300', [0, 1]]]);
  // mixup runs that differ in α are two configs, as before
  const mix = shippedConfig('mixup-300');
  const m = (name: string, alpha: number) => makeRun(root, name, { experiment: 'mixup', epochs: 90, valAcc: Array(90).fill(0.5), configName: 'mixup-300', extra: { ...mix, mixup: { ...mix.mixup, alpha }, train: { ...mix.train, epochs: 90 } } as ConfigInput });
  const mixRows = buildTable(readRuns([m('m1', 0.2), m('m2', 0.4)]));
  assert.deepEqual(mixRows.map((r) => r.label), ['mixup-300', 'mixup-300 (mixup.alpha=0.4)']);
});

/** The tick labels of each axis of a rendered figure, by the axis' aria-label (`X-axis titled 'epoch' ...`). */
function axisLabels(svg: string): { axis: string; labels: string[] }[] {
  return svg
    .split('aria-roledescription="axis" aria-label="')
    .slice(1)
    .map((part) => ({
      axis: part.slice(0, part.indexOf(' titled')),
      labels: [...(/role-axis-label"[^>]*>(.*?)<\/g>/.exec(part)?.[1] ?? '').matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!),
    }));
}

test('plot of a one-epoch run: the epoch axis has the one tick 1, the value axes round labels around the point', async () => {
  const root = tempDir('mixup-report-');
  const runs = readRuns([makeRun(root, 'erm-1', { experiment: 'erm', epochs: 1, valAcc: [0.232] })]);
  const spec = buildPlotSpec(runs) as unknown as { hconcat: { encoding: { x: { scale: unknown; axis: unknown }; y: { scale: unknown } } }[] };
  assert.deepEqual(spec.hconcat.map((p) => p.encoding.x.scale), Array(2).fill({ domain: [0.5, 1.5], nice: false }));
  assert.deepEqual(spec.hconcat.map((p) => p.encoding.x.axis), Array(2).fill({ tickMinStep: 1, format: 'd', values: [1] }));
  // one value per panel: ±5 % around it (23.2 % → [22.04, 24.36]; loss 2 → [1.9, 2.1])
  const ys = spec.hconcat.map((p) => (p.encoding.y.scale as { domain: number[] }).domain.map((x) => Number(x.toFixed(6))));
  assert.deepEqual(ys, [[22.04, 24.36], [1.9, 2.1]]);
  const axes = axisLabels(await renderSvg(buildPlotSpec(runs)));
  assert.deepEqual(axes.filter((a) => a.axis === 'X-axis').map((a) => a.labels), [['1'], ['1']]);
  const y = axes.filter((a) => a.axis === 'Y-axis').map((a) => a.labels);
  assert.deepEqual(y[0], ['22.2', '22.4', '22.6', '22.8', '23.0', '23.2', '23.4', '23.6', '23.8', '24.0', '24.2']);
  for (const labels of y) for (const l of labels) assert.match(l, /^\d+(\.\d{1,2})?$/, `tick label ${l}`);
  // several epochs: the axis ends at the last one, whole epochs only
  const three = readRuns([makeRun(root, 'erm-3', { experiment: 'erm', epochs: 3, valAcc: [0.2, 0.3, 0.4] })]);
  const axes3 = axisLabels(await renderSvg(buildPlotSpec(three)));
  assert.deepEqual(axes3.filter((a) => a.axis === 'X-axis').map((a) => a.labels), [['1', '2', '3'], ['1', '2', '3']]);
});

test('plot: the x axis starts at epoch 1', () => {
  const root = tempDir('mixup-report-');
  const runs = readRuns([makeRun(root, 'erm-3', { experiment: 'erm', epochs: 3, valAcc: [0.2, 0.3, 0.4] })]);
  const spec = buildPlotSpec(runs) as unknown as { hconcat: { encoding: { x: { scale: { domain: number[] } } } }[] };
  assert.deepEqual(spec.hconcat.map((p) => p.encoding.x.scale.domain), [[1, 3], [1, 3]]);
  const two = buildPlotSpec(readRuns([makeRun(root, 'erm-2', { experiment: 'erm', epochs: 2, valAcc: [0.2, 0.3] })])) as unknown as typeof spec;
  assert.deepEqual(two.hconcat.map((p) => p.encoding.x.scale.domain), [[1, 2], [1, 2]]);
});

test('runs of different config files stay apart even when a short-run override makes them equal', () => {
  const root = tempDir('mixup-report-');
  const dirs = ['erm-300', 'erm-90', 'erm-200'].map((c) =>
    makeRun(root, `${c}-s0`, { experiment: 'erm', epochs: 1, valAcc: [0.2], configName: c }),
  );
  const runs = readRuns(dirs);
  assert.deepEqual(runs.map((r) => r.name), ['erm-300', 'erm-90', 'erm-200']);
  const rows = buildTable(runs);
  assert.deepEqual(rows.map((r) => [r.config, r.epochs, r.seeds]), [
    ['erm-90', 1, [0]],
    ['erm-200', 1, [0]],
    ['erm-300', 1, [0]],
  ]);
  // a 1-epoch run of any of them is off the reference's recipe in its epochs, and says so
  assert.deepEqual(seriesLabels(runs), ['erm-300 (train.epochs=1)', 'erm-90 (train.epochs=1)', 'erm-200 (train.epochs=1)']);
});

test('formatCsv and formatJson carry the same numbers', () => {
  const { dirs } = fixtureRuns();
  const rows = buildTable(readRuns(dirs), { compareReference: true });
  const csv = formatCsv(rows).split('\n');
  assert.equal(csv[0], 'config,experiment,epochs,alpha,mix_rate,final_acc,final_acc_std,best_acc,best_acc_std,lr,batch_size,val_limit,n,seeds,status,last_epoch,reference_acc,diff,runs');
  assert.equal(csv[1], `erm-3,erm,3,,,91,1,91.6667,0.7638,0.05,128,,3,0 1 2,finished,3,,,${dirs.slice(0, 3).join(' ')}`);
  assert.equal(csv[3], `mixup-feature-90,mixup-feature,90,0.2,0.7,45,,45,,0.7,128,,1,0,running,2,85.45,-40.45,${dirs[4]}`);
  const json = JSON.parse(formatJson(rows)) as Record<string, unknown>[];
  assert.equal(json.length, 3);
  assert.deepEqual(json[0], {
    config: 'erm-3',
    experiment: 'erm',
    epochs: 3,
    alpha: null,
    mix_rate: null,
    final_acc: 91,
    final_acc_std: 1,
    best_acc: 91.6667,
    best_acc_std: 0.7638,
    lr: 0.05,
    batch_size: 128,
    val_limit: null,
    n: 3,
    seeds: [0, 1, 2],
    status: 'finished',
    last_epoch: 3,
    reference_acc: null,
    diff: null,
    runs: dirs.slice(0, 3),
  });
});

test('ECE columns: final and at the best-accuracy epoch, mean ± std over seeds; "-" for a run from before calibration was logged', async () => {
  const root = tempDir('mixup-report-');
  const dirs = [
    // best accuracy at epoch 2 (0.6): ECE there .04 / .06 → 5.00 ± 1.41; final .03 / .05 → 4.00 ± 1.41
    makeRun(root, 's0', { experiment: 'mixup', epochs: 3, seed: 0, valAcc: [0.5, 0.6, 0.55], valEce: [0.1, 0.04, 0.03], configName: 'quick' }),
    makeRun(root, 's1', { experiment: 'mixup', epochs: 3, seed: 1, valAcc: [0.5, 0.6, 0.6], valEce: [0.1, 0.06, 0.05], configName: 'quick' }),
    makeRun(root, 'old', { experiment: 'erm', epochs: 3, valAcc: [0.5, 0.6, 0.7], configName: 'erm-3' }),
  ];
  const rows = buildTable(readRuns(dirs));
  assert.equal(rows[0]!.finalEce, null);
  assert.ok(Math.abs(rows[1]!.finalEce!.mean - 4) < 1e-9 && Math.abs(rows[1]!.finalEce!.std! - Math.SQRT2) < 1e-9);
  assert.ok(Math.abs(rows[1]!.bestEce!.mean - 5) < 1e-9, 'ECE at the first epoch of the best accuracy');
  const md = formatMarkdown(rows).split('\n');
  assert.deepEqual(md.slice(0, 4), [
    '| config | experiment | epochs | alpha | mix_rate | test acc % (final) | test acc % (best, picked on test: optimistic) | initial learning rate | batch size | ECE % (final) | ECE % (at best acc) | train.seed | runs |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    '| erm-3 (train.epochs=3) | erm | 3 | - | - | 70.00 | 70.00 | 0.05 | 128 | - | - | 0 | old |',
    '| quick (train.epochs=3) | mixup | 3 | 0.2 | 0.7 | 57.50 ± 3.54 | 60.00 ± 0.00 | 0.7 | 128 | 4.00 ± 1.41 | 5.00 ± 1.41 | 0, 1 | s0, s1 |',
  ]);
  assert.ok(md.some((l) => l.startsWith('ECE: expected calibration error of the validation predictions in %')));
  const csv = formatCsv(rows).split('\n');
  assert.ok(csv[0]!.endsWith(',runs,final_ece,final_ece_std,best_acc_ece,best_acc_ece_std'), csv[0]);
  assert.ok(csv[1]!.endsWith(',,,,'), csv[1]);
  assert.ok(csv[2]!.endsWith(',4,1.4142,5,1.4142'), csv[2]);
  const json = JSON.parse(formatJson(rows)) as Record<string, unknown>[];
  assert.deepEqual([json[1]!['final_ece'], json[1]!['best_acc_ece'], json[0]!['final_ece']], [4, 5, null]);
  // the plot gets a third panel
  const svg = await renderSvg(buildPlotSpec(readRuns(dirs)));
  assert.ok(svg.includes('>validation ECE (%)</text>'));
  const without = await renderSvg(buildPlotSpec(readRuns([dirs[2]!])));
  assert.ok(!without.includes('validation ECE'));
});

test('plot: an SVG that parses, with the run legends; PNG with the magic bytes and 2x the size', async () => {
  const { dirs } = fixtureRuns();
  const runs = readRuns(dirs);
  assert.deepEqual(seriesLabels(runs), ['erm-3 (train.epochs=3)', 'erm-3 (train.epochs=3)', 'erm-3 (train.epochs=3)', 'mixup-3 (train.epochs=3)', 'mixup-feature-90']);
  const svg = await renderSvg(buildPlotSpec(runs));
  assert.ok(svg.startsWith('<svg'), svg.slice(0, 40));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  for (const label of ['erm-3 (train.epochs=3)', 'mixup-3 (train.epochs=3)', 'mixup-feature-90', 'validation accuracy (%)', 'training loss', 'epoch']) {
    assert.ok(svg.includes(`>${label}</text>`), `legend/axis text ${label}`);
  }
  const parsed = new Resvg(svg); // an independent SVG parser: throws on malformed XML
  assert.ok(parsed.width > 800 && parsed.height > 250, `${parsed.width}x${parsed.height}`);
  const png = svgToPng(svg);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const img = PNG.sync.read(png);
  assert.equal(img.width, Math.round(parsed.width * 2));
  assert.equal(img.height, Math.round(parsed.height * 2));
});

test('report: table on stdout, one line per skipped or unfinished run, --plot writes the file', async () => {
  const { root, dirs } = fixtureRuns();
  const out: string[] = [];
  const err: string[] = [];
  const plot = join(root, 'curves.png');
  await report([...dirs, join(root, 'nothing-here'), `${dirs[0]}/`], { format: 'csv', plot }, { out: (l) => out.push(l), err: (l) => err.push(l) });
  assert.equal(out.join('\n').split('\n').length, 4); // header + 3 rows
  assert.deepEqual(err, [
    `mixup: note: ${dirs[4]}: running at epoch 2/90; shown as unfinished, in no mean`,
    `mixup: note: ${join(dirs[5]!, 'curves.csv')}: missing, no epoch finished yet (status.json: running, epoch 0/90); skipped`,
    `mixup: note: ${join(root, 'nothing-here')}: no such directory; skipped`,
    `mixup: note: ${dirs[0]}/: given more than once; counted once`,
    `mixup: plot of 5 runs written to ${plot}`,
  ]);
  assert.deepEqual([...readFileSync(plot).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
});

/** Runs `report` in-process; returns what it printed. */
async function reportLines(dirs: string[], opts: Parameters<typeof report>[1] = {}) {
  const out: string[] = [];
  const err: string[] = [];
  await report(dirs, opts, { out: (l) => out.push(...l.split('\n')), err: (l) => err.push(l) });
  return { out, err };
}

test('report: runs of one config with the same seed are counted once, the first given, with one note', async () => {
  const root = tempDir('mixup-report-');
  const run = (name: string, seed: number, acc: number) =>
    makeRun(root, name, { experiment: 'mixup', epochs: 1, seed, valAcc: [acc], configName: 'quick' });
  // two identical seed-0 runs: one value, 12.60, no std (it was 12.60 ± 0.00 | 0, 0)
  const a = run('a', 0, 0.126);
  const b = run('b', 0, 0.126);
  const one = await reportLines([a, b], { format: 'csv' });
  assert.equal(one.out[1], `quick,mixup,1,0.2,0.7,12.6,,12.6,,0.7,128,,1,0,finished,1,,,${a}`);
  assert.deepEqual(one.err, [`mixup: note: ${b}: same config (quick) and seed 0 as ${a}; left out, each seed is counted once (the first given)`]);
  // seeds 0, 1, 0: the later seed-0 run (13.00) is left out: (12.60, 10.00) → 11.30 ± 1.84 (was 11.87 ± 1.63 over three)
  const c = run('c', 1, 0.1);
  const d = run('d', 0, 0.13);
  const two = await reportLines([a, c, d, b]);
  assert.equal(two.out[2], '| quick (train.epochs=1) | mixup | 1 | 0.2 | 0.7 | 11.30 ± 1.84 | 11.30 ± 1.84 | 0.7 | 128 | 0, 1 | a, c |');
  assert.deepEqual(two.err, [`mixup: note: ${d}, ${b}: same config (quick) and seed 0 as ${a}; left out, each seed is counted once (the first given)`]);
  // argument order decides which run is kept; unfinished runs and other configs are not repeats
  const e = makeRun(root, 'e', { experiment: 'mixup', epochs: 2, seed: 0, valAcc: [0.2], configName: 'quick' });
  const f = makeRun(root, 'f', { experiment: 'mixup', epochs: 1, seed: 0, valAcc: [0.3], configName: 'quick', extra: { mixup: { alpha: 1 } } });
  const runs = readRuns([d, a, e, f]);
  const { runs: kept, repeats } = dropRepeatedSeeds(runs);
  assert.deepEqual(kept.map((r) => r.dir), [d, e, f]);
  assert.deepEqual(repeats.map((x) => [x.kept.dir, x.dropped.map((r) => r.dir)]), [[d, [a]]]);
  assert.deepEqual(buildTable(kept).map((r) => [r.config, r.alpha, r.finalAcc.mean]), [
    ['quick', 0.2, 13],
    ['quick', 1, 30],
    ['quick', 0.2, 20],
  ]);
});

test('report --plot: a wrong extension or a missing directory fails before anything is printed', async () => {
  const { root, dirs } = fixtureRuns();
  writeFileSync(join(root, 'afile'), 'x');
  mkdirSync(join(root, 'adir.svg'));
  const cases: [string, string][] = [
    [join(root, 'x.jpg'), `--plot ${join(root, 'x.jpg')}: expected a file name ending in .svg or .png`],
    [join(root, 'X.PDF'), `--plot ${join(root, 'X.PDF')}: expected a file name ending in .svg or .png`],
    [join(root, 'no', 'c.svg'), `--plot ${join(root, 'no', 'c.svg')}: cannot use directory ${join(root, 'no')} (ENOENT)`],
    [join(root, 'afile', 'c.png'), `--plot ${join(root, 'afile', 'c.png')}: ${join(root, 'afile')} is not a directory`],
    [join(root, 'adir.svg'), `--plot ${join(root, 'adir.svg')}: exists and is not a regular file`],
  ];
  for (const [plot, message] of cases) {
    const out: string[] = [];
    const err: string[] = [];
    await assert.rejects(report(dirs, { plot }, { out: (l) => out.push(l), err: (l) => err.push(l) }), { name: 'UserError', message });
    assert.deepEqual([out, err], [[], []], plot);
  }
  assert.equal(checkPlotFile(join(root, 'C.SVG')), 'svg');
  assert.equal(checkPlotFile(join(root, 'afile.png')), 'png');
  // An existing file is refused unless --force, and left as it was.
  const old = join(root, 'old.png');
  writeFileSync(old, 'x');
  await assert.rejects(report(dirs, { plot: old }, { out: () => {}, err: () => {} }), { name: 'UserError', message: `--plot ${old}: already exists; use --force to replace it` });
  assert.equal(readFileSync(old, 'utf8'), 'x');
  assert.equal(checkPlotFile(old, '--plot', { replace: true }), 'png');
});

test('mixup report (CLI): Markdown by default, exit 2 with one line when nothing can be reported', () => {
  const { root, dirs } = fixtureRuns();
  const ok = mixup(['report', dirs[0]!, dirs[1]!, dirs[2]!, '--plot', join(root, 'c.svg')]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^\| erm-3 \(train\.epochs=3\) \| erm \| 3 \| - \| - \| 91\.00 ± 1\.00 \| 91\.67 ± 0\.76 \| 0\.05 \| 128 \| 0, 1, 2 \| erm-3-s0, erm-3-s1, erm-3-s2 \|$/m);
  assert.ok(readFileSync(join(root, 'c.svg'), 'utf8').startsWith('<svg'));
  // The same again: the plot exists. Refused with exit 2, the file untouched; --force replaces it.
  writeFileSync(join(root, 'c.svg'), 'mine');
  const again = mixup(['report', dirs[0]!, '--plot', join(root, 'c.svg')]);
  assert.deepEqual([again.code, again.out, again.err], [2, '', `mixup: error: --plot ${join(root, 'c.svg')}: already exists; use --force to replace it\n`]);
  assert.equal(readFileSync(join(root, 'c.svg'), 'utf8'), 'mine');
  assert.equal(mixup(['report', dirs[0]!, '--plot', join(root, 'c.svg'), '--force']).code, 0);
  assert.ok(readFileSync(join(root, 'c.svg'), 'utf8').startsWith('<svg'));
  // --force without --plot would do nothing: refused, as mixup test --force without --reliability
  const lone = mixup(['report', dirs[0]!, '--force']);
  assert.deepEqual([lone.code, lone.out, lone.err], [2, '', 'mixup: error: --force goes with --plot FILE (it replaces an existing plot file)\n']);
  const none = mixup(['report', dirs[5]!]);
  assert.equal(none.code, 2);
  assert.equal(
    none.err,
    `mixup: note: ${join(dirs[5]!, 'curves.csv')}: missing, no epoch finished yet (status.json: running, epoch 0/90); skipped\n` +
      `mixup: error: report: ${dirs[5]!} holds no run with a finished epoch (see the note above)\n`,
  );
  const bad = mixup(['report', dirs[0]!, '--plot', join(root, 'x.gif')]);
  assert.deepEqual([bad.code, bad.out, bad.err], [2, '', `mixup: error: --plot ${join(root, 'x.gif')}: expected a file name ending in .svg or .png\n`]);
});

test('report: label-noise runs get a noise-by-method table of best and last test accuracy and memorisation', async (t) => {
  const root = tempDir('mixup-report-');
  t.after(() => rmSync(root, { recursive: true, force: true }));
  /** A finished 3-epoch run with the memorisation columns (null: a run from before they existed). */
  const noisy = (name: string, f: Omit<Fixture, 'epochs'>, mem: [number, number] | null) => {
    const dir = makeRun(root, name, { epochs: 3, ...f });
    const header = mem ? `${HEADER},corrupt_noisy_acc,corrupt_true_acc` : HEADER;
    const rows = f.valAcc.map((a, i) => [i + 1, 0.1, 1.5, 0.5, 1.1, a, 12.5, 4000, ...(mem ? [i < 2 ? '' : mem[0], i < 2 ? '' : mem[1]] : [])].join(','));
    writeFileSync(join(dir, 'curves.csv'), [header, ...rows].join('\n') + '\n');
    return dir;
  };
  const n20 = { data: { labelNoise: 0.2 } };
  const dirs = [
    noisy('mixup-a8-20-s0', { experiment: 'mixup', valAcc: [0.6, 0.85, 0.84], configName: 'mixup-a8-20', extra: { ...n20, mixup: { alpha: 8 } } }, [0.1, 0.7]),
    noisy('erm-20-s0', { experiment: 'erm', seed: 0, valAcc: [0.5, 0.8, 0.7], configName: 'erm-20', extra: n20 }, [0.4, 0.3]),
    noisy('erm-20-s1', { experiment: 'erm', seed: 1, valAcc: [0.6, 0.82, 0.74], configName: 'erm-20', extra: n20 }, [0.5, 0.35]),
    noisy('erm-80-s0', { experiment: 'erm', valAcc: [0.3, 0.4, 0.2], configName: 'erm-80', extra: { data: { labelNoise: 0.8 } } }, null),
    noisy('cutmix-80-s0', { experiment: 'mixup', valAcc: [0.3, 0.5, 0.45], configName: 'cutmix-80', extra: { data: { labelNoise: 0.8 }, mixup: { alpha: 1, kind: 'cutmix' }, train: { labelSmoothing: 0.1 } } }, [0.05, 0.4]),
    makeRun(root, 'clean-s0', { experiment: 'erm', epochs: 1, valAcc: [0.9], configName: 'erm-1' }),
    makeRun(root, 'erm-50-s0', { experiment: 'erm', epochs: 3, valAcc: [0.5], configName: 'erm-50', extra: { data: { labelNoise: 0.5 } } }),
  ];
  const { out } = await reportLines(dirs);
  const at = out.indexOf('| label noise | method | epochs | test acc % (best) | test acc % (last) | memorised % | true label % on corrupted | train.seed | config |');
  assert.ok(at > 0, out.join('\n'));
  assert.deepEqual(out.slice(at + 1, at + 7), [
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    // ERM at 20 %: best 0.8 / 0.82 → 81.00 ± 1.41, last 0.7 / 0.74 → 72.00 ± 2.83, memorised 0.4 / 0.5 → 45.00 ± 7.07
    '| 20% | ERM | 3 | 81.00 ± 1.41 | 72.00 ± 2.83 | 45.00 ± 7.07 | 32.50 ± 3.54 | 0, 1 | erm-20 |',
    '| 20% | mixup α=8 | 3 | 85.00 | 84.00 | 10.00 | 70.00 | 0 | mixup-a8-20 |',
    '| 80% | ERM | 3 | 40.00 | 20.00 | - | - | 0 | erm-80 |',
    '| 80% | CutMix α=1, ε=0.1 | 3 | 50.00 | 45.00 | 5.00 | 40.00 | 0 | cutmix-80 |',
    '',
  ]);
  assert.match(out[at + 7]!, /^Label noise: data\.labelNoise of the training labels replaced/);
  // the clean run and the unfinished one are in the main table only
  assert.ok(!out.slice(at).some((l) => l.includes('erm-50') || l.includes('erm-1 ')));
  // CSV and JSON hold one table: the main one, with a note naming --table noise
  const csv = await reportLines(dirs, { format: 'csv' });
  assert.ok(csv.out.join('\n').startsWith('config,experiment,epochs,'));
  assert.ok(!csv.out.some((l) => l.startsWith('| label noise') || l.startsWith('label_noise')));
  assert.deepEqual(csv.err.filter((l) => l.includes('label-noise')), [
    'mixup: note: the label-noise table (4 rows) is not in this CSV; print it with --table noise --format csv',
  ]);
  // --table noise: the same rows and numbers in CSV and JSON (accuracies in %, label_noise a fraction)
  const noiseCsv = await reportLines(dirs, { format: 'csv', table: 'noise' });
  assert.deepEqual(noiseCsv.out.join('\n').split('\n'), [
    'label_noise,method,epochs,best_acc,best_acc_std,last_acc,last_acc_std,memorised,memorised_std,true_on_corrupted,true_on_corrupted_std,n,seeds,config,runs',
    `0.2,ERM,3,81,1.4142,72,2.8284,45,7.0711,32.5,3.5355,2,0 1,erm-20,${dirs[1]} ${dirs[2]}`,
    `0.2,mixup α=8,3,85,,84,,10,,70,,1,0,mixup-a8-20,${dirs[0]}`,
    `0.8,ERM,3,40,,20,,,,,,1,0,erm-80,${dirs[3]}`,
    `0.8,"CutMix α=1, ε=0.1",3,50,,45,,5,,40,,1,0,cutmix-80,${dirs[4]}`,
  ]);
  assert.deepEqual(noiseCsv.err.filter((l) => l.includes('label-noise')), []);
  const noiseJson = await reportLines(dirs, { format: 'json', table: 'noise' });
  const records = JSON.parse(noiseJson.out.join('\n')) as Record<string, unknown>[];
  assert.deepEqual(records[0], {
    label_noise: 0.2,
    method: 'ERM',
    epochs: 3,
    best_acc: 81,
    best_acc_std: 1.4142, // sample std of 80, 82: sqrt(2)
    last_acc: 72,
    last_acc_std: 2.8284, // of 70, 74: sqrt(8)
    memorised: 45,
    memorised_std: 7.0711, // of 40, 50: sqrt(50)
    true_on_corrupted: 32.5,
    true_on_corrupted_std: 3.5355, // of 30, 35: sqrt(12.5)
    n: 2,
    seeds: [0, 1],
    config: 'erm-20',
    runs: [dirs[1], dirs[2]],
  });
  assert.deepEqual(records.map((r) => [r['label_noise'], r['method'], r['memorised']]), [[0.2, 'ERM', 45], [0.2, 'mixup α=8', 10], [0.8, 'ERM', null], [0.8, 'CutMix α=1, ε=0.1', 5]]);
  // --table noise in Markdown: the noise table alone; --table main: the main table alone
  const noiseMd = await reportLines(dirs, { table: 'noise' });
  assert.equal(noiseMd.out.join('\n').split('\n')[0], out[at]);
  const mainMd = await reportLines(dirs, { table: 'main' });
  assert.ok(!mainMd.out.join('\n').includes('| label noise'));
  // no finished label-noise run: --table noise is refused with one line, nothing printed
  const lines: string[] = [];
  await assert.rejects(report([dirs[5]!], { table: 'noise' }, { out: (l) => lines.push(l), err: () => {} }), {
    name: 'UserError',
    message: 'report --table noise: none of the 1 run is a finished label-noise run (data.labelNoise > 0)',
  });
  assert.deepEqual(lines, []);
});

test('--compare-reference reads the 90- and 200-epoch rows from the curves of 300-epoch runs (as the reference scored its checkpoints)', async () => {
  const root = tempDir('mixup-report-');
  // accuracy 0.5 everywhere except: epoch 90 → 0.80 / 0.82, epoch 60 → 0.85 (a best before 90) for seed 0,
  // epoch 200 → 0.90 / 0.91, epoch 300 → 0.92 / 0.93
  const curve = (at90: number, at200: number, at300: number, extra: Record<number, number> = {}) =>
    Array.from({ length: 300 }, (_, i) => ({ 90: at90, 200: at200, 300: at300, ...extra })[i + 1] ?? 0.5);
  const dirs = [
    // the shipped configs: the reference's recipe, so that the reference columns are filled (the prefixes
    // compare with configs/<experiment>-90.json and -200.json, equal apart from train.epochs)
    ...[0, 1].map((seed) =>
      makeRun(root, `mixup-300-s${seed}`, {
        experiment: 'mixup',
        epochs: 300,
        seed,
        configName: 'mixup-300',
        extra: { ...shippedConfig('mixup-300'), train: { ...shippedConfig('mixup-300').train, seed } },
        valAcc: seed === 0 ? curve(0.8, 0.9, 0.92, { 60: 0.85 }) : curve(0.82, 0.91, 0.93),
      }),
    ),
    // still training at epoch 150: only its 90-epoch row exists, shown as a finished prefix
    makeRun(root, 'erm-300-s0', { experiment: 'erm', epochs: 300, configName: 'erm-300', extra: shippedConfig('erm-300'), valAcc: curve(0.7, 0.9, 0.9).slice(0, 150) }),
  ];
  const out: string[] = [];
  const io = { out: (l: string) => out.push(l), err: () => {} };
  await report(dirs, { compareReference: true, format: 'json' }, io);
  const rows = (JSON.parse(out.join('\n')) as Record<string, unknown>[]).map((r) => [r['config'], r['epochs'], r['final_acc'], r['best_acc'], r['n'], r['reference_acc'], r['status']]);
  assert.deepEqual(rows, [
    ['erm-300 at epoch 90', 90, 70, 70, 1, 87.9, 'finished'],
    ['erm-300', 300, 50, 70, 1, 89.32, 'running'],
    ['mixup-300 at epoch 90', 90, 81, 83.5, 2, 86.09, 'finished'],
    ['mixup-300 at epoch 200', 200, 90.5, 90.5, 2, 91.61, 'finished'],
    ['mixup-300', 300, 92.5, 92.5, 2, 92.25, 'finished'],
  ]);
  // without --compare-reference: one row per config
  out.length = 0;
  await report(dirs, { format: 'json' }, io);
  assert.deepEqual((JSON.parse(out.join('\n')) as Record<string, unknown>[]).map((r) => r['config']), ['erm-300', 'mixup-300']);
});
