// The static engine's convolution kernels (src/engine/webgpu/conv.ts): forward, backward-data and
// backward-filter against tfjs's cpu backend (MXNet padding), on lavapipe through Dawn; skipped with
// a one-line reason where webgpu does not load (never in CI). Own process: Dawn stays out of the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { conv2dForward, convFlops, convOutSize, gatherSide, gemmTiles, type ConvShape } from '../src/engine/webgpu/conv.js';
import { conv2dBackwardData } from '../src/engine/webgpu/conv_data.js';
import { conv2dBackwardFilter, filterSplit } from '../src/engine/webgpu/conv_filter.js';
import type { BnApply } from '../src/engine/webgpu/bn_state.js';
import { bnOf, bnState, shape } from './fixtures/conv.js';
import { MAX_WORKGROUPS_PER_DIMENSION } from '../src/engine/webgpu/kernel.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';
import { runSteps, testDevice, type Step } from './fixtures/wgsl.js';
import { lcgValues as values } from './fixtures/values.js';

const skip = (await webgpuSkipReason()) ?? false;
const device = skip ? null : await testDevice();
after(() => {
  device?.destroy();
  releaseBackends();
});

test('convOutSize: floor((in + 2·pad − k)/stride) + 1 with pad 1 for 3×3 and 0 for 1×1', () => {
  assert.deepEqual(convOutSize(shape(1, 28, 28, 3, 16, 3, 1)), { outH: 28, outW: 28 });
  assert.deepEqual(convOutSize(shape(1, 28, 28, 16, 32, 3, 2)), { outH: 14, outW: 14 });
  assert.deepEqual(convOutSize(shape(1, 7, 5, 16, 32, 3, 2)), { outH: 4, outW: 3 });
  assert.deepEqual(convOutSize(shape(1, 7, 8, 16, 32, 1, 2)), { outH: 4, outW: 4 });
  assert.deepEqual(convOutSize(shape(1, 32, 32, 16, 32, 1, 2)), { outH: 16, outW: 16 });
  assert.deepEqual(convOutSize(shape(1, 1, 1, 16, 32, 3, 2)), { outH: 1, outW: 1 });
  assert.throws(() => convOutSize({ ...shape(1, 8, 8, 3, 16, 3, 1), k: 5 as 3 }), /k must be 1 or 3/);
  assert.throws(() => convOutSize(shape(0, 8, 8, 3, 16, 3, 1)), /batch must be a positive integer/);
  // 2·B·OH·OW·Cout·k²·Cin: conv0 at 28×28, batch 1 = 2·784·16·27.
  assert.equal(convFlops(shape(1, 28, 28, 3, 16, 3, 1)), 677376);
});

test('the cost model counts what the gathers read (hand-counted on 4-pixel sides)', () => {
  // 3×3 pad 1 stride 1, side 4: outputs 0 and 3 have 2 taps inside, 1 and 2 have 3: 10 pairs.
  assert.deepEqual(gatherSide(4, 4, 3, 1, 'x'), { pairs: 10, distinct: 4 });
  // Stride 2 (2 outputs): taps −1,0,1 → 2 inside; 1,2,3 → 3.
  assert.deepEqual(gatherSide(4, 2, 3, 2, 'x'), { pairs: 5, distinct: 4 });
  // 1×1 stride 2 reads rows 0 and 2 only.
  assert.deepEqual(gatherSide(4, 2, 1, 2, 'x'), { pairs: 2, distinct: 2 });
  // Backward-data, stride 2: i + 1 − t even and /2 < 2: i=0 → t=1; i=1 → t=0,2; i=2 → t=1; i=3 → t=2 (t=0 gives 2, outside).
  assert.deepEqual(gatherSide(4, 2, 3, 2, 'dy'), { pairs: 5, distinct: 2 });
  // A 1×1 stride-1 GEMM whose tiles fit exactly: every executed product is useful and equals convFlops.
  const s = shape(4, 8, 8, 16, 16, 1, 1); // rows 256 = one 256×16 tile
  const f = conv2dForward(s).cost!;
  assert.equal(f.flops, convFlops(s));
  assert.equal(f.usefulFlops, convFlops(s));
  assert.deepEqual([f.read, f.written], [4 * (256 * 16 + 16 * 16), 4 * 256 * 16]);
  // Stride-2 3×3 backward-data, batch 1, 4×4, 4→4: useful = 2·(dy reads 4·5·5)·Cin 4 = 800. Four
  // phases of 2×2 positions, reductions (taps × Cout) 1·1·4, 1·2·4, 2·1·4, 2·2·4; each phase's 4 rows
  // are one tile of 128 (whole 32-lane warps: 32 invocations × 4), whose rows past 4 run on zeros.
  const d = conv2dBackwardData(shape(1, 4, 4, 4, 4, 3, 2)).cost!;
  assert.equal(d.usefulFlops, 800);
  assert.equal(d.flops, 2 * 128 * 4 * (4 + 8 + 8 + 16));
  // A depth-50 stage transition (28×28, 16 → 32, batch 128): each phase 128·14·14 = 25,088 rows in 98
  // tiles of 256, reductions 32, 64, 64, 128: no stride-hole products; what is left above the useful
  // count is dy's border (odd side positions 2·14−1 = 27 take 1 of their 2 taps): per side 14 + 27 = 41
  // (position, tap) pairs read, useful = 2·B·Cout·41²·Cin.
  const t = conv2dBackwardData(shape(128, 28, 28, 16, 32, 3, 2));
  assert.deepEqual(t.workgroups, [1, 98, 4]);
  assert.equal(t.cost!.flops, 2 * 16 * 128 * 14 * 14 * (32 + 64 + 64 + 128));
  assert.equal(t.cost!.usefulFlops, 2 * 128 * 32 * 41 * 41 * 16);
  // The 1×1 stride-2 shortcut: only the even-even phase multiplies (Cout terms); the others write 0.
  const sc = conv2dBackwardData(shape(128, 28, 28, 16, 32, 1, 2)).cost!;
  assert.equal(sc.flops, sc.usefulFlops);
  assert.equal(sc.flops, convFlops(shape(128, 28, 28, 16, 32, 1, 2)));
  // Split backward-filter: its partials are written once per chunk (the update reads them back).
  const f1 = conv2dBackwardFilter(shape(128, 28, 28, 16, 16, 3, 1));
  assert.equal(f1.kernel.cost!.written, 4 * f1.chunks * 144 * 16);
});

test('tiling of the depth-50 shapes at batch 128 (one shard): workgroups and scratch are deterministic', () => {
  const s1 = shape(128, 28, 28, 16, 16, 3, 1);
  // rows 128·784 = 100352, cols 16: 4 invocations across 16 columns, 64 down → 256×16 tiles; BK 8
  // (the largest whose tiles fit 16 KiB: (256+16)·8·4 B).
  assert.deepEqual(gemmTiles(100352, 16, 144), { BM: 256, BN: 16, BK: 8, TM: 4, TN: 4 });
  assert.deepEqual(conv2dForward(s1).workgroups, [1, 392, 1]);
  assert.deepEqual(conv2dBackwardData(s1).workgroups, [1, 392, 1]);
  // Filter: rows 144, workgroups of 64 invocations: 4 across 16 columns, 16 down → 64×16 tiles, 3 of
  // them; 88 chunks make two waves (264 workgroups): chunks of 1,152 positions, 88 partials per weight.
  const f1 = conv2dBackwardFilter(s1);
  assert.deepEqual(filterSplit(s1), { tiles: { BM: 64, BN: 16, BK: 32, TM: 4, TN: 4 }, chunk: 1152, chunks: 88 });
  assert.deepEqual([f1.kernel.workgroups, f1.chunks, f1.total], [[1, 3, 88], 88, 144 * 16]);
  // Stage 3: 7×7, 64→64, 6,272 rows: 256 invocations would make 98 tiles of 64×64 (0.74 waves), so
  // 64 invocations (4 down × 16 across) make 392 tiles of 16×64; filter: the same 16×64 tiles, 36 of
  // them, 8 chunks (288 workgroups) of 784 positions.
  const s3 = shape(128, 7, 7, 64, 64, 3, 1);
  assert.deepEqual(conv2dForward(s3).workgroups, [1, 392, 1]);
  const f3 = conv2dBackwardFilter(s3);
  assert.deepEqual([f3.kernel.workgroups, f3.chunks], [[1, 36, 8], 8]);
  // conv0 (3 → 16) and a bottleneck's 1×1 64 → 256 (4 column tiles).
  assert.deepEqual(conv2dForward(shape(128, 28, 28, 3, 16, 3, 1)).workgroups, [1, 392, 1]);
  assert.deepEqual(conv2dForward(shape(128, 7, 7, 64, 256, 1, 1)).workgroups, [4, 98, 1]);
  // A small filter gradient (64 positions, the shortest chunk) is one chunk, written as the gradient itself.
  const small = conv2dBackwardFilter(shape(1, 8, 8, 16, 16, 3, 1));
  assert.equal(small.chunks, 1);
  assert.deepEqual(small.kernel.bindings, ['read', 'read', 'read_write']);
  // accumulate needs one chunk.
  assert.throws(() => conv2dBackwardFilter(s1, { accumulate: true }), /accumulate needs one chunk/);
  assert.equal(conv2dBackwardFilter(s1, { accumulate: true, split: false }).chunks, 1);
});

test('every kernel stays within WebGPU default limits and binds what its signature says', () => {
  for (const s of [shape(128, 28, 28, 3, 16, 3, 1), shape(64, 28, 28, 16, 32, 3, 2), shape(64, 7, 7, 64, 256, 1, 1), shape(64, 14, 14, 256, 64, 1, 2), shape(3, 7, 7, 5, 7, 3, 2)]) {
    const kernels = [conv2dForward(s), conv2dForward(s, { residual: true }), conv2dForward(s, { residual: true, bn: bnOf(s) }), conv2dBackwardFilter(s, { bn: bnOf(s), accumulate: true, split: false }).kernel, conv2dBackwardData(s), conv2dBackwardData(s, { accumulate: true }), conv2dBackwardFilter(s).kernel];
    for (const k of kernels) {
      const wg = /@workgroup_size\((\d+)\)/.exec(k.code);
      assert.ok(wg && Number(wg[1]) <= 256, `${k.label}: workgroup size`);
      let bytes = 0;
      for (const m of k.code.matchAll(/var<workgroup> \w+: array<(vec4<f32>|f32), (\d+)>/g)) bytes += Number(m[2]) * (m[1] === 'f32' ? 4 : 16);
      assert.ok(bytes <= 16384, `${k.label}: ${bytes} bytes of workgroup memory`);
      assert.ok(k.workgroups.every((n) => n >= 1 && n <= MAX_WORKGROUPS_PER_DIMENSION), `${k.label}: ${k.workgroups}`);
      assert.equal((k.code.match(/@group\(0\) @binding/g) ?? []).length, k.bindings.length, k.label);
    }
    assert.deepEqual(conv2dForward(s, { residual: true }).bindings, ['read', 'read', 'read', 'read_write']);
    assert.deepEqual(conv2dBackwardData(s).bindings, ['read', 'read', 'read_write']);
    // x, w, state, γ, β, r, y and dy, x, state, γ, β, dw; fix_gamma drops γ.
    assert.deepEqual(conv2dForward(s, { residual: true, bn: bnOf(s) }).bindings, ['read', 'read', 'read', 'read', 'read', 'read', 'read_write']);
    assert.deepEqual(conv2dBackwardFilter(s, { bn: bnOf(s) }).kernel.bindings, ['read', 'read', 'read', 'read', 'read', 'read_write']);
    assert.deepEqual(conv2dForward(s, { bn: { ...bnOf(s), fixGamma: true } }).bindings, ['read', 'read', 'read', 'read', 'read_write']);
  }
});

test('vec4 loads along C where C % 4 = 0: x in forward (Cin), dy in backward-data (Cout); conv0 and odd channels stay scalar', () => {
  const vecX = (c: string) => /var<storage, read> x: array<vec4<f32>>/.test(c) && /fn loadA4/.test(c);
  const vecDy = (c: string) => /var<storage, read> dy: array<vec4<f32>>/.test(c) && /fn loadA4/.test(c);
  const st = shape(8, 8, 8, 16, 32, 3, 2);
  assert.ok(vecX(conv2dForward(st).code));
  assert.ok(vecX(conv2dForward(st, { bn: bnOf(st) }).code));
  assert.ok(vecDy(conv2dBackwardData(st).code));
  assert.ok(vecDy(conv2dBackwardData(shape(8, 8, 8, 16, 32, 1, 1)).code));
  const conv0 = shape(8, 8, 8, 3, 16, 3, 1);
  assert.ok(!vecX(conv2dForward(conv0).code) && /fn loadA\(/.test(conv2dForward(conv0).code));
  assert.ok(vecDy(conv2dBackwardData(conv0).code), 'conv0 backward-data reduces over Cout 16');
  const odd = shape(3, 7, 7, 5, 7, 3, 2);
  assert.ok(!vecX(conv2dForward(odd).code) && !vecDy(conv2dBackwardData(odd).code));
  // The filter gradient still gathers x as scalars.
  assert.ok(!vecX(conv2dBackwardFilter(st).kernel.code));
});

/** y, dx, dw of the convolution by tfjs on cpu: explicit MXNet padding, then a 'valid' conv2d and its gradients. */
function reference(s: ConvShape, x: Float32Array, w: Float32Array, dy: Float32Array): { y: Float32Array; dx: Float32Array; dw: Float32Array } {
  const { outH, outW } = convOutSize(s);
  const p = (s.k - 1) / 2;
  return tf.tidy(() => {
    const xt = tf.tensor4d(x, [s.batch, s.inH, s.inW, s.inC]);
    const wt = tf.tensor4d(w, [s.k, s.k, s.inC, s.outC]);
    const dyt = tf.tensor4d(dy, [s.batch, outH, outW, s.outC]);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(tf.pad(a, [[0, 0], [p, p], [p, p], [0, 0]]), b, s.stride, 'valid');
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D), dyt)))([xt, wt]);
    return { y: f(xt, wt).dataSync() as Float32Array, dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}

/**
 * Runs the three kernels of `s` in one pass on the GPU and checks each against {@link reference}:
 * y (+ r when residual); dx and dw written, or added to prefilled values when accumulate. With `bn`,
 * forward and filter read x through the BatchNorm(+ReLU) folded from a state made here
 * ({@link bnState}), whose output is the reference's input.
 */
async function checkConv(s: ConvShape, o: { residual?: boolean; accumulate?: boolean; bn?: BnApply } = {}, seed = 1): Promise<void> {
  const { outH, outW } = convOutSize(s);
  const nx = s.batch * s.inH * s.inW * s.inC;
  const nw = s.k * s.k * s.inC * s.outC;
  const ny = s.batch * outH * outW * s.outC;
  const x = values(nx, seed);
  const w = values(nw, seed + 1);
  const dy = values(ny, seed + 2);
  const r = values(ny, seed + 3);
  const dx0 = values(nx, seed + 4);
  const dw0 = values(nw, seed + 5);
  const gamma = o.bn?.fixGamma ? new Float32Array(s.inC).fill(1) : values(s.inC, seed + 6).map((v) => 1 + v);
  const beta = values(s.inC, seed + 7).map((v) => 0.5 * v);
  const bn = o.bn ? bnState(o.bn, x, gamma, beta) : null;
  const act = bn ? bn.act : x;
  if (o.bn?.relu) assert.ok(act.some((v) => v === 0) && act.some((v) => v > 0), 'the ReLU cuts some values and keeps others');
  await tf.setBackend('cpu');
  const want = reference(s, act, w, dy);
  if (o.residual) want.y = want.y.map((v, i) => v + r[i]!);
  if (o.accumulate) {
    want.dx = want.dx.map((v, i) => v + dx0[i]!);
    want.dw = want.dw.map((v, i) => v + dw0[i]!);
  }
  const filter = conv2dBackwardFilter(s, { accumulate: o.accumulate, bn: o.bn, split: !o.accumulate });
  const bnBufs = o.bn ? ['state', ...(o.bn.fixGamma ? [] : ['gamma']), 'beta'] : [];
  const steps: Step[] = [
    { kernel: conv2dForward(s, { residual: o.residual, bn: o.bn }), buffers: ['x', 'w', ...bnBufs, ...(o.residual ? ['r'] : []), 'y'] },
    { kernel: conv2dBackwardData(s, { accumulate: o.accumulate }), buffers: ['dy', 'w', 'dx'] },
    { kernel: filter.kernel, buffers: ['dy', 'x', ...bnBufs, 'dw'] },
  ];
  // Outputs start as garbage (NaN) unless accumulated into, so that an unwritten element fails.
  const garbage = (n: number) => new Float32Array(n).fill(NaN);
  const got = await runSteps(
    device!,
    steps,
    { x, w, dy, r, gamma, beta, state: bn ? bn.state : 1, y: garbage(ny), dx: o.accumulate ? dx0 : garbage(nx), dw: o.accumulate ? dw0 : garbage(filter.chunks * nw) },
    ['y', 'dx', 'dw'],
  );
  // A split filter gradient leaves [chunks][nw] partials: their sum (as the update takes it) is dw.
  const parts = got['dw']!;
  got['dw'] = Float32Array.from({ length: nw }, (_, j) => {
    let g = 0;
    for (let z = 0; z < filter.chunks; z++) g += parts[z * nw + j]!;
    return g;
  });
  for (const k of ['y', 'dx', 'dw'] as const) {
    assert.ok(want[k].some((v) => v !== 0), `${k}: the reference is not all zero`);
    const err = maxRelError(got[k]!, want[k]);
    assert.ok(err <= 1e-4, `${steps[0]!.kernel.label}: ${k} off by ${err} of its scale`);
  }
}

test('3×3 stride 1, 16 → 16 at 28×28, batch 8 (a depth-50 stage-1 conv; split filter gradient)', { skip }, async () => {
  const s = shape(8, 28, 28, 16, 16, 3, 1);
  assert.ok(conv2dBackwardFilter(s).chunks > 1);
  await checkConv(s);
});

test('3×3 stride 2, 16 → 32 (a stage transition), with the residual add and accumulated gradients', { skip }, async () => {
  await checkConv(shape(2, 8, 8, 16, 32, 3, 2));
  await checkConv(shape(2, 8, 8, 16, 32, 3, 2), { residual: true, accumulate: true }, 7);
});

test('1×1 stride 1 (bottleneck 16 → 64 and 64 → 16) and 1×1 stride 2 (the shortcut 16 → 32)', { skip }, async () => {
  await checkConv(shape(2, 6, 6, 16, 64, 1, 1));
  await checkConv(shape(2, 6, 6, 64, 16, 1, 1), { accumulate: true });
  await checkConv(shape(2, 8, 8, 16, 32, 1, 2), { accumulate: true });
});

test('conv0: 3 input channels (the reduction 27 is not a multiple of the tile)', { skip }, async () => {
  await checkConv(shape(2, 8, 8, 3, 16, 3, 1));
});

test('stride-2 backward-data by phases: odd and even sides, 1×1 and 3×3 (pad 0 and 1), 1-pixel sides', { skip }, async () => {
  await checkConv(shape(2, 6, 9, 8, 12, 3, 2));
  await checkConv(shape(2, 9, 6, 8, 12, 1, 2), { accumulate: true });
  await checkConv(shape(3, 5, 5, 4, 8, 1, 2));
  await checkConv(shape(2, 1, 3, 4, 4, 3, 2), { accumulate: true });
  await checkConv(shape(2, 2, 1, 4, 4, 1, 2));
});

test('odd shapes on every tile edge: batch 3, 7×7, 5 → 7 channels, 3×3 and 1×1, strides 1 and 2', { skip }, async () => {
  await checkConv(shape(3, 7, 7, 5, 7, 3, 1), { residual: true });
  await checkConv(shape(3, 7, 7, 5, 7, 3, 2), { accumulate: true });
  await checkConv(shape(3, 7, 7, 5, 7, 1, 2));
  await checkConv(shape(1, 5, 3, 7, 3, 1, 1));
});

test('split filter gradient with a short last chunk (675 positions in chunks of 64)', { skip }, async () => {
  const s = shape(3, 15, 15, 8, 12, 3, 1);
  assert.deepEqual([filterSplit(s).chunk, filterSplit(s).chunks], [64, 11]);
  await checkConv(s);
});

test('fused BatchNorm(+ReLU) prologue folded from the partials, 1 and 2 shards, in forward and filter gradient (split and not)', { skip }, async () => {
  const a = shape(3, 7, 7, 5, 7, 3, 2);
  await checkConv(a, { bn: bnOf(a), residual: true });
  // vec4 loads of x through the BatchNorm (Cin 8), stride 2 on odd sides.
  const v = shape(2, 7, 7, 8, 12, 3, 2);
  await checkConv(v, { bn: bnOf(v), residual: true }, 3);
  const b = shape(2, 6, 6, 16, 8, 1, 1);
  await checkConv(b, { bn: bnOf(b), accumulate: true });
  // conv0's: bn_data without ReLU, fix_gamma, 2 shards; a split filter gradient (8·8·8 = 512 positions).
  const c = shape(8, 8, 8, 3, 16, 3, 1);
  assert.ok(conv2dBackwardFilter(c, { bn: bnOf(c) }).chunks > 1);
  await checkConv(c, { bn: bnOf(c, { relu: false, fixGamma: true }) });
  await checkConv(c, { bn: bnOf(c) }, 5);
});

test('fused BatchNorm(+ReLU) prologue wider than a workgroup: 512 channels × 2 shards (1×1) and 320 channels × 1 shard (3×3 stride 2)', { skip }, async () => {
  const a = shape(2, 3, 3, 512, 8, 1, 1);
  await checkConv(a, { bn: bnOf(a), accumulate: true });
  const b = shape(1, 4, 4, 320, 8, 3, 2);
  await checkConv(b, { bn: bnOf(b), residual: true });
});
