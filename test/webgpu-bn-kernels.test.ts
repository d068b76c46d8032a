// The static engine's BatchNorm kernels (src/engine/webgpu/bn.ts), each run on its own through the
// test-only runner (test/fixtures/wgsl.ts) on lavapipe, against tfjs on the cpu backend (training
// BatchNorm per shard through tf.moments and its autodiff; inference BatchNorm and its input
// gradient) and, for the partial sums, a float64 sum in plain JS. Every output starts as NaN.
// Skipped with a one-line reason where webgpu does not load (never in CI). Own process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { bnBackwardKernel, bnForwardKernel, bnStatsKernel } from '../src/engine/webgpu/bn.js';
import { BN_EPS, bnPartials, bnStateFloats, type BnShape } from '../src/engine/webgpu/bn_state.js';
import { bnInferBackwardKernel, bnInferKernel } from '../src/engine/webgpu/bn_infer.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';
import { runSteps, testDevice, type Step } from './fixtures/wgsl.js';
import { garbage, lcgValues } from './fixtures/values.js';

const skip = (await webgpuSkipReason()) ?? false;
const device = skip ? null : await testDevice();
after(() => {
  device?.destroy();
  releaseBackends();
});

/** Asserts got ≈ want within 1e-4 of want's scale, that want is not all zero, and returns the error. */
function close(label: string, got: Float32Array | undefined, want: ArrayLike<number>): number {
  assert.ok(got, `${label}: not read back`);
  assert.ok(Array.from(want).some((v) => v !== 0), `${label}: the reference is not all zero`);
  const err = maxRelError(got, want);
  assert.ok(err <= 1e-4, `${label}: off by ${err} of its scale`);
  return err;
}

interface TrainOptions {
  fixGamma: boolean;
  relu: boolean;
  dx: 'write' | 'add';
}

/**
 * Training-mode BatchNorm of `[S, M, C]` by tfjs on cpu: per shard mean and biased variance
 * (tf.moments), y = (x − μ)/√(var + eps)·γ + β, ReLU; dx, dγ, dβ as the gradients of Σ y·dy;
 * batch = [shards' mean of μ | of var].
 */
function trainReference(s: BnShape, x: Float32Array, gamma: Float32Array, beta: Float32Array, dy: Float32Array, relu: boolean) {
  return tf.tidy(() => {
    const xt = tf.tensor3d(x, [s.shards, s.rows, s.channels]);
    const dyt = tf.tensor3d(dy, [s.shards, s.rows, s.channels]);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(a, 1, true);
      const y = tf.add(tf.mul(tf.mul(tf.sub(a, mean), tf.rsqrt(tf.add(variance, BN_EPS))), g), b);
      return relu ? tf.relu(y) : y;
    };
    const [dx, dg, db] = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), dyt)))([xt, tf.tensor1d(gamma), tf.tensor1d(beta)]);
    const { mean, variance } = tf.moments(xt, 1);
    const batch = tf.concat([tf.mean(mean, 0), tf.mean(variance, 0)]);
    const y = f(xt, tf.tensor1d(gamma), tf.tensor1d(beta));
    return { y: y.dataSync() as Float32Array, dx: dx!.dataSync() as Float32Array, dgamma: dg!.dataSync() as Float32Array, dbeta: db!.dataSync() as Float32Array, batch: batch.dataSync() as Float32Array };
  });
}

/**
 * Per (shard, channel) in float64: forward the mean and biased variance of x, backward Σg and
 * Σg·(x − mean) (`g` given).
 */
function shardSums(s: BnShape, x: Float32Array, g: Float32Array | null): Float64Array {
  const out = new Float64Array(s.shards * s.channels * 2);
  for (let sh = 0; sh < s.shards; sh++) {
    for (let c = 0; c < s.channels; c++) {
      const at = (m: number) => (sh * s.rows + m) * s.channels + c;
      let mean = 0;
      for (let m = 0; m < s.rows; m++) mean += x[at(m)]!;
      mean /= s.rows;
      let a = 0;
      let b = 0;
      for (let m = 0; m < s.rows; m++) {
        const d = x[at(m)]! - mean;
        if (g) (a += g[at(m)]!, b += g[at(m)]! * d);
        else b += d * d;
      }
      out[(sh * s.channels + c) * 2] = g ? a : mean;
      out[(sh * s.channels + c) * 2 + 1] = g ? b : b / s.rows;
    }
  }
  return out;
}

/**
 * The state's statistics per (shard, channel), `[S, C, 2]`: forward its P partials (mean_p, M2_p) of
 * rows [p·L, min((p+1)·L, M)) folded in float64 into (mean, biased variance) from the partials' sums
 * n_p·mean_p and M2_p + n_p·mean_p² (not Chan's formula, so an independent fold); backward the
 * partials' sums.
 */
function foldState(s: BnShape, state: Float32Array, backward: boolean): Float64Array {
  const { P, L } = bnPartials(s);
  const base = backward ? s.shards * P * s.channels * 2 : 0;
  const out = new Float64Array(s.shards * s.channels * 2);
  for (let sh = 0; sh < s.shards; sh++)
    for (let c = 0; c < s.channels; c++) {
      let a = 0;
      let b = 0;
      for (let p = 0; p < P; p++) {
        const o = base + ((sh * P + p) * s.channels + c) * 2;
        const n = Math.min(L, s.rows - p * L);
        if (backward) (a += state[o]!, b += state[o + 1]!);
        else (a += n * state[o]!, b += state[o + 1]! + n * state[o]! ** 2);
      }
      const o = (sh * s.channels + c) * 2;
      out[o] = backward ? a : a / s.rows;
      out[o + 1] = backward ? b : b / s.rows - (a / s.rows) ** 2;
    }
  return out;
}

/**
 * Runs the training chain of one BatchNorm in one pass — forward partials, forward (+ReLU, batch
 * statistics), backward partials (masked by the forward's output), backward with dx written or
 * added, and the grads-only backward — and checks every output against the references.
 * @returns the worst error of each output.
 */
async function checkTraining(s: BnShape, o: TrainOptions, seed: number): Promise<Record<string, number>> {
  const n = s.shards * s.rows * s.channels;
  const C = s.channels;
  // Channel means far from 0 (2 + c) and shards with different spreads: the shift K matters.
  const x = lcgValues(n, seed).map((v, i) => (2 + (i % C)) + v * (1 + Math.floor(i / (s.rows * C))));
  const dy = lcgValues(n, seed + 1);
  const gamma = o.fixGamma ? new Float32Array(C).fill(1) : lcgValues(C, seed + 2).map((v) => 1 + 0.5 * v);
  const beta = lcgValues(C, seed + 3);
  const dx0 = lcgValues(n, seed + 4);
  const want = trainReference(s, x, gamma, beta, dy, o.relu);
  if (o.dx === 'add') want.dx = want.dx.map((v, i) => v + dx0[i]!);

  const g = o.fixGamma ? [] : ['gamma'];
  const dg = o.fixGamma ? [] : ['dgamma'];
  const dg2 = o.fixGamma ? [] : ['dgamma2'];
  // The backward recomputes the ReLU mask from x, γ and β; its statistics kernel also writes the batch statistics.
  const mask = o.relu ? [...g, 'beta'] : [];
  const steps: Step[] = [
    { kernel: bnStatsKernel(s, { backward: false }), buffers: ['x', 'state'] },
    { kernel: bnForwardKernel(s, o), buffers: ['x', 'state', ...g, 'beta', 'y', 'batch'] },
    { kernel: bnStatsKernel(s, { backward: true, relu: o.relu, fixGamma: o.fixGamma, batch: true }), buffers: ['dy', 'x', 'state', ...mask, 'batch2'] },
    { kernel: bnBackwardKernel(s, o), buffers: ['dy', 'x', 'state', ...g, ...(o.relu ? ['beta'] : []), ...dg, 'dbeta', 'dx'] },
    { kernel: bnBackwardKernel(s, { ...o, dx: 'none' }), buffers: ['state', ...dg2, 'dbeta2'] },
  ];
  const got = await runSteps(
    device!,
    steps,
    {
      x, dy, gamma, beta,
      state: garbage(bnStateFloats(s)),
      y: garbage(n), batch: garbage(2 * C), batch2: garbage(2 * C),
      dgamma: garbage(C), dbeta: garbage(C), dgamma2: garbage(C), dbeta2: garbage(C),
      dx: o.dx === 'add' ? dx0 : garbage(n),
    },
    ['state', 'y', 'batch', 'batch2', 'dgamma', 'dbeta', 'dgamma2', 'dbeta2', 'dx'],
  );
  const label = steps[1]!.kernel.label;
  const errs: Record<string, number> = {};
  errs['fwd partials'] = close(`${label}: forward partials`, Float32Array.from(foldState(s, got['state']!, false)), shardSums(s, x, null));
  const keep = got['y']!.map((v) => (o.relu && !(v > 0) ? 0 : 1));
  errs['bwd partials'] = close(`${label}: backward partials`, Float32Array.from(foldState(s, got['state']!, true)), shardSums(s, x, dy.map((v, i) => v * keep[i]!)));
  errs['y'] = close(`${label}: y`, got['y'], want.y);
  if (o.relu) assert.ok(want.y.some((v) => v === 0) && want.y.some((v) => v > 0), 'the ReLU cuts some values and keeps others');
  errs['batch'] = Math.max(close(`${label}: batch statistics`, got['batch'], want.batch), close(`${label}: batch statistics (backward statistics kernel)`, got['batch2'], want.batch));
  errs['dx'] = close(`${label}: dx (${o.dx})`, got['dx'], want.dx);
  errs['dbeta'] = Math.max(close(`${label}: dβ`, got['dbeta'], want.dbeta), close(`${label}: dβ (grads only)`, got['dbeta2'], want.dbeta));
  if (!o.fixGamma) errs['dgamma'] = Math.max(close(`${label}: dγ`, got['dgamma'], want.dgamma), close(`${label}: dγ (grads only)`, got['dgamma2'], want.dgamma));
  else assert.ok(got['dgamma']!.every(Number.isNaN), 'fix_gamma: no dγ is written');
  return errs;
}

const worst: Record<string, number> = {};
function note(kernel: string, errs: Record<string, number>): void {
  for (const [k, v] of Object.entries(errs)) worst[`${kernel} ${k}`] = Math.max(worst[`${kernel} ${k}`] ?? 0, v);
}
after(() => {
  if (Object.keys(worst).length > 0) console.log(`# worst error of each BatchNorm output (of its scale): ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
});

test('partials geometry: one partial per shard for small shards, up to 32 of L consecutive rows (the last shorter) for large ones', () => {
  assert.deepEqual(bnPartials({ shards: 2, rows: 75, channels: 3 }), { P: 1, L: 75, R: 85 });
  assert.deepEqual(bnPartials({ shards: 1, rows: 6000, channels: 3 }), { P: 2, L: 3000, R: 85 });
  assert.deepEqual(bnPartials({ shards: 3, rows: 260, channels: 64 }), { P: 2, L: 130, R: 4 });
  assert.deepEqual(bnPartials({ shards: 2, rows: 130, channels: 256 }), { P: 3, L: 44, R: 1 });
  assert.deepEqual(bnPartials({ shards: 1, rows: 128 * 784, channels: 16 }), { P: 32, L: 3136, R: 16 });
  assert.equal(bnStateFloats({ shards: 2, rows: 130, channels: 256 }), 4 * 2 * 3 * 256);
});

test('training BatchNorm, 2 shards of batch 3 at 5×5, 3 channels: partials, forward+ReLU, backward (dx written), moving statistics', { skip }, async () => {
  note('train', await checkTraining({ shards: 2, rows: 3 * 25, channels: 3 }, { fixGamma: false, relu: true, dx: 'write' }, 11));
});

test('training BatchNorm with fix_gamma (bn_data), no ReLU, dx added onto a residual gradient', { skip }, async () => {
  note('train', await checkTraining({ shards: 2, rows: 3 * 25, channels: 3 }, { fixGamma: true, relu: false, dx: 'add' }, 21));
});

test('training BatchNorm with several partials per shard (P 2, 2 and 3) and wide channels (64, 256)', { skip }, async () => {
  note('train', await checkTraining({ shards: 1, rows: 6000, channels: 3 }, { fixGamma: false, relu: true, dx: 'add' }, 31));
  note('train', await checkTraining({ shards: 3, rows: 260, channels: 64 }, { fixGamma: false, relu: false, dx: 'write' }, 41));
  note('train', await checkTraining({ shards: 2, rows: 130, channels: 256 }, { fixGamma: false, relu: true, dx: 'write' }, 51));
});

// (Seed 83 for 640: at seed 81 one pre-activation lies within the statistics' float32 error of 0, so its ReLU mask
// differs from the float64 reference's: not a defect of the kernels.)
test('training BatchNorm wider than a workgroup (320, 512, 640 channels; 1–2 shards): each invocation loops over channels', { skip }, async () => {
  assert.deepEqual(bnPartials({ shards: 2, rows: 72, channels: 320 }), { P: 2, L: 36, R: 1 });
  note('train', await checkTraining({ shards: 2, rows: 72, channels: 320 }, { fixGamma: false, relu: true, dx: 'write' }, 61));
  note('train', await checkTraining({ shards: 1, rows: 40, channels: 512 }, { fixGamma: true, relu: false, dx: 'add' }, 71));
  note('train', await checkTraining({ shards: 1, rows: 130, channels: 640 }, { fixGamma: false, relu: true, dx: 'add' }, 83));
});

test('BatchNorm kernels refuse more than 1,024 shard-channels (the workgroup-memory bound of fit.ts)', () => {
  assert.throws(() => bnStatsKernel({ shards: 2, rows: 16, channels: 640 }, { backward: false }), /BatchNorm: 2 shards × 640 channels, at most 1024 shard-channels/);
});

/** Inference BatchNorm (+ReLU) and its input gradient by tfjs on cpu, with the moving statistics as constants. */
async function checkInference(n: number, C: number, o: { fixGamma: boolean; relu: boolean; add: boolean }, seed: number): Promise<Record<string, number>> {
  const x = lcgValues(n, seed).map((v, i) => 2 * v + (i % C));
  const dy = lcgValues(n, seed + 1);
  const gamma = o.fixGamma ? new Float32Array(C).fill(1) : lcgValues(C, seed + 2).map((v) => 1 + 0.5 * v);
  const beta = lcgValues(C, seed + 3);
  const mean = lcgValues(C, seed + 4).map((v, c) => c + 0.5 * v);
  const variance = lcgValues(C, seed + 5).map((v) => 1.5 + v);
  const dx0 = lcgValues(n, seed + 6);
  const want = tf.tidy(() => {
    const f = (a: tf.Tensor) => {
      const y = tf.batchNorm(a, tf.tensor1d(mean), tf.tensor1d(variance), tf.tensor1d(beta), tf.tensor1d(gamma), BN_EPS);
      return o.relu ? tf.relu(y) : y;
    };
    const xt = tf.tensor2d(x, [n / C, C]);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), tf.tensor2d(dy, [n / C, C]))))(xt);
    return { y: f(xt).dataSync() as Float32Array, dx: (dx.dataSync() as Float32Array).map((v, i) => v + (o.add ? dx0[i]! : 0)) };
  });
  const g = o.fixGamma ? [] : ['gamma'];
  const steps: Step[] = [
    { kernel: bnInferKernel(n, C, o), buffers: ['x', ...g, 'beta', 'moving', 'y'] },
    { kernel: bnInferBackwardKernel(n, C, o), buffers: ['dy', ...(o.relu ? ['y'] : []), ...g, 'moving', 'dx'] },
  ];
  const moving = new Float32Array([...mean, ...variance]);
  const got = await runSteps(device!, steps, { x, dy, gamma, beta, moving, y: garbage(n), dx: o.add ? dx0 : garbage(n) }, ['y', 'dx']);
  if (o.relu) assert.ok(want.y.some((v) => v === 0) && want.y.some((v) => v > 0), 'the ReLU cuts some values and keeps others');
  return { y: close(`${steps[0]!.kernel.label}: y`, got['y'], want.y), dx: close(`${steps[1]!.kernel.label}: dx`, got['dx'], want.dx) };
}

test('inference BatchNorm (+ReLU) and its input gradient (written, added), 3 and 7 channels over workgroup edges', { skip }, async () => {
  note('infer', await checkInference(3 * 25 * 3, 3, { fixGamma: false, relu: true, add: false }, 61));
  note('infer', await checkInference(3 * 25 * 3, 3, { fixGamma: true, relu: false, add: true }, 71));
  note('infer', await checkInference(3 * 7 * 7 * 7, 7, { fixGamma: false, relu: true, add: true }, 81));
});
