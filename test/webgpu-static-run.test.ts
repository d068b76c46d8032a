// Runs through the static WebGPU engine (engine/webgpu/static.ts) that `--backend webgpu` now builds:
// checkpoints interchangeable with wasm both ways, and one short run with label noise, label
// smoothing, 2 shards, keepEpochs, calibration and an attack, scored on webgpu against wasm.
// Lavapipe, depth 8, 8×8 crops, batches of 16; skipped with a one-line reason where webgpu does not
// load (never in CI). Own process: Dawn stays out of the others.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { engineDevice } from '../src/engine/dawn.js';
import { createEngine } from '../src/engine/index.js';
import { loadConfig } from '../src/config/load.js';
import { readCurves } from '../src/rundir/curves.js';
import { listCheckpoints } from '../src/rundir/rundir.js';
import { runTraining, type TrainIo } from '../src/train/run.js';
import { scoreCheckpoint } from '../src/evaluate/score.js';
import type { AttackOptions } from '../src/engine/attack.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { webgpuSkipReason } from './fixtures/webgpu.js';

tf.enableProdMode();
const skip = (await webgpuSkipReason()) ?? false;
const tmp: string[] = [];
let dataDir = '';

before(async () => {
  if (skip) return;
  assert.equal((await tryBackend('wasm')).loads, true);
  dataDir = cifarBinDir(48, 40);
  tmp.push(dataDir);
});
after(() => {
  releaseBackends();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** A depth-8 run config on 8×8 crops in a fresh directory, with `extra` merged into `train`/`data`. */
function config(backend: string, extra: { train?: object; data?: object; experiment?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mixup-static-'));
  tmp.push(dir);
  const cfg = {
    experiment: extra.experiment ?? 'mixup',
    backend,
    out: join(dir, 'run'),
    model: { depth: 8, numClasses: 10 },
    data: { dir: dataDir, imageShape: [3, 8, 8], padSize: 2, workers: 0, augment: { maxRandomH: 0, maxRandomS: 0, maxRandomL: 0 }, ...extra.data },
    train: { epochs: 1, batchSize: 16, lr: 0.05, lrStepEpochs: [1], evalBatchSize: 16, seed: 3, logEvery: 2, ...extra.train },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  return loadConfig(join(dir, 'exp.json'));
}
const io = (): TrainIo => ({ line: () => {}, info: () => {}, isTTY: false });

/** Trains `cfg` on `backend`; returns how many buffers the static engine's device made meanwhile. */
async function train(cfg: ReturnType<typeof config>, backend: 'webgpu' | 'wasm'): Promise<number> {
  assert.ok(await tf.setBackend(backend));
  const device = engineDevice()!;
  const create = device.createBuffer.bind(device);
  let made = 0;
  device.createBuffer = (d: GPUBufferDescriptor) => (made++, create(d));
  try {
    assert.equal(await runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, io()), 0);
  } finally {
    device.createBuffer = create;
  }
  return made;
}

/** Scores a run's newest checkpoint on `backend` (as `mixup test --backend`). */
async function score(out: string, backend: 'webgpu' | 'wasm', attack?: AttackOptions) {
  assert.ok(await tf.setBackend(backend));
  return scoreCheckpoint(out, attack ? { attack } : {});
}

test('--backend webgpu builds the static engine for the run\'s shapes; a bottleneck depth falls back to tfjs-webgpu with a note', { skip }, async () => {
  assert.ok(await tf.setBackend('webgpu'));
  const e = createEngine(config('webgpu'));
  try {
    assert.match(e.name, /^webgpu-static \(/);
    assert.equal(e.onGpu, true);
    assert.equal(e.parameterCount(), 78109);
    const batch = (size: number) => ({ images: new Float32Array(size * 8 * 8 * 3), labels: new Int32Array(size), size, height: 8, width: 8 });
    const o = { lr: 0.1, gradScale: 1, loss: 'soft-ce' as const };
    assert.throws(() => e.trainStep(batch(8), null, o), /^RangeError: webgpu-static: built for training batches of 16x8x8, got 8x8x8$/);
    assert.throws(() => e.trainStep(batch(16), null, { ...o, shards: 2 }), /built for shards 1, loss soft-ce, gradScale 1; a step asked for 2, soft-ce, 1/);
  } finally {
    e.dispose();
  }
  const write = process.stderr.write;
  const said: string[] = [];
  process.stderr.write = ((s: string) => (said.push(s), true)) as typeof process.stderr.write;
  try {
    const cfg = config('webgpu');
    const fallback = createEngine({ ...cfg, model: { ...cfg.model, depth: 164 } });
    assert.equal(fallback.name, 'tfjs/webgpu');
    fallback.dispose();
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(said, ['note: the static WebGPU engine has no bottleneck units, so ResNet-164 runs on tfjs-webgpu (slower)\n']);
});

test('checkpoints are interchangeable: trained on the static engine or on wasm, both score the same top-1 on either', { skip }, async () => {
  const gpu = config('webgpu');
  assert.ok((await train(gpu, 'webgpu')) > 0, 'the static engine made its buffers');
  const cpu = config('wasm');
  assert.equal(await train(cpu, 'wasm'), 0);
  for (const run of [gpu, cpu]) {
    const onGpu = await score(run.out!, 'webgpu');
    const onCpu = await score(run.out!, 'wasm');
    assert.equal(onCpu.samples, 40);
    assert.ok(Math.abs(onGpu.accuracy - onCpu.accuracy) <= 1e-6, `${run.backend}-trained: top-1 ${onGpu.accuracy} on webgpu, ${onCpu.accuracy} on wasm`);
    assert.ok(Math.abs(onGpu.loss - onCpu.loss) <= 1e-4 * Math.max(1, onCpu.loss), `loss ${onGpu.loss} vs ${onCpu.loss}`);
    // the curves' validation top-1 (written by the training backend) is what both score
    assert.equal(Number(onCpu.accuracy.toFixed(6)), readCurves(join(run.out!, 'curves.csv'))[0]!.val_acc);
  }
});

test('label noise, label smoothing, 2 shards, keepEpochs, calibration, FGSM and I-FGSM on the static engine agree with wasm', { skip }, async () => {
  const cfg = config('webgpu', {
    experiment: 'mixup-feature',
    data: { labelNoise: 0.25 },
    train: { epochs: 2, shards: 2, labelSmoothing: 0.1, keepCheckpoints: 1, keepEpochs: [1] },
  });
  assert.ok((await train(cfg, 'webgpu')) > 0);
  assert.deepEqual(listCheckpoints(cfg.out!).map((c) => c.name), ['epoch-0001', 'epoch-0002']);
  const rows = readCurves(join(cfg.out!, 'curves.csv'));
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(Number.isFinite(r.train_loss) && r.train_loss > 0, JSON.stringify(r));
    // memorisation columns: shares of the 12 corrupted samples, in [0, 1]
    for (const v of [r.corrupt_noisy_acc, r.corrupt_true_acc]) assert.ok(v !== undefined && v >= 0 && v <= 1, JSON.stringify(r));
  }
  const attack = { kind: 'fgsm' as const, eps: 8, steps: 1 };
  const g = await score(cfg.out!, 'webgpu', attack);
  const w = await score(cfg.out!, 'wasm', attack);
  assert.ok(Math.abs(g.accuracy - w.accuracy) <= 1e-6, `top-1 ${g.accuracy} vs ${w.accuracy}`);
  assert.ok(Math.abs(g.calibration.ece - w.calibration.ece) <= 1e-4, `ECE ${g.calibration.ece} vs ${w.calibration.ece}`);
  assert.ok(Math.abs(g.calibration.brier - w.calibration.brier) <= 1e-4, `Brier ${g.calibration.brier} vs ${w.calibration.brier}`);
  assert.equal(Number(g.calibration.ece.toFixed(6)), rows[1]!.val_ece);
  assert.equal(g.attack!.cleanAccuracy, g.accuracy);
  // a gradient sign may flip where the gradient is ~0, so allow one image of the 40 to differ
  assert.ok(Math.abs(g.attack!.attackedAccuracy - w.attack!.attackedAccuracy) <= 1 / 40 + 1e-9, `attacked ${g.attack!.attackedAccuracy} vs ${w.attack!.attackedAccuracy}`);
  // the network learnt something (top-1 0.3 here) and FGSM takes some of it away (to 0.1)
  assert.ok(g.attack!.attackedAccuracy < g.attack!.cleanAccuracy, `attacked ${g.attack!.attackedAccuracy}, clean ${g.attack!.cleanAccuracy}`);
  const ifgsm = { kind: 'ifgsm' as const, eps: 4, steps: 2 };
  const gi = (await score(cfg.out!, 'webgpu', ifgsm)).attack!;
  const wi = (await score(cfg.out!, 'wasm', ifgsm)).attack!;
  assert.deepEqual([gi.steps, gi.samples, gi.cleanAccuracy], [2, 40, g.accuracy]);
  assert.ok(Math.abs(gi.attackedAccuracy - wi.attackedAccuracy) <= 1 / 40 + 1e-9, `I-FGSM attacked ${gi.attackedAccuracy} vs ${wi.attackedAccuracy}`);
  assert.ok(gi.attackedAccuracy < gi.cleanAccuracy, `I-FGSM attacked ${gi.attackedAccuracy}, clean ${gi.cleanAccuracy}`);
});
