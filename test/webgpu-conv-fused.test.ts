// A convolution's two gradients in one dispatch (src/engine/webgpu/conv_fused.ts, gemm_group.ts):
// the fused kernel's dx and dw equal the separate backward-data and backward-filter kernels' and a
// float64 reference (hand-counted on all-ones inputs), stride 1 and 2, with and without the fused
// BatchNorm prologue, split-K and not; on lavapipe through Dawn, skipped with a one-line reason where
// webgpu does not load (never in CI). Own process: Dawn stays out of the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { convOutSize, type ConvShape } from '../src/engine/webgpu/conv.js';
import { conv2dBackwardData } from '../src/engine/webgpu/conv_data.js';
import { conv2dBackwardFilter } from '../src/engine/webgpu/conv_filter.js';
import { conv2dBackward } from '../src/engine/webgpu/conv_fused.js';
import { gemmWorkgroupSize, groupKernels } from '../src/engine/webgpu/gemm_group.js';
import { conv2dForward } from '../src/engine/webgpu/conv.js';
import type { BnApply } from '../src/engine/webgpu/bn_state.js';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { maxRelError, webgpuSkipReason } from './fixtures/webgpu.js';
import { runSteps, testDevice } from './fixtures/wgsl.js';
import { garbage, lcgValues as values } from './fixtures/values.js';
import { bnOf, bnState, shape } from './fixtures/conv.js';

const skip = (await webgpuSkipReason()) ?? false;
const device = skip ? null : await testDevice();
after(() => {
  device?.destroy();
  releaseBackends();
});

/** Workgroup bytes a WGSL module declares (arrays of f32/u32 and vec4<f32>). */
function workgroupBytes(code: string): number {
  let n = 0;
  for (const m of code.matchAll(/var<workgroup>\s+\w+\s*:\s*array<(f32|u32|vec4<f32>),\s*(\d+)>/g)) n += Number(m[2]) * (m[1] === 'vec4<f32>' ? 16 : 4);
  return n;
}

test('the fused kernel binds dy once, fits the default limits, and its cost is its two parts', () => {
  const s = shape(128, 28, 28, 16, 32, 3, 2);
  const bn = bnOf(s);
  const f = conv2dBackwardFilter(s, { bn });
  const g = conv2dBackward(s, f, { accumulate: true })!;
  const data = conv2dBackwardData(s, { accumulate: true, invocations: f.invocations });
  // dy, w, dx, then the filter's x, state, gamma, beta, dw: 8 storage buffers, WebGPU's default most.
  assert.deepEqual(g.kernel.bindings, ['read', 'read', 'read_write', 'read', 'read', 'read', 'read', 'read_write']);
  assert.deepEqual(g.bind(['dy', 'w', 'dx'], ['dy', 'x', 'state', 'gamma', 'beta', 'dw']), ['dy', 'w', 'dx', 'x', 'state', 'gamma', 'beta', 'dw']);
  assert.equal(gemmWorkgroupSize(g.kernel), f.invocations);
  // One aliased array, no larger than the larger kernel's own.
  assert.ok(workgroupBytes(g.kernel.code) <= Math.max(workgroupBytes(data.code), workgroupBytes(f.kernel.code)));
  assert.ok(workgroupBytes(g.kernel.code) <= 16384);
  const n = (k: { workgroups: number[] }) => k.workgroups.reduce((a, b) => a * b, 1);
  assert.equal(n(g.kernel), n(data) + n(f.kernel));
  const c = g.kernel.cost!;
  assert.equal(c.class, 'conv_bwd');
  assert.deepEqual(c.parts!.map((p) => [p.cost.class, p.workgroups]), [['conv_bwd_data', n(data)], ['conv_bwd_filter', n(f.kernel)]]);
  assert.equal(c.flops, data.cost!.flops + f.kernel.cost!.flops);
  assert.equal(c.requested, data.cost!.requested + f.kernel.cost!.requested);
  // dy (128·14·14·32 floats, all read by both) counted once in the distinct bytes.
  assert.equal(c.read, data.cost!.read + f.kernel.cost!.read - 4 * 128 * 14 * 14 * 32);
  // Kernels of different workgroup sizes do not group.
  assert.throws(() => groupKernels(conv2dBackwardData(s), f.kernel, { label: 'x', class: 'conv_bwd' }), /workgroups of/);
  // Past 65,535 workgroups the grid is 2-D, and the entry point decodes the linear index.
  const big = shape(4090, 32, 32, 16, 64, 3, 1);
  const gb = conv2dBackward(big, conv2dBackwardFilter(big))!;
  assert.ok(n(gb.kernel) > 65535 && gb.kernel.workgroups[0] === 65535 && gb.kernel.workgroups[1] === 2, gb.kernel.workgroups.join('x'));
  // Not a gemmKernel: refused.
  assert.throws(() => gemmWorkgroupSize({ ...conv2dForward(s), code: 'fn main() {}' }), /not a gemmKernel/);
});

/**
 * dx and dw of a convolution in float64: dx[b,h,w,ci] = Σ dy[b,oh,ow,co]·w[kh,kw,ci,co] over the taps
 * with h = oh·s − p + kh (and w likewise); dw[kh,kw,ci,co] = Σ act[b,h,w,ci]·dy[b,oh,ow,co].
 */
function reference64(s: ConvShape, act: Float32Array, w: Float32Array, dy: Float32Array): { dx: Float64Array; dw: Float64Array } {
  const { outH, outW } = convOutSize(s);
  const p = (s.k - 1) / 2;
  const dx = new Float64Array(s.batch * s.inH * s.inW * s.inC);
  const dw = new Float64Array(s.k * s.k * s.inC * s.outC);
  for (let b = 0; b < s.batch; b++) {
    for (let oh = 0; oh < outH; oh++) {
      for (let ow = 0; ow < outW; ow++) {
        for (let kh = 0; kh < s.k; kh++) {
          for (let kw = 0; kw < s.k; kw++) {
            const h = oh * s.stride - p + kh;
            const x = ow * s.stride - p + kw;
            if (h < 0 || h >= s.inH || x < 0 || x >= s.inW) continue;
            for (let ci = 0; ci < s.inC; ci++) {
              for (let co = 0; co < s.outC; co++) {
                const g = dy[((b * outH + oh) * outW + ow) * s.outC + co]!;
                const wi = ((kh * s.k + kw) * s.inC + ci) * s.outC + co;
                const xi = ((b * s.inH + h) * s.inW + x) * s.inC + ci;
                dx[xi]! += g * w[wi]!;
                dw[wi]! += g * act[xi]!;
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw };
}

interface Inputs {
  x: Float32Array;
  w: Float32Array;
  dy: Float32Array;
  dx0: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
}

/**
 * Runs the fused kernel and, separately, backward-data and backward-filter on the same inputs; returns
 * both (dw: the partials summed as the update sums them) and what the conv's input was (x through the
 * BatchNorm with `bn`).
 */
async function runBoth(s: ConvShape, inp: Inputs, o: { accumulate?: boolean; bn?: BnApply; split?: boolean }) {
  const f = conv2dBackwardFilter(s, { bn: o.bn, split: o.split });
  const g = conv2dBackward(s, f, { accumulate: o.accumulate });
  assert.ok(g, 'fusable');
  const st = o.bn ? bnState(o.bn, inp.x, inp.gamma, inp.beta) : null;
  const bnBufs = o.bn ? ['state', ...(o.bn.fixGamma ? [] : ['gamma']), 'beta'] : [];
  const nx = inp.x.length;
  const nw = s.k * s.k * s.inC * s.outC;
  const sum = (parts: Float32Array) => Float32Array.from({ length: nw }, (_, j) => {
    let t = 0;
    for (let z = 0; z < f.chunks; z++) t += parts[z * nw + j]!;
    return t;
  });
  const buffers = (pre: string) => ({ [`${pre}dx`]: o.accumulate ? inp.dx0 : garbage(nx), [`${pre}dw`]: garbage(f.chunks * nw) });
  const got = await runSteps(
    device!,
    [
      { kernel: g!.kernel, buffers: g!.bind(['dy', 'w', 'fdx'], ['dy', 'x', ...bnBufs, 'fdw']) },
      { kernel: conv2dBackwardData(s, { accumulate: o.accumulate }), buffers: ['dy', 'w', 'sdx'] },
      { kernel: f.kernel, buffers: ['dy', 'x', ...bnBufs, 'sdw'] },
    ],
    { x: inp.x, w: inp.w, dy: inp.dy, gamma: inp.gamma, beta: inp.beta, state: st ? st.state : 1, ...buffers('f'), ...buffers('s') },
    ['fdx', 'fdw', 'sdx', 'sdw'],
  );
  return { chunks: f.chunks, act: st ? st.act : inp.x, fused: { dx: got['fdx']!, dw: sum(got['fdw']!) }, separate: { dx: got['sdx']!, dw: sum(got['sdw']!) } };
}

function inputs(s: ConvShape, seed: number): Inputs {
  const { outH, outW } = convOutSize(s);
  return {
    x: values(s.batch * s.inH * s.inW * s.inC, seed),
    w: values(s.k * s.k * s.inC * s.outC, seed + 1),
    dy: values(s.batch * outH * outW * s.outC, seed + 2),
    dx0: values(s.batch * s.inH * s.inW * s.inC, seed + 3),
    gamma: values(s.inC, seed + 4).map((v) => 1 + v),
    beta: values(s.inC, seed + 5).map((v) => 0.5 * v),
  };
}

test('all-ones inputs, 4×4 image: dx and dw count the taps inside (stride 1: 3,4,3 per side; stride 2: 1,2,2 and 1,2,1,1)', { skip }, async () => {
  for (const stride of [1, 2] as const) {
    const s = shape(2, 4, 4, 4, 4, 3, stride);
    const { outH } = convOutSize(s);
    const ones = (n: number) => new Float32Array(n).fill(1);
    const inp = { x: ones(2 * 16 * 4), w: ones(9 * 16), dy: ones(2 * outH * outH * 4), dx0: ones(0), gamma: ones(4), beta: ones(4) };
    const r = await runBoth(s, inp, {});
    // dw[kh,kw,ci,co] = batch × (output rows whose tap kh is inside) × (the same for kw);
    // dx[b,h,w,ci] = Cout × (taps reaching h from inside dy) × (the same for w).
    const dwSide = stride === 1 ? [3, 4, 3] : [1, 2, 2];
    const dxSide = stride === 1 ? [2, 3, 3, 2] : [1, 2, 1, 1];
    const dw = Float32Array.from({ length: 9 * 16 }, (_, i) => 2 * dwSide[Math.floor(i / 48)]! * dwSide[Math.floor(i / 16) % 3]!);
    const dx = Float32Array.from({ length: 2 * 16 * 4 }, (_, i) => 4 * dxSide[Math.floor(i / 16) % 4]! * dxSide[Math.floor(i / 4) % 4]!);
    assert.deepEqual(r.fused.dw, dw, `stride ${stride}: dw`);
    assert.deepEqual(r.fused.dx, dx, `stride ${stride}: dx`);
    assert.deepEqual(reference64(s, inp.x, inp.w, inp.dy), { dx: Float64Array.from(dx), dw: Float64Array.from(dw) }, 'the float64 reference agrees');
  }
});

const cases: { name: string; s: ConvShape; accumulate?: boolean; bn?: boolean; split?: boolean; minChunks: number }[] = [
  { name: '3×3 stride 1, 16 → 16, split-K, BatchNorm+ReLU', s: shape(4, 12, 12, 16, 16, 3, 1), bn: true, minChunks: 2 },
  { name: '3×3 stride 1, 8 → 8, one chunk, no BatchNorm', s: shape(2, 6, 6, 8, 8, 3, 1), split: false, minChunks: 1 },
  { name: '3×3 stride 2, 16 → 32 (odd side 9), accumulated dx, split-K, BatchNorm+ReLU', s: shape(4, 9, 9, 16, 32, 3, 2), accumulate: true, bn: true, minChunks: 2 },
  { name: '1×1 stride 2, 16 → 32 (the shortcut), accumulated dx, BatchNorm+ReLU, one chunk', s: shape(2, 8, 8, 16, 32, 1, 2), accumulate: true, bn: true, split: false, minChunks: 1 },
  { name: '3×3 stride 2, 8 → 16, split-K, no BatchNorm', s: shape(8, 8, 8, 8, 16, 3, 2), minChunks: 2 },
  { name: 'conv0: 3 → 16 (scalar dx columns), BatchNorm without ReLU', s: shape(4, 8, 8, 3, 16, 3, 1), bn: true, minChunks: 1 },
];

for (const c of cases) {
  test(`fused = separate = float64 reference: ${c.name}`, { skip }, async () => {
    const inp = inputs(c.s, 7);
    const bn = c.bn ? bnOf(c.s, { relu: c.name.includes('ReLU') }) : undefined;
    const r = await runBoth(c.s, inp, { accumulate: c.accumulate, bn, split: c.split });
    assert.ok(c.split === false ? r.chunks === 1 : r.chunks >= c.minChunks, `${r.chunks} chunks`);
    const want = reference64(c.s, r.act, inp.w, inp.dy);
    if (c.accumulate) want.dx = want.dx.map((v, i) => v + inp.dx0[i]!);
    for (const k of ['dx', 'dw'] as const) {
      assert.ok(want[k].some((v) => v !== 0), `${k}: the reference is not all zero`);
      const ref = Float32Array.from(want[k]);
      assert.ok(maxRelError(r.fused[k], ref) <= 1e-5, `fused ${k} off the reference by ${maxRelError(r.fused[k], ref)}`);
      assert.ok(maxRelError(r.separate[k], ref) <= 1e-5, `separate ${k} off the reference by ${maxRelError(r.separate[k], ref)}`);
      assert.ok(maxRelError(r.fused[k], r.separate[k]) <= 1e-5, `fused and separate ${k} differ`);
    }
    // The filter side is the same kernel code, bound in the same order: bit for bit the same gradient.
    assert.deepEqual(r.fused.dw, r.separate.dw);
  });
}
