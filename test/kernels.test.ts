/**
 * The wasm training kernels (src/engine/tfjs/kernels) against the cpu backend: max relative error
 * max|wasm − cpu| / max(max|cpu|, 1e-6) ≤ 1e-4, no leaked tensors (engine count and wasm heap
 * entries equal before and after).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels, wantedWasmThreads, MAX_WASM_THREADS } from '../src/engine/tfjs/kernels/index.js';
import { filterGradAxis, inputGradAxis } from '../src/engine/tfjs/kernels/conv_geometry.js';
import { uniformStream } from '../src/random.js';

const require = createRequire(import.meta.url);

before(async () => {
  tf.enableProdMode();
  require('@tensorflow/tfjs-backend-wasm');
  registerWasmTrainingKernels();
  assert.ok(await tf.setBackend('wasm'));
  await tf.ready();
});

/** Deterministic values in [-1, 1). */
function values(n: number, ...key: (string | number)[]): Float32Array {
  const u = uniformStream(7, 'kernels-test', ...key);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * u() - 1;
  return a;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** max|a − b| / max(max|b|, 1e-6). */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(m, 1e-6);
}

function wasmBackendIds(): number {
  return (tf.findBackend('wasm') as unknown as { numDataIds(): number }).numDataIds();
}

/** Runs `kernel` on `backend` with float32 inputs built from arrays; returns output values and shape. */
async function runOn(
  backend: string,
  kernel: string,
  inputs: Record<string, { shape: number[]; data: Float32Array }>,
  attrs: tf.NamedAttrMap,
): Promise<{ data: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.data, v.shape, 'float32');
  const before = tf.memory().numTensors;
  const ids = backend === 'wasm' ? wasmBackendIds() : 0;
  const out = tf.engine().runKernel(kernel, ts as unknown as tf.NamedTensorMap, attrs) as tf.Tensor;
  const data = out.dataSync() as Float32Array;
  const shape = out.shape;
  out.dispose();
  assert.equal(tf.memory().numTensors, before, `${kernel} on ${backend} leaked engine tensors`);
  if (backend === 'wasm') assert.equal(wasmBackendIds(), ids, `${kernel} on wasm leaked heap tensors`);
  for (const t of Object.values(ts)) t.dispose();
  return { data, shape };
}

interface Case {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  strides: [number, number];
  pad: 'same' | 'valid' | number;
}

const cases: Case[] = [];
for (const hw of [5, 6]) {
  for (const k of [1, 3]) {
    for (const s of [1, 2]) {
      for (const pad of ['same', 'valid'] as const) {
        cases.push({ x: [2, hw, hw + 1, 3], k: [k, k], cout: 4, strides: [s, s], pad });
      }
    }
  }
}
// Even filter (asymmetric 'same' padding) and unequal strides.
cases.push({ x: [3, 7, 6, 2], k: [2, 2], cout: 5, strides: [2, 2], pad: 'same' });
cases.push({ x: [2, 7, 8, 3], k: [3, 3], cout: 2, strides: [1, 2], pad: 'same' });
cases.push({ x: [2, 9, 9, 4], k: [3, 1], cout: 3, strides: [2, 1], pad: 'valid' });
// Explicit numeric padding.
cases.push({ x: [2, 7, 6, 3], k: [3, 3], cout: 4, strides: [2, 2], pad: 1 });
cases.push({ x: [2, 6, 6, 2], k: [1, 1], cout: 3, strides: [2, 2], pad: 1 });

function caseName(c: Case): string {
  return `x=[${c.x}] k=${c.k.join('x')} cout=${c.cout} s=${c.strides.join(',')} ${c.pad}`;
}

function outShape(c: Case): [number, number, number, number] {
  const info = tf.backend_util.computeConv2DInfo(c.x, [c.k[0], c.k[1], c.x[3], c.cout], c.strides, 1, c.pad);
  return info.outShape;
}

test('Conv2DBackpropFilter on wasm matches cpu (strides 1/2, same/valid, 1×1/3×3, odd/even sizes)', async (t) => {
  let worst = 0;
  for (const [i, c] of cases.entries()) {
    const dyShape = outShape(c);
    const inputs = { x: { shape: c.x, data: values(size(c.x), 'x', i) }, dy: { shape: dyShape, data: values(size(dyShape), 'dy', i) } };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [c.k[0], c.k[1], c.x[3], c.cout] } as unknown as tf.NamedAttrMap;
    const w = await runOn('wasm', 'Conv2DBackpropFilter', inputs, attrs);
    const r = await runOn('cpu', 'Conv2DBackpropFilter', inputs, attrs);
    assert.deepEqual(w.shape, r.shape, caseName(c));
    const e = relErr(w.data, r.data);
    worst = Math.max(worst, e);
    assert.ok(e <= 1e-4, `${caseName(c)}: relative error ${e}`);
  }
  await tf.setBackend('wasm');
  t.diagnostic(`worst relative error over ${cases.length} cases: ${worst.toExponential(2)}`);
});

test('Conv2DBackpropInput on wasm matches cpu (strides 1/2, same/valid, 1×1/3×3, odd/even sizes)', async (t) => {
  let worst = 0;
  for (const [i, c] of cases.entries()) {
    const dyShape = outShape(c);
    const fShape = [c.k[0], c.k[1], c.x[3], c.cout];
    const inputs = { dy: { shape: dyShape, data: values(size(dyShape), 'dy', i) }, filter: { shape: fShape, data: values(size(fShape), 'f', i) } };
    const attrs = { strides: c.strides, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape: c.x } as unknown as tf.NamedAttrMap;
    const w = await runOn('wasm', 'Conv2DBackpropInput', inputs, attrs);
    const r = await runOn('cpu', 'Conv2DBackpropInput', inputs, attrs);
    assert.deepEqual(w.shape, c.x, caseName(c));
    assert.deepEqual(r.shape, c.x, caseName(c));
    const e = relErr(w.data, r.data);
    worst = Math.max(worst, e);
    assert.ok(e <= 1e-4, `${caseName(c)}: relative error ${e}`);
  }
  await tf.setBackend('wasm');
  t.diagnostic(`worst relative error over ${cases.length} cases: ${worst.toExponential(2)}`);
});

test('filter/input gradient geometry: hand-computed cases', () => {
  // 'valid', H=8, k=3, s=2: outputs 3, reads rows 0..6, row 7 cropped.
  assert.deepEqual(filterGradAxis(8, 3, 2, 0, 3), { keepLen: 7, padBefore: 0, padAfter: 0 });
  // 'same', H=6, k=3, s=2: out 3, pad total 1 → top 0, reads rows 0..6 → one zero row after.
  assert.deepEqual(filterGradAxis(6, 3, 2, 0, 3), { keepLen: 6, padBefore: 0, padAfter: 1 });
  // 'same', H=5, k=3, s=1: pad 1/1.
  assert.deepEqual(filterGradAxis(5, 3, 1, 1, 5), { keepLen: 5, padBefore: 1, padAfter: 1 });
  // Input grad 'same' H=6 k=3 s=2 (pad top 0): dilated 5, pads 2 and 1 → 5+3−3+1 = 6 outputs.
  assert.deepEqual(inputGradAxis(6, 3, 2, 0, 3), { dilatedLen: 5, padBefore: 2, padAfter: 1, cropAfter: 0 });
  // 'valid' H=8 k=3 s=2: dilated 5, pads 2 and 3 (row 7 gets zero gradient).
  assert.deepEqual(inputGradAxis(8, 3, 2, 0, 3), { dilatedLen: 5, padBefore: 2, padAfter: 3, cropAfter: 0 });
});

/** Parameters of a tiny conv+BN+ReLU+projection+dense net, as plain arrays. */
const netShapes: Record<string, number[]> = {
  w0: [3, 3, 3, 4],
  gamma: [4],
  beta: [4],
  w1: [3, 3, 4, 6],
  wp: [1, 1, 4, 6],
  wd: [6, 5],
  bd: [5],
};

/** Loss and gradients of the tiny net on `backend`. */
async function netGrads(backend: string): Promise<Record<string, Float32Array>> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const vars: Record<string, tf.Variable> = {};
  for (const [k, s] of Object.entries(netShapes)) {
    const init = k === 'gamma' ? new Float32Array(size(s)).fill(1).map((v, i) => v + 0.1 * i) : values(size(s), 'net', k);
    vars[k] = tf.tidy(() => tf.variable(tf.tensor(init, s), true, `${backend}_${k}`));
  }
  const x = tf.tensor(values(3 * 7 * 7 * 3, 'net', 'x'), [3, 7, 7, 3]);
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d([1, 4, 0], 'int32'), 5).toFloat());
  const f = () => {
    const v = vars as Record<string, tf.Tensor4D>;
    let h = tf.conv2d(x as tf.Tensor4D, v['w0']!, 1, 'same');
    const { mean, variance } = tf.moments(h, [0, 1, 2]);
    h = tf.batchNorm(h, mean, variance, vars['beta']!, vars['gamma']!, 2e-5) as tf.Tensor4D;
    h = tf.relu(h);
    const y = tf.add(tf.conv2d(h, v['w1']!, 2, 'same'), tf.conv2d(h, v['wp']!, 2, 'same'));
    const pooled = tf.mean(tf.relu(y), [1, 2]) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(pooled, vars['wd'] as tf.Tensor2D), vars['bd']!);
    return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  };
  const { value, grads } = tf.variableGrads(f);
  const out: Record<string, Float32Array> = { loss: value.dataSync() as Float32Array };
  for (const [k, g] of Object.entries(grads)) out[k.replace(`${backend}_`, '')] = g.dataSync() as Float32Array;
  value.dispose();
  tf.dispose(Object.values(grads));
  tf.dispose([x, labels, ...Object.values(vars)]);
  assert.equal(tf.memory().numTensors, before, `net gradient on ${backend} leaked tensors`);
  return out;
}

test('gradients of a small conv+BN+ReLU+projection+dense net on wasm equal the cpu ones', async (t) => {
  const w = await netGrads('wasm');
  const c = await netGrads('cpu');
  assert.deepEqual(Object.keys(w).sort(), Object.keys(c).sort());
  assert.equal(Object.keys(w).length, 1 + Object.keys(netShapes).length);
  const errs: string[] = [];
  for (const k of Object.keys(c)) {
    const e = relErr(w[k]!, c[k]!);
    errs.push(`${k} ${e.toExponential(2)}`);
    assert.ok(e <= 1e-4, `${k}: relative error ${e}`);
  }
  t.diagnostic(`relative errors: ${errs.join(', ')}`);
  await tf.setBackend('wasm');
});

test('Sum and Mean on wasm match cpu (N,H,W reductions via AvgPool, other cases built-in)', async (t) => {
  const shapes: [number[], number[] | number, boolean][] = [
    [[3, 5, 6, 4], [0, 1, 2], false],
    [[3, 5, 6, 4], [0, 1, 2], true],
    [[3, 5, 6, 4], [1, 2], false],
    [[3, 5, 6, 4], [2, 1], true],
    [[7, 3], 0, false],
    [[7, 3], -1, false],
    [[3, 5, 6, 4], [3], false],
    [[3, 5, 6, 4], [0, 1, 2, 3], false],
    [[3, 5, 6, 4], [0, 2], false],
    [[1, 5, 1, 4], [0, 2], true],
  ];
  let worst = 0;
  for (const kernel of ['Sum', 'Mean']) {
    for (const [i, [shape, axis, keepDims]] of shapes.entries()) {
      const inputs = { x: { shape, data: values(size(shape), 'reduce', i) } };
      const attrs = { axis, keepDims } as unknown as tf.NamedAttrMap;
      const w = await runOn('wasm', kernel, inputs, attrs);
      const r = await runOn('cpu', kernel, inputs, attrs);
      const name = `${kernel} [${shape}] axis ${JSON.stringify(axis)} keepDims ${keepDims}`;
      assert.deepEqual(w.shape, r.shape, name);
      const e = relErr(w.data, r.data);
      worst = Math.max(worst, e);
      assert.ok(e <= 1e-4, `${name}: relative error ${e}`);
    }
  }
  await tf.setBackend('wasm');
  const ints = tf.tensor([[1, 2], [3, 4]], [2, 2], 'int32');
  const isum = tf.sum(ints, 0);
  assert.deepEqual(Array.from(isum.dataSync()), [4, 6]);
  assert.equal(isum.dtype, 'int32');
  tf.dispose([ints, isum]);
  t.diagnostic(`worst relative error: ${worst.toExponential(2)}`);
});

test('MIXUP_WASM_THREADS parsing', () => {
  assert.equal(wantedWasmThreads({}), 1);
  assert.equal(wantedWasmThreads({ MIXUP_WASM_THREADS: '2' }), 2);
  assert.equal(wantedWasmThreads({ MIXUP_WASM_THREADS: '8' }), MAX_WASM_THREADS);
  assert.throws(() => wantedWasmThreads({ MIXUP_WASM_THREADS: '99' }), {
    message: 'MIXUP_WASM_THREADS=99: at most 8 (the threads the wasm build starts workers for), like the config key wasmThreads',
  });
  assert.throws(() => wantedWasmThreads({ MIXUP_WASM_THREADS: 'two' }), /positive integer/);
  assert.throws(() => wantedWasmThreads({ MIXUP_WASM_THREADS: '0' }), /positive integer/);
});

test('a 2-thread wasm backend (child process) computes the same conv gradients and exits by itself', async (t) => {
  // Inputs of case 12 (x [2,6,7,3], 3×3, stride 2, 'same'), gradients on this process's backend.
  const c = { x: [2, 6, 7, 3], k: [3, 3, 3, 4], s: 2 };
  const xv = values(size(c.x), 'threads', 'x');
  const wv = values(size(c.k), 'threads', 'w');
  await tf.setBackend('wasm');
  const local = tf.tidy(() => {
    const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
    const w = tf.tensor4d(wv, c.k as [number, number, number, number]);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, 'same').square().sum())([x, w]);
    return g.map((t) => Array.from(t.dataSync()));
  });
  const kernels = new URL('../src/engine/tfjs/kernels/index.js', import.meta.url).href;
  const script = `
    import * as tf from '@tensorflow/tfjs';
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(import.meta.url)});
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    const { registerWasmTrainingKernels } = await import(${JSON.stringify(kernels)});
    registerWasmTrainingKernels();
    await tf.setBackend('wasm');
    const x = tf.tensor4d(${JSON.stringify(Array.from(xv))}, ${JSON.stringify(c.x)});
    const w = tf.tensor4d(${JSON.stringify(Array.from(wv))}, ${JSON.stringify(c.k)});
    const g = tf.grads((a, b) => tf.conv2d(a, b, ${c.s}, 'same').square().sum())([x, w]);
    console.log(JSON.stringify({ threads: wasm.getThreadsCount(), grads: g.map((t) => Array.from(t.dataSync())) }));
  `;
  const { execFile } = await import('node:child_process');
  const out = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv.filter((a) => !a.startsWith('--test')), '--input-type=module', '-e', script],
      { env: { ...process.env, MIXUP_WASM_THREADS: '2' }, timeout: 60_000, cwd: process.cwd() },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
  const line = out.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no result from the child process: ${out}`);
  const res = JSON.parse(line) as { threads: number; grads: number[][] };
  assert.equal(res.threads, 2);
  for (let i = 0; i < 2; i++) {
    const e = relErr(Float32Array.from(res.grads[i]!), Float32Array.from(local[i]!));
    assert.ok(e <= 1e-4, `gradient ${i}: relative error ${e}`);
  }
  t.diagnostic(`child ran with ${res.threads} threads`);
});

test('per-channel Multiply/Add/Sub on wasm equal cpu and the built-in wasm kernels bit for bit', async () => {
  const cases: [string, number[], number[]][] = [
    ['Multiply', [8, 12, 12, 8], [8]],
    ['Multiply', [8], [8, 12, 12, 8]],
    ['Multiply', [4, 16, 16, 16], [1, 1, 1, 16]],
    ['Add', [8, 12, 12, 8], [8]],
    ['Add', [1, 1, 8], [8, 12, 12, 8]],
    ['Sub', [8, 12, 12, 8], [8]],
    ['Sub', [8], [8, 12, 12, 8]], // v − x: built-in
    ['Sub', [64, 80], [80]],
    ['Multiply', [3, 4, 4, 8], [8]], // small: built-in
    ['Add', [8, 12, 12, 8], [8, 12, 12, 8]], // same shape: built-in
  ];
  const { builtinKernel } = await import('../src/engine/tfjs/kernels/index.js');
  for (const [i, [kernel, sa, sb]] of cases.entries()) {
    const inputs = { a: { shape: sa, data: values(size(sa), 'bin', i, 'a') }, b: { shape: sb, data: values(size(sb), 'bin', i, 'b') } };
    const w = await runOn('wasm', kernel, inputs, {});
    const r = await runOn('cpu', kernel, inputs, {});
    const name = `${kernel} [${sa}] [${sb}]`;
    assert.deepEqual(w.shape, r.shape, name);
    assert.ok(relErr(w.data, r.data) <= 1e-6, `${name}: relative error ${relErr(w.data, r.data)}`);
    // Bit-identical to wasm's own kernel.
    await tf.setBackend('wasm');
    const be = tf.backend();
    const a = tf.tensor(inputs.a.data, sa);
    const b = tf.tensor(inputs.b.data, sb);
    const info = builtinKernel(kernel)!.kernelFunc({ inputs: { a, b }, backend: be, attrs: {} }) as tf.TensorInfo;
    const own = be.readSync(info.dataId) as Float32Array;
    be.disposeData(info.dataId);
    tf.dispose([a, b]);
    assert.deepEqual(Array.from(w.data), Array.from(own), `${name}: differs from the built-in wasm kernel`);
  }
  await tf.setBackend('wasm');
  const ints = tf.tidy(() => tf.add(tf.tensor([[1, 2], [3, 4]], [2, 2], 'int32'), tf.tensor([10, 20], [2], 'int32')));
  assert.deepEqual(Array.from(ints.dataSync()), [11, 22, 13, 24]);
  assert.equal(ints.dtype, 'int32');
  ints.dispose();
});

test('Identity on wasm shares the buffer (no copy): same values, the clone outlives its source, nothing leaks', async () => {
  await tf.setBackend('wasm');
  const ids = wasmBackendIds();
  const before = tf.memory().numTensors;
  const x = tf.tensor([1.5, -2, 3, 4.25], [2, 2]);
  const c = tf.clone(x);
  assert.equal(wasmBackendIds(), ids + 1, 'clone allocated a new wasm buffer');
  assert.equal(c.dataId, x.dataId);
  assert.deepEqual(c.shape, [2, 2]);
  x.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3, 4.25]);
  const i0 = tf.tensor([7, 8], [2], 'int32');
  const i = tf.clone(i0);
  assert.equal(i.dtype, 'int32');
  assert.deepEqual(Array.from(i.dataSync()), [7, 8]);
  const s0 = tf.tensor(['a', 'bc']);
  const s = tf.clone(s0);
  assert.deepEqual(s.dataSync(), ['a', 'bc']);
  tf.dispose([c, i0, i, s0, s]);
  assert.equal(wasmBackendIds(), ids);
  assert.equal(tf.memory().numTensors, before);
});

test('BatchNorm (tf.customGrad, saved tensors cloned by Identity) gradients on wasm equal cpu', async () => {
  const { batchNormTrain } = await import('../src/engine/tfjs/batchnorm.js');
  const shape: [number, number, number, number] = [4, 6, 5, 8];
  const xv = values(size(shape), 'bn', 'x');
  const gv = values(8, 'bn', 'g').map((v) => 1 + 0.5 * v);
  const bv = values(8, 'bn', 'b');
  const wv = values(size(shape), 'bn', 'w');
  const grads = async (backend: string) => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const x = tf.tensor4d(xv, shape);
    const g = tf.tensor1d(gv);
    const b = tf.tensor1d(bv);
    const w = tf.tensor4d(wv, shape);
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const r = batchNormTrain(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D);
      r.mean.dispose();
      r.variance.dispose();
      return tf.sum(tf.mul(tf.relu(r.y), w)) as tf.Scalar;
    };
    const gs = tf.grads(f)([x, g, b]);
    const out = gs.map((t) => t.dataSync() as Float32Array);
    tf.dispose([...gs, x, g, b, w]);
    assert.equal(tf.memory().numTensors, before, `BatchNorm gradient on ${backend} leaked tensors`);
    return out;
  };
  const w = await grads('wasm');
  const c = await grads('cpu');
  for (const [k, name] of ['x', 'gamma', 'beta'].entries()) {
    const e = relErr(w[k]!, c[k]!);
    assert.ok(e <= 1e-4, `d${name}: relative error ${e}`);
  }
  await tf.setBackend('wasm');
});
