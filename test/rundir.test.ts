import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import {
  assertNotTraining,
  checkpointName,
  cleanCheckpoints,
  findCheckpoint,
  listCheckpoints,
  liveTrainer,
  parseCheckpointName,
  prepareNewRun,
  pruneCheckpoints,
  readStatus,
  writeCheckpoint,
  writeStatus,
} from '../src/rundir/rundir.js';
import { appendCurveRow, readCurves, truncateCurves, type CurveRow } from '../src/rundir/curves.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './fixtures/tmp.js';

const tmp = () => tempDir('mixup-run-');

test('checkpoint names sort by epoch then batch and parse back', () => {
  assert.equal(checkpointName({ epoch: 3, batch: 0 }), 'epoch-0003');
  assert.equal(checkpointName({ epoch: 3, batch: 120 }), 'epoch-0003+batch-000120');
  assert.deepEqual(parseCheckpointName('epoch-0003+batch-000120'), { epoch: 3, batch: 120 });
  assert.deepEqual(parseCheckpointName('epoch-12345'), { epoch: 12345, batch: 0 });
  assert.equal(parseCheckpointName('.tmp-epoch-0003-77'), null);
  assert.equal(parseCheckpointName('epoch-3'), null);
});

test('writeCheckpoint renames a complete directory into place; a failed write leaves no checkpoint', async () => {
  const out = tmp();
  await writeCheckpoint(out, { epoch: 1, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{"a":1}'));
  await assert.rejects(
    writeCheckpoint(out, { epoch: 2, batch: 0 }, async (d) => {
      writeFileSync(join(d, 'model.json'), '{"a":');
      throw new Error('disk full');
    }),
    /disk full/,
  );
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001']);
  assert.equal(findCheckpoint(out).dir, join(out, 'checkpoints', 'epoch-0001'));
  // The half-written temporary directory is cleaned up by the next write.
  await writeCheckpoint(out, { epoch: 2, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{"a":2}'));
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['epoch-0001', 'epoch-0002']);
  assert.equal(readFileSync(join(findCheckpoint(out).dir, 'model.json'), 'utf8'), '{"a":2}');
});

test('pruning keeps the newest N and drops stale partial checkpoints', async () => {
  const out = tmp();
  for (const pos of [{ epoch: 1, batch: 0 }, { epoch: 1, batch: 5 }, { epoch: 2, batch: 0 }, { epoch: 3, batch: 0 }, { epoch: 3, batch: 7 }]) {
    await writeCheckpoint(out, pos, async (d) => writeFileSync(join(d, 'model.json'), '{}'));
  }
  pruneCheckpoints(out, null);
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001', 'epoch-0002', 'epoch-0003', 'epoch-0003+batch-000007']);
  pruneCheckpoints(out, 2);
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0003', 'epoch-0003+batch-000007']);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['epoch-0003', 'epoch-0003+batch-000007']);
});

test('pruning never removes the checkpoints of train.keepEpochs; the newest N others stay', async () => {
  const out = tmp();
  for (let e = 1; e <= 6; e++) await writeCheckpoint(out, { epoch: e, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{}'));
  await writeCheckpoint(out, { epoch: 2, batch: 3 }, async (d) => writeFileSync(join(d, 'model.json'), '{}'));
  pruneCheckpoints(out, 1, [2, 4]);
  // epoch-0002+batch-000003 is not an end-of-epoch checkpoint of epoch 2: a stale partial, removed
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0002', 'epoch-0004', 'epoch-0006']);
  assert.equal(findCheckpoint(out, 4).dir, join(out, 'checkpoints', 'epoch-0004'));
});

test('findCheckpoint: by epoch, a checkpoint directory itself, and one-line errors', async () => {
  const out = tmp();
  for (const e of [1, 2]) await writeCheckpoint(out, { epoch: e, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{}'));
  assert.equal(findCheckpoint(out, 1).dir, join(out, 'checkpoints', 'epoch-0001'));
  assert.deepEqual(findCheckpoint(join(out, 'checkpoints', 'epoch-0002')).pos, { epoch: 2, batch: 0 });
  assert.throws(() => findCheckpoint(out, 5), (e: unknown) => e instanceof UserError && /no checkpoint of epoch 5; epochs with a checkpoint: 1, 2$/.test(e.message));
  assert.throws(() => findCheckpoint(join(out, 'nope')), /no such run or checkpoint directory/);
  const empty = tmp();
  assert.throws(() => findCheckpoint(empty), /no checkpoint found/);
  // a checkpoint's files under another name (copied out of its run): the line says how it is found
  const renamed = join(tmp(), 'best-model');
  mkdirSync(renamed);
  writeFileSync(join(renamed, 'model.json'), '{}');
  writeFileSync(join(renamed, 'state.json'), JSON.stringify({ epoch: 7, batch: 3 }));
  assert.throws(() => findCheckpoint(renamed), (e: unknown) => e instanceof UserError && e.message === `${renamed}: holds a checkpoint's files, but a checkpoint directory is known by its name (epoch-0007+batch-000003, from its state.json); rename it epoch-0007+batch-000003, or give its run directory`);
  writeFileSync(join(renamed, 'state.json'), '{');
  assert.throws(() => findCheckpoint(renamed), (e: unknown) => e instanceof UserError && e.message === `${renamed}: holds a checkpoint's files, but a checkpoint directory is known by its name (epoch-NNNN); rename it epoch-NNNN, or give its run directory`);
});

test('a new run refuses a directory holding a run unless --overwrite, which removes only run files', () => {
  const out = tmp();
  prepareNewRun(out, false);
  writeStatus(out, { status: 'finished', epoch: 4, epochs: 4 });
  writeFileSync(join(out, 'notes.txt'), 'mine');
  assert.throws(
    () => prepareNewRun(out, false),
    (e: unknown) => e instanceof UserError && e.message === `${out} already holds a finished run (epoch 4/4); continue it with --resume ${out}, choose another --out, or pass --overwrite to replace it`,
  );
  prepareNewRun(out, true);
  assert.equal(readStatus(out), null);
  assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine');
  const file = join(tmp(), 'f');
  writeFileSync(file, 'x');
  assert.throws(() => prepareNewRun(file, false), /exists and is not a directory/);
});

test('curves.csv: header once, rows appended, truncation drops rows after the checkpoint and duplicates', async () => {
  const dir = tmp();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'curves.csv');
  const row = (epoch: number): CurveRow => ({
    epoch, lr: 0.7, train_loss: 2.1234567, train_acc: 0.25, val_loss: 1.5, val_acc: 0.4567891, epoch_seconds: 12.34567, samples_per_sec: 810.123,
    val_ece: 0.0312346, val_mce: 0.25, val_confidence: 0.5, val_brier: NaN,
  });
  await appendCurveRow(file, row(1));
  await appendCurveRow(file, row(2));
  await appendCurveRow(file, row(2));
  await appendCurveRow(file, row(3));
  assert.equal(readFileSync(file, 'utf8').split('\n')[0], 'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec,corrupt_noisy_acc,corrupt_true_acc,val_ece,val_mce,val_confidence,val_brier,holdout_loss,holdout_acc,holdout_ece,temperature,val_ece_scaled,train_clean_acc');
  // without label noise the memorisation columns are empty cells; the calibration columns follow them
  assert.equal(readFileSync(file, 'utf8').split('\n')[1], '1,0.7,2.123457,0.25,1.5,0.456789,12.346,810.12,,,0.031235,0.25,0.5,NaN,,,,,,');
  assert.equal(truncateCurves(file, 2), 2);
  assert.deepEqual(readCurves(file).map((r) => r.epoch), [1, 2]);
  assert.equal(readCurves(file)[1]!.val_acc, 0.456789);
  assert.equal(truncateCurves(join(dir, 'none.csv'), 2), 0);
  assert.equal(existsSync(join(dir, 'none.csv')), false);
  // a label-noise row fills them
  await appendCurveRow(file, { ...row(3), corrupt_noisy_acc: 0.1234567, corrupt_true_acc: 0.5 });
  assert.equal(readFileSync(file, 'utf8').trim().split('\n')[3], '3,0.7,2.123457,0.25,1.5,0.456789,12.346,810.12,0.123457,0.5,0.031235,0.25,0.5,NaN,,,,,,');
});

test('curves.csv of a run started before the memorisation or calibration columns: widened on the next append, rows aligned', async () => {
  const dir = tmp();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'curves.csv');
  writeFileSync(file, 'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec\n1,0.7,2.1,0.25,1.5,0.45,12.3,810.12\n');
  await appendCurveRow(file, { epoch: 2, lr: 0.7, train_loss: 2, train_acc: 0.3, val_loss: 1.4, val_acc: 0.5, epoch_seconds: 12, samples_per_sec: 800 });
  assert.deepEqual(readFileSync(file, 'utf8').split('\n'), [
    'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec,corrupt_noisy_acc,corrupt_true_acc,val_ece,val_mce,val_confidence,val_brier,holdout_loss,holdout_acc,holdout_ece,temperature,val_ece_scaled,train_clean_acc',
    '1,0.7,2.1,0.25,1.5,0.45,12.3,810.12,,,,,,,,,,,,',
    '2,0.7,2,0.3,1.4,0.5,12,800,,,,,,,,,,,,',
    '',
  ]);
  // a file with the memorisation columns but none of calibration's (ECE etc. are new on this row)
  writeFileSync(file, 'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec,corrupt_noisy_acc,corrupt_true_acc\n1,0.7,2.1,0.25,1.5,0.45,12.3,810.12,0.5,0.25\n');
  await appendCurveRow(file, { epoch: 2, lr: 0.7, train_loss: 2, train_acc: 0.3, val_loss: 1.4, val_acc: 0.5, epoch_seconds: 12, samples_per_sec: 800, val_ece: 0.05, val_mce: 0.2, val_confidence: 0.55, val_brier: 0.6 });
  assert.deepEqual(readFileSync(file, 'utf8').split('\n'), [
    'epoch,lr,train_loss,train_acc,val_loss,val_acc,epoch_seconds,samples_per_sec,corrupt_noisy_acc,corrupt_true_acc,val_ece,val_mce,val_confidence,val_brier,holdout_loss,holdout_acc,holdout_ece,temperature,val_ece_scaled,train_clean_acc',
    '1,0.7,2.1,0.25,1.5,0.45,12.3,810.12,0.5,0.25,,,,,,,,,,',
    '2,0.7,2,0.3,1.4,0.5,12,800,,,0.05,0.2,0.55,0.6,,,,,,',
    '',
  ]);
  assert.equal(readCurves(file)[0]!.val_ece, undefined, 'an empty cell reads as absent');
  // a header this version did not write is left as it is
  writeFileSync(file, 'epoch,val_acc\n1,0.5\n');
  await appendCurveRow(file, { epoch: 2, lr: 0.7, train_loss: 2, train_acc: 0.3, val_loss: 1.4, val_acc: 0.5, epoch_seconds: 12, samples_per_sec: 800 });
  assert.equal(readFileSync(file, 'utf8').split('\n')[0], 'epoch,val_acc');
});

test('cleanCheckpoints: unfinished writes and deletions go, a checkpoint caught mid-replacement comes back', async () => {
  const out = tmp();
  await writeCheckpoint(out, { epoch: 1, batch: 0 }, async (d) => writeFileSync(join(d, 'model.json'), '{"a":1}'));
  const root = join(out, 'checkpoints');
  // As left by kill -9: a half-written checkpoint, a half-deleted pruned one, and epoch-0002 renamed away
  // for replacement (.tmp-old-) before its successor was renamed into place.
  for (const d of ['.tmp-epoch-0003-41', '.tmp-del-epoch-0000+batch-000004-41', '.tmp-old-epoch-0002-41', '.tmp-epoch-0002-41']) mkdirSync(join(root, d));
  writeFileSync(join(root, '.tmp-old-epoch-0002-41', 'model.json'), '{"a":2}');
  writeFileSync(join(root, '.tmp-epoch-0002-41', 'model.json'), '{"a":');
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001']);
  cleanCheckpoints(out);
  assert.deepEqual(readdirSync(root).sort(), ['epoch-0001', 'epoch-0002']);
  assert.equal(readFileSync(join(root, 'epoch-0002', 'model.json'), 'utf8'), '{"a":2}');
  // A .tmp-old- directory whose checkpoint exists again is just removed.
  mkdirSync(join(root, '.tmp-old-epoch-0001-7'));
  cleanCheckpoints(out);
  assert.deepEqual(readdirSync(root).sort(), ['epoch-0001', 'epoch-0002']);
  assert.equal(readFileSync(join(root, 'epoch-0001', 'model.json'), 'utf8'), '{"a":1}');
});

test('a run is refused while status.json names a live trainer on this host; a dead pid or another host is not', () => {
  const out = tmp();
  prepareNewRun(out, false);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited (and reaped) by now
  const live = process.ppid;
  writeStatus(out, { status: 'running', epoch: 1, epochs: 4, pid: live, host: hostname() });
  assert.equal(liveTrainer(out), live);
  assert.throws(
    () => assertNotTraining(out),
    (e: unknown) => e instanceof UserError && e.message === `${out}: another process (pid ${live}) is training this run; wait for it or stop it (kill -INT ${live}) first`,
  );
  assert.throws(() => prepareNewRun(out, true), /another process \(pid \d+\) is training this run/);
  writeStatus(out, { status: 'running', epoch: 1, epochs: 4, pid: live }); // written before hosts were recorded
  assert.equal(liveTrainer(out), live);
  writeStatus(out, { status: 'running', epoch: 1, epochs: 4, pid: live, host: `not-${hostname()}` });
  assert.equal(liveTrainer(out), null);
  writeStatus(out, { status: 'running', epoch: 1, epochs: 4, pid: dead, host: hostname() });
  assert.equal(liveTrainer(out), null);
  writeStatus(out, { status: 'running', epoch: 1, epochs: 4, pid: process.pid, host: hostname() });
  assert.equal(liveTrainer(out), null, 'this process itself');
  writeStatus(out, { status: 'interrupted', epoch: 1, epochs: 4, pid: live, host: hostname() });
  assert.equal(liveTrainer(out), null);
  prepareNewRun(out, true);
  assert.equal(readStatus(out), null);
});
