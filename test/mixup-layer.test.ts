// The MixUp layer on tensors (src/engine/tfjs/mixlayer.ts), cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { applyMix, permuteRows } from '../src/engine/tfjs/mixlayer.js';
import { pairsPlan, planMix } from '../src/mixup/plan.js';
import { uniformStream } from '../src/random.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('applyMix on unit vectors shows which λ goes where (the reference layout)', () => {
  const B = 7;
  const plan = planMix(B, { alpha: 0.5, mixRate: 0.6, scheme: 'pairs' }, uniformStream(5, 'mixup', 1, 2));
  assert.equal(plan.mixLen, 4); // floor(4.2) = 4
  // x[i] = e_i as a [B, B, 1, 1] batch: output row r lists the coefficient of every input sample
  const out = tf.tidy(() => applyMix(tf.eye(B).reshape([B, B, 1, 1]), plan).reshape([B, B]).arraySync() as number[][]);
  const [l10, l11] = plan.lambda1;
  const [l20, l21] = plan.lambda2;
  const f = Math.fround;
  const expected = [
    [l10!, 0, 1 - l10!, 0, 0, 0, 0], // λ1₀·a₀ + (1−λ1₀)·b₀, a₀ = x0, b₀ = x2
    [0, l11!, 0, 1 - l11!, 0, 0, 0],
    [l20!, 0, 1 - l20!, 0, 0, 0, 0], // λ2₀·a₀ + (1−λ2₀)·b₀
    [0, l21!, 0, 1 - l21!, 0, 0, 0],
    [0, 0, 0, 0, 1, 0, 0], // unmixed
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
  ];
  close(out.flat(), expected.flat().map(f), 1e-6, 'mix matrix');
});

test('permuteRows gathers rows and sends the gradient back by the inverse permutation', () => {
  const perm = Int32Array.from([2, 0, 3, 1]);
  const x = tf.tensor2d([[1, 10], [2, 20], [3, 30], [4, 40]]);
  assert.deepEqual(permuteRows(x, perm).arraySync(), [[3, 30], [1, 10], [4, 40], [2, 20]]);
  const c = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(permuteRows(t, perm), c)))(x);
  // out[i] = x[perm[i]] → dx[perm[i]] = c[i]
  assert.deepEqual(g.arraySync(), [[3, 4], [7, 8], [1, 2], [5, 6]]);
  tf.dispose([x, c, g]);
});

test('the gradient through the mix equals the analytic one', () => {
  for (const scheme of ['pairs', 'permutation'] as const) {
    const B = 6;
    const plan = planMix(B, { alpha: 0.3, mixRate: 0.7, scheme }, uniformStream(9, 'mixup', scheme));
    const x = tf.randomNormal([B, 2, 2, 3], 0, 1, 'float32', 1);
    const c = tf.randomNormal([B, 2, 2, 3], 0, 1, 'float32', 2);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyMix(t, plan), c)))(x);
    // L = Σᵢ cᵢ·(wᵢ·x[i] + (1−wᵢ)·x[pᵢ])  ⇒  ∂L/∂x[j] = w_j·c_j + Σ_{i: pᵢ = j} (1−wᵢ)·cᵢ
    const D = 12;
    const cv = c.dataSync();
    const expected = new Float64Array(B * D);
    for (let i = 0; i < B; i++) {
      const w = plan.weight[i]!;
      const p = plan.partner[i]!;
      for (let d = 0; d < D; d++) {
        expected[i * D + d] += w * cv[i * D + d]!;
        expected[p * D + d] += (1 - w) * cv[i * D + d]!;
      }
    }
    close(g.dataSync(), expected, 1e-5, `${scheme} gradient`);
    tf.dispose([x, c, g]);
  }
});

test('applyMix leaves no tensors behind', () => {
  const plan = planMix(4, { alpha: 1, mixRate: 1, scheme: 'pairs' }, uniformStream(0, 'm'));
  const x = tf.ones([4, 3]);
  const before = tf.memory().numTensors;
  const y = applyMix(x, plan);
  assert.equal(tf.memory().numTensors, before + 1);
  close(y.dataSync(), new Float32Array(12).fill(1), 1e-6, 'mix of equal rows');
  tf.dispose([x, y]);
});

test("backward 'zero': same output, zero input gradient", () => {
  const plan = planMix(4, { alpha: 0.5, mixRate: 1, scheme: 'pairs' }, uniformStream(4, 'm'));
  const x = tf.randomNormal([4, 3], 0, 1, 'float32', 1);
  const exact = applyMix(x, plan);
  const zero = applyMix(x, plan, 'zero');
  assert.deepEqual([...zero.dataSync()], [...exact.dataSync()]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(applyMix(t, plan, 'zero'))))(x);
  assert.ok(g.dataSync().every((v) => v === 0));
  tf.dispose([x, exact, zero, g]);
});

test("backward 'reference' (the reference op's app_backward): same output, dx[r] = s[r]·dy[r] row by row", () => {
  // pair 0 = rows (0, 2) with λ1 0.25, λ2 0.125; pair 1 = rows (1, 3) with λ1 0.5, λ2 1; row 4 unmixed
  const plan = pairsPlan(5, Float64Array.of(0.25, 0.5), Float64Array.of(0.125, 1));
  const x = tf.randomNormal([5, 2, 2, 3], 0, 1, 'float32', 2);
  const dy = tf.randomNormal([5, 2, 2, 3], 0, 1, 'float32', 3);
  const exact = applyMix(x, plan);
  const ref = applyMix(x, plan, 'reference');
  assert.deepEqual([...ref.dataSync()], [...exact.dataSync()]);
  // s = λ1+λ2 on rows 0, 1; 2−λ1−λ2 on rows 2, 3; 1 on row 4
  const s = [0.375, 1.5, 1.625, 0.5, 1];
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyMix(t, plan, 'reference'), dy)))(x);
  const d = dy.dataSync();
  const expected = Array.from(d, (v, i) => v * s[Math.floor(i / 12)]!);
  close(g.dataSync(), expected, 1e-6, 'reference gradient');
  tf.dispose([x, dy, exact, ref, g]);
});
