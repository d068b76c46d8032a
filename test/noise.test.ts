// Label noise (data.labelNoise, src/data/noise.ts), its place in the data pipeline, and the
// memorisation columns of a tiny training run (src/evaluate/memorise.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema, type Config, type ConfigInput } from '../src/config/schema.js';
import { openPipeline, type Batch, type DataPipeline } from '../src/data/index.js';
import { corruptLabels, describeLabelNoise } from '../src/data/noise.js';
import { UserError } from '../src/errors.js';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { runTraining } from '../src/train/run.js';
import { readCurves } from '../src/rundir/curves.js';
import { loadCheckpointEngine } from '../src/engine/index.js';
import { listCheckpoints } from '../src/rundir/rundir.js';
import { evaluate } from '../src/evaluate/evaluate.js';
import { memorisationOf, tallyBatch } from '../src/evaluate/memorise.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { Pipeline } from '../src/data/pipeline.js';
import { augmentSpec } from '../src/augment/index.js';
import { tempDir } from './fixtures/tmp.js';

const dirs: string[] = [];
let dataDir: string;
before(async () => {
  await selectBackend('wasm');
  dataDir = cifarBinDir(96, 40);
  dirs.push(dataDir);
});
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const labelsOf = (n: number, k = 10) => Int32Array.from({ length: n }, (_, i) => (i * 7) % k);

test('corruptLabels: round(p·N) samples, fixed by (seed, p, N), new labels uniform over all classes', () => {
  const truth = labelsOf(1000);
  const a = corruptLabels(truth, 0.2, 10, 0);
  assert.equal(a.noise.indices.length, 200);
  assert.equal(corruptLabels(labelsOf(7), 0.5, 10, 0).noise.indices.length, 4); // round(3.5)
  assert.equal(corruptLabels(labelsOf(9), 0.5, 10, 0).noise.indices.length, 5); // round(4.5)
  assert.equal(corruptLabels(truth, 0, 10, 0).noise.indices.length, 0);
  // indices ascending and distinct; labels replaced there only; the input untouched
  const idx = [...a.noise.indices];
  assert.ok(idx.every((v, k) => k === 0 || v > idx[k - 1]!));
  const inSubset = new Set(idx);
  for (let i = 0; i < 1000; i++) {
    if (!inSubset.has(i)) assert.equal(a.labels[i], truth[i]);
    assert.equal(truth[i], (i * 7) % 10);
  }
  a.noise.indices.forEach((i, k) => {
    assert.equal(a.labels[i], a.noise.noisyLabels[k]);
    assert.equal(a.noise.trueLabels[k], truth[i]);
  });
  assert.equal(a.noise.changed, idx.filter((i, k) => a.noise.noisyLabels[k] !== truth[i]).length);
  // the same (seed, p, N): identical, whatever the true labels are; another seed: another subset
  const again = corruptLabels(labelsOf(1000, 3), 0.2, 10, 0);
  assert.deepEqual(again.noise.indices, a.noise.indices);
  assert.deepEqual(again.noise.noisyLabels, a.noise.noisyLabels);
  const other = corruptLabels(truth, 0.2, 10, 1);
  assert.notDeepEqual(other.noise.indices, a.noise.indices);
  assert.ok([...other.noise.indices].filter((i) => inSubset.has(i)).length < 100); // ~40 expected by chance
  // a larger p corrupts a superset, with the same new labels on the shared samples
  const b = corruptLabels(truth, 0.5, 10, 0);
  const bLabel = new Map([...b.noise.indices].map((i, k) => [i, b.noise.noisyLabels[k]!]));
  a.noise.indices.forEach((i, k) => assert.equal(bLabel.get(i), a.noise.noisyLabels[k]));
  // 40,000 new labels over 10 classes: each class about 4,000 times, about 1/10 unchanged
  const big = corruptLabels(labelsOf(50000), 0.8, 10, 0);
  assert.equal(big.noise.indices.length, 40000);
  const perClass = new Array(10).fill(0);
  for (const y of big.noise.noisyLabels) perClass[y]++;
  for (const c of perClass) assert.ok(Math.abs(c - 4000) < 300, String(perClass));
  assert.ok(Math.abs(40000 - big.noise.changed - 4000) < 300, String(big.noise.changed));
  assert.throws(() => corruptLabels(truth, 1, 10, 0), UserError);
  assert.equal(
    describeLabelNoise(a.noise, 10),
    `label noise: 200 of 1000 training labels (data.labelNoise 0.2) replaced by labels drawn uniformly from all 10 classes; ${a.noise.changed} changed, ${200 - a.noise.changed} drew their true label again (expected about 1/10); validation labels untouched`,
  );
});

const cfgOf = (c: ConfigInput): Config => configSchema.parse(c);
const noiseCfg = (over: { experiment?: 'erm' | 'mixup'; seed?: number; workers?: number; cache?: boolean; limit?: number | null; p?: number } = {}) =>
  cfgOf({
    experiment: over.experiment ?? 'erm',
    model: { depth: 8 },
    data: { dir: dataDir, imageShape: [3, 8, 8], padSize: 2, workers: over.workers ?? 0, cache: over.cache ?? true, limit: over.limit ?? null, labelNoise: over.p ?? 0.5 },
    train: { batchSize: 16, evalBatchSize: 10, seed: over.seed ?? 3 },
  });

async function collect(p: DataPipeline, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of p.epoch(epoch)) out.push(b);
  return out;
}

test('the pipeline serves the corrupted labels: same samples for ERM and mixup, worker threads, cache and data.limit', async () => {
  const erm = await openPipeline(noiseCfg(), 'train');
  const mix = await openPipeline(noiseCfg({ experiment: 'mixup', workers: 1, cache: false }), 'train');
  const seed4 = await openPipeline(noiseCfg({ seed: 4 }), 'train');
  const limited = await openPipeline(noiseCfg({ limit: 50 }), 'train');
  const clean = await openPipeline(noiseCfg({ p: 0 }), 'train');
  const val = await openPipeline(noiseCfg(), 'val');
  try {
    const n = erm.labelNoise!.noise;
    assert.equal(n.indices.length, 48);
    assert.deepEqual(mix.labelNoise!.noise.indices, n.indices);
    assert.deepEqual(mix.labelNoise!.noise.noisyLabels, n.noisyLabels);
    assert.notDeepEqual(seed4.labelNoise!.noise.indices, n.indices);
    assert.equal(limited.labelNoise!.noise.indices.length, 25);
    assert.equal(limited.labelNoise!.noise.numSamples, 50);
    assert.equal(clean.labelNoise, undefined);
    // the batches carry the corrupted labels: the same on the main thread and from a worker
    const e = await collect(erm, 0);
    const m = await collect(mix, 0);
    const c = await collect(clean, 0);
    assert.deepEqual(e.map((b) => [...b.labels]), m.map((b) => [...b.labels]));
    assert.deepEqual(e.map((b) => b.images), c.map((b) => b.images)); // images untouched
    const noisyOf = new Map([...n.indices].map((i, k) => [i, n.noisyLabels[k]!]));
    // the fixture's label of sample i is i mod 10; through the epoch order, the served label is the corrupted one
    const served = e.flatMap((b) => [...b.labels]);
    const cleanServed = c.flatMap((b) => [...b.labels]);
    let differ = 0;
    for (let k = 0; k < served.length; k++) if (served[k] !== cleanServed[k]) differ++;
    const changedServed = [...n.indices].filter((i, k) => n.noisyLabels[k] !== i % 10).length;
    assert.equal(changedServed, n.changed);
    assert.equal(differ, n.changed); // 96 samples, 6 batches of 16: every sample served once
    assert.ok(n.changed > 30, String(n.changed)); // 48 drawn, about 43 expected to change
    // the corrupted samples in evaluation mode: in index order, their corrupted labels, 10 per batch
    const s = await collect(erm.labelNoise!.samples, 0);
    assert.deepEqual(s.map((b) => b.size), [10, 10, 10, 10, 8]);
    assert.deepEqual(s.flatMap((b) => [...b.labels]), [...n.indices].map((i) => noisyOf.get(i)));
    // validation labels are never touched
    assert.deepEqual((await collect(val, 0)).flatMap((b) => [...b.labels]), Array.from({ length: 40 }, (_, i) => i % 10));
  } finally {
    await Promise.all([erm, mix, seed4, limited, clean, val].map((p) => p.close()));
  }
});

test('tallyBatch counts hits against the corrupted and the true labels', () => {
  const c = { samples: 0, noisyHits: 0, trueHits: 0 };
  tallyBatch(c, Int32Array.from([1, 2, 3, 4]), Int32Array.from([1, 0, 3, 0]), Int32Array.from([5, 2, 3, 6]));
  tallyBatch(c, Int32Array.from([7]), Int32Array.from([7]), Int32Array.from([8]));
  assert.deepEqual(c, { samples: 5, noisyHits: 3, trueHits: 2 });
  assert.deepEqual(memorisationOf(c), { samples: 5, noisyAcc: 0.6, trueAcc: 0.4 });
  assert.ok(Number.isNaN(memorisationOf({ samples: 0, noisyHits: 0, trueHits: 0 }).noisyAcc));
});

test('a tiny noisy run logs the memorisation columns (9th and 10th of curves.csv), equal to an evaluation of the checkpoint', async () => {
  const dir = tempDir('mixup-noise-');
  dirs.push(dir);
  const cfg = cfgOf({
    experiment: 'mixup',
    backend: 'wasm',
    out: join(dir, 'run'),
    model: { depth: 8 },
    data: { dir: dataDir, imageShape: [3, 8, 8], padSize: 2, workers: 0, labelNoise: 0.5, augment: { maxRandomH: 0, maxRandomS: 0, maxRandomL: 0 } },
    train: { epochs: 2, batchSize: 16, lr: 0.2, evalBatchSize: 16, seed: 3, labelSmoothing: 0.1 },
  });
  const lines: string[] = [];
  const io = { line: (l: string) => lines.push(l), info: (l: string) => lines.push(l), isTTY: false };
  assert.equal(await runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, io), 0);
  const file = join(cfg.out!, 'curves.csv');
  const header = readFileSync(file, 'utf8').split('\n')[0]!.split(',');
  assert.deepEqual(header.slice(8, 10), ['corrupt_noisy_acc', 'corrupt_true_acc']); // the calibration columns follow
  assert.deepEqual(header.slice(0, 8), ['epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'epoch_seconds', 'samples_per_sec']);
  const rows = readCurves(file);
  assert.equal(rows.length, 2);
  assert.ok(lines.some((l) => /^label noise: 48 of 96 training labels \(data\.labelNoise 0\.5\)/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^Epoch\[2\/2\] .* corrupt_noisy_acc=\d+\.\d\d% corrupt_true_acc=\d+\.\d\d%$/.test(l)), lines.join('\n'));
  // the columns equal an independent evaluation of the last checkpoint on the corrupted samples
  const ck = listCheckpoints(cfg.out!).pop()!;
  const { engine } = await loadCheckpointEngine(ck.dir);
  const noisy = await openPipeline({ ...cfg, data: { ...cfg.data, workers: 1 } }, 'train');
  const truth = await openPipeline({ ...cfg, data: { ...cfg.data, labelNoise: 0 } }, 'train');
  try {
    const n = noisy.labelNoise!;
    const vsNoisy = await evaluate(engine, n.samples);
    // the same samples from a clean pipeline, in batches of another size: their true labels
    const clean = (truth as Pipeline).subset(n.noise.indices, { train: false, batchSize: 7, augment: augmentSpec(cfg, false) });
    const vsTrue = await evaluate(engine, clean);
    assert.equal(vsNoisy.samples, 48);
    assert.equal(rows[1]!.corrupt_noisy_acc, Number(vsNoisy.accuracy.toFixed(6)));
    assert.equal(rows[1]!.corrupt_true_acc, Number(vsTrue.accuracy.toFixed(6)));
  } finally {
    engine.dispose();
    await Promise.all([noisy.close(), truth.close()]);
  }
  // a run without label noise leaves the two cells empty
  const plain = cfgOf({ ...cfg, out: join(dir, 'plain'), data: { ...cfg.data, labelNoise: 0 }, train: { ...cfg.train, epochs: 1 } });
  assert.equal(await runTraining({ cfg: plain, source: null, resume: false, overwrite: false, handleSignals: false }, { line: () => {}, info: () => {}, isTTY: false }), 0);
  const plainLines = readFileSync(join(plain.out!, 'curves.csv'), 'utf8').trim().split('\n');
  assert.equal(plainLines[1]!.split(',').slice(8, 10).join(','), ',');
  assert.equal(readCurves(join(plain.out!, 'curves.csv'))[0]!.corrupt_noisy_acc, undefined);
});
