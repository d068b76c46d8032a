// One training step and one evaluation batch (src/engine/tfjs/step.ts) on tiny networks. cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { createResNet, forward, type ResNet } from '../src/engine/tfjs/resnet.js';
import { planMix } from '../src/mixup/plan.js';
import { mixLabels } from '../src/mixup/targets.js';
import { uniformStream } from '../src/random.js';
import { meanLoss } from '../src/engine/tfjs/loss.js';
import { SGD, wdMult } from '../src/engine/tfjs/sgd.js';
import { settleStep, settleSteps, trainStep } from '../src/engine/tfjs/step.js';
import { TfjsEngine } from '../src/engine/tfjs/engine.js';
import { evaluateBatch, scoreLogits } from '../src/evaluate/scoring.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

function snapshot(net: ResNet): Map<string, Float32Array> {
  return new Map([...net.params, ...net.aux].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

test('gradScale 1/64 equals the loss divided by 64 with weight decay unchanged (mixup, mixture-nll)', async () => {
  const B = 4;
  const images = tf.randomNormal([B, 4, 4, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  const labels = Int32Array.from([1, 0, 2, 1]);
  const plan = planMix(B, { alpha: 0.2, mixRate: 1, scheme: 'pairs' }, uniformStream(0, 'mixup', 0, 0));
  const lr = 0.5;
  const wd = 0.01;
  const opts = { depth: 8, numClasses: 3, mixAt: 'input' as const, seed: 6 };

  // reference: the unscaled batch-mean gradient g, then w ← w − lr·(g/64 + wd·mult·w) by hand (momentum buffers start at 0)
  const ref = createResNet(opts);
  const w0 = snapshot(ref);
  const y = tf.tensor2d(mixLabels(labels, 3, plan), [B, 3]);
  const varList = [...ref.params.values()];
  const { value: refLoss, grads } = tf.variableGrads(() => meanLoss(forward(ref, images, { training: true, plan }), y, 'mixture-nll'), varList);
  const expected = new Map<string, Float32Array>();
  for (const [name, v] of ref.params) {
    const g = grads[v.name]!.dataSync();
    const w = w0.get(name)!;
    expected.set(name, Float32Array.from(w, (wi, i) => wi - lr * (g[i]! / 64 + wd * wdMult(name) * wi)));
  }

  const net = createResNet(opts);
  const opt = new SGD(net, { momentum: 0.9, wd });
  const r = await settleStep(trainStep(net, opt, images, labels, plan, { lr, gradScale: 1 / 64, loss: 'mixture-nll' }));
  assert.ok(Math.abs(r.loss - refLoss.dataSync()[0]!) < 1e-6, `reported loss ${r.loss} is the unscaled batch mean ${refLoss.dataSync()[0]}`);
  let checked = 0;
  for (const [name, v] of net.params) {
    const got = v.dataSync();
    const want = expected.get(name)!;
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 + 1e-5 * Math.abs(want[i]!), `${name}[${i}]: ${got[i]} vs ${want[i]}`);
    }
    checked++;
  }
  assert.equal(checked, 27);
  // weight decay really acted on a weight and not on a beta: compare with a wd-free expectation
  const conv0 = 'conv0_weight';
  const g0 = grads[ref.params.get(conv0)!.name]!.dataSync();
  const noWd = w0.get(conv0)![0]! - (lr * g0[0]!) / 64;
  assert.ok(Math.abs(net.params.get(conv0)!.dataSync()[0]! - noWd) > 0.5 * lr * wd * Math.abs(w0.get(conv0)![0]!));
  // the step also moved the BatchNorm moving statistics
  assert.ok(net.aux.get('bn_data_moving_mean')!.dataSync().some((v) => v !== 0));
  // and the momentum buffers hold the first update: mom = w1 − w0
  const mom = opt.state().get('fc1_weight_momentum')!.dataSync();
  const w1 = net.params.get('fc1_weight')!.dataSync();
  mom.forEach((m, i) => assert.ok(Math.abs(m - (w1[i]! - w0.get('fc1_weight')![i]!)) < 1e-6));
  tf.dispose([images, y, refLoss, ...Object.values(grads)]);
  opt.dispose();
  ref.dispose();
  net.dispose();
});

test('correct counts the label with the larger weight of each mixed sample', async () => {
  const B = 4;
  const net = createResNet({ depth: 8, numClasses: 3, mixAt: 'input', seed: 1 });
  const opt = new SGD(net, { momentum: 0.9, wd: 0 });
  const images = tf.randomNormal([B, 4, 4, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const labels = Int32Array.from([0, 1, 2, 0]);
  const plan = planMix(B, { alpha: 0.2, mixRate: 1, scheme: 'pairs' }, uniformStream(2, 'mixup', 0, 0));
  // the prediction of the step is made before the update: recompute it on a twin network
  const twin = createResNet({ depth: 8, numClasses: 3, mixAt: 'input', seed: 1 });
  const predicted = tf.tidy(() => tf.argMax(forward(twin, images, { training: true, plan }), 1).dataSync());
  const majority = [0, 1, 2, 3].map((i) => (plan.weight[i]! >= 0.5 ? labels[i]! : labels[plan.partner[i]!]!));
  const expected = majority.filter((l, i) => l === predicted[i]).length;
  const r = await settleStep(trainStep(net, opt, images, labels, plan, { lr: 0, gradScale: 1, loss: 'soft-ce' }));
  assert.equal(r.correct, expected);
  tf.dispose(images);
  [net, twin].forEach((n) => n.dispose());
  opt.dispose();
});

test('evaluateBatch: inference-mode loss sum, correct count, predictions and probabilities', async () => {
  const engine = new TfjsEngine({ depth: 8, numClasses: 4, mixAt: null, seed: 3, momentum: 0, wd: 0 });
  const net = engine.net;
  const images = tf.randomNormal([5, 4, 4, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  const labels = Int32Array.from([0, 1, 2, 3, 0]);
  const z = tf.tidy(() => forward(net, images, { training: false }));
  const zs = z.arraySync() as number[][];
  let lossSum = 0;
  let correct = 0;
  const predicted: number[] = [];
  zs.forEach((row, i) => {
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    lossSum += lse - row[labels[i]!]!;
    const p = row.indexOf(Math.max(...row));
    predicted.push(p);
    if (p === labels[i]) correct++;
  });
  const before = tf.memory().numTensors;
  const r = await evaluateBatch(engine, { images: images.dataSync() as Float32Array, labels, size: 5, height: 4, width: 4 });
  assert.equal(tf.memory().numTensors, before);
  assert.ok(Math.abs(r.lossSum - lossSum) < 1e-4, `${r.lossSum} vs ${lossSum}`);
  assert.equal(r.correct, correct);
  assert.deepEqual([...r.predicted], predicted);
  zs.forEach((row, i) => {
    const e = row.map((v) => Math.exp(v));
    const total = e.reduce((a, b) => a + b, 0);
    e.forEach((v, k) => assert.ok(Math.abs(r.probs[i * 4 + k]! - v / total) < 1e-6, `probs[${i},${k}]`));
  });
  tf.dispose([z, images]);
  engine.dispose();
});

test('a depth-8 net overfits 10 samples of 8×8 in 15 steps (loss from ≈ ln 10 to below 0.15), leaking no tensors', async () => {
  const net = createResNet({ depth: 8, numClasses: 10, mixAt: null, seed: 1 });
  const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
  const images = tf.randomNormal([10, 8, 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const losses: number[] = [];
  let tensors = 0;
  let last = { loss: NaN, correct: 0 };
  for (let i = 0; i < 15; i++) {
    last = await settleStep(trainStep(net, opt, images, labels, null, { lr: 0.1, gradScale: 1, loss: 'soft-ce' }));
    losses.push(last.loss);
    if (i === 0) tensors = tf.memory().numTensors;
    else assert.equal(tf.memory().numTensors, tensors, `step ${i} leaked tensors`);
  }
  assert.ok(losses[0]! > 1.5 && losses[0]! < 4, `first loss ${losses[0]}`);
  assert.ok(last.loss < 0.15, `loss after 15 steps: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  assert.equal(last.correct, 10);
  tf.dispose(images);
  opt.dispose();
  net.dispose();
});

test('a step whose loss is not finite changes nothing (parameters, momentum, moving statistics), without a host read', async () => {
  const net = createResNet({ depth: 8, numClasses: 3, mixAt: null, seed: 2 });
  const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
  const good = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
  await settleStep(trainStep(net, opt, good, Int32Array.from([0, 1]), null, { lr: 0.1, gradScale: 1, loss: 'soft-ce' }));
  const w = snapshot(net);
  const mom = [...opt.state()].map(([n, t]) => [n, t.dataSync().slice()] as const);
  const bad = tf.fill([2, 4, 4, 3], NaN) as tf.Tensor4D;
  // the bad step is queued and its parameters checked before its loss is read: the guard is on the device
  const pending = trainStep(net, opt, bad, Int32Array.from([0, 1]), null, { lr: 0.1, gradScale: 1, loss: 'soft-ce' });
  for (const [n, v] of snapshot(net)) assert.deepEqual([...v], [...w.get(n)!], n);
  const r = await settleStep(pending);
  assert.ok(Number.isNaN(r.loss));
  assert.equal(r.updated, false);
  for (const [n, v] of snapshot(net)) assert.deepEqual([...v], [...w.get(n)!], n);
  for (const [n, m] of mom) assert.deepEqual([...opt.state().get(n)!.dataSync()], [...m], n);
  const ok = await settleStep(trainStep(net, opt, good, Int32Array.from([0, 1]), null, { lr: 0.1, gradScale: 1, loss: 'soft-ce' }));
  assert.ok(ok.updated && Number.isFinite(ok.loss));
  assert.ok([...snapshot(net)].some(([n, v]) => v.some((x, i) => x !== w.get(n)![i])), 'a finite step changes the parameters');
  tf.dispose([good, bad]);
  opt.dispose();
  net.dispose();
});

test('settleSteps reads queued steps in order, equal to reading each after its step', async () => {
  const images = tf.randomNormal([4, 4, 4, 3], 0, 1, 'float32', 8) as tf.Tensor4D;
  const labels = Int32Array.from([0, 1, 2, 1]);
  const run = async (batched: boolean) => {
    const net = createResNet({ depth: 8, numClasses: 3, mixAt: null, seed: 4 });
    const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
    const step = () => trainStep(net, opt, images, labels, null, { lr: 0.05, gradScale: 1, loss: 'soft-ce' });
    const out = [];
    if (batched) out.push(...(await settleSteps([step(), step(), step()])));
    else for (let i = 0; i < 3; i++) out.push(await settleStep(step()));
    const w = [...net.params.get('fc1_weight')!.dataSync()];
    opt.dispose();
    net.dispose();
    return { out, w };
  };
  const before = tf.memory().numTensors;
  const a = await run(false);
  const b = await run(true);
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  assert.deepEqual(b, a);
  assert.ok(a.out[2]!.loss < a.out[0]!.loss, `loss falls over the steps: ${a.out.map((r) => r.loss).join(', ')}`);
  images.dispose();
});

test('scoreLogits: cross-entropy, first-max argmax and softmax by hand', () => {
  // row 0: z = [0, ln 3] → p = [1/4, 3/4], label 1 → CE ln(4/3); row 1: a tie → argmax 0, label 1 → CE ln 2
  const r = scoreLogits(Float32Array.from([0, Math.log(3), 2, 2]), Int32Array.from([1, 1]), 2);
  assert.ok(Math.abs(r.lossSum - (Math.log(4 / 3) + Math.log(2))) < 1e-6, `${r.lossSum}`);
  assert.deepEqual([...r.predicted], [1, 0]);
  assert.equal(r.correct, 1);
  [0.25, 0.75, 0.5, 0.5].forEach((p, i) => assert.ok(Math.abs(r.probs[i]! - p) < 1e-6, `probs[${i}] = ${r.probs[i]}`));
  assert.throws(() => scoreLogits(Float32Array.from([0, 1]), Int32Array.from([2]), 2), /label 2 of sample 0 is outside \[0, 2\)/);
  assert.throws(() => scoreLogits(Float32Array.from([0, 1, 2]), Int32Array.from([0]), 2), /3 logits for 1 labels of 2 classes/);
});
