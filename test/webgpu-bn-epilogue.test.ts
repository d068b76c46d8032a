// BatchNorm statistics in a convolution's epilogue and the finalize kernel (src/engine/webgpu/bn_epilogue.ts),
// on lavapipe: the per-(row tile, channel) partials, the finalized per-shard (mean, M2) and the
// batch statistics against float64 sums in JS over the values the conv stored (read back), a
// hand-checkable case whose one-pass variance would be ruined by cancellation, and a consumer
// (bnForwardKernel) reading the finalized state. Skipped with a one-line reason where webgpu does not load.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { conv2dForward, forwardStatsFit, forwardTiles, type ConvShape } from '../src/engine/webgpu/conv.js';
import { bnForwardKernel } from '../src/engine/webgpu/bn.js';
import { BN_EPS, bnStateFloats, type BnShape } from '../src/engine/webgpu/bn_state.js';
import { bnFinalizeKernel, tileStatsFit } from '../src/engine/webgpu/bn_epilogue.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';
import { runSteps, testDevice } from './fixtures/wgsl.js';
import { garbage, lcgValues } from './fixtures/values.js';

const skip = (await webgpuSkipReason()) ?? false;
const device = skip ? null : await testDevice();
after(() => device?.destroy());

/** Mean and M2 = Σ(v − mean)² of `rows` rows from `m0` of a `[*, C]` array at channel c, in float64. */
function moments(y: Float32Array, C: number, c: number, m0: number, rows: number): { mean: number; m2: number } {
  let mean = 0;
  for (let m = m0; m < m0 + rows; m++) mean += y[m * C + c]!;
  mean /= rows;
  let m2 = 0;
  for (let m = m0; m < m0 + rows; m++) m2 += (y[m * C + c]! - mean) ** 2;
  return { mean, m2 };
}

function within(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const err = maxRelError(Float32Array.from(got), Float32Array.from(want));
  assert.ok(err <= tol, `${label}: off by ${err} of its scale`);
}

/**
 * Runs conv (+ residual) with the statistics epilogue, its finalize kernel and a bnForwardKernel
 * reading the finalized state; checks the tile partials, the state and the batch statistics against
 * float64 over the y read back, and the BatchNorm output against float64 from them.
 */
async function checkEpilogue(s: ConvShape, shards: number, o: { residual: boolean; x?: Float32Array; w?: Float32Array; tol: number }, seed: number) {
  assert.ok(forwardStatsFit(s, undefined, shards), 'the shape has its row tiles inside the shards');
  const k = conv2dForward(s, { residual: o.residual, stats: shards });
  const BM = k.tiles.BM;
  const rows = s.batch * s.inH * s.inW / (s.stride * s.stride);
  const C = s.outC;
  const M = rows / shards;
  const sh: BnShape = { shards, rows: M, channels: C, fwdFinal: true };
  const gamma = lcgValues(C, seed + 3).map((v) => 1 + 0.5 * v);
  const beta = lcgValues(C, seed + 4);
  const got = await runSteps(
    device!,
    [
      { kernel: k, buffers: ['x', 'w', ...(o.residual ? ['r'] : []), 'y', 'part'] },
      { kernel: bnFinalizeKernel(sh, BM), buffers: ['part', 'state', 'batch'] },
      { kernel: bnForwardKernel(sh, { fixGamma: false, relu: false }), buffers: ['y', 'state', 'gamma', 'beta', 'out', 'batch2'] },
    ],
    {
      x: o.x ?? lcgValues(s.batch * s.inH * s.inW * s.inC, seed),
      w: o.w ?? lcgValues(s.k * s.k * s.inC * C, seed + 1),
      r: lcgValues(rows * C, seed + 2).map((v) => 3 * v + 7),
      y: garbage(rows * C), part: garbage((rows / BM) * C * 2), state: garbage(bnStateFloats(sh)),
      batch: garbage(2 * C), batch2: garbage(2 * C), gamma, beta, out: garbage(rows * C),
    },
    ['y', 'part', 'state', 'batch', 'batch2', 'out'],
  );
  const y = got['y']!;
  const wantPart: number[] = [];
  for (let t = 0; t < rows / BM; t++)
    for (let c = 0; c < C; c++) {
      const m = moments(y, C, c, t * BM, BM);
      wantPart.push(m.mean, m.m2);
    }
  within(`${k.label}: tile partials`, got['part']!, wantPart, o.tol);
  const wantState: number[] = [];
  const batch = new Float64Array(2 * C);
  const bnOut = new Float64Array(rows * C);
  for (let q = 0; q < shards; q++)
    for (let c = 0; c < C; c++) {
      const m = moments(y, C, c, q * M, M);
      wantState.push(m.mean, m.m2);
      batch[c] += m.mean / shards;
      batch[C + c] += m.m2 / M / shards;
      for (let r = q * M; r < (q + 1) * M; r++) bnOut[r * C + c] = ((y[r * C + c]! - m.mean) / Math.sqrt(m.m2 / M + BN_EPS)) * gamma[c]! + beta[c]!;
    }
  within(`${k.label}: finalized (mean, M2) per shard`, got['state']!.subarray(0, 2 * shards * C), wantState, o.tol);
  within(`${k.label}: batch statistics`, got['batch']!, batch, o.tol);
  assert.deepEqual(got['batch2'], got['batch'], 'bnForwardKernel reads the same statistics back');
  within(`${k.label}: BatchNorm output from the finalized state`, got['out']!, bnOut, 1e-4);
  return { got, BM };
}

test('epilogue statistics: hand-checkable 1×1 identity conv, channel means 1000 + c, spreads c + 1: exact where a one-pass variance cancels', { skip }, async () => {
  // y = x: shard 0 rows alternate 1000 + c ∓ (c + 1), shard 1 rows −500 + c ∓ 2(c + 1) (128 rows each,
  // one tile of 128 per shard): means 1000 + c and −500 + c, M2 128·(c+1)² and 512·(c+1)², all exact in float32;
  // batch: mean 250 + c, variance the shards' average ((c+1)² + 4(c+1)²)/2.
  const s: ConvShape = { batch: 2, inH: 8, inW: 16, inC: 4, outC: 4, k: 1, stride: 1 };
  const x = new Float32Array(256 * 4).map((_, i) => {
    const [m, c] = [Math.floor(i / 4), i % 4];
    const sign = m % 2 === 0 ? -1 : 1;
    return m < 128 ? 1000 + c + sign * (c + 1) : -500 + c + sign * 2 * (c + 1);
  });
  const w = new Float32Array(16).map((_, i) => (i % 5 === 0 ? 1 : 0));
  const { got, BM } = await checkEpilogue(s, 2, { residual: false, x, w, tol: 0 }, 5);
  assert.equal(BM, 128);
  assert.deepEqual(Array.from(got['state']!.subarray(0, 16)), [1000, 128, 1001, 512, 1002, 1152, 1003, 2048, -500, 512, -499, 2048, -498, 4608, -497, 8192]);
  assert.deepEqual(Array.from(got['batch']!), [250, 251, 252, 253, 2.5, 10, 22.5, 40]);
});

test('epilogue statistics of conv + residual, 3×3, 2 shards of 20 tiles (the finalize folds unequal subsets), stride 1 and 2', { skip }, async () => {
  await checkEpilogue({ batch: 4, inH: 16, inW: 20, inC: 8, outC: 16, k: 3, stride: 1 }, 2, { residual: true, tol: 1e-5 }, 11);
  await checkEpilogue({ batch: 4, inH: 16, inW: 16, inC: 8, outC: 16, k: 3, stride: 2 }, 1, { residual: false, tol: 1e-5 }, 21);
});

test('finalize kernel wider than a workgroup (320 channels, 2 shards × 3 tiles): partials made in JS', { skip }, async () => {
  const [S, T, NT, C] = [2, 3, 8, 320];
  const sh: BnShape = { shards: S, rows: T * NT, channels: C, fwdFinal: true };
  const v = lcgValues(S * T * NT * C, 7).map((u, i) => 50 * u + (i % C));
  const part: number[] = [];
  for (let t = 0; t < S * T; t++)
    for (let c = 0; c < C; c++) {
      const m = moments(v, C, c, t * NT, NT);
      part.push(m.mean, m.m2);
    }
  const got = await runSteps(device!, [{ kernel: bnFinalizeKernel(sh, NT), buffers: ['part', 'state', 'batch'] }], { part: Float32Array.from(part), state: garbage(bnStateFloats(sh)), batch: garbage(2 * C) }, ['state', 'batch']);
  const want: number[] = [];
  for (let q = 0; q < S; q++)
    for (let c = 0; c < C; c++) {
      const m = moments(v, C, c, q * T * NT, T * NT);
      want.push(m.mean, m.m2);
    }
  within('finalize 320 channels', got['state']!.subarray(0, 2 * S * C), want, 1e-5);
});

test('the epilogue is used only where every row tile lies inside one shard', () => {
  // Shards of 4 images at 1×1 maps: 4 rows per shard, tiles of 32 rows.
  const tiny: ConvShape = { batch: 8, inH: 1, inW: 1, inC: 8, outC: 16, k: 1, stride: 1 };
  assert.equal(forwardTiles(tiny, undefined).BM, 32);
  assert.equal(forwardStatsFit(tiny, undefined, 2), false);
  assert.throws(() => conv2dForward(tiny, { stats: 2 }), /straddle BatchNorm shards of 4 rows/);
  assert.equal(tileStatsFit(256, 128, { BM: 64, BN: 16, BK: 8, TM: 4, TN: 4 }), true);
  assert.equal(tileStatsFit(256, 96, { BM: 64, BN: 16, BK: 8, TM: 4, TN: 4 }), false);
});
