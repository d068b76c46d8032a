/**
 * `mixup test` beyond accuracy: the calibration it prints equals the columns training logged, the
 * reliability diagram and the attack through the CLI, and the refusals of their flags. A tiny run
 * (wasm backend, depth 8, 8×8 crops, one epoch) trained on generated data.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { runTraining } from '../src/train/run.js';
import { scoreCheckpoint } from '../src/evaluate/score.js';
import { formatScore, scoreHeaderLines } from '../src/report/score.js';
import { readCurves } from '../src/rundir/curves.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { tempDir } from './fixtures/tmp.js';
import { REPO_ROOT, runMixup } from './fixtures/cli.js';

const root = REPO_ROOT;
const temps: string[] = [];
let run: string;

function mixup(...args: string[]) {
  return runMixup(args, { cwd: root });
}

before(async () => {
  await selectBackend('wasm');
  const data = cifarBinDir(64, 30);
  const dir = tempDir('mixup-score-');
  temps.push(data, dir);
  run = join(dir, 'run');
  const file = join(dir, 'exp.json');
  writeFileSync(
    file,
    JSON.stringify({
      experiment: 'erm',
      loss: 'soft-ce',
      backend: 'wasm',
      out: run,
      model: { depth: 8, numClasses: 10 },
      data: { dir: data, imageShape: [3, 8, 8], padSize: 2, workers: 0, augment: { maxRandomH: 0, maxRandomS: 0, maxRandomL: 0 } },
      train: { epochs: 1, batchSize: 16, lr: 0.1, evalBatchSize: 16, seed: 5, logEvery: 100 },
    }),
  );
  const lines: string[] = [];
  const code = await runTraining(
    { cfg: loadConfig(file), source: null, resume: false, overwrite: false, handleSignals: false },
    { line: (l) => lines.push(l), info: (l) => lines.push(l), isTTY: false },
  );
  assert.equal(code, 0, lines.join('\n'));
  assert.ok(lines.some((l) => /^Epoch\[1\/1\] .* val_acc=[\d.]+% val_ece=[\d.]+% time=/.test(l)), lines.join('\n'));
});

after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('curves.csv has the calibration columns after the label-noise ones (then the holdout and clean-training ones), and mixup test reports the same calibration', async () => {
  const header = readFileSync(join(run, 'curves.csv'), 'utf8').split('\n')[0];
  assert.equal(header, 'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec,corrupt_noisy_acc,corrupt_true_acc,val_ece,val_mce,val_confidence,val_brier,holdout_loss,holdout_acc,holdout_ece,temperature,val_ece_scaled,train_clean_acc');
  const [row] = readCurves(join(run, 'curves.csv'));
  const s = await scoreCheckpoint(run, {});
  assert.equal(s.calibration.samples, 30);
  assert.equal(Number(s.calibration.ece.toFixed(6)), row!.val_ece);
  assert.equal(Number(s.calibration.mce.toFixed(6)), row!.val_mce);
  assert.equal(Number(s.calibration.meanConfidence.toFixed(6)), row!.val_confidence);
  assert.equal(Number(s.calibration.brier.toFixed(6)), row!.val_brier);
  // the calibration's own top-1 (argmax of the softmax) is the evaluation's
  assert.equal(s.calibration.accuracy, s.accuracy);
  assert.equal(s.calibration.bins.reduce((n, b) => n + b.count, 0), 30);
  assert.ok(row!.val_ece! > 0 && row!.val_ece! <= 1 && row!.val_brier! > 0 && row!.val_brier! < 2);
});

test('scoreCheckpoint says which checkpoint and data before any image is scored, then the progress of the clean pass and of the attack', async () => {
  const events: string[] = [];
  const s = await scoreCheckpoint(run, {
    attack: { kind: 'fgsm', eps: 2, steps: 1 },
    onStart: (h) => events.push(`start ${JSON.stringify(h)}`),
    onProgress: (done, total) => events.push(`clean ${done}/${total}`),
    onAttackProgress: (done, total) => events.push(`attack ${done}/${total}`),
  });
  const header = { checkpoint: join(run, 'checkpoints', 'epoch-0001'), epoch: 1, batch: 0, data: s.data };
  assert.match(s.data, /test_batch\.bin/);
  // 30 validation images in batches of 16 (train.evalBatchSize): 16, then 30
  assert.deepEqual(events, [`start ${JSON.stringify(header)}`, 'clean 16/30', 'clean 30/30', 'attack 16/30', 'attack 30/30']);
  assert.deepEqual(formatScore(s).slice(0, 2), scoreHeaderLines(header));
  assert.deepEqual(formatScore(s, false), formatScore(s).slice(2));
});

test('mixup test --attack fgsm --eps --reliability --json: clean and attacked top-1, the per-bin table, a PNG', () => {
  const dir = tempDir('mixup-score-');
  temps.push(dir);
  const png = join(dir, 'rel.png');
  const r = mixup('test', '--checkpoint', run, '--attack', 'fgsm', '--eps', '8', '--reliability', png, '--json');
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out);
  assert.equal(s.calibration.bins.length, 15);
  assert.deepEqual(Object.keys(s.calibration.bins[0]), ['lower', 'upper', 'count', 'meanConfidence', 'accuracy']);
  assert.deepEqual([s.attack.kind, s.attack.eps, s.attack.steps, s.attack.samples], ['fgsm', 8, 1, 30]);
  assert.equal(s.attack.cleanAccuracy, s.accuracy);
  assert.ok(s.attack.attackedAccuracy < s.attack.cleanAccuracy, `${s.attack.attackedAccuracy} vs ${s.attack.cleanAccuracy}`);
  assert.deepEqual([...readFileSync(png).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  assert.match(r.err, /reliability diagram written to /);
  // an existing file is refused before anything is evaluated, replaced with --force
  const again = mixup('test', '--checkpoint', run, '--reliability', png);
  assert.deepEqual([again.code, again.out, again.err], [2, '', `mixup: error: --reliability ${png}: already exists; use --force to replace it\n`]);
  const svg = join(dir, 'rel.svg');
  const text = mixup('test', '--checkpoint', run, '--reliability', svg, '--attack', 'ifgsm', '--eps', '4', '--steps', '2');
  assert.equal(text.code, 0, text.err);
  assert.ok(readFileSync(svg, 'utf8').includes('Reliability diagram, ECE '));
  assert.match(text.out, /^calibration \(15 equal-width bins of top-1 confidence\): ECE [\d.]+%, MCE [\d.]+%, mean confidence [\d.]+%, Brier score [\d.]+/m);
  assert.match(text.out, /^attack \(I-FGSM, ε 4\/255, 2 steps of 2, white-box\): top-1 [\d.]+% clean → [\d.]+% attacked \(30 images\)$/m);
  assert.equal(mixup('test', '--checkpoint', run, '--reliability', svg, '--force').code, 0);
});

test('mixup test: bad --reliability / --attack flags are one line, exit 2, before any evaluation', () => {
  const dir = tempDir('mixup-score-');
  temps.push(dir);
  const cases: [string[], string][] = [
    [['--reliability', join(dir, 'rel.jpg')], `--reliability ${join(dir, 'rel.jpg')}: expected a file name ending in .svg or .png`],
    [['--force'], '--force goes with --reliability FILE'],
    [['--eps', '2'], '--eps goes with --attack fgsm|ifgsm'],
    [['--attack', 'pgd', '--eps', '2'], '--attack pgd: expected one of fgsm, ifgsm'],
    [['--attack', 'fgsm'], '--attack fgsm: --eps E is required (E in pixel levels 0-255, e.g. --eps 2)'],
    [['--attack', 'fgsm', '--eps', '300'], '--eps 300: expected a number of pixel levels in [0, 255]'],
    [['--attack', 'fgsm', '--eps', '2', '--steps', '3'], '--steps goes with --attack ifgsm (FGSM is one step of ε)'],
    [['--attack', 'ifgsm', '--eps', '2', '--steps', '0'], '--steps 0: expected a positive whole number'],
  ];
  for (const [args, message] of cases) {
    const r = mixup('test', '--checkpoint', run, ...args);
    assert.deepEqual([r.code, r.out, r.err], [2, '', `mixup: error: ${message}\n`], args.join(' '));
  }
  assert.equal(existsSync(join(dir, 'rel.jpg')), false);
});
