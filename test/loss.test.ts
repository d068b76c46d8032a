// soft-ce and mixture-nll (src/engine/tfjs/loss.ts) on hand-computed inputs, cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { meanLoss, perSampleLoss } from '../src/engine/tfjs/loss.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

const near = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('both losses on a hand-computed mixed row', () => {
  // z = [1, 2, 3], y = [0.25, 0, 0.75]
  // logsumexp(z) = 3 + log(1 + e⁻¹ + e⁻²) = 3.4076059644
  // soft-ce = 3.4076059644 − (0.25·1 + 0.75·3) = 0.9076059644
  // softmax = [0.0900305732, 0.2447284711, 0.6652409558]
  // mixture-nll = −log(0.25·0.0900305732 + 0.75·0.6652409558) = −log(0.5214383601) = 0.6511644
  const z = tf.tensor2d([[1, 2, 3]]);
  const y = tf.tensor2d([[0.25, 0, 0.75]]);
  near(perSampleLoss(z, y, 'soft-ce').dataSync()[0]!, 0.9076059644, 1e-6, 'soft-ce');
  near(perSampleLoss(z, y, 'mixture-nll').dataSync()[0]!, 0.6511644, 1e-6, 'mixture-nll');
});

test('on one-hot labels both equal plain cross-entropy −log softmax(z)_label', () => {
  const z = tf.tensor2d([[0.5, -1, 2, 0], [3, 3, -2, 1], [0, 0, 0, 0]]);
  const labels = [2, 0, 3];
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4).toFloat() as tf.Tensor2D;
  const zs = z.arraySync();
  const ce = labels.map((l, i) => {
    const row = zs[i]!;
    return Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[l]!;
  });
  for (const name of ['soft-ce', 'mixture-nll'] as const) {
    const got = perSampleLoss(z, y, name).dataSync();
    ce.forEach((v, i) => near(got[i]!, v, 1e-5, `${name} row ${i}`));
    near(meanLoss(z, y, name).dataSync()[0]!, (ce[0]! + ce[1]! + ce[2]!) / 3, 1e-5, `${name} mean`);
  }
  near(ce[2]!, Math.log(4), 1e-12, 'uniform logits');
});

test('stable for large logits (log-sum-exp)', () => {
  const z = tf.tensor2d([[1000, 0, -1000], [1000, 0, -1000]]);
  const y = tf.tensor2d([[1, 0, 0], [0, 0.5, 0.5]]);
  for (const name of ['soft-ce', 'mixture-nll'] as const) {
    const l = perSampleLoss(z, y, name).dataSync();
    near(l[0]!, 0, 1e-4, `${name} confident and right`);
    assert.ok(Number.isFinite(l[1]!), `${name} finite`);
  }
  // soft-ce: 1000 − (0.5·0 + 0.5·(−1000)) = 1500; mixture-nll: 1000 − log(0.5·e⁰) = 1000.693
  near(perSampleLoss(z, y, 'soft-ce').dataSync()[1]!, 1500, 1e-2, 'soft-ce wrong');
  near(perSampleLoss(z, y, 'mixture-nll').dataSync()[1]!, 1000 + Math.log(2), 1e-2, 'mixture-nll wrong');
});

test('gradients: soft-ce → (softmax − y)/B, mixture-nll → (softmax − q)/B with q ∝ y·softmax', () => {
  const zv = [[1, 2, 3], [0.5, -0.5, 0]];
  const yv = [[0.25, 0, 0.75], [0, 0.6, 0.4]];
  const z = tf.tensor2d(zv);
  const y = tf.tensor2d(yv);
  const softmax = zv.map((r) => {
    const e = r.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
  const B = 2;
  const gSoft = tf.grad((t: tf.Tensor) => meanLoss(t as tf.Tensor2D, y, 'soft-ce'))(z).arraySync() as number[][];
  const gMix = tf.grad((t: tf.Tensor) => meanLoss(t as tf.Tensor2D, y, 'mixture-nll'))(z).arraySync() as number[][];
  for (let i = 0; i < B; i++) {
    const yp = yv[i]!.map((v, k) => v * softmax[i]![k]!);
    const s = yp.reduce((a, b) => a + b, 0);
    for (let k = 0; k < 3; k++) {
      near(gSoft[i]![k]!, (softmax[i]![k]! - yv[i]![k]!) / B, 1e-6, `soft-ce grad ${i},${k}`);
      near(gMix[i]![k]!, (softmax[i]![k]! - yp[k]! / s) / B, 1e-6, `mixture-nll grad ${i},${k}`);
    }
  }
  // zero label weights keep the mixture-nll gradient finite
  const g0 = tf.grad((t: tf.Tensor) => meanLoss(t as tf.Tensor2D, tf.tensor2d([[0, 0, 1]]), 'mixture-nll'))(tf.tensor2d([[50, -50, 0]]));
  assert.ok(g0.dataSync().every(Number.isFinite));
});
