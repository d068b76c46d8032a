/**
 * Progress people can plan with: the run's ETA (src/train/eta.ts), the bars (progress.ts) and
 * train.log (log.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RunClock, formatDuration, runSecondsLeft } from '../src/train/eta.js';
import { EpochProgress, EvalProgress, barOnTerminal, barRow } from '../src/train/progress.js';
import { RunLog, logTimestamp } from '../src/rundir/log.js';
import { tempDir } from './fixtures/tmp.js';

test('runSecondsLeft: batches left × s/batch + one evaluation per epoch left (hand-computed)', () => {
  // 10 batches left this epoch, 2 epochs after it of 390 batches, 2 s a batch, 60 s an evaluation:
  // (10 + 780) · 2 + 3 · 60 = 1760 s
  assert.equal(runSecondsLeft({ batchesLeftThisEpoch: 10, epochsAfterThis: 2, batchesPerEpoch: 390, secondsPerBatch: 2, evalSeconds: 60 }), 1760);
  assert.equal(runSecondsLeft({ batchesLeftThisEpoch: 0, epochsAfterThis: 0, batchesPerEpoch: 390, secondsPerBatch: 2, evalSeconds: 60 }), 60);
});

test('formatDuration: two units at most', () => {
  assert.deepEqual(
    [0, 42.4, 60, 725, 3600, 3660, 11100, 86400, 230400, 2.6 * 86400, -1, NaN].map(formatDuration),
    ['0 s', '42 s', '1 min', '12 min 5 s', '1 h', '1 h 1 min', '3 h 5 min', '1 d', '2 d 16 h', '2 d 14 h', '-', '-'],
  );
});

test('RunClock: the first batch of an epoch only starts the clock; figures read together are not zero-time batches; evaluation estimated, then measured', () => {
  const c = new RunClock(3, 10, 128, 1000);
  c.startEpoch();
  c.batchDone(100, 1); // warm-up batch: reference point only
  assert.equal(c.secondsPerBatch(), null);
  assert.equal(c.secondsLeft(0, 1), null);
  // batches 2..4 read together at t = 106 (three batches in 6 s), reported microseconds apart
  c.batchDone(106, 2);
  c.batchDone(106.00001, 3);
  c.batchDone(106.00002, 4);
  // 1 batch in 6 s, then the two after it in the same read move the reference forward
  assert.equal(c.secondsPerBatch(), 6);
  c.batchDone(112, 7); // 3 batches in 6 s
  assert.equal(c.secondsPerBatch(), 12 / 4);
  // evaluation not timed: 1000 samples × (3 s / 128 samples) / 3 = 7.8125 s
  assert.deepEqual(c.evalSeconds(), { seconds: 1000 * (3 / 128) / 3, from: 'guess' });
  // 3 batches left + 2 epochs of 10, at 3 s; 3 evaluations: 69 + 23.4375 = 92.4375 s
  assert.equal(c.secondsLeft(0, 7), (3 + 20) * 3 + 3 * 7.8125);
  assert.equal(
    c.describe(0, 7),
    'time left for the remaining 3 epochs (training and evaluation): about 1 min 32 s; training 30 s per epoch (3.00 s a batch), evaluation about 8 s per epoch (a guess from the training speed until an evaluation is timed)',
  );
  // The first evaluation (1000 samples in batches of 250): its first batch (warm-up, 9 s) only starts
  // the clock; then 250 samples in 4 s and 250 in 6 s: 10 s / 500 samples = 0.02 s a sample, 20 s for 1000.
  c.startEval();
  c.evalBatchDone(120, 250);
  assert.equal(c.secondsPerEvalSample(), null);
  assert.equal(c.evalSeconds()!.from, 'guess');
  c.evalBatchDone(124, 500);
  c.evalBatchDone(130, 750);
  assert.equal(c.secondsPerEvalSample(), 10 / 500);
  assert.deepEqual(c.evalSeconds(), { seconds: 20, from: 'speed' });
  assert.equal(c.secondsLeft(0, 10), 20 * 3 + 3 * 20);
  assert.equal(
    c.describe(0, 10),
    'time left for the remaining 3 epochs (training and evaluation): about 2 min; training 30 s per epoch (3.00 s a batch), evaluation about 20 s per epoch (from its speed so far)',
  );
  c.evalDone(25); // the whole evaluation, warm-up included, took 25 s
  c.startEpoch();
  c.batchDone(200, 1); // the gap across the evaluation is not a batch
  assert.equal(c.secondsPerBatch(), 3);
  assert.deepEqual(c.evalSeconds(), { seconds: 25, from: 'timed' });
  assert.equal(c.secondsLeft(1, 1), (9 + 10) * 3 + 2 * 25);
  assert.equal(
    c.describe(2, 10),
    'time left for the last epoch (training and evaluation): about 25 s; training 30 s per epoch (3.00 s a batch), evaluation 25 s per epoch (as timed)',
  );
});

/** A stream that looks like a terminal to cli-progress; collects what is drawn. */
function fakeTerminal(): NodeJS.WriteStream & { text(): string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text(): string };
  let text = '';
  Object.assign(s, { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, clearScreenDown: () => true });
  s.write = ((chunk: string | Uint8Array) => ((text += chunk.toString()), true)) as typeof s.write;
  s.text = () => text;
  return s;
}

test('the bar: no ETA before batches are timed (not "0s"), then the epoch ETA and the run ETA; the estimate is announced once', async (t) => {
  const stream = fakeTerminal();
  const clock = new RunClock(2, 4, 16, 32);
  const announced: string[] = [];
  const p = new EpochProgress({ line: () => {}, isTTY: true, stream }, 1, 2, 4, 1, 0, clock, (text) => announced.push(text));
  t.after(() => p.stop()); // a bar left running keeps the process alive
  assert.match(stream.text(), /0\/4 batches \| - samples\/s \| loss - \| left: epoch -, run -/);
  assert.doesNotMatch(stream.text(), /ETA 0s/);
  p.update(0, 16, 2.5);
  await new Promise((r) => setTimeout(r, 20));
  p.update(1, 16, 2.4);
  p.update(2, 16, 2.3);
  p.update(3, 16, 2.2);
  p.stop();
  assert.match(stream.text(), /left: epoch \d+ s, run \d+ s/);
  // The first epoch ended before 5 batches were timed: announced at its end, once.
  assert.equal(announced.length, 1);
  assert.match(announced[0]!, /^time left for the remaining 2 epochs \(training and evaluation\): about \d+ s; training \d+ s per epoch \(0\.\d{3} s a batch\), evaluation about \d+ s per epoch \(a guess from the training speed until an evaluation is timed\)$/);
});

test('Speedometer lines (not a terminal) carry the run ETA once batches are timed', async () => {
  const lines: string[] = [];
  const clock = new RunClock(1, 3, 16, 32);
  const p = new EpochProgress({ line: (l) => lines.push(l), isTTY: false }, 1, 1, 3, 1, 0, clock, null);
  p.update(0, 16, 2.5);
  await new Promise((r) => setTimeout(r, 20));
  p.update(1, 16, 2.25);
  assert.match(lines[0]!, /^Epoch\[1\] Batch \[1\]\tSpeed: [\d.]+ samples\/sec\tloss=2\.500000$/);
  assert.match(lines[1]!, /^Epoch\[1\] Batch \[2\]\tSpeed: [\d.]+ samples\/sec\tloss=2\.250000\trun left \d+ s$/);
});

test('Speedometer speeds are measured between reads of the device: batches settled together (webgpu, readEvery 4) are not infinitely fast', () => {
  const lines: string[] = [];
  const p = new EpochProgress({ line: (l) => lines.push(l), isTTY: false }, 1, 1, 8, 1, 0, null, null);
  const t = performance.now();
  // two reads of 4 batches of 16: 64 samples 1 s after the start, 64 more 2 s later
  const first = { at: t + 1000, samples: 64 };
  const second = { at: t + 3000, samples: 64 };
  for (let i = 0; i < 8; i++) p.update(i, 16, 2, i < 4 ? first : second);
  const speeds = lines.map((l) => Number(/Speed: ([\d.]+) samples\/sec/.exec(l)![1]));
  assert.equal(speeds.length, 8);
  speeds.forEach((v, i) => assert.ok(Math.abs(v - (i < 4 ? 64 : 32)) < 0.5, `batch ${i + 1}: ${v} samples/s (${lines[i]})`));
});

test('evaluation progress: images scored and an ETA on a terminal, nothing elsewhere', (t) => {
  const stream = fakeTerminal();
  const e = new EvalProgress({ line: () => {}, isTTY: true, stream }, 'epoch 3/300');
  t.after(() => e.stop());
  assert.equal(barOnTerminal(), false); // drawn from the first update on
  e.update(500, 2000);
  assert.equal(barOnTerminal(), true); // a line printed now (SIGINT: ...) clears its row first (aboveBars)
  e.update(1000, 2000);
  assert.ok(e.stop() >= 0);
  assert.equal(barOnTerminal(), false);
  assert.match(stream.text(), /epoch 3\/300 evaluating .* 0\/2000 images \| - left/);
  assert.match(stream.text(), /epoch 3\/300 evaluating .* 1000\/2000 images \| \d+ s left/);
  const lines: string[] = [];
  const quiet = new EvalProgress({ line: (l) => lines.push(l), isTTY: false }, 'epoch 1/1');
  quiet.update(1, 2);
  assert.equal(barOnTerminal(), false);
  quiet.stop();
  assert.deepEqual(lines, []);
});

test('barRow: never wider than the terminal less one column; on 80 columns the speed and loss are left out, the time left kept', () => {
  const parts = ['31/390 batches', '128.6 samples/s', 'loss 2.3026', 'left: epoch 2 min 5 s, run 3 h 5 min'];
  const wide = barRow('epoch 1/200', 0.5, parts, [1, 2], 200);
  assert.equal(wide, `epoch 1/200 ${'\u2588'.repeat(20)}${'\u2591'.repeat(20)} ${parts.join(' | ')}`);
  const narrow = barRow('epoch 1/200', 0.5, parts, [1, 2], 80);
  assert.equal(narrow, `epoch 1/200 ${'\u2588'.repeat(7)}${'\u2591'.repeat(6)} 31/390 batches | left: epoch 2 min 5 s, run 3 h 5 min`);
  assert.equal(Array.from(narrow).length, 79); // 12 + 13-column bar + 1 + 53
  // far too narrow: cut, never wrapped
  assert.equal(Array.from(barRow('epoch 1/200', 1, parts, [1, 2], 30)).length, 29);
});

test('RunLog: lines from before the file is named are written when it is, each with a timestamp; appended, empty lines dropped', () => {
  const dir = tempDir('mixup-log-');
  const file = join(dir, 'train.log');
  const log = new RunLog();
  log.write('backend: wasm');
  log.open(file);
  log.write('\nSIGINT: finishing the current batch');
  log.close();
  const again = new RunLog();
  again.open(file);
  again.write('resume: from x');
  again.close();
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines.map((l) => l.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /, 'T ')), ['T backend: wasm', 'T SIGINT: finishing the current batch', 'T resume: from x']);
  assert.equal(logTimestamp(new Date(Date.UTC(2026, 11, 1, 5, 30, 12, 345))), '2026-12-01T05:30:12Z');
});

test('an error in the middle of an epoch removes the bar first (its timer would redraw it over the error and keep the process alive)', async () => {
  const { trainEpoch } = await import('../src/train/epoch.js');
  const { Interrupts } = await import('../src/train/interrupts.js');
  const { validateConfig } = await import('../src/config/load.js');
  const stream = fakeTerminal();
  const cfg = validateConfig({ experiment: 'erm', loss: 'soft-ce', out: tempDir('mixup-progress-'), train: { epochs: 1, batchSize: 2 } }, 'test');
  const train = {
    numSamples: 8,
    batchesPerEpoch: 4,
    classNames: [],
    async *epoch() {
      yield { index: 0, size: 2, height: 1, width: 1 };
      throw new Error('record 3: undecodable JPEG image');
    },
  };
  const engine = {
    onGpu: false,
    trainStep: () => ({}),
    settle: async (steps: unknown[]) => steps.map(() => ({ updated: true, loss: 1, correct: 1 })),
    discard: () => {},
  };
  const ctx = {
    cfg,
    io: { line: () => {}, info: () => {}, isTTY: true, stream },
    engine,
    train,
    val: train,
    interrupts: new Interrupts({ info: () => {}, beforeExit: () => {} }, false),
    handleSignals: false,
    readEvery: 1,
    clock: new RunClock(1, 4, 2, 8),
    skippedInARow: 0,
  } as unknown as Parameters<typeof trainEpoch>[0];
  const sums = { lossSum: 0, correct: 0, samples: 0, seconds: 0 };
  await assert.rejects(trainEpoch(ctx, 0, 0, 0.1, sums, null), /undecodable JPEG/);
  assert.equal(barOnTerminal(), false);
  assert.match(stream.text(), /epoch 1\/1 .*1\/4 batches/); // it was drawn, and updated once
});
