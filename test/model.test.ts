// The ResNet (src/engine/tfjs/resnet.ts), its BatchNorm (batchnorm.ts) and initialisation (init.ts). cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { applyMovingUpdates, createResNet, forward, resnetLayout, type MovingUpdate } from '../src/engine/tfjs/resnet.js';
import { batchNormInfer, batchNormTrain, movingUpdate } from '../src/engine/tfjs/batchnorm.js';
import { applyMix } from '../src/engine/tfjs/mixlayer.js';
import { planMix } from '../src/mixup/plan.js';
import { uniformStream } from '../src/random.js';
import { UserError } from '../src/errors.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  return err / Math.max(scale, 1e-12);
}

test('parameter counts and names of depths 8, 20, 50 (the issue: 78,109 / 272,541 / 758,621)', () => {
  for (const [depth, count, tensors] of [[8, 78_109, 27], [20, 272_541, 63], [50, 758_621, 153]] as const) {
    const net = createResNet({ depth, numClasses: 10, mixAt: 'input', seed: 0 });
    assert.equal(net.parameterCount(), count, `depth ${depth}`);
    assert.equal(net.params.size, tensors);
    const names = [...net.params.keys()];
    assert.deepEqual(names.slice(0, 6), ['bn_data_beta', 'conv0_weight', 'stage1_unit1_bn1_gamma', 'stage1_unit1_bn1_beta', 'stage1_unit1_conv1_weight', 'stage1_unit1_bn2_gamma']);
    assert.deepEqual(names.slice(-4), ['bn1_gamma', 'bn1_beta', 'fc1_weight', 'fc1_bias']);
    assert.ok(!names.includes('bn_data_gamma'), 'bn_data has a fixed γ = 1, not a parameter');
    for (const n of ['stage1_unit1_sc_weight', 'stage2_unit1_sc_weight', 'stage3_unit1_sc_weight']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('stage1_unit2_sc_weight'));
    assert.deepEqual(net.params.get('stage2_unit1_conv1_weight')!.shape, [3, 3, 16, 32]);
    assert.deepEqual(net.params.get('stage1_unit1_sc_weight')!.shape, [1, 1, 16, 16]);
    assert.deepEqual(net.params.get('fc1_weight')!.shape, [64, 10]);
    assert.ok(net.aux.has('bn_data_moving_mean') && net.aux.has('stage3_unit1_bn2_moving_var'));
    if (depth === 50) {
      assert.equal(resnetLayout(50).unitsPerStage, 8);
      assert.ok(names.includes('stage3_unit8_conv2_weight') && !names.includes('stage3_unit9_bn1_gamma'));
      // BatchNorms: bn_data + 2 per unit (24 units) + bn1 = 50, two moving statistics each
      assert.equal(net.aux.size, 100);
    }
    net.dispose();
  }
});

test('a depth that is not 6n+2 (or 9n+2 from 164) is a user error naming model.depth', () => {
  for (const d of [7, 10, 51, 165]) {
    assert.throws(() => createResNet({ depth: d, numClasses: 10, mixAt: null, seed: 0 }), (e: unknown) => e instanceof UserError && /model\.depth: \d+ is not a valid ResNet depth/.test(e.message));
  }
  assert.deepEqual(resnetLayout(164), { bottleneck: true, unitsPerStage: 18, filters: [16, 64, 128, 256] });
});

test('depth 164 builds bottleneck units: 1,703,261 parameters (He et al. 2016: 1.7M)', () => {
  const net = createResNet({ depth: 164, numClasses: 10, mixAt: null, seed: 0 });
  assert.equal(net.parameterCount(), 1_703_261);
  const names = [...net.params.keys()];
  assert.deepEqual(names.slice(2, 12), [
    'stage1_unit1_bn1_gamma', 'stage1_unit1_bn1_beta', 'stage1_unit1_conv1_weight',
    'stage1_unit1_bn2_gamma', 'stage1_unit1_bn2_beta', 'stage1_unit1_conv2_weight',
    'stage1_unit1_bn3_gamma', 'stage1_unit1_bn3_beta', 'stage1_unit1_conv3_weight', 'stage1_unit1_sc_weight',
  ]);
  assert.deepEqual(net.params.get('stage2_unit1_conv2_weight')!.shape, [3, 3, 32, 32]);
  assert.deepEqual(net.params.get('stage3_unit18_conv3_weight')!.shape, [1, 1, 64, 256]);
  net.dispose();
});

test('initialisation: He normal σ = √(2/fan_in) from (seed, parameter name), γ 1, β 0, moving 0/1', () => {
  const a = createResNet({ depth: 20, numClasses: 10, mixAt: null, seed: 4 });
  const b = createResNet({ depth: 20, numClasses: 10, mixAt: null, seed: 4 });
  const c = createResNet({ depth: 20, numClasses: 10, mixAt: null, seed: 5 });
  const w = a.params.get('stage3_unit2_conv1_weight')!.dataSync(); // 3·3·64·64 = 36,864 values, fan_in 576
  let s = 0;
  let s2 = 0;
  for (const v of w) {
    s += v;
    s2 += v * v;
  }
  const sd = Math.sqrt(s2 / w.length - (s / w.length) ** 2);
  assert.ok(Math.abs(sd / Math.sqrt(2 / 576) - 1) < 0.02, `std ${sd}`);
  assert.ok(Math.abs(s / w.length) < 0.002);
  const fc = a.params.get('fc1_weight')!.dataSync() as Float32Array;
  const fcSd = Math.sqrt(fc.reduce((t, v) => t + v * v, 0) / fc.length);
  assert.ok(Math.abs(fcSd / Math.sqrt(2 / 64) - 1) < 0.15, `fc std ${fcSd}`);
  assert.deepEqual([...b.params.get('stage3_unit2_conv1_weight')!.dataSync()], [...w]);
  assert.notDeepEqual([...c.params.get('stage3_unit2_conv1_weight')!.dataSync().slice(0, 8)], [...w.slice(0, 8)]);
  assert.ok(a.params.get('bn1_gamma')!.dataSync().every((v) => v === 1));
  assert.ok(a.params.get('bn1_beta')!.dataSync().every((v) => v === 0));
  assert.ok(a.params.get('fc1_bias')!.dataSync().every((v) => v === 0));
  assert.ok(a.aux.get('bn1_moving_mean')!.dataSync().every((v) => v === 0));
  assert.ok(a.aux.get('bn1_moving_var')!.dataSync().every((v) => v === 1));
  [a, b, c].forEach((n) => n.dispose());
});

/** BatchNorm written with plain ops, differentiated by tfjs's autodiff: the reference for the custom gradient. */
function naiveBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor1D | null, beta: tf.Tensor1D, eps = 2e-5): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const xhat = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps)));
  return tf.add(gamma ? tf.mul(xhat, gamma) : xhat, beta) as tf.Tensor4D;
}

test('BatchNorm in 2 shards equals each half normalised alone (forward, gradients); statistics are the halves\' average', () => {
  const x = tf.randomNormal([6, 3, 4, 5], 1, 2, 'float32', 11) as tf.Tensor4D;
  const gamma = tf.randomUniform([5], 0.5, 1.5, 'float32', 12) as tf.Tensor1D;
  const beta = tf.randomNormal([5], 0, 1, 'float32', 13) as tf.Tensor1D;
  const c = tf.randomNormal([6, 3, 4, 5], 0, 1, 'float32', 14);
  const sharded = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
    const r = batchNormTrain(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, undefined, 2);
    tf.dispose([r.mean, r.variance]);
    return tf.sum(tf.mul(r.y, c));
  };
  const halves = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
    const parts = tf.split(xx, 2, 0).map((p) => naiveBatchNorm(p as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D));
    return tf.sum(tf.mul(tf.concat(parts, 0), c));
  };
  const gs = tf.grads(sharded)([x, gamma, beta]);
  const gh = tf.grads(halves)([x, gamma, beta]);
  for (let i = 0; i < 3; i++) assert.ok(maxRelErr(gs[i]!.dataSync(), gh[i]!.dataSync()) < 1e-4, `input ${i}`);
  const r = batchNormTrain(x, gamma, beta, undefined, 2);
  const [a, b] = tf.split(x, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
  const want = tf.concat([naiveBatchNorm(a, gamma, beta), naiveBatchNorm(b, gamma, beta)], 0);
  assert.ok(maxRelErr(r.y.dataSync(), want.dataSync()) < 1e-5);
  const ma = tf.moments(a, [0, 1, 2]);
  const mb = tf.moments(b, [0, 1, 2]);
  const avg = (p: tf.Tensor, q: tf.Tensor) => tf.div(tf.add(p, q), 2);
  assert.ok(maxRelErr(r.mean.dataSync(), avg(ma.mean, mb.mean).dataSync()) < 1e-5);
  assert.ok(maxRelErr(r.variance.dataSync(), avg(ma.variance, mb.variance).dataSync()) < 1e-5);
  // and not the whole batch's statistics
  assert.ok(maxRelErr(r.variance.dataSync(), tf.moments(x, [0, 1, 2]).variance.dataSync()) > 1e-3);
  assert.throws(() => batchNormTrain(x, gamma, beta, undefined, 4), /does not split into 4 equal shards/);
  tf.dispose([x, gamma, beta, c, r.y, r.mean, r.variance, want, ...gs, ...gh]);
});

test('BatchNorm training forward and closed-form gradient equal autodiff of the plain formula', () => {
  const x = tf.randomNormal([3, 4, 5, 6], 1.5, 2, 'float32', 1) as tf.Tensor4D;
  const gamma = tf.randomUniform([6], 0.5, 1.5, 'float32', 2) as tf.Tensor1D;
  const beta = tf.randomNormal([6], 0, 1, 'float32', 3) as tf.Tensor1D;
  const c = tf.randomNormal([3, 4, 5, 6], 0, 1, 'float32', 4);
  for (const withGamma of [true, false]) {
    const g = withGamma ? gamma : null;
    const custom = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const r = batchNormTrain(xx as tf.Tensor4D, withGamma ? (gg as tf.Tensor1D) : null, bb as tf.Tensor1D);
      r.mean.dispose();
      r.variance.dispose();
      return tf.sum(tf.mul(r.y, c));
    };
    const naive = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(naiveBatchNorm(xx as tf.Tensor4D, withGamma ? (gg as tf.Tensor1D) : null, bb as tf.Tensor1D), c));
    // tf.grads needs every input to be used: without γ, differentiate w.r.t. x and β only
    const gc = withGamma ? tf.grads(custom)([x, gamma, beta]) : tf.grads((xx: tf.Tensor, bb: tf.Tensor) => custom(xx, gamma, bb))([x, beta]);
    const gn = withGamma ? tf.grads(naive)([x, gamma, beta]) : tf.grads((xx: tf.Tensor, bb: tf.Tensor) => naive(xx, gamma, bb))([x, beta]);
    for (let i = 0; i < gc.length; i++) {
      const err = maxRelErr(gc[i]!.dataSync(), gn[i]!.dataSync());
      assert.ok(err < 1e-4, `gamma ${withGamma}, input ${i}: relative error ${err}`);
    }
    const r = batchNormTrain(x, g, beta);
    assert.ok(maxRelErr(r.y.dataSync(), naiveBatchNorm(x, g, beta).dataSync()) < 1e-5);
    // batch statistics: mean and biased variance over N·H·W
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    assert.ok(maxRelErr(r.mean.dataSync(), mean.dataSync()) < 1e-5);
    assert.ok(maxRelErr(r.variance.dataSync(), variance.dataSync()) < 1e-5);
    tf.dispose([r.y, r.mean, r.variance, mean, variance, ...gc, ...gn]);
  }
  tf.dispose([x, gamma, beta, c]);
});

test('BatchNorm inference uses the moving statistics; the moving update is m·moving + (1−m)·batch', () => {
  const x = tf.tensor4d([1, 2, 3, 4], [2, 1, 1, 2]);
  const y = batchNormInfer(x, tf.tensor1d([2, 1]), tf.tensor1d([0.5, 0]), tf.tensor1d([1, 2]), tf.tensor1d([4, 1]), 0);
  // channel 0: (x − 1)/2·2 + 0.5 = x − 0.5; channel 1: (x − 2)/1
  assert.deepEqual([...y.dataSync()], [0.5, 0, 2.5, 2]);
  const m = movingUpdate(tf.tensor1d([1, 1]), tf.tensor1d([3, -1]), 0.9);
  const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
  near(m.dataSync()[0]!, 0.9 + 0.3);
  near(m.dataSync()[1]!, 0.9 - 0.1);
});

test('network: training mode uses batch statistics and updates moving stats; inference mode is per sample', () => {
  const net = createResNet({ depth: 8, numClasses: 4, mixAt: null, seed: 2 });
  const images = tf.randomNormal([4, 8, 8, 3], 3, 2, 'float32', 7) as tf.Tensor4D;
  const first = images.slice([0, 0, 0, 0], [1, 8, 8, 3]);
  // inference: sample 0's logits do not depend on the rest of the batch
  const infAll = tf.tidy(() => forward(net, images, { training: false }).slice([0, 0], [1, 4]));
  const infOne = tf.tidy(() => forward(net, first, { training: false }));
  assert.ok(maxRelErr(infAll.dataSync(), infOne.dataSync()) < 1e-5);
  // training: they do (batch statistics)
  const trAll = tf.tidy(() => forward(net, images, { training: true }).slice([0, 0], [1, 4]));
  const trTwo = tf.tidy(() => forward(net, images.slice([0, 0, 0, 0], [2, 8, 8, 3]), { training: true }).slice([0, 0], [1, 4]));
  assert.ok(maxRelErr(trAll.dataSync(), trTwo.dataSync()) > 1e-3);
  // without movingUpdates the moving statistics stay; with them, bn_data's follow the input's channel moments
  assert.ok(net.aux.get('bn_data_moving_mean')!.dataSync().every((v) => v === 0));
  const updates: MovingUpdate[] = [];
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    forward(net, images, { training: true, movingUpdates: updates });
  });
  assert.equal(updates.length, 2 * net.aux.size / 2);
  applyMovingUpdates(updates);
  assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
  const { mean, variance } = tf.moments(images, [0, 1, 2]);
  const mm = net.aux.get('bn_data_moving_mean')!.dataSync();
  const mv = net.aux.get('bn_data_moving_var')!.dataSync();
  const bm = mean.dataSync();
  const bv = variance.dataSync();
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(mm[c]! - 0.1 * bm[c]!) < 1e-5, `moving mean ${mm[c]} vs 0.1·${bm[c]}`);
    assert.ok(Math.abs(mv[c]! - (0.9 + 0.1 * bv[c]!)) < 1e-5, `moving var ${mv[c]} vs 0.9 + 0.1·${bv[c]}`);
  }
  tf.dispose([images, first, infAll, infOne, trAll, trTwo, mean, variance]);
  net.dispose();
});

test('MixUp placement: input mixing equals mixing the images first; other placements mix later, gradients reach conv0', () => {
  const images = tf.randomNormal([6, 8, 8, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
  const plan = planMix(6, { alpha: 0.5, mixRate: 0.7, scheme: 'pairs' }, uniformStream(1, 'mixup', 0, 0));
  const noMix = planMix(6, { alpha: 0.5, mixRate: 0, scheme: 'pairs' }, uniformStream(1, 'mixup', 0, 0));
  const atInput = createResNet({ depth: 8, numClasses: 3, mixAt: 'input', seed: 3 });
  const plain = createResNet({ depth: 8, numClasses: 3, mixAt: null, seed: 3 });
  const a = tf.tidy(() => forward(atInput, images, { training: true, plan }));
  const b = tf.tidy(() => forward(plain, applyMix(images, plan), { training: true }));
  assert.ok(maxRelErr(a.dataSync(), b.dataSync()) < 1e-5);
  const unmixed = tf.tidy(() => forward(plain, images, { training: true }));
  for (const at of ['head', 'stage1', 'stage2', 'stage3'] as const) {
    const net = createResNet({ depth: 8, numClasses: 3, mixAt: at, seed: 3 });
    const z = tf.tidy(() => forward(net, images, { training: true, plan }));
    const z0 = tf.tidy(() => forward(net, images, { training: true, plan: noMix }));
    assert.ok(maxRelErr(z0.dataSync(), unmixed.dataSync()) < 1e-5, `${at}: mixRate 0 changes nothing`);
    assert.ok(maxRelErr(z.dataSync(), unmixed.dataSync()) > 1e-3, `${at}: mixing changes the logits`);
    assert.ok(maxRelErr(z.dataSync(), a.dataSync()) > 1e-3, `${at} differs from input mixing`);
    const g = tf.tidy(() => {
      const w = net.params.get('conv0_weight')!;
      return tf.variableGrads(() => tf.sum(tf.square(forward(net, images, { training: true, plan }))) as tf.Scalar, [w]).grads[w.name]!;
    });
    assert.ok(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]!) > 0, `${at}: gradient reaches conv0 through the mix`);
    tf.dispose([z, z0, g]);
    net.dispose();
  }
  // mixBackward 'zero': same logits, nothing reaches conv0 from the loss, later layers still learn
  const exact = createResNet({ depth: 8, numClasses: 3, mixAt: 'head', seed: 3 });
  const ref = createResNet({ depth: 8, numClasses: 3, mixAt: 'head', seed: 3, mixBackward: 'zero' });
  const gradsOf = (net: typeof ref) =>
    tf.tidy(() => {
      const names = ['conv0_weight', 'bn_data_beta', 'stage1_unit1_conv1_weight'];
      const vars = names.map((n) => net.params.get(n)!);
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(forward(net, images, { training: true, plan }))) as tf.Scalar, vars);
      return names.map((n, i) => tf.max(tf.abs(grads[vars[i]!.name]!)).dataSync()[0]!);
    });
  const [e0, eb, e1] = gradsOf(exact);
  const [r0, rb, r1] = gradsOf(ref);
  assert.ok(e0! > 0 && eb! > 0 && e1! > 0);
  assert.equal(r0, 0);
  assert.equal(rb, 0);
  assert.ok(Math.abs(r1! - e1!) <= 1e-6 * e1!, 'layers after the mix get the same gradient');
  exact.dispose();
  ref.dispose();
  assert.throws(() => forward(plain, images, { training: true, plan }), /no MixUp placement/);
  assert.throws(() => forward(atInput, images, { training: false, plan }), /training mode only/);
  tf.dispose([images, a, b, unmixed]);
  atInput.dispose();
  plain.dispose();
});
