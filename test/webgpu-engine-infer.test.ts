// The static WebGPU engine in inference mode against tfjs (cpu): logits with the moving statistics
// (train/step.ts inferLogits), a short batch padded, and the gradient of the summed cross-entropy
// w.r.t. the input images (what train/attack.ts differentiates). Runs on lavapipe
// (scripts/setup-lavapipe.sh); skipped with one line where no WebGPU adapter loads (never in CI).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { StaticResNet } from '../src/engine/webgpu/engine.js';
import { createResNet, forward } from '../src/engine/tfjs/resnet.js';
import { perSampleLoss } from '../src/engine/tfjs/loss.js';
import { SGD } from '../src/engine/tfjs/sgd.js';
import { inferLogits, settleStep, trainStep } from '../src/engine/tfjs/step.js';
import { engineDevice, normals, tfWeights } from './fixtures/engine.js';
import { maxRelError } from './fixtures/webgpu.js';
import type { ModelArch } from '../src/config/schema.js';

tf.enableProdMode();
await tf.setBackend('cpu');
const opened = await engineDevice();
const skip = 'skip' in opened ? opened.skip : false;
after(() => {
  if (!('skip' in opened)) opened.dev.close();
});

const H = 8;
const K = 10;
const EB = 4;

/** The reference's network, and the paper's at width 8 (a post-activated stem, identities from the pre-activated input, no final BatchNorm). */
const NETS: { arch: ModelArch; width: number | null }[] = [
  { arch: 'mxnet-preact', width: null },
  { arch: 'preact-resnet18', width: 8 },
  { arch: 'wrn-28-10', width: 8 },
];

for (const { arch, width } of NETS) test(`${arch}: inference logits and the input gradient equal tfjs (max error ≤ 1e-4 of the tensor scale)`, { skip }, async () => {
  if ('skip' in opened) return;
  const net = createResNet({ arch, depth: 8, width, numClasses: K, mixAt: null, seed: 5 });
  const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
  const engine = new StaticResNet(opened.dev.device, {
    arch, depth: 8, modelWidth: width, numClasses: K, height: H, width: H, batch: 0, shards: 1, mixAt: null, mixBackward: 'exact',
    loss: 'soft-ce', gradScale: 1, momentum: 0.9, wd: 1e-4, evalBatch: EB, inputGradient: true,
  });
  try {
    // Two tfjs steps first, so the moving statistics and γ, β are not at their initial values.
    for (let s = 0; s < 2; s++) {
      const x = tf.tensor4d(normals(8 * H * H * 3, 40 + s), [8, H, H, 3]);
      await settleStep(trainStep(net, opt, x, Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), null, { lr: 0.5, gradScale: 1, loss: 'soft-ce' }));
      x.dispose();
    }
    engine.writeWeights(tfWeights(net));
    const values = normals(EB * H * H * 3, 7);
    const labels = Int32Array.from([2, 9, 0, 5]);
    const images = tf.tensor4d(values, [EB, H, H, 3]);
    const wantLogits = tf.tidy(() => inferLogits(net, images).dataSync().slice());
    const got = await engine.infer(values);
    assert.ok(maxRelError(got, wantLogits) <= 1e-4, `logits ${maxRelError(got, wantLogits)}`);
    const short = await engine.infer(values.subarray(0, 3 * H * H * 3));
    assert.equal(short.length, 3 * K);
    assert.ok(maxRelError(short, wantLogits.subarray(0, 3 * K)) <= 1e-4, 'a short batch');

    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), K).toFloat() as tf.Tensor2D;
    const gradOf = tf.grad((x: tf.Tensor) => tf.sum(perSampleLoss(forward(net, x as tf.Tensor4D, { training: false }), y, 'soft-ce')));
    const wantGrad = tf.tidy(() => gradOf(images).dataSync().slice());
    const g = await engine.inputGradient(values, labels);
    assert.ok(maxRelError(g.grad, wantGrad) <= 1e-4, `input gradient ${maxRelError(g.grad, wantGrad)}`);
    assert.ok(maxRelError(g.logits, wantLogits) <= 1e-4);
    // Not trivially zero: the reference gradient has scale.
    assert.ok(Math.max(...wantGrad.map(Math.abs)) > 1e-3);
    y.dispose();
    images.dispose();
    assert.deepEqual(opened.errors, []);
  } finally {
    engine.dispose();
    opt.dispose();
    net.dispose();
  }
});
