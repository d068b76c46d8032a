/**
 * Disk use of a run's checkpoints (issue 22 item 19): the best epoch's checkpoint is kept besides the
 * newest `train.keepCheckpoints` and `train.keepEpochs`, and `mixup train` says at its start how much
 * space its checkpoints will take.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { runTraining, type TrainIo } from '../src/train/run.js';
import { bestEpoch } from '../src/rundir/best.js';
import { readCurves, type CurveRow } from '../src/rundir/curves.js';
import { listCheckpoints, pruneCheckpoints, writeCheckpoint } from '../src/rundir/rundir.js';
import { keptCheckpoints } from '../src/train/diskuse.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { tempDir } from './fixtures/tmp.js';

const row = (epoch: number, val_acc: number) => ({ epoch, val_acc }) as CurveRow;

test('bestEpoch: the highest val_acc, the earliest of equals, non-finite ignored, null for none', () => {
  assert.equal(bestEpoch([row(1, 0.3), row(2, 0.5), row(3, 0.4)]), 2);
  assert.equal(bestEpoch([row(3, 0.5), row(1, 0.2), row(2, 0.5)]), 2);
  assert.equal(bestEpoch([row(1, NaN), row(2, 0.1)]), 2);
  assert.equal(bestEpoch([row(1, NaN)]), null);
  assert.equal(bestEpoch([]), null);
});

test('bestEpoch: with held-out images (data.holdout) the best holdout top-1 picks, not val_acc', () => {
  const h = (epoch: number, val_acc: number, holdout_acc: number) => ({ epoch, val_acc, holdout_acc }) as CurveRow;
  assert.equal(bestEpoch([h(1, 0.9, 0.5), h(2, 0.6, 0.7), h(3, 0.95, 0.6)]), 2);
  assert.equal(bestEpoch([h(2, 0.9, 0.7), h(1, 0.1, 0.7)]), 1);
  assert.equal(bestEpoch([h(1, 0.9, NaN)]), 1);
});

test('pruning keeps the best epoch besides the newest N and keepEpochs', async () => {
  const out = tempDir('mixup-disk-');
  for (let e = 1; e <= 6; e++) await writeCheckpoint(out, { epoch: e, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{}'));
  pruneCheckpoints(out, 1, [4], 2);
  assert.deepEqual(listCheckpoints(out).map((c) => c.pos.epoch), [2, 4, 6]);
  // the best is the newest: nothing extra
  pruneCheckpoints(out, 1, [4], 6);
  assert.deepEqual(listCheckpoints(out).map((c) => c.pos.epoch), [4, 6]);
});

test('keptCheckpoints: every epoch by default; newest N + best + keepEpochs; checkpointEvery', () => {
  const t = { checkpointEvery: 1, keepCheckpoints: null, keepEpochs: [] as number[] };
  assert.equal(keptCheckpoints(t, 300), 300);
  assert.equal(keptCheckpoints({ ...t, keepCheckpoints: 2, keepEpochs: [90, 200, 300] }, 300), 6);
  assert.equal(keptCheckpoints({ ...t, keepCheckpoints: 2 }, 2), 2);
  // every 10th: 10, 20, ..., 300 and the last (300 already): 30; with 95 epochs 9 + the 95th
  assert.equal(keptCheckpoints({ ...t, checkpointEvery: 10 }, 300), 30);
  assert.equal(keptCheckpoints({ ...t, checkpointEvery: 10 }, 95), 10);
});

let dataDir: string;
before(async () => {
  await selectBackend('wasm');
  dataDir = cifarBinDir(32, 16);
});

test('a run with train.keepCheckpoints 1 ends with the best epoch and the last; its first lines say the space', async () => {
  const dir = tempDir('mixup-disk-');
  const cfg = {
    experiment: 'erm',
    backend: 'wasm',
    out: join(dir, 'run'),
    model: { depth: 8, numClasses: 10 },
    data: { dir: dataDir, imageShape: [3, 8, 8], padSize: 2, workers: 0 },
    train: { epochs: 5, batchSize: 16, lr: 0.8, lrStepEpochs: [9], evalBatchSize: 16, seed: 1, keepCheckpoints: 1 },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  const lines: string[] = [];
  const io: TrainIo = { line: (l) => lines.push(l), info: (l) => lines.push(l), isTTY: false };
  assert.equal(await runTraining({ cfg: loadConfig(join(dir, 'exp.json')), source: null, resume: false, overwrite: false, handleSignals: false }, io), 0);
  const rows = readCurves(join(cfg.out, 'curves.csv'));
  const best = bestEpoch(rows)!;
  // the fixture is chosen so that the best epoch is not the last one: the rule is really exercised
  assert.ok(best < 5, `best epoch ${best}; val_acc ${rows.map((r) => r.val_acc).join(', ')}`);
  assert.deepEqual(listCheckpoints(cfg.out).map((c) => c.pos.epoch), [best, 5]);

  // the estimate of one checkpoint is within 1% of what one takes on disk
  const ck = listCheckpoints(cfg.out).pop()!.dir;
  let bytes = 0;
  for (const e of readdirSync(ck, { recursive: true, withFileTypes: true })) if (e.isFile()) bytes += statSync(join(e.parentPath, e.name)).size;
  const line = lines.find((l) => l.startsWith('disk: '));
  const m = /^disk: a checkpoint takes ([\d.]+ [KMG]iB); this run keeps up to 2 \(the newest 1, the best epoch's\), about ([\d.]+ [KMG]iB) in (.*); [\d.]+ [KMGT]iB free there$/.exec(line ?? '');
  assert.ok(m, line);
  const unit = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 } as Record<string, number>;
  const size = (t: string) => Number(t.split(' ')[0]) * unit[t.split(' ')[1]!]!;
  assert.ok(Math.abs(size(m[1]!) - bytes) / bytes < 0.01, `estimated ${m[1]}, on disk ${bytes} bytes`);
  assert.ok(Math.abs(size(m[2]!) - 2 * bytes) / bytes < 0.1, `${m[2]} for 2 of ${bytes} bytes`);
  assert.equal(m[3], join(cfg.out, 'checkpoints'));
});
