/**
 * A damaged training record (issue 22 item 3): the training file is read through before epoch 1
 * (as the validation file is), a record that goes bad while the run trains stops it with a
 * checkpoint of the partial epoch and the resume command, and `data.skipUndecodable` skips such
 * records, counting them in the epoch line and train.log. cpu-side wasm, depth 8, a JPEG `.rec`.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { mixupCommand } from '../src/invocation.js';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { prepareResume, runTraining, type TrainIo } from '../src/train/run.js';
import { epochOrder } from '../src/data/batch.js';
import { splitHoldout } from '../src/data/holdout.js';
import { readCurves } from '../src/rundir/curves.js';
import { listCheckpoints, readStatus } from '../src/rundir/rundir.js';
import { UserError } from '../src/errors.js';
import { encodeJpeg, encodePng, syntheticImage, writeRecFile } from './fixtures/data.js';
import { runMixupAsync } from './fixtures/cli.js';
import { tempDir } from './fixtures/tmp.js';

const N = 48;
const BATCH = 8;
const SEED = 2;
/** Bytes before a record's image: the RecordIO header (8) and the image record header (24). */
const IMAGE_AT = 8 + 24;

let valPath: string;

before(async () => {
  await selectBackend('wasm');
  valPath = join(tempDir('mixup-tdd-'), 'val.rec');
  writeRecFile(valPath, Array.from({ length: 8 }, (_, i) => ({ label: i % 10, image: encodePng(syntheticImage(i)) })));
});

/** A JPEG training file of N records in a fresh directory; returns its path and the records' byte offsets. */
function trainRec(): { path: string; offsets: number[] } {
  const path = join(tempDir('mixup-tdd-'), 'train.rec');
  const offsets = writeRecFile(path, Array.from({ length: N }, (_, i) => ({ label: i % 10, image: encodeJpeg(syntheticImage(i)) })));
  return { path, offsets };
}

/** Zeroes 40 bytes of record `i`'s JPEG after its SOI marker and the next marker's 0xFF, in place: the framing stays valid, the image does not decode. */
function damageRecord(path: string, offsets: number[], i: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(40), 0, 40, offsets[i]! + IMAGE_AT + 3);
  closeSync(fd);
}

function config(train: string, over: Record<string, unknown> = {}): string {
  const dir = tempDir('mixup-tdd-');
  const cfg = {
    experiment: 'erm',
    backend: 'wasm',
    out: join(dir, 'run'),
    model: { depth: 8, numClasses: 10 },
    data: { train, val: valPath, imageShape: [3, 8, 8], padSize: 2, workers: 0, cache: false, ...over },
    train: { epochs: 2, batchSize: BATCH, lr: 0.1, evalBatchSize: 8, seed: SEED },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  return join(dir, 'exp.json');
}

function io(): TrainIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (l) => lines.push(l), info: (l) => lines.push(l), isTTY: false };
}

/** The message training gives record `i` of `path` when it does not decode. */
function undecodable(path: string, offsets: number[], i: number): RegExp {
  return new RegExp(`^${path.replace(/[.]/g, '\\.')}: record ${i} at byte offset ${offsets[i]}: undecodable JPEG image \\(.+\\)$`);
}

/** Asserts that `run` fails with exit code 2 and the message for record `i` that does not decode. */
async function rejectsUndecodable(run: Promise<unknown>, path: string, offsets: number[], i: number): Promise<void> {
  await assert.rejects(run, (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, undecodable(path, offsets, i));
    return true;
  });
}

test('a damaged training record stops the run before epoch 1, writing nothing into the run directory', async () => {
  const { path, offsets } = trainRec();
  damageRecord(path, offsets, 30);
  const cfg = loadConfig(config(path, { workers: 1 }));
  const out = io();
  await assert.rejects(runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, out), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, undecodable(path, offsets, 30));
    return true;
  });
  assert.equal(existsSync(cfg.out!), false);
  assert.deepEqual(out.lines.filter((l) => /Epoch|epoch/.test(l)), []);
});

test('a record that goes bad mid-epoch: partial checkpoint, the resume command, exit 2; resumed with --set data.skipUndecodable=true it is skipped and counted', async () => {
  const { path, offsets } = trainRec();
  // the record that batch 4 (index 3) of epoch 1 reads first
  const victim = epochOrder(N, SEED, 0, true)[3 * BATCH]!;
  const cfg = loadConfig(config(path));
  const out = io();
  const run = runTraining(
    {
      cfg,
      source: null,
      resume: false,
      overwrite: false,
      handleSignals: false,
      // the file goes bad while the run trains (after the check before epoch 1 read it whole)
      afterBatch: (e, b) => void (e === 0 && b === 1 ? damageRecord(path, offsets, victim) : undefined),
    },
    out,
  );
  await rejectsUndecodable(run, path, offsets, victim);
  const ck = join(cfg.out!, 'checkpoints', 'epoch-0000+batch-000003');
  assert.deepEqual(listCheckpoints(cfg.out!).map((c) => c.name), ['epoch-0000+batch-000003']);
  const state = JSON.parse(readFileSync(join(ck, 'state.json'), 'utf8')) as { epoch: number; batch: number; sums: { samples: number } };
  assert.deepEqual([state.epoch, state.batch, state.sums.samples], [0, 3, 3 * BATCH]);
  assert.ok(out.lines.includes(`stopped by unreadable training data at epoch 1, batch 4: checkpoint of the partial epoch 1 (3 batches done) in ${ck}`), out.lines.join('\n'));
  const run1 = cfg.out!;
  assert.ok(
    out.lines.includes(`resume with: ${mixupCommand()} train --resume ${run1} (once the file is repaired; or let it skip unreadable records: ${mixupCommand()} train --resume ${run1} --set data.skipUndecodable=true)`),
    out.lines.join('\n'),
  );
  assert.equal(readStatus(run1)!.status, 'failed');

  // a plain resume finds the record at the check before training, and changes nothing
  await assert.rejects(runTraining({ cfg: prepareResume(run1, undefined, false), source: null, resume: true, overwrite: false, handleSignals: false }, io()), (e: unknown) =>
    undecodable(path, offsets, victim).test((e as Error).message),
  );
  assert.deepEqual(listCheckpoints(run1).map((c) => c.name), ['epoch-0000+batch-000003']);

  // as the user runs it: the CLI, with the option; the record is said once, and counted in every epoch
  const r = await runMixupAsync(['train', '--resume', run1, '--set', 'data.skipUndecodable=true']);
  assert.equal(r.code, 0, r.err);
  const reason = `${path}: record ${victim} at byte offset ${offsets[victim]}: undecodable JPEG image`;
  const said = r.err.split('\n').filter((l) => l.includes(reason));
  assert.equal(said.length, 1, r.err);
  assert.match(said[0]!, /: skipped in every epoch \(data\.skipUndecodable: another sample of its batch takes its place\)$/);
  const epochs = r.out.split('\n').filter((l) => l.startsWith('Epoch['));
  assert.equal(epochs.length, 2);
  for (const l of epochs) assert.match(l, / skipped_records=1$/);
  const log = readFileSync(join(run1, 'train.log'), 'utf8');
  assert.match(log, /Z Epoch\[1\/2\] .* skipped_records=1\n/);
  assert.match(log, /Z Epoch\[2\/2\] .* skipped_records=1\n/);
  assert.ok(log.includes(said[0]!));
  assert.equal(readCurves(join(run1, 'curves.csv')).length, 2);
  assert.equal(JSON.parse(readFileSync(join(run1, 'config.json'), 'utf8')).data.skipUndecodable, true);
});

test('data.skipUndecodable in a worker thread: a record that goes bad mid-epoch is skipped there, said once with its batch, and counted', async () => {
  const { path, offsets } = trainRec();
  const victim = epochOrder(N, SEED, 0, true)[4 * BATCH + 2]!;
  const cfg = loadConfig(config(path, { workers: 1, skipUndecodable: true }));
  const out = io();
  const code = await runTraining(
    { cfg, source: null, resume: false, overwrite: false, handleSignals: false, afterBatch: (e, b) => void (e === 0 && b === 0 ? damageRecord(path, offsets, victim) : undefined) },
    out,
  );
  assert.equal(code, 0);
  const said = out.lines.filter((l) => l.startsWith('data: skipped'));
  assert.equal(said.length, 1, out.lines.join('\n'));
  assert.match(said[0]!, new RegExp(`^data: skipped ${path.replace(/[.]/g, '\\.')}: record ${victim} at byte offset ${offsets[victim]}: undecodable JPEG image \\(.+\\) \\(epoch 1, batch 5; data\\.skipUndecodable: another sample of the batch took its place\\)$`));
  const epochs = out.lines.filter((l) => l.startsWith('Epoch['));
  assert.match(epochs[0]!, / skipped_records=1$/);
  assert.match(epochs[1]!, / skipped_records=1$/);
});

const HOLD = 16;

test('data.holdout: a damaged held-out record is found before epoch 1 (the whole training file is checked), nothing written', async () => {
  const { path, offsets } = trainRec();
  const victim = splitHoldout(N, HOLD, SEED).holdout[5]!;
  damageRecord(path, offsets, victim);
  const cfg = loadConfig(config(path, { holdout: HOLD }));
  const out = io();
  await assert.rejects(runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, out), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, undecodable(path, offsets, victim));
    return true;
  });
  assert.equal(existsSync(cfg.out!), false);
});

test('data.holdout with data.skipUndecodable: a damaged held-out record is said as held out, with the count', async () => {
  const { path, offsets } = trainRec();
  const victim = splitHoldout(N, HOLD, SEED).holdout[2]!;
  damageRecord(path, offsets, victim);
  const cfg = loadConfig(config(path, { holdout: HOLD, skipUndecodable: true, workers: 1 }));
  const out = io();
  assert.equal(await runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, out), 0);
  const said = out.lines.filter((l) => l.includes(`record ${victim} at byte offset ${offsets[victim]}`));
  assert.equal(said.length, 1, out.lines.join('\n'));
  assert.match(said[0]!, /: a held-out image \(data\.holdout\), replaced in every holdout evaluation/);
  assert.ok(out.lines.includes(`data: 1 of ${HOLD} held-out images cannot be read; holdout_* figures count their replacements (data.skipUndecodable)`), out.lines.join('\n'));
  for (const l of out.lines.filter((l) => l.startsWith('Epoch['))) assert.doesNotMatch(l, /skipped_records/);
});

test('data.holdout: a held-out record that goes bad during the run: the trained epoch is checkpointed, the resume command printed, exit 2', async () => {
  const { path, offsets } = trainRec();
  const victim = splitHoldout(N, HOLD, SEED).holdout[0]!;
  const cfg = loadConfig(config(path, { holdout: HOLD }));
  const out = io();
  const batches = (N - HOLD) / BATCH;
  const run = runTraining(
    { cfg, source: null, resume: false, overwrite: false, handleSignals: false, afterBatch: (e, b) => void (e === 0 && b === batches - 1 ? damageRecord(path, offsets, victim) : undefined) },
    out,
  );
  await rejectsUndecodable(run, path, offsets, victim);
  const cks = listCheckpoints(cfg.out!);
  assert.deepEqual(cks.map((c) => [c.pos.epoch, c.pos.batch]), [[0, batches]]);
  assert.ok(out.lines.includes(`stopped by unreadable data in the evaluation of epoch 1: checkpoint of epoch 1 as trained (its evaluation was cut short; --resume redoes it) in ${cks[0]!.dir}`), out.lines.join('\n'));
  assert.ok(out.lines.some((l) => l.startsWith(`resume with: ${mixupCommand()} train --resume ${cfg.out!} (once the file is repaired`)), out.lines.join('\n'));
  assert.equal(readStatus(cfg.out!)!.status, 'failed');
});
