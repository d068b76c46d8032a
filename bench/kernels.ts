/**
 * `npm run bench:kernels`: wasm conv kernel timings at the shapes of the reference's depth-50
 * ResNet on 28×28 CIFAR crops, batch 128 (a benchmark, not a test).
 *
 * For each conv layer shape it times, on the wasm backend: the forward Conv2D (XNNPACK, the speed
 * the gradients are measured against), wasm's built-in Conv2DBackpropInput (XNNPACK
 * deconvolution), the project's Conv2DBackpropInput and Conv2DBackpropFilter (src/engine/tfjs/kernels, both
 * built on Conv2D). Each kernel does N·OH·OW·KH·KW·Cin·Cout multiply-adds; the table prints the
 * best (minimum) ms of `--reps` runs after one warm-up, the estimator least disturbed by other jobs
 * on the machine, and GMAC/s.
 *
 * Options: `--batch N` (default 128), `--reps N` (default 3), `--quick` (batch 32, 2 reps),
 * `--threads N` (XNNPACK threads, default `MIXUP_WASM_THREADS` or 1; see src/engine/tfjs/kernels/wasm_threads.ts).
 * `--help` describes each. Timings on a machine shared with other jobs vary by 2× or more: compare columns of one run.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import { registerWasmTrainingKernels, builtinKernel } from '../src/engine/tfjs/kernels/index.js';
import { convMacs } from '../src/engine/tfjs/kernels/conv_geometry.js';
import { intOption } from './common.js';

const require = createRequire(import.meta.url);

const pos = intOption(1);
const opts = new Command('bench:kernels')
  .description("wasm conv kernel timings at the shapes of the reference's depth-50 ResNet on 28×28 crops")
  .option('--quick', 'batch 32 and 2 reps unless --batch / --reps say otherwise')
  .option('--batch <n>', 'batch size (default: 128, 32 with --quick)', pos)
  .option('--reps <n>', 'timed runs per kernel after one warm-up; the best is printed (default: 3, 2 with --quick)', pos)
  .option('--threads <n>', 'XNNPACK threads (default: MIXUP_WASM_THREADS or 1)', pos)
  .parse()
  .opts<{ quick?: boolean; batch?: number; reps?: number; threads?: number }>();
const batch = opts.batch ?? (opts.quick ? 32 : 128);
const reps = opts.reps ?? (opts.quick ? 2 : 3);
const threads = opts.threads;

interface Layer {
  name: string;
  hw: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
}

/** The distinct conv shapes of the depth-50 CIFAR ResNet (28×28 input, 16/32/64 filters). */
const layers: Layer[] = [
  { name: 'conv0 3x3 3->16', hw: 28, cin: 3, cout: 16, k: 3, stride: 1 },
  { name: 'stage1 3x3 16->16', hw: 28, cin: 16, cout: 16, k: 3, stride: 1 },
  { name: 'stage1 proj 1x1 16->16', hw: 28, cin: 16, cout: 16, k: 1, stride: 1 },
  { name: 'stage2 3x3 s2 16->32', hw: 28, cin: 16, cout: 32, k: 3, stride: 2 },
  { name: 'stage2 proj 1x1 s2 16->32', hw: 28, cin: 16, cout: 32, k: 1, stride: 2 },
  { name: 'stage2 3x3 32->32', hw: 14, cin: 32, cout: 32, k: 3, stride: 1 },
  { name: 'stage3 3x3 s2 32->64', hw: 14, cin: 32, cout: 64, k: 3, stride: 2 },
  { name: 'stage3 proj 1x1 s2 32->64', hw: 14, cin: 32, cout: 64, k: 1, stride: 2 },
  { name: 'stage3 3x3 64->64', hw: 7, cin: 64, cout: 64, k: 3, stride: 1 },
];

/**
 * Minimum ms of `reps` runs of `run` (after one warm-up). Every run gets fresh inputs from `make`
 * (not timed): in training every step's weights and activations are new tensors, and XNNPACK
 * packs a Conv2D filter once per filter tensor, so reusing inputs would hide that cost.
 */
function time<T extends tf.Tensor[]>(make: () => T, run: (inputs: T) => tf.Tensor | tf.TensorInfo): number {
  const backend = tf.backend();
  const once = () => {
    const inputs = make();
    const t0 = performance.now();
    const out = run(inputs);
    const ms = performance.now() - t0;
    if (out instanceof tf.Tensor) out.dispose();
    else backend.disposeData(out.dataId);
    tf.dispose(inputs);
    return ms;
  };
  once();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(once());
  return Math.min(...ms);
}

async function main(): Promise<void> {
  const wasm = require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number };
  registerWasmTrainingKernels(threads === undefined ? {} : { threads });
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
  const backend = tf.backend();
  const cpus = os.cpus();
  console.log(`machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores; node ${process.version}; tfjs ${tf.version.tfjs}, backend ${tf.getBackend()} (${wasm.getThreadsCount()} thread(s))`);
  console.log(`batch ${batch}, best of ${reps} runs after 1 warm-up; GMAC/s = multiply-adds / time\n`);
  const cols = ['layer', 'MMAC', 'Conv2D fwd', 'BackpropInput builtin', 'BackpropInput mixup', 'BackpropFilter mixup'];
  console.log(cols.map((c, i) => (i === 0 ? c.padEnd(28) : c.padStart(22))).join(''));
  const totals = [0, 0, 0, 0];
  const builtinInput = builtinKernel('Conv2DBackpropInput');
  for (const [li, l] of layers.entries()) {
    const pad = 'same';
    const xShape: [number, number, number, number] = [batch, l.hw, l.hw, l.cin];
    const wShape: [number, number, number, number] = [l.k, l.k, l.cin, l.cout];
    const info = tf.backend_util.computeConv2DInfo(xShape, wShape, l.stride, 1, pad);
    let seed = 1000 * li;
    const rnd = (shape: number[], sd = 1) => tf.randomNormal(shape, 0, sd, 'float32', ++seed);
    const macs = convMacs(batch, info.outHeight, info.outWidth, l.k, l.k, l.cin, l.cout);
    const common = { strides: [l.stride, l.stride], pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const inputAttrs = { ...common, inputShape: xShape } as unknown as tf.NamedAttrMap;
    const filterAttrs = { ...common, filterShape: wShape } as unknown as tf.NamedAttrMap;
    const ms = [
      time(() => [rnd(xShape), rnd(wShape, 0.1)], ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, l.stride, pad)),
      builtinInput
        ? time(() => [rnd(info.outShape), rnd(wShape, 0.1)], ([dy, w]) => builtinInput.kernelFunc({ inputs: { dy: dy!, filter: w! }, backend, attrs: inputAttrs }) as tf.TensorInfo)
        : NaN,
      time(() => [rnd(info.outShape), rnd(wShape, 0.1)], ([dy, w]) => tf.engine().runKernel('Conv2DBackpropInput', { dy: dy!, filter: w! }, inputAttrs) as tf.Tensor),
      time(() => [rnd(xShape), rnd(info.outShape)], ([x, dy]) => tf.engine().runKernel('Conv2DBackpropFilter', { x: x!, dy: dy! }, filterAttrs) as tf.Tensor),
    ];
    ms.forEach((m, i) => (totals[i]! += m));
    const cell = (m: number) => `${m.toFixed(1)} ms ${(macs / m / 1e6).toFixed(2)}`.padStart(22);
    console.log(l.name.padEnd(28) + (macs / 1e6).toFixed(1).padStart(22) + ms.map(cell).join(''));
  }
  console.log('total (one of each layer)'.padEnd(28) + ''.padStart(22) + totals.map((m) => `${m.toFixed(1)} ms`.padStart(22)).join(''));

  // Reductions of BatchNorm (Σ over N,H,W) and global average pooling (mean over H,W).
  console.log('\nreduction'.padEnd(45) + 'built-in'.padStart(14) + 'mixup'.padStart(14) + 'rel. error'.padStart(12));
  const reductions: [string, number[], number[]][] = [
    ['Sum', [batch, 28, 28, 16], [0, 1, 2]],
    ['Sum', [batch, 14, 14, 32], [0, 1, 2]],
    ['Mean', [batch, 28, 28, 16], [0, 1, 2]],
    ['Mean', [batch, 7, 7, 64], [1, 2]],
  ];
  for (const [ri, [name, shape, axis]] of reductions.entries()) {
    const attrs = { axis, keepDims: false } as unknown as tf.NamedAttrMap;
    const builtin = builtinKernel(name);
    const make = () => [tf.randomNormal(shape, 0.5, 1, 'float32', 50 + ri)];
    const a = builtin ? time(make, ([x]) => builtin.kernelFunc({ inputs: { x: x! }, backend, attrs }) as tf.TensorInfo) : NaN;
    const b = time(make, ([x]) => tf.engine().runKernel(name, { x: x! }, attrs) as tf.Tensor);
    // Accuracy against a float64 reduction of the same values.
    const [x] = make();
    const vals = x!.dataSync();
    const c = shape[shape.length - 1]!;
    const ref = new Float64Array(c);
    for (let i = 0; i < vals.length; i++) ref[i % c]! += vals[i]!;
    const r = vals.length / c;
    const got = (tf.engine().runKernel(name, { x: x! }, { axis: [0, 1, 2], keepDims: false }) as tf.Tensor).dataSync();
    let err = 0;
    let mx = 0;
    for (let k = 0; k < c; k++) {
      const want = name === 'Sum' ? ref[k]! : ref[k]! / r;
      err = Math.max(err, Math.abs(got[k]! - want));
      mx = Math.max(mx, Math.abs(want));
    }
    x!.dispose();
    const rel = axis.length === 3 ? (err / mx).toExponential(1) : '';
    console.log(`${name} [${shape}] axes [${axis}]`.padEnd(44) + `${a.toFixed(2)} ms`.padStart(14) + `${b.toFixed(2)} ms`.padStart(14) + rel.padStart(12));
  }

  // Per-channel elementwise ops of BatchNorm (activation ∘ [C] vector).
  console.log('\nper-channel elementwise'.padEnd(45) + 'built-in'.padStart(14) + 'mixup'.padStart(14));
  for (const [name, shape] of [
    ['Multiply', [batch, 28, 28, 16]],
    ['Add', [batch, 28, 28, 16]],
    ['Sub', [batch, 14, 14, 32]],
  ] as [string, number[]][]) {
    const builtin = builtinKernel(name);
    const c = shape[3]!;
    const make = () => [tf.randomNormal(shape, 0, 1, 'float32', 60), tf.randomNormal([c], 0, 1, 'float32', 61)];
    const a = builtin ? time(make, ([x, v]) => builtin.kernelFunc({ inputs: { a: x!, b: v! }, backend, attrs: {} }) as tf.TensorInfo) : NaN;
    const b = time(make, ([x, v]) => tf.engine().runKernel(name, { a: x!, b: v! }, {}) as tf.Tensor);
    console.log(`${name} [${shape}] ∘ [${c}]`.padEnd(44) + `${a.toFixed(2)} ms`.padStart(14) + `${b.toFixed(2)} ms`.padStart(14));
  }
}

await main();
