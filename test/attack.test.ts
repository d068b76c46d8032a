// FGSM / I-FGSM (src/evaluate/attack.ts) against a two-parameter linear model with a hand-derived
// gradient sign, and on a tiny ResNet. cpu backend.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createResNet, forward } from '../src/engine/tfjs/resnet.js';
import { attackPixels, normalise, pixelsOf } from '../src/engine/tfjs/attack.js';
import { TfjsEngine } from '../src/engine/tfjs/engine.js';
import { evaluateAttack, type Normalisation } from '../src/evaluate/attack.js';
import { perSampleLoss } from '../src/engine/tfjs/loss.js';
import { CIFAR10_MEAN, CIFAR10_STD } from '../src/augment/index.js';
import type { Batch, DataPipeline } from '../src/data/types.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

/** The `paper` preset's normalisation: (pixel/255 − mean)/std. */
const PAPER: Normalisation = { scale: 1 / 255, mean: CIFAR10_MEAN, std: CIFAR10_STD };
/** The `reference` preset's: pixel − rgbMean. */
const REFERENCE: Normalisation = { scale: 1, mean: [123.68, 116.28, 103.53], std: [1, 1, 1] };

/**
 * Linear model with two parameters (w0, w1): m(x) = Σ_pixels (x_red − x_green) on the normalised
 * input, logits z = [w0·m, w1·m]. For the cross-entropy L and label y:
 *   ∂L/∂m = Σₖ (pₖ − yₖ)·wₖ = p₁(w1 − w0) for y = 0, p₀(w0 − w1) for y = 1,
 *   ∂m/∂pixel = +scale/std_red (red), −scale/std_green (green), 0 (blue).
 * With w0 = 0.05, w1 = −0.15 and p in (0, 1): y = 0 → red −1, green +1, blue 0; y = 1 → the opposite.
 */
function linear(w0: number, w1: number) {
  return (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const s = tf.sum(x, [1, 2]) as tf.Tensor2D; // [B,3]
      const m = tf.sub(tf.slice(s, [0, 0], [-1, 1]), tf.slice(s, [0, 1], [-1, 1])); // [B,1]
      return tf.mul(m, tf.tensor2d([[w0, w1]])) as tf.Tensor2D;
    });
}

// two images of 1×2 pixels: sample 0 (label 0) touches the [0, 255] bounds, sample 1 (label 1) does not
const CLEAN = [
  [[[100, 50, 200], [1, 254, 7]]],
  [[[10, 20, 30], [40, 50, 60]]],
];
const LABELS = Int32Array.from([0, 1]);
// eps 2: sample 0 red −2 (1 → 0 clipped), green +2 (254 → 255 clipped), blue kept; sample 1 red +2, green −2
const FGSM_2 = [
  [[[98, 52, 200], [0, 255, 7]]],
  [[[12, 18, 30], [42, 48, 60]]],
];

test('FGSM on a linear model moves each pixel by the analytic gradient sign times eps, clipped to [0, 255]', () => {
  for (const norm of [PAPER, REFERENCE]) {
    const pixels = tf.tensor4d(CLEAN);
    const adv = attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, norm, { kind: 'fgsm', eps: 2, steps: 1 });
    assert.deepEqual(adv.arraySync(), FGSM_2);
    // swapping the weights flips every sign
    const flipped = attackPixels(linear(-0.15, 0.05), pixels, LABELS, 2, norm, { kind: 'fgsm', eps: 2, steps: 1 });
    assert.deepEqual(flipped.arraySync(), [
      [[[102, 48, 200], [3, 252, 7]]],
      [[[8, 22, 30], [38, 52, 60]]],
    ]);
    tf.dispose([pixels, adv, flipped]);
  }
  // A softmax saturated in float32 (logit gap above ~100: p = exactly 1 and 0) has a zero gradient,
  // so the sample is not moved: m = −217.8 for sample 0 under the reference normalisation.
  const pixels = tf.tensor4d(CLEAN);
  const saturated = attackPixels(linear(-1.5, 0.5), pixels, LABELS, 2, REFERENCE, { kind: 'fgsm', eps: 2, steps: 1 });
  assert.deepEqual((saturated.arraySync() as number[][][][])[0], CLEAN[0]);
  tf.dispose([pixels, saturated]);
});

test('I-FGSM: K steps of eps/K; on the linear model (constant sign) it lands where FGSM does', () => {
  const pixels = tf.tensor4d(CLEAN);
  const before = tf.memory().numTensors;
  const adv = attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, PAPER, { kind: 'ifgsm', eps: 2, steps: 4 });
  assert.equal(tf.memory().numTensors, before + 1, 'only the result is left');
  assert.deepEqual(adv.arraySync(), FGSM_2);
  // one step of eps/4 = 0.5
  const one = attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, PAPER, { kind: 'ifgsm', eps: 0.5, steps: 1 });
  assert.deepEqual(one.arraySync(), [
    [[[99.5, 50.5, 200], [0.5, 254.5, 7]]],
    [[[10.5, 19.5, 30], [40.5, 49.5, 60]]],
  ]);
  // eps 0 changes nothing
  const none = attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, PAPER, { kind: 'fgsm', eps: 0, steps: 1 });
  assert.deepEqual(none.arraySync(), CLEAN);
  assert.throws(() => attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, PAPER, { kind: 'ifgsm', eps: 2, steps: 0 }), /steps must be a positive integer/);
  assert.throws(() => attackPixels(linear(0.05, -0.15), pixels, LABELS, 2, PAPER, { kind: 'fgsm', eps: -1, steps: 1 }), /eps must be a finite number >= 0/);
  tf.dispose([pixels, adv, one, none]);
});

test('normalise and pixelsOf are inverse on whole pixel levels', () => {
  for (const norm of [PAPER, REFERENCE]) {
    const pixels = tf.tensor4d(CLEAN);
    const back = tf.tidy(() => pixelsOf(normalise(pixels, norm), norm));
    assert.deepEqual(back.arraySync(), CLEAN);
    tf.dispose([pixels, back]);
  }
  // paper: (255/255 − 0.4914)/0.2023 for red
  const x = tf.tidy(() => normalise(tf.fill([1, 1, 1, 3], 255) as tf.Tensor4D, PAPER));
  const v = x.dataSync();
  assert.ok(Math.abs(v[0]! - (1 - 0.4914) / 0.2023) < 1e-5);
  x.dispose();
});

test('FGSM on a tiny ResNet: the loss rises, some predictions flip, each unclipped pixel moves by exactly ±eps or 0', () => {
  const net = createResNet({ depth: 8, numClasses: 4, mixAt: null, seed: 7 });
  const logitsOf = (x: tf.Tensor4D) => forward(net, x, { training: false });
  const B = 6;
  const pixels = tf.tidy(() => tf.round(tf.randomUniform([B, 6, 6, 3], 0, 255, 'float32', 11)) as tf.Tensor4D);
  const eps = 8;
  // label = the clean prediction, so clean accuracy is 100 % and the attack has something to break
  const clean = tf.tidy(() => logitsOf(normalise(pixels, PAPER)));
  const labels = Int32Array.from(tf.tidy(() => tf.argMax(clean, 1)).dataSync());
  const adv = attackPixels(logitsOf, pixels, labels, 4, PAPER, { kind: 'fgsm', eps, steps: 1 });
  const attacked = tf.tidy(() => logitsOf(normalise(adv, PAPER)));
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4).toFloat() as tf.Tensor2D;
  const lossClean = perSampleLoss(clean, y, 'soft-ce').dataSync();
  const lossAdv = perSampleLoss(attacked, y, 'soft-ce').dataSync();
  for (let i = 0; i < B; i++) assert.ok(lossAdv[i]! > lossClean[i]!, `sample ${i}: loss ${lossClean[i]} → ${lossAdv[i]}`);
  const predAdv = tf.tidy(() => tf.argMax(attacked, 1)).dataSync();
  const hits = labels.filter((l, i) => predAdv[i] === l).length;
  assert.ok(hits < B, `${hits} of ${B} still right after the attack`);
  const p = pixels.dataSync();
  const a = adv.dataSync();
  let moved = 0;
  for (let j = 0; j < p.length; j++) {
    const d = a[j]! - p[j]!;
    assert.ok(a[j]! >= 0 && a[j]! <= 255, `pixel ${j} = ${a[j]}`);
    if (p[j]! >= eps && p[j]! <= 255 - eps) {
      assert.ok(d === eps || d === -eps || d === 0, `pixel ${j}: moved by ${d}`);
      if (d !== 0) moved++;
    } else {
      assert.ok(Math.abs(d) <= eps);
    }
  }
  assert.ok(moved > p.length / 2, `${moved} of ${p.length} pixels moved`);
  tf.dispose([pixels, clean, adv, attacked, y]);
  net.dispose();
});

test('evaluateAttack: clean and attacked top-1 over a pipeline; I-FGSM breaks some', async () => {
  const engine = new TfjsEngine({ depth: 8, numClasses: 3, mixAt: null, seed: 2, momentum: 0, wd: 0 });
  const net = engine.net;
  const H = 4;
  // 5 images in batches of 3 + 2, labelled with the network's clean prediction except the last
  const raw = tf.tidy(() => tf.round(tf.randomUniform([5, H, H, 3], 0, 255, 'float32', 5)) as tf.Tensor4D);
  const x = normalise(raw, PAPER);
  const pred = Int32Array.from(tf.tidy(() => tf.argMax(forward(net, x, { training: false }), 1)).dataSync());
  const labels = Int32Array.from(pred);
  labels[4] = (pred[4]! + 1) % 3;
  const images = x.dataSync() as Float32Array;
  const per = H * H * 3;
  const data: DataPipeline = {
    numSamples: 5,
    batchesPerEpoch: 2,
    classNames: ['a', 'b', 'c'],
    async *epoch(): AsyncIterable<Batch> {
      yield { images: images.slice(0, 3 * per), labels: labels.slice(0, 3), size: 3, height: H, width: H, index: 0 };
      yield { images: images.slice(3 * per), labels: labels.slice(3), size: 2, height: H, width: H, index: 1 };
    },
    close: async () => {},
  };
  const progress: number[] = [];
  const before = tf.memory().numTensors;
  const r = await evaluateAttack(engine, data, PAPER, { kind: 'ifgsm', eps: 16, steps: 4 }, (d) => progress.push(d));
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(progress, [3, 5]);
  assert.equal(r.samples, 5);
  assert.equal(r.cleanAccuracy, 4 / 5);
  assert.ok(r.attackedAccuracy < r.cleanAccuracy, `attacked ${r.attackedAccuracy}`);
  assert.deepEqual([r.kind, r.eps, r.steps], ['ifgsm', 16, 4]);
  const zero = await evaluateAttack(engine, data, PAPER, { kind: 'fgsm', eps: 0, steps: 3 });
  assert.equal(zero.attackedAccuracy, 4 / 5, 'eps 0 attacks nothing');
  assert.equal(zero.steps, 1, 'FGSM is one step');
  tf.dispose([raw, x]);
  engine.dispose();
});
