// Training on webgpu against wasm: one depth-8 tfjs-webgpu step per experiment (the fallback of bottleneck
// depths), a resumed 2-epoch run and flat device memory (both through the static engine).
// Runs on lavapipe (scripts/setup-lavapipe.sh) on a machine without a GPU; skipped with a
// one-line reason where webgpu does not load (never in CI). Own process: Dawn stays out of the others.
// Tiny on purpose (8×8 crops, batches of 16): lavapipe is a CPU, every new kernel shape compiles a shader.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { engineDevice } from '../src/engine/dawn.js';
import { loadConfig } from '../src/config/load.js';
import type { MixupPlacement } from '../src/config/schema.js';
import { createResNet, type ResNet } from '../src/engine/tfjs/resnet.js';
import { planMix } from '../src/mixup/plan.js';
import { uniformStream } from '../src/random.js';
import { readCurves, type CurveRow } from '../src/rundir/curves.js';
import { listCheckpoints } from '../src/rundir/rundir.js';
import { prepareResume, runTraining, type TrainIo, type TrainRequest } from '../src/train/run.js';
import { SGD } from '../src/engine/tfjs/sgd.js';
import { settleStep, trainStep } from '../src/engine/tfjs/step.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';

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

/** Every parameter and moving statistic, read to the host. */
async function weights(net: ResNet): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, v] of [...net.params, ...net.aux]) out.set(n, (await v.data()) as Float32Array);
  return out;
}

/** One step of a fresh depth-8 network on `backend`: loss and, per tensor, the change it made. */
async function oneStep(backend: string, mixAt: MixupPlacement | null) {
  assert.ok(await tf.setBackend(backend));
  const B = 16;
  const net = createResNet({ depth: 8, numClasses: 10, mixAt, seed: 11 });
  const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
  const u = uniformStream(12, 'images');
  const images = tf.tensor4d(Float32Array.from({ length: B * 8 * 8 * 3 }, () => 2 * u() - 1), [B, 8, 8, 3]);
  const labels = Int32Array.from({ length: B }, (_, i) => (i * 7) % 10);
  const plan = mixAt === null ? null : planMix(B, { alpha: 0.2, mixRate: 0.7, scheme: 'pairs' }, uniformStream(13, 'mixup', 0, 0));
  const w0 = await weights(net);
  const r = await settleStep(trainStep(net, opt, images, labels, plan, { lr: 0.1, gradScale: 1, loss: 'soft-ce' }));
  const w1 = await weights(net);
  const delta = new Map([...w1].map(([n, w]) => [n, w.map((x, i) => x - w0.get(n)![i]!)]));
  images.dispose();
  opt.dispose();
  net.dispose();
  return { loss: r.loss, correct: r.correct, updated: r.updated, delta };
}

for (const [experiment, mixAt] of [['erm', null], ['input mixup', 'input'], ['feature-map mixup', 'head']] as const) {
  test(`${experiment}: a depth-8 training step on webgpu equals wasm (loss to 1e-5, each tensor's update to 1e-2)`, { skip }, async () => {
    const want = await oneStep('wasm', mixAt);
    const got = await oneStep('webgpu', mixAt);
    assert.equal(got.updated, true);
    assert.ok(Math.abs(got.loss - want.loss) <= 1e-5, `loss ${got.loss} on webgpu, ${want.loss} on wasm`);
    assert.equal(got.correct, want.correct);
    assert.equal(got.delta.size, want.delta.size);
    const off: string[] = [];
    for (const [name, d] of want.delta) {
      assert.ok(d.some((x) => x !== 0), `${name} changed on wasm`);
      const err = maxRelError(got.delta.get(name)!, d);
      if (!(err <= 1e-2)) off.push(`${name}: ${err}`);
    }
    assert.deepEqual(off, []);
  });
}

/** A webgpu run config in a fresh directory. */
function config(over: { epochs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mixup-webgpu-'));
  tmp.push(dir);
  const cfg = {
    experiment: 'mixup',
    backend: 'webgpu',
    out: join(dir, 'run'),
    model: { depth: 8, numClasses: 10 },
    data: { dir: dataDir, imageShape: [3, 8, 8], padSize: 2, workers: 0, augment: { maxRandomH: 0, maxRandomS: 0, maxRandomL: 0 } },
    train: { epochs: over.epochs ?? 2, batchSize: 16, lr: 0.2, lrStepEpochs: [1], evalBatchSize: 16, seed: 3, logEvery: 2 },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  return loadConfig(join(dir, 'exp.json'));
}
const io = (): TrainIo => ({ line: () => {}, info: () => {}, isTTY: false });
const request = (cfg: ReturnType<typeof config>, extra: Partial<TrainRequest> = {}): TrainRequest => ({ cfg, source: null, resume: false, overwrite: false, handleSignals: false, ...extra });
const curves = (out: string) => readCurves(join(out, 'curves.csv')).map(({ epoch_seconds: _s, samples_per_sec: _p, ...rest }: CurveRow) => rest);
/** The bytes of the newest checkpoint's weights and optimizer state (weights.bin files). */
function lastCheckpoint(out: string): Map<string, Buffer> {
  const c = listCheckpoints(out).at(-1)!;
  const files = ['weights.bin', 'optimizer/weights.bin'];
  assert.ok(readdirSync(c.dir).includes('weights.bin'), `${c.dir} has weights.bin`);
  return new Map(files.map((f) => [f, readFileSync(join(c.dir, f))]));
}

test('a 2-epoch run on webgpu stopped after batch 2 and resumed ends identical to an uninterrupted one', { skip }, async () => {
  await tf.setBackend('webgpu');
  const straight = config();
  assert.equal(await runTraining(request(straight), io()), 0);
  const mid = config();
  assert.equal(await runTraining(request(mid, { afterBatch: (e, b) => (e === 0 && b === 1 ? 'sigint' : undefined) }), io()), 130);
  assert.deepEqual(listCheckpoints(mid.out!).map((c) => c.name), ['epoch-0000+batch-000002']);
  assert.equal(await runTraining(request(prepareResume(mid.out!, undefined, false), { resume: true }), io()), 0);
  const want = curves(straight.out!);
  assert.equal(want.length, 2);
  assert.ok(want.every((r) => Number.isFinite(r.train_loss) && r.train_loss > 0));
  assert.deepEqual(curves(mid.out!), want);
  assert.deepEqual(lastCheckpoint(mid.out!), lastCheckpoint(straight.out!));
});

test('memory on webgpu is flat: the static engine creates no buffer, bind group or pipeline after it is built', { skip }, async () => {
  await tf.setBackend('webgpu');
  const device = engineDevice()!;
  const made = { buffers: 0, bindGroups: 0, pipelines: 0 };
  const originals = { createBuffer: device.createBuffer, createBindGroup: device.createBindGroup, createComputePipeline: device.createComputePipeline };
  const count = <F extends (...a: never[]) => unknown>(f: F, key: keyof typeof made) => ((...a: Parameters<F>) => (made[key]++, f.apply(device, a))) as unknown as F;
  device.createBuffer = count(originals.createBuffer, 'buffers');
  device.createBindGroup = count(originals.createBindGroup, 'bindGroups');
  device.createComputePipeline = count(originals.createComputePipeline, 'pipelines');
  const counts: string[] = [];
  try {
    const cfg = config({ epochs: 3 });
    assert.equal(await runTraining(request(cfg, { afterBatch: (_e, b) => void (b === 0 && counts.push(JSON.stringify(made))) }), io()), 0);
  } finally {
    Object.assign(device, originals);
  }
  assert.equal(counts.length, 3);
  assert.ok(made.buffers > 0 && made.bindGroups > 0 && made.pipelines > 0, `the static engine was built on the engine device: ${JSON.stringify(made)}`);
  assert.deepEqual(counts, [counts[0], counts[0], counts[0]]);
});
