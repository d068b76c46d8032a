// The static engine's MixUp, head, loss and update kernels (src/engine/webgpu/mix.ts, head.ts,
// update.ts), each run on its own through the test-only runner (test/fixtures/wgsl.ts) on lavapipe,
// against tfjs on the cpu backend (mixing as gather + weights and its autodiff, pooling, fc1, the two
// losses and their gradients) or, where tfjs has no op, float64 JS (the reference backward's factor,
// SGD with momentum and the moving statistics). Every output starts as NaN. BatchNorm: test/webgpu-
// bn-kernels.test.ts; convolutions: test/webgpu-conv.test.ts. Skipped with a one-line reason where
// webgpu does not load (never in CI). Own process: Dawn stays out of the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { mixBackwardKernel, mixForwardKernel, packPlan, PLAN_STRIDE, type MixShape } from '../src/engine/webgpu/mix.js';
import { fcBackwardKernel, logitsKernel, lossKernel, poolKernel } from '../src/engine/webgpu/head.js';
import { bnStatsKernel } from '../src/engine/webgpu/bn.js';
import { bnStateFloats } from '../src/engine/webgpu/bn_state.js';
import { updateKernel, type UpdateShape } from '../src/engine/webgpu/update.js';
import type { MixPlan } from '../src/mixup/plan.js';
import type { LossName } from '../src/engine/engine.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';
import { runSteps, testDevice } from './fixtures/wgsl.js';
import { garbage, lcgValues } from './fixtures/values.js';

const skip = (await webgpuSkipReason()) ?? false;
const device = skip ? null : await testDevice();
const worst: Record<string, number> = {};
after(() => {
  device?.destroy();
  releaseBackends();
  if (Object.keys(worst).length > 0) console.log(`# worst error of each kernel output (of its scale): ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
});

/** Asserts got ≈ want within 1e-4 of want's scale (want not all zero) and records the worst error under `key`. */
function close(key: string, label: string, got: Float32Array | undefined, want: ArrayLike<number>): void {
  assert.ok(got, `${label}: not read back`);
  assert.ok(Array.from(want).some((v) => v !== 0), `${label}: the reference is not all zero`);
  const err = maxRelError(got, want);
  assert.ok(err <= 1e-4, `${label}: off by ${err} of its scale`);
  worst[key] = Math.max(worst[key] ?? 0, err);
}

// ---- MixUp / CutMix ----

/** A permutation plan of plain mixup (weights w) or CutMix (boxes [y0, x0, y1, x1) per row). */
function plan(partner: number[], weight: number[], boxes?: number[], size?: [number, number]): MixPlan {
  return {
    batchSize: partner.length,
    scheme: 'permutation',
    mixLen: partner.length,
    partner: Int32Array.from(partner),
    weight: Float64Array.from(weight),
    lambda1: Float64Array.from([weight[0]!]),
    lambda2: new Float64Array(0),
    ...(boxes ? { boxes: Int32Array.from(boxes), height: size![0], width: size![1] } : {}),
  };
}

test('packPlan: partner, inverse, own and partner weights, the reference factor, boxes; a plan of another batch is refused', () => {
  const out = new Float32Array(2 + 3 * PLAN_STRIDE).fill(NaN);
  packPlan(plan([2, 0, 1], [0.75, 0.5, 1]), 3, 'reference', out, 2);
  const row = (r: number) => Array.from(out.subarray(2 + r * PLAN_STRIDE, 2 + (r + 1) * PLAN_STRIDE));
  // row 0: partner 2, taken as partner by row 1 (p⁻¹[0] = 1), w 0.75, 1 − w 0.25, s = w0 + 1 − w2 = 0.75.
  assert.deepEqual(row(0), [2, 1, 0.75, 0.25, 0.75, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(1), [0, 2, 0.5, 0.5, 0.5 + 1 - 0.75, 0, 0, 0, 0, 0]);
  assert.deepEqual(row(2), [1, 0, 1, 0, 1 + 1 - 0.5, 0, 0, 0, 0, 0]);
  assert.ok(Number.isNaN(out[0]!) && Number.isNaN(out[1]!), 'nothing before the offset is written');
  // CutMix: weights (1, 0) outside the box, the box as floats; `zero` stores factor 0; the identity for null.
  packPlan(plan([1, 0], [0.6, 1], [1, 2, 3, 4, 0, 0, 0, 0], [5, 4]), 2, 'zero', out, 0);
  assert.deepEqual(Array.from(out.subarray(0, PLAN_STRIDE)), [1, 1, 1, 0, 0, 1, 2, 3, 4, 0]);
  packPlan(null, 3, 'exact', out, 0);
  assert.deepEqual(Array.from(out.subarray(PLAN_STRIDE, 2 * PLAN_STRIDE)), [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]);
  assert.throws(() => packPlan(plan([1, 0], [0.5, 0.5]), 3, 'exact', out, 0), /mix plan is for a batch of 2, the engine's batch is 3/);
});

/**
 * Runs forward, exact backward and factor backward of `p` on `[B,H,W,C]` in one pass and checks
 * them against tfjs: y = m·x + (1 − m)·gather(x, partner) with m the per-pixel own weight (w of
 * the row, or 0 inside the row's CutMix box and 1 outside), dx exact = the gradient of Σ y·dy,
 * dx factor = (w[r] + 1 − w[p[r]])·dy (or 0 for `zero`).
 */
async function checkMix(s: MixShape, p: MixPlan, backward: 'reference' | 'zero', seed: number): Promise<void> {
  const n = s.batch * s.height * s.width * s.channels;
  const x = lcgValues(n, seed);
  const dy = lcgValues(n, seed + 1);
  const own = new Float32Array(s.batch * s.height * s.width);
  for (let r = 0; r < s.batch; r++)
    for (let py = 0; py < s.height; py++)
      for (let px = 0; px < s.width; px++) {
        const b = p.boxes?.subarray(4 * r, 4 * r + 4);
        const inBox = b !== undefined && py >= b[0]! && py < b[2]! && px >= b[1]! && px < b[3]!;
        own[(r * s.height + py) * s.width + px] = b ? (inBox ? 0 : 1) : p.weight[r]!;
      }
  const want = tf.tidy(() => {
    const m = tf.tensor4d(own, [s.batch, s.height, s.width, 1]);
    const f = (a: tf.Tensor) => tf.add(tf.mul(m, a), tf.mul(tf.sub(1, m), tf.gather(a, tf.tensor1d(p.partner, 'int32'))));
    const xt = tf.tensor4d(x, [s.batch, s.height, s.width, s.channels]);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), tf.tensor4d(dy, [s.batch, s.height, s.width, s.channels]))))(xt);
    return { y: f(xt).dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  });
  const rowSize = n / s.batch;
  const factor = dy.map((v, i) => {
    const r = Math.floor(i / rowSize);
    return backward === 'zero' ? 0 : (p.weight[r]! + 1 - p.weight[p.partner[r]!]!) * v;
  });
  const packed = new Float32Array(s.batch * PLAN_STRIDE);
  packPlan(p, s.batch, backward, packed, 0);
  const fwd = mixForwardKernel(s);
  const got = await runSteps(
    device!,
    [
      { kernel: fwd, buffers: ['x', 'plan', 'y'] },
      { kernel: mixBackwardKernel(s, 'exact'), buffers: ['dy', 'plan', 'dxExact'] },
      { kernel: mixBackwardKernel(s, 'factor'), buffers: ['dy', 'plan', 'dxFactor'] },
    ],
    { x, dy, plan: packed, y: garbage(n), dxExact: garbage(n), dxFactor: garbage(n) },
    ['y', 'dxExact', 'dxFactor'],
  );
  const kind = p.boxes ? 'cutmix' : 'mixup';
  close(`mix_fwd ${kind}`, `${fwd.label}: y`, got['y'], want.y);
  close(`mix_bwd_exact ${kind}`, `${fwd.label}: dx exact`, got['dxExact'], want.dx);
  if (backward === 'zero') assert.ok(got['dxFactor']!.every((v) => v === 0), 'the zero backward writes 0 everywhere');
  else close(`mix_bwd_factor ${kind}`, `${fwd.label}: dx reference`, got['dxFactor'], factor);
}

test('MixUp forward, exact and reference backward: batch 3 (a 3-cycle), 5×4×3, and batch 4 over workgroups', { skip }, async () => {
  await checkMix({ batch: 3, height: 5, width: 4, channels: 3 }, plan([2, 0, 1], [0.7, 0.4, 1]), 'reference', 1);
  // 4·7·7·5 = 980 elements: 4 workgroups, the last partly idle; partner 2,0,3,1 is not its own inverse.
  await checkMix({ batch: 4, height: 7, width: 7, channels: 5 }, plan([2, 0, 3, 1], [0.9, 0.35, 0.5, 0.2]), 'reference', 11);
  await checkMix({ batch: 4, height: 7, width: 7, channels: 5 }, plan([1, 0, 3, 2], [0.6, 0.6, 0.3, 0.3]), 'zero', 21);
});

test('CutMix boxes: pixels inside [y0, x0, y1, x1) come from the partner, an empty box keeps the row', { skip }, async () => {
  const boxes = [1, 0, 4, 3, 0, 0, 0, 0, 2, 1, 5, 4, 0, 2, 2, 4];
  await checkMix({ batch: 4, height: 5, width: 4, channels: 3 }, plan([3, 2, 0, 1], [0.55, 1, 0.4, 0.75], boxes, [5, 4]), 'reference', 31);
});

// ---- Head: pool, fc1 + loss, fc1 backward, inference logits ----

test('global average pool: batch 3, 5×5, 3 channels, and batch 4, 7×7, 70 channels', { skip }, async () => {
  for (const [B, hw, C, seed] of [[3, 25, 3, 41], [4, 49, 70, 51]] as const) {
    const a = lcgValues(B * hw * C, seed);
    const want = tf.tidy(() => tf.mean(tf.tensor3d(a, [B, hw, C]), 1).dataSync() as Float32Array);
    const k = poolKernel(B, hw, C);
    const got = await runSteps(device!, [{ kernel: k, buffers: ['a', 'pooled'] }], { a, pooled: garbage(B * C) }, ['pooled']);
    close('pool', `${k.label}: pooled`, got['pooled'], want);
  }
});

/**
 * The pool reading through the head's BatchNorm+ReLU (statistics from bnStatsKernel, per shard),
 * against float64 JS: pooled[b,c] = mean over pixels of max(0, γ_c·(x − μ_s,c)/√(var_s,c + eps) + β_c).
 */
test('global average pool through BatchNorm+ReLU, 2 shards of 2 images, 3×3, 5 channels, with and without γ', { skip }, async () => {
  const [B, hw, C, S, eps] = [4, 9, 5, 2, 1e-5];
  const x = lcgValues(B * hw * C, 61).map((v) => 3 * v + 0.5);
  const gamma = lcgValues(C, 62).map((v) => 1 + v);
  const beta = lcgValues(C, 63).map((v) => 0.5 * v);
  const shape = { shards: S, rows: (B / S) * hw, channels: C, eps };
  for (const fixGamma of [false, true]) {
    const want = new Float64Array(B * C);
    for (let s = 0; s < S; s++) {
      for (let c = 0; c < C; c++) {
        const vals: number[] = [];
        for (let b = s * (B / S); b < (s + 1) * (B / S); b++) for (let p = 0; p < hw; p++) vals.push(x[(b * hw + p) * C + c]!);
        const mean = vals.reduce((t, v) => t + v, 0) / vals.length;
        const varb = vals.reduce((t, v) => t + (v - mean) ** 2, 0) / vals.length;
        const scale = (fixGamma ? 1 : gamma[c]!) / Math.sqrt(varb + eps);
        for (let b = s * (B / S); b < (s + 1) * (B / S); b++) {
          let acc = 0;
          for (let p = 0; p < hw; p++) acc += Math.max(0, (x[(b * hw + p) * C + c]! - mean) * scale + beta[c]!);
          want[b * C + c] = acc / hw;
        }
      }
    }
    const k = poolKernel(B, hw, C, { shape, fixGamma, relu: true });
    const got = await runSteps(
      device!,
      [
        { kernel: bnStatsKernel(shape, { backward: false }), buffers: ['x', 'state'] },
        { kernel: k, buffers: ['x', 'state', ...(fixGamma ? [] : ['gamma']), 'beta', 'pooled'] },
      ],
      { x, gamma, beta, state: garbage(bnStateFloats(shape)), pooled: garbage(B * C) },
      ['pooled'],
    );
    close('pool+bnrelu', `${k.label}${fixGamma ? ' fixGamma' : ''}: pooled`, got['pooled'], want);
  }
});

/** Mixed one-hot targets (λ·a + (1 − λ)·b, a = b on some rows) `[B,K]` and the first majority label of each row. */
function targets(B: number, K: number, seed: number): { y: Float32Array; majority: Float32Array } {
  const u = lcgValues(3 * B, seed).map((v) => (v + 1) / 2);
  const y = new Float32Array(B * K);
  const majority = new Float32Array(B);
  for (let b = 0; b < B; b++) {
    const a = Math.floor(u[3 * b]! * K);
    const c = b % 3 === 0 ? a : Math.floor(u[3 * b + 1]! * K);
    const lam = Math.fround(u[3 * b + 2]!);
    y[b * K + a] += lam;
    y[b * K + c] += 1 - lam;
    let best = 0;
    for (let k = 1; k < K; k++) if (y[b * K + k]! > y[b * K + best]!) best = k;
    majority[b] = best;
  }
  return { y, majority };
}

/**
 * fc1 + loss + fc1 backward in one pass against tfjs: z = pooled·W + bias, the batch-mean loss
 * (soft-ce −Σ y·log softmax(z); mixture-nll −log Σ y·softmax(z)), dz = gradScale·∂loss/∂z, the
 * count of rows whose first argmax of z is the majority label, written to slot `slot mod capacity`
 * only; dW = pooledᵀ·dz, dbias = Σ_b dz, and the pool input's gradient da[b,p,c] = (dz·Wᵀ)[b,c]/HW
 * (tfjs: the gradient of mean over HW pixels, HW = 3).
 */
async function checkLoss(B: number, C: number, K: number, loss: LossName, gradScale: number, seed: number): Promise<void> {
  const HW = 3;
  const pooled = lcgValues(B * C, seed).map((v) => 2 * v);
  const fw = lcgValues(C * K, seed + 1);
  const fb = lcgValues(K, seed + 2).map((v) => 0.5 * v);
  const { y, majority } = targets(B, K, seed + 3);
  const capacity = 3;
  const slot = 4; // → results slot 1
  const want = tf.tidy(() => {
    const yt = tf.tensor2d(y, [B, K]);
    const lossOf = (z: tf.Tensor) => (loss === 'soft-ce' ? tf.mean(tf.neg(tf.sum(tf.mul(yt, tf.logSoftmax(z)), 1))) : tf.mean(tf.neg(tf.log(tf.sum(tf.mul(yt, tf.softmax(z)), 1)))));
    const pt = tf.tensor2d(pooled, [B, C]);
    const wt = tf.tensor2d(fw, [C, K]);
    const z = tf.add(tf.matMul(pt, wt), tf.tensor1d(fb));
    const dz = tf.mul(tf.grad(lossOf)(z), gradScale);
    const correct = tf.sum(tf.cast(tf.equal(tf.argMax(z, 1), tf.tensor1d(majority, 'int32')), 'float32'));
    return {
      loss: lossOf(z).dataSync()[0]!,
      correct: correct.dataSync()[0]!,
      dz: dz.dataSync() as Float32Array,
      dw: tf.matMul(pt, dz, true, false).dataSync() as Float32Array,
      db: tf.sum(dz, 0).dataSync() as Float32Array,
      da: tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.mean(a, 1), tf.matMul(dz, wt, false, true))))(tf.zeros([B, HW, C])).dataSync() as Float32Array,
    };
  });
  assert.ok(want.correct > 0 && want.correct < B, `some rows right, some wrong (${want.correct} of ${B})`);
  const k = lossKernel({ batch: B, channels: C, classes: K, loss, gradScale, capacity });
  const got = await runSteps(
    device!,
    [
      { kernel: k, buffers: ['pooled', 'fw', 'fb', 'scalars', 'y', 'majority', 'results', 'dz'] },
      { kernel: fcBackwardKernel(B, C, K, HW), buffers: ['pooled', 'fw', 'dz', 'dw', 'db', 'da'] },
    ],
    { pooled, fw, fb, scalars: new Float32Array([0.1, 1e-5, slot, 0]), y, majority, results: garbage(2 * capacity), dz: garbage(B * K), dw: garbage(C * K), db: garbage(K), da: garbage(B * HW * C) },
    ['results', 'dz', 'dw', 'db', 'da'],
  );
  const r = got['results']!;
  assert.ok([0, 1, 4, 5].every((i) => Number.isNaN(r[i]!)), `only slot ${slot} mod ${capacity} = 1 is written: ${Array.from(r)}`);
  close(`loss ${loss}`, `${k.label}: loss`, r.subarray(2, 3), [want.loss]);
  assert.equal(r[3], want.correct, `${k.label}: correct count`);
  close(`loss ${loss} dz`, `${k.label}: dz`, got['dz'], want.dz);
  close('fc_bwd dW', `${k.label}: dW`, got['dw'], want.dw);
  close('fc_bwd dbias', `${k.label}: dbias`, got['db'], want.db);
  close('fc_bwd pool_bwd', `${k.label}: da`, got['da'], want.da);
}

test('fc1 + soft-ce and mixture-nll (batch-mean loss, gradient, correct count) and fc1 backward, batch 3', { skip }, async () => {
  await checkLoss(3, 5, 10, 'soft-ce', 1, 73);
  await checkLoss(3, 5, 10, 'mixture-nll', 1, 71);
});

test('loss over 300 rows (invocations take rows b and b + 256) with gradScale 2; fc1 backward with B·C > C·K', { skip }, async () => {
  await checkLoss(300, 5, 10, 'soft-ce', 2, 81);
  await checkLoss(300, 5, 10, 'mixture-nll', 0.5, 91);
});

test('inference logits and the summed soft-ce gradient on one-hot labels (softmax(z) − onehot), batch 3 and 300', { skip }, async () => {
  for (const [B, C, K, seed] of [[3, 5, 10, 101], [300, 7, 10, 111]] as const) {
    const pooled = lcgValues(B * C, seed).map((v) => 2 * v);
    const fw = lcgValues(C * K, seed + 1);
    const fb = lcgValues(K, seed + 2);
    const labels = lcgValues(B, seed + 3).map((v) => Math.floor(((v + 1) / 2) * K));
    const want = tf.tidy(() => {
      const z = tf.add(tf.matMul(tf.tensor2d(pooled, [B, C]), tf.tensor2d(fw, [C, K])), tf.tensor1d(fb));
      const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), K);
      const dz = tf.grad((t: tf.Tensor) => tf.sum(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(t)), 1))))(z);
      return { z: z.dataSync() as Float32Array, dz: dz.dataSync() as Float32Array };
    });
    const plain = logitsKernel(B, C, K, false);
    const withGrad = logitsKernel(B, C, K, true);
    const got = await runSteps(
      device!,
      [
        { kernel: plain, buffers: ['pooled', 'fw', 'fb', 'z1'] },
        { kernel: withGrad, buffers: ['pooled', 'fw', 'fb', 'z2', 'labels', 'dz'] },
      ],
      { pooled, fw, fb, labels, z1: garbage(B * K), z2: garbage(B * K), dz: garbage(B * K) },
      ['z1', 'z2', 'dz'],
    );
    close('logits', `${plain.label}: logits`, got['z1'], want.z);
    close('logits', `${withGrad.label}: logits`, got['z2'], want.z);
    close('logits dz', `${withGrad.label}: dz`, got['dz'], want.dz);
  }
});

// ---- SGD with momentum, weight decay, moving statistics, NaN guard ----

/**
 * Runs the update once with this step's loss `loss` in results slot `slot mod capacity` (the other
 * slots hold NaN, an old step's NaN must not stop this one) and checks against float64 JS:
 * step = lr·g + [i < wdEnd]·(lr·wd)·w, mom ← μ·mom − step, w ← w + mom, moving ← 0.9·moving + 0.1·batch;
 * with a non-finite loss nothing changes, bit for bit.
 */
async function checkUpdate(s: UpdateShape, loss: number, seed: number): Promise<void> {
  const w = lcgValues(s.params, seed);
  const grads = lcgValues(s.params, seed + 1);
  // Split ranges: the gradient is the sum of their partials (the grads buffer there is ignored).
  const splits = s.splits ?? [];
  const partialFloats = splits.reduce((a, r) => Math.max(a, r.base + r.chunks * r.total), 1);
  const partials = lcgValues(partialFloats, seed + 5);
  const g = Float64Array.from(grads);
  for (const r of splits) {
    for (let j = 0; j < r.total; j++) {
      let sum = 0;
      for (let z = 0; z < r.chunks; z++) sum += partials[r.base + z * r.total + j]!;
      g[r.offset + j] = sum;
    }
  }
  const mom = lcgValues(s.params, seed + 2).map((v) => 0.1 * v);
  const moving = lcgValues(s.moving, seed + 3).map((v) => 1 + v);
  const batch = lcgValues(s.moving, seed + 4).map((v) => 1 + v);
  const lr = Math.fround(0.1);
  const lrWd = Math.fround(0.1 * 5e-2); // a large wd, so that its term is seen at 1e-4
  const slot = 5;
  const results = garbage(2 * s.capacity);
  results[(slot % s.capacity) * 2] = loss;
  const k = updateKernel(s);
  const got = await runSteps(
    device!,
    [{ kernel: k, buffers: ['params', 'grads', 'mom', 'moving', 'batch', 'scalars', 'results', ...(splits.length > 0 ? ['partials'] : [])] }],
    { params: w, grads, mom, moving, batch, scalars: new Float32Array([lr, lrWd, slot, 0]), results, partials },
    ['params', 'mom', 'moving'],
  );
  if (!Number.isFinite(loss)) {
    assert.deepEqual(got['params'], w, `${k.label}: loss ${loss}: parameters unchanged`);
    assert.deepEqual(got['mom'], mom, `${k.label}: loss ${loss}: momentum unchanged`);
    assert.deepEqual(got['moving'], moving, `${k.label}: loss ${loss}: moving statistics unchanged`);
    return;
  }
  const wantMom = new Float64Array(s.params);
  const wantW = new Float64Array(s.params);
  for (let i = 0; i < s.params; i++) {
    const step = lr * g[i]! + (i < s.wdEnd ? lrWd * w[i]! : 0);
    wantMom[i] = s.momentum * mom[i]! - step;
    wantW[i] = w[i]! + wantMom[i]!;
  }
  const wantMoving = moving.map((v, j) => 0.9 * v + 0.1 * batch[j]!);
  close('sgd_update params', `${k.label}: parameters`, got['params'], wantW);
  close('sgd_update momentum', `${k.label}: momentum`, got['mom'], wantMom);
  close('sgd_update moving', `${k.label}: moving statistics`, got['moving'], wantMoving);
  // The weight-decay mask: a wd term on [wdEnd, params) would move w by lr·wd·w ≈ 5e-3, far past 1e-4.
  assert.ok(got['params']!.every((v, i) => v !== w[i]), 'every parameter moved');
}

test('SGD with momentum 0.9 and the wd mask, moving statistics, 300 parameters (2 workgroups) + 14 statistics', { skip }, async () => {
  await checkUpdate({ params: 300, wdEnd: 123, moving: 14, momentum: 0.9, capacity: 3 }, 2.3, 121);
  await checkUpdate({ params: 250, wdEnd: 250, moving: 7, momentum: 0, capacity: 2 }, 0.5, 131);
});

test('the split filter gradients\' partials summed inside the update (ranges at the first, middle and last parameters)', { skip }, async () => {
  const splits = [
    { offset: 0, total: 20, base: 0, chunks: 3 },
    { offset: 64, total: 37, base: 64, chunks: 5 },
    { offset: 280, total: 20, base: 256, chunks: 2 },
  ];
  await checkUpdate({ params: 300, wdEnd: 123, moving: 14, momentum: 0.9, capacity: 3, splits }, 2.3, 161);
  // One range alone (the binary search's edge: a single entry).
  await checkUpdate({ params: 300, wdEnd: 123, moving: 14, momentum: 0.9, capacity: 3, splits: [{ offset: 128, total: 64, base: 0, chunks: 4 }] }, 1.1, 171);
});

test('NaN guard: with a NaN or infinite loss in this step\'s slot no parameter, momentum or statistic changes', { skip }, async () => {
  await checkUpdate({ params: 300, wdEnd: 123, moving: 14, momentum: 0.9, capacity: 3 }, NaN, 141);
  await checkUpdate({ params: 300, wdEnd: 123, moving: 14, momentum: 0.9, capacity: 3 }, Infinity, 151);
});
