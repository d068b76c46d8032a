/**
 * Selection on held-out data and temperature scaling: which images `data.holdout` sets aside (never
 * trained on, the same on every open, chosen by the seed), the unmixed training images of
 * `train.cleanTrainEval`, the pure best-epoch rule, every calibration figure against values worked
 * out by hand or in float64 here, and a tiny run end to end (holdout columns, `mixup test
 * --temperature`, `mixup report` picking on the holdout).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { validateConfig } from '../src/config/load.js';
import { configSchema } from '../src/config/schema.js';
import { openPipeline } from '../src/data/index.js';
import type { DataPipeline } from '../src/data/types.js';
import { cleanTrainSamples, splitHoldout } from '../src/data/holdout.js';
import { selectableRow, selectBestEpoch } from '../src/report/select.js';
import { calibrationFigures, equalMassEce, fitTemperature, temperatureAtBound, TEMPERATURE_RANGE } from '../src/evaluate/temperature.js';
import type { Calibration } from '../src/evaluate/calibration.js';
import { temperatureLines } from '../src/report/score.js';
import { epochLine } from '../src/train/epoch.js';
import { readCurves } from '../src/rundir/curves.js';
import { main } from '../src/cli.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { tempDir } from './fixtures/tmp.js';
import { tinyRunConfig } from './fixtures/tiny-run.js';
import { encodeJpeg, writeRecFile } from './fixtures/data.js';
import { countShared } from '../src/data/overlap.js';
import { checkFitContent, scoreTemperature } from '../src/evaluate/scale.js';
import { loadCheckpoint } from '../src/rundir/checkpoint.js';

// ------------------------------------------------------------------ which images

test('splitHoldout: N of n set aside, disjoint, ascending, fixed by the seed', () => {
  // 45,000 of 50,000 in proportion: 90 of 100
  const a = splitHoldout(100, 10, 7);
  assert.equal(a.holdout.length, 10);
  assert.equal(a.train.length, 90);
  assert.deepEqual([...a.holdout, ...a.train].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  assert.ok(a.holdout.every((v, i) => i === 0 || v > a.holdout[i - 1]!));
  assert.deepEqual(splitHoldout(100, 10, 7), a);
  assert.notDeepEqual(splitHoldout(100, 10, 8).holdout, a.holdout);
  assert.deepEqual(splitHoldout(100, 0, 7).train.length, 100);
  assert.throws(() => splitHoldout(100, 100, 7), /data.holdout: 100 held-out images of a training split of 100; expected fewer than 100/);
  const clean = cleanTrainSamples(a.train, 20, 7);
  assert.equal(clean.length, 20);
  assert.ok(clean.every((i) => a.train.includes(i)));
  assert.deepEqual(cleanTrainSamples(a.train, 500, 7), a.train);
});

test('countShared: an image is found in a set by content within a mean difference of 6 levels, not past it', () => {
  const img = (v: (j: number) => number) => Uint8Array.from({ length: 3072 }, (_, j) => v(j));
  const a = img((j) => (j * 7) % 200);
  const pool = new Uint8Array(3 * 3072);
  pool.set(img((j) => (j * 13) % 256), 0);
  pool.set(img((j) => ((j * 7) % 200) + 5), 3072); // a shifted by 5 levels: the same image
  assert.equal(countShared(a, pool), 1);
  pool.set(img((j) => ((j * 7) % 200) + 7), 3072); // by 7: another image
  assert.equal(countShared(a, pool), 0);
  // noise of ±10 on alternate values: mean difference 10 · ½ = 5 → same; ±14 → 7 → not
  pool.set(img((j) => ((j * 7) % 200) + (j % 2 ? 10 : 0)), 6144);
  assert.equal(countShared(a, pool), 1);
  assert.equal(countShared(Buffer.concat([a, a]), pool), 2);
});

test('a T stuck at the search bound is said: near-uniform logits fit T = 20 (NLL = ln 10), in mixup test --temperature\'s lines and the epoch line', () => {
  const K = 10;
  const n = 50;
  // every logit equal: softmax(z/T) = 1/K for every T, the slope is 0 and the fit stops at the upper bound
  const flat = new Float32Array(n * K).fill(0.3);
  const labels = Int32Array.from({ length: n }, (_, i) => i % K);
  const T = fitTemperature(flat, labels, K);
  assert.equal(T, TEMPERATURE_RANGE[1]);
  assert.equal(temperatureAtBound(T), 'upper');
  assert.equal(temperatureAtBound(1.3), null);
  assert.equal(temperatureAtBound(TEMPERATURE_RANGE[0]), 'lower');
  const f = calibrationFigures(flat, labels, K, T);
  assert.ok(Math.abs(f.nll - Math.log(10)) < 1e-9);
  const lines = temperatureLines({ checkpoint: '/r/checkpoints/epoch-0001', epoch: 1, batch: 0, temperature: T, fittedOn: 'holdout', fit: { data: 'h', before: f, after: f }, test: { data: 't', before: f, after: f } });
  assert.ok(lines.includes('temperature: T at the search bound 20: the network predicts near-uniformly (NLL ≈ ln of the number of classes); scaling cannot calibrate it'), lines.join('\n'));
  assert.equal(lines.filter((l) => l.includes('search bound')).length, 1);
  const ok = temperatureLines({ checkpoint: '/r/checkpoints/epoch-0001', epoch: 1, batch: 0, temperature: 1.5, fittedOn: 'holdout', fit: { data: 'h', before: f, after: f }, test: { data: 't', before: f, after: f } });
  assert.equal(ok.filter((l) => l.includes('search bound')).length, 0);
  const ev = { samples: n, loss: Math.log(10), accuracy: 0.1, perClass: [], perClassCount: [] };
  const cal = { samples: n, ece: 0, mce: 0, meanConfidence: 0.1, accuracy: 0.1, brier: 0.9 } as unknown as Calibration;
  const row = { epoch: 1, lr: 0.1, train_loss: 2.3, train_acc: 0.1, val_loss: 2.3, val_acc: 0.1, epoch_seconds: 1, samples_per_sec: 10, val_ece: 0, val_mce: 0, val_confidence: 0.1, val_brier: 0.9 };
  const at = (t: number) => epochLine(row, 1, { ev, cal, mem: null, clean: null, holdout: { ev, cal, temperature: t, valEceScaled: 0 } });
  assert.match(at(T), / holdout_acc=10\.00% T=20\.000\(at search bound\) val_ece_scaled=/);
  assert.match(at(1.25), / T=1\.250 val_ece_scaled=/);
});

/** A CIFAR binary file whose record i has R = i mod 256, G = ⌊i/256⌋, B = 0 everywhere, label i mod 10. */
function indexCodedDir(n: number): string {
  const dir = tempDir('mixup-holdout-data-');
  const rec = (i: number) => Buffer.concat([Buffer.from([i % 10]), Buffer.alloc(1024, i % 256), Buffer.alloc(1024, i >> 8), Buffer.alloc(1024, 0)]);
  writeFileSync(join(dir, 'data_batch_1.bin'), Buffer.concat(Array.from({ length: n }, (_, i) => rec(i))));
  writeFileSync(join(dir, 'test_batch.bin'), Buffer.concat(Array.from({ length: 20 }, (_, i) => rec(i))));
  return dir;
}

test('train.cleanTrainEval past the images trained on is clamped, and says so', async () => {
  const dir = indexCodedDir(40);
  const notes: string[] = [];
  const cfg = validateConfig({ model: { depth: 8 }, data: { dir, imageShape: [3, 8, 8], padSize: 0, workers: 0, holdout: 8 }, train: { batchSize: 8, evalBatchSize: 10, seed: 7, cleanTrainEval: 500 } }, 'test');
  const p = await openPipeline(cfg, 'train', undefined, { warn: (l) => notes.push(l) });
  try {
    assert.equal(p.cleanTrain!.numSamples, 32);
    assert.deepEqual(notes.filter((l) => l.includes('cleanTrainEval')), ['train.cleanTrainEval 500 is more than the 32 images trained on: clamped to 32']);
  } finally {
    await p.close();
  }
});

/** Sample indices (and labels) of every batch of one epoch, decoded from the index-coded pixels. */
async function epochSamples(p: DataPipeline, epoch: number): Promise<{ index: number; label: number }[]> {
  const out: { index: number; label: number }[] = [];
  for await (const b of p.epoch(epoch)) {
    const px = b.height * b.width * 3;
    for (let s = 0; s < b.size; s++) out.push({ index: b.images[s * px]! + 256 * b.images[s * px + 1]!, label: b.labels[s]! });
  }
  return out;
}

test('data.holdout: held-out images never reach a training batch, are evaluated with their true labels, and are the same on every open', async () => {
  const dir = indexCodedDir(160);
  const cfg = (over: Record<string, unknown> = {}) =>
    validateConfig({
      model: { depth: 8 },
      data: { dir, imageShape: [3, 8, 8], padSize: 0, rgbMean: [0, 0, 0], workers: 0, holdout: 16, augment: { preset: 'none' }, ...over },
      train: { batchSize: 16, evalBatchSize: 10, seed: 7, cleanTrainEval: 12 },
    }, 'test');
  const { holdout, train } = splitHoldout(160, 16, 7);
  const p = await openPipeline(cfg(), 'train', undefined, { warn: () => undefined });
  try {
    assert.equal(p.numSamples, 144); // 160 − 16, as 50,000 − 5,000 = 45,000
    assert.equal(p.batchesPerEpoch, 9);
    assert.match(p.description!, /; 16 held out \(data\.holdout\), 144 trained on$/);
    for (const epoch of [0, 1]) {
      const seen = await epochSamples(p, epoch);
      assert.deepEqual(seen.map((s) => s.index).sort((a, b) => a - b), [...train]);
      assert.ok(seen.every((s) => s.label === s.index % 10));
    }
    const held = await epochSamples(p.holdout!, 0);
    assert.deepEqual(held, [...holdout].map((i) => ({ index: i, label: i % 10 })));
    const clean = await epochSamples(p.cleanTrain!, 0);
    assert.deepEqual(clean.map((s) => s.index), [...cleanTrainSamples(train, 12, 7)]);
  } finally {
    await p.close();
  }
  // a resumed run opens the split again: the same images are held out
  const again = await openPipeline(cfg(), 'train', undefined, { warn: () => undefined });
  try {
    assert.deepEqual((await epochSamples(again.holdout!, 0)).map((s) => s.index), [...holdout]);
  } finally {
    await again.close();
  }
  // with label noise only trained images are corrupted: the holdout keeps its true labels
  const noisy = await openPipeline(cfg({ labelNoise: 0.5 }), 'train', undefined, { warn: () => undefined });
  try {
    assert.equal(noisy.labelNoise!.noise.indices.length, 72); // round(0.5 · 144)
    assert.ok([...noisy.labelNoise!.noise.indices].every((i) => train.includes(i)));
    assert.ok((await epochSamples(noisy.holdout!, 0)).every((s) => s.label === s.index % 10));
  } finally {
    await noisy.close();
  }
  await assert.rejects(openPipeline(cfg({ holdout: 150 }), 'train'), /160 training samples less 150 held out \(data\.holdout\), fewer than train\.batchSize 16/);
});

// ------------------------------------------------------------------ the best epoch

test('selectBestEpoch: on the holdout when there is one, else on the test set (optimistic); first of equals; NaN never wins', () => {
  const rows = [
    { epoch: 1, valAcc: 0.5, holdoutAcc: 0.55 },
    { epoch: 2, valAcc: 0.9, holdoutAcc: 0.6 },
    { epoch: 3, valAcc: 0.8, holdoutAcc: 0.7 },
    { epoch: 4, valAcc: 0.85, holdoutAcc: 0.7 },
  ];
  assert.deepEqual(selectBestEpoch(rows), { epoch: 3, index: 2, on: 'holdout', optimistic: false });
  const noHoldout = rows.map((r) => ({ ...r, holdoutAcc: NaN }));
  assert.deepEqual(selectBestEpoch(noHoldout), { epoch: 2, index: 1, on: 'test', optimistic: true });
  assert.deepEqual(selectBestEpoch([{ epoch: 1, valAcc: NaN, holdoutAcc: NaN }, { epoch: 2, valAcc: 0.1, holdoutAcc: NaN }]).epoch, 2);
  assert.throws(() => selectBestEpoch([]), RangeError);
  // rows as mixup train writes them (curves.csv names)
  assert.deepEqual(selectBestEpoch([{ epoch: 1, val_acc: 0.9 }, { epoch: 2, val_acc: 0.95 }].map(selectableRow)).epoch, 2);
  assert.deepEqual(selectBestEpoch([{ epoch: 1, val_acc: 0.9, holdout_acc: 0.8 }, { epoch: 2, val_acc: 0.95, holdout_acc: 0.7 }].map(selectableRow)), { epoch: 1, index: 0, on: 'holdout', optimistic: false });
});

// ------------------------------------------------------------------ the figures

// Four samples, two classes (worked by hand):
//   z = (ln 3, 0), y = 0 → p = (3/4, 1/4), right, confidence 3/4
//   z = (0, ln 3), y = 1 → p = (1/4, 3/4), right, confidence 3/4
//   z = (ln 3, 0), y = 1 → wrong, confidence 3/4
//   z = (0, 0),    y = 0 → p = (1/2, 1/2), predicts class 0 (first of equals): right, confidence 1/2
const L3 = Math.log(3);
const LOGITS = [L3, 0, 0, L3, L3, 0, 0, 0];
const LABELS = [0, 1, 1, 0];

test('calibrationFigures at T = 1: NLL, Brier, ECE (15 bins), equal-mass ECE by hand', () => {
  const f = calibrationFigures(Float32Array.from(LOGITS), Int32Array.from(LABELS), 2, 1);
  // NLL = (2·ln(4/3) + ln 4 + ln 2) / 4
  assert.ok(Math.abs(f.nll - (2 * Math.log(4 / 3) + Math.log(4) + Math.log(2)) / 4) < 1e-7);
  // Brier = (1/8 + 1/8 + 9/8 + 1/2) / 4 = 15/32
  assert.ok(Math.abs(f.brier - 15 / 32) < 1e-7);
  // ECE: bin (11/15, 12/15] holds the three 3/4s, accuracy 2/3: gap 1/12; bin (7/15, 8/15] holds 1/2, accuracy 1: gap 1/2
  // → 3/4 · 1/12 + 1/4 · 1/2 = 3/16
  assert.ok(Math.abs(f.ece - 3 / 16) < 1e-7);
  // 15 equal-mass bins of 4 samples: one sample each, Σ|correct − conf| / 4 = (1/2 + 1/4 + 1/4 + 3/4) / 4 = 7/16
  assert.ok(Math.abs(f.eceEqualMass - 7 / 16) < 1e-7);
  assert.equal(f.accuracy, 3 / 4);
  // 2 equal-mass bins, sorted by confidence (stable): {1/2 ✓, 3/4 ✓} and {3/4 ✓, 3/4 ✗}:
  // (|2 − 5/4| + |1 − 3/2|) / 4 = 5/16
  assert.ok(Math.abs(equalMassEce([0.75, 0.75, 0.75, 0.5], [1, 1, 0, 1], 2) - 5 / 16) < 1e-12);
  // 15 over 30 samples: two per bin
  const conf = Array.from({ length: 30 }, (_, i) => 0.5 + i / 100);
  const hit = conf.map((_, i) => (i % 2));
  const want = Array.from({ length: 15 }, (_, m) => Math.abs(1 - conf[2 * m]! - conf[2 * m + 1]!)).reduce((a, b) => a + b, 0) / 30;
  assert.ok(Math.abs(equalMassEce(conf, hit) - want) < 1e-12);
});

/** Mean NLL of softmax(z/T) in float64, written out here. */
function nllRef(z: number[], y: number[], K: number, T: number): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) {
    const row = z.slice(i * K, i * K + K).map((v) => v / T);
    const m = Math.max(...row);
    s += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[y[i]!]!;
  }
  return s / y.length;
}

test('fitTemperature: the NLL minimum of a dense float64 grid; accuracy unchanged; bounds', () => {
  // 3 classes, 40 samples of over-confident logits: right 70% of the time with margin 4
  const K = 3;
  const z: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < 40; i++) {
    const label = i % K;
    const pred = i % 10 < 7 ? label : (label + 1) % K;
    const row = [0, 0, 0];
    row[pred] = 4 + (i % 5) * 0.3;
    row[(pred + 2) % K] = (i % 3) * 0.2;
    z.push(...row);
    y.push(label);
  }
  const T = fitTemperature(Float32Array.from(z), Int32Array.from(y), K);
  let bestT = NaN;
  let best = Infinity;
  for (let t = 0.5; t <= 6; t += 0.0005) {
    const v = nllRef(z, y, K, t);
    if (v < best) [best, bestT] = [v, t];
  }
  assert.ok(Math.abs(T - bestT) < 1e-3, `fitted ${T}, grid ${bestT}`);
  assert.ok(T > 1, 'over-confident logits are softened');
  const after = calibrationFigures(Float32Array.from(z), Int32Array.from(y), K, T);
  const before = calibrationFigures(Float32Array.from(z), Int32Array.from(y), K, 1);
  assert.ok(Math.abs(after.nll - nllRef(z, y, K, T)) < 1e-6);
  assert.ok(Math.abs(before.nll - nllRef(z, y, K, 1)) < 1e-6);
  assert.ok(after.nll < before.nll);
  assert.equal(after.accuracy, before.accuracy);
  // Brier at T against float64 here
  let brier = 0;
  for (let i = 0; i < 40; i++) {
    const row = z.slice(i * K, i * K + K).map((v) => Math.exp(v / T));
    const s = row.reduce((a, b) => a + b, 0);
    brier += row.reduce((a, v, k) => a + (v / s - (k === y[i] ? 1 : 0)) ** 2, 0);
  }
  assert.ok(Math.abs(after.brier - brier / 40) < 1e-6);
  // every sample right: NLL keeps falling as T → 0, so T stops at the lower bound
  assert.equal(fitTemperature(Float32Array.from([2, 0, 0, 2]), Int32Array.from([0, 1]), 2), TEMPERATURE_RANGE[0]);
});

// ------------------------------------------------------------------ end to end

let dataDir: string;
before(async () => {
  await selectBackend('wasm');
  dataDir = cifarBinDir(112, 40); // 16 held out, 96 trained: 6 batches of 16
});

function runConfig(data: Record<string, unknown>, train: Record<string, unknown> = {}): { file: string; out: string } {
  return tinyRunConfig('mixup-holdout-run-', dataDir, { data, train: { seed: 2, logEvery: 100, ...train } });
}

test('a run with data.holdout: holdout columns, mixup test --temperature agrees with them, report picks on the holdout', async () => {
  const { file, out } = runConfig({ holdout: 16 }, { cleanTrainEval: 16 });
  const err: string[] = [];
  const lines: string[] = [];
  assert.equal(await main(['train', '--config', file], { out: (l) => lines.push(l), err: (l) => err.push(l) }), 0, err.join('\n'));
  assert.ok(err.some((l) => /^train data: .*; 16 held out \(data\.holdout\), 96 trained on \(6 batches of 16 per epoch\)$/.test(l)), err.join('\n'));
  assert.ok(lines.some((l) => /^Epoch\[2\/2\] .* train_acc_majority=[\d.]+% train_clean_acc=[\d.]+% .* holdout_acc=[\d.]+% T=[\d.]+(\(at search bound\))? val_ece_scaled=/.test(l)), lines.join('\n'));
  const rows = readCurves(join(out, 'curves.csv'));
  for (const r of rows) {
    for (const c of ['holdout_loss', 'holdout_acc', 'holdout_ece', 'temperature', 'val_ece_scaled', 'train_clean_acc'] as const) assert.ok(Number.isFinite(r[c]), `${c} of epoch ${r.epoch}`);
    // 16 images: accuracies are multiples of 1/16
    assert.ok(Math.abs(r.holdout_acc! * 16 - Math.round(r.holdout_acc! * 16)) < 1e-4);
    assert.ok(Math.abs(r.train_clean_acc! * 16 - Math.round(r.train_clean_acc! * 16)) < 1e-4);
  }
  const last = rows[1]!;

  const tOut: string[] = [];
  assert.equal(await main(['test', out, '--temperature', '--json'], { out: (l) => tOut.push(l), err: () => undefined }), 0);
  const s = JSON.parse(tOut.join('\n'));
  assert.ok(Math.abs(s.temperature - last.temperature!) < 1e-5, `${s.temperature} vs ${last.temperature}`);
  assert.ok(Math.abs(s.fit.before.accuracy - last.holdout_acc!) < 1e-6);
  assert.ok(Math.abs(s.fit.before.nll - last.holdout_loss!) < 1e-5);
  assert.ok(Math.abs(s.fit.before.ece - last.holdout_ece!) < 1e-5);
  assert.ok(Math.abs(s.test.before.ece - last.val_ece!) < 1e-5);
  assert.ok(Math.abs(s.test.after.ece - last.val_ece_scaled!) < 1e-5);
  assert.ok(Math.abs(s.test.before.brier - last.val_brier!) < 1e-5);
  assert.ok(s.fit.after.nll <= s.fit.before.nll + 1e-12, 'T minimises the holdout NLL');
  const text: string[] = [];
  assert.equal(await main(['test', out, '--temperature'], { out: (l) => text.push(l), err: () => undefined }), 0);
  assert.match(text.join('\n'), /^temperature: T = [\d.]+, fitted by minimising NLL on the holdout: 16 held-out training images/m);
  assert.match(text.join('\n'), /^ {2}test, after \(T = [\d.]+\) +[\d.]+ +[\d.]+ +[\d.]+% +[\d.]+% +[\d.]+%$/m);

  const rep: string[] = [];
  assert.equal(await main(['report', out], { out: (l) => rep.push(l), err: () => undefined }), 0);
  const md = rep.join('\n');
  assert.match(md, /\| test acc % \(best on holdout\) \|/);
  assert.match(md, /\| ECE % after T \(at best\) \|/);
  const best = rows.reduce((b, r) => (r.holdout_acc! > b.holdout_acc! ? r : b));
  const cells = md.split('\n')[2]!.split(' | ');
  assert.equal(cells[6], (100 * best.val_acc).toFixed(2));
});

test('mixup test --temperature without a holdout refuses in one line: no fitting on the test set', async () => {
  const { file, out } = runConfig({}, { epochs: 1 });
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: () => undefined }), 0);
  const err: string[] = [];
  assert.equal(await main(['test', out, '--temperature'], { out: () => undefined, err: (l) => err.push(l) }), 2);
  assert.deepEqual(err, [
    'mixup: error: --temperature: the run has no held-out images (data.holdout 0), and fitting T on the test set is not allowed; train with data.holdout N (e.g. 5000), or name other data with --fit-on FILE',
  ]);
  err.length = 0;
  assert.equal(await main(['test', out, '--temperature', '--fit-on', join(dataDir, 'test_batch.bin')], { out: () => undefined, err: (l) => err.push(l) }), 2);
  assert.match(err[0]!, /is the validation \(test\) data this command scores; fitting T on the test set is not allowed$/);
  for (const [args, msg] of [
    [['--fit-on', join(dataDir, 'data_batch_1.bin')], 'mixup: error: --fit-on goes with --temperature'],
    [['--temperature', '--attack', 'fgsm', '--eps', '2'], 'mixup: error: --temperature: give it without --attack and --reliability (one report at a time)'],
    [['--temperature', '--fit-on', join(dataDir, 'nothing.bin')], `mixup: error: --fit-on ${join(dataDir, 'nothing.bin')}: no such file or directory`],
  ] as const) {
    err.length = 0;
    assert.equal(await main(['test', out, ...args], { out: () => undefined, err: (l) => err.push(l) }), 2);
    assert.deepEqual(err, [msg]);
  }
  // the test images under another name and format (JPEG RecordIO, as cifar10_val.rec is made from
  // test_batch.bin): refused by content, in one line
  const planes = readFileSync(join(dataDir, 'test_batch.bin'));
  const copy = join(tempDir('mixup-holdout-fit-'), 'test-as-jpeg.rec');
  writeRecFile(copy, Array.from({ length: planes.length / 3073 }, (_, i) => {
    const px = new Uint8Array(3072);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) px[p * 3 + c] = planes[i * 3073 + 1 + c * 1024 + p]!;
    return { label: planes[i * 3073]!, image: encodeJpeg(px, 100) };
  }));
  err.length = 0;
  assert.equal(await main(['test', out, '--temperature', '--fit-on', copy], { out: () => undefined, err: (l) => err.push(l) }), 2);
  // (before any backend loads: no backend line)
  assert.deepEqual(err, [`mixup: error: --fit-on ${copy}: 40 of 40 of its images (spread over the file) are images of the validation (test) data this command scores, by content; fitting T on the test set is not allowed`]);
  // called as a library (no CLI check first), scoreTemperature refuses it the same way
  await assert.rejects(scoreTemperature(out, { fitOn: copy }), (e: unknown) => (e as Error).message === err[0]!.replace(/^mixup: error: /, ''));
  // a run that scores only the first test image (data.valLimit 1) is still refused: the other 39 of
  // the 40 probes are test images too (compared with the first alone, 1 of 40 would be found, under 5 %)
  const { cfg: runCfg } = await loadCheckpoint(join(out, 'checkpoints', 'epoch-0001'));
  const limited = { ...runCfg, data: { ...runCfg.data, valLimit: 1 } };
  await assert.rejects(checkFitContent(limited, copy, {}), (e: unknown) => (e as Error).message === err[0]!.replace(/^mixup: error: /, ''));
  // other data is fine
  const rep: string[] = [];
  assert.equal(await main(['test', out, '--temperature', '--fit-on', join(dataDir, 'data_batch_1.bin'), '--json'], { out: (l) => rep.push(l), err: () => undefined }), 0);
  assert.equal(JSON.parse(rep.join('\n')).fittedOn, 'file');
  // the report says "best" was picked on the test set
  rep.length = 0;
  assert.equal(await main(['report', out], { out: (l) => rep.push(l), err: () => undefined }), 0);
  assert.match(rep[0]!, /\| test acc % \(final\) \| test acc % \(best, picked on test: optimistic\) \|/);
});

/** A finished run directory with the given curves.csv (columns → per-epoch values). */
function fakeRun(root: string, name: string, cfg: Record<string, unknown>, cols: Record<string, number[]>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const epochs = Object.values(cols)[0]!.length;
  const full = configSchema.parse({ ...cfg, out: dir, train: { ...(cfg['train'] as object), epochs } });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(full));
  const names = ['epoch', 'lr', 'train_loss', ...Object.keys(cols)];
  const rows = Array.from({ length: epochs }, (_, i) => [i + 1, 0.1, 2, ...Object.values(cols).map((v) => v[i])].join(','));
  writeFileSync(join(dir, 'curves.csv'), [names.join(','), ...rows].join('\n') + '\n');
  writeFileSync(join(dir, 'status.json'), JSON.stringify({ status: 'finished', epoch: epochs, epochs, updated: '2026-12-01T00:00:00.000Z' }));
  return dir;
}

test('report: best on the holdout (mean over seeds of test acc at each run\'s best holdout epoch, ECE after T there), mixed with a run picked on test', async () => {
  const root = tempDir('mixup-holdout-report-');
  const held = { experiment: 'erm', data: { holdout: 5000 } };
  const a = fakeRun(root, 'h-s0', { ...held, train: { seed: 0 } }, {
    val_acc: [0.5, 0.9, 0.8], holdout_acc: [0.4, 0.6, 0.7], val_ece: [0.1, 0.2, 0.3], val_ece_scaled: [0.05, 0.04, 0.03],
  });
  const b = fakeRun(root, 'h-s1', { ...held, train: { seed: 1 } }, {
    val_acc: [0.6, 0.7, 0.95], holdout_acc: [0.65, 0.5, 0.6], val_ece: [0.1, 0.2, 0.3], val_ece_scaled: [0.07, 0.02, 0.01],
  });
  const c = fakeRun(root, 'plain', { experiment: 'erm', train: { seed: 0 } }, { val_acc: [0.5, 0.9, 0.8], val_ece: [0.1, 0.2, 0.3] });
  const out: string[] = [];
  assert.equal(await main(['report', a, b, c], { out: (l) => out.push(l), err: () => undefined }), 0);
  const md = out.join('\n').split('\n');
  const header = md[0]!.split(' | ');
  assert.ok(header.includes('test acc % (best: holdout or test)') && header.includes('best on') && header.includes('ECE % after T (at best)'), md[0]);
  const cell = (row: string, name: string) => row.split(' | ')[header.indexOf(name)];
  const heldRow = md.find((l) => l.includes('h-s0'))!;
  const plainRow = md.find((l) => l.includes('plain'))!;
  // seed 0: holdout best at epoch 3 → test 80; seed 1: epoch 1 → test 60; mean 70, sample std 14.14
  assert.equal(cell(heldRow, 'test acc % (best: holdout or test)'), '70.00 ± 14.14');
  assert.equal(cell(heldRow, 'best on'), 'holdout');
  assert.equal(cell(heldRow, 'ECE % (at best acc)'), '20.00 ± 14.14'); // 30 and 10
  assert.equal(cell(heldRow, 'ECE % after T (at best)'), '5.00 ± 2.83'); // 3 and 7
  assert.equal(cell(plainRow, 'test acc % (best: holdout or test)'), '90.00');
  assert.equal(cell(plainRow, 'best on'), 'test');
  assert.equal(cell(plainRow, 'ECE % after T (at best)'), '-');
  out.length = 0;
  assert.equal(await main(['report', a, b, c, '--format', 'json'], { out: (l) => out.push(l), err: () => undefined }), 0);
  const json = JSON.parse(out.join('\n')) as Record<string, unknown>[];
  assert.deepEqual(json.map((r) => [r['best_on'], r['best_acc'], r['best_ece_scaled']]).sort(), [['holdout', 70, 5], ['test', 90, null]]);
});
