/**
 * `npm run bench:kernels`: wasm conv kernel timings at the shapes of the reference's depth-50
 * ResNet on 28×28 CIFAR crops, batch 128 (a benchmark, not a test).
 *
 * For each conv layer shape it times, on the wasm backend: the forward Conv2D (XNNPACK, the speed
 * the gradients are measured against), wasm's built-in Conv2DBackpropInput (XNNPACK
 * deconvolution), the project's Conv2DBackpropInput and Conv2DBackpropFilter (src/kernels, both
 * built on Conv2D). Each kernel does N·OH·OW·KH·KW·Cin·Cout multiply-adds; the table prints the
 * median ms of `--reps` runs after one warm-up, and GMAC/s.
 *
 * Options: `--batch N` (default 128), `--reps N` (default 3), `--quick` (batch 32, 2 reps).
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels, builtinKernel } from '../src/kernels/index.js';
import { convMacs } from '../src/kernels/conv_geometry.js';

const require = createRequire(import.meta.url);

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const quick = process.argv.includes('--quick');
const batch = arg('batch', quick ? 32 : 128);
const reps = arg('reps', quick ? 2 : 3);

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

/** Median ms of `reps` runs of `f` (after one warm-up); `f` returns what it allocated. */
function time(f: () => tf.Tensor | tf.TensorInfo): number {
  const backend = tf.backend();
  const once = () => {
    const t0 = performance.now();
    const out = f();
    const ms = performance.now() - t0;
    if (out instanceof tf.Tensor) out.dispose();
    else backend.disposeData(out.dataId);
    return ms;
  };
  once();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) ms.push(once());
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

async function main(): Promise<void> {
  require('@tensorflow/tfjs-backend-wasm');
  registerWasmTrainingKernels();
  tf.enableProdMode();
  await tf.setBackend('wasm');
  await tf.ready();
  const backend = tf.backend();
  const cpus = os.cpus();
  console.log(`machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores; node ${process.version}; tfjs ${tf.version.tfjs}, backend ${tf.getBackend()} (1 thread)`);
  console.log(`batch ${batch}, median of ${reps} runs after 1 warm-up; GMAC/s = multiply-adds / time\n`);
  const cols = ['layer', 'MMAC', 'Conv2D fwd', 'BackpropInput builtin', 'BackpropInput mixup', 'BackpropFilter mixup'];
  console.log(cols.map((c, i) => (i === 0 ? c.padEnd(28) : c.padStart(22))).join(''));
  const totals = [0, 0, 0, 0];
  const builtinInput = builtinKernel('Conv2DBackpropInput');
  for (const l of layers) {
    const pad = 'same';
    const x = tf.randomNormal([batch, l.hw, l.hw, l.cin], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([l.k, l.k, l.cin, l.cout], 0, 0.1, 'float32', 2) as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(x.shape, w.shape, l.stride, 1, pad);
    const dy = tf.randomNormal(info.outShape, 0, 1, 'float32', 3) as tf.Tensor4D;
    const macs = convMacs(batch, info.outHeight, info.outWidth, l.k, l.k, l.cin, l.cout);
    const common = { strides: [l.stride, l.stride], pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const ms = [
      time(() => tf.conv2d(x, w, l.stride, pad)),
      builtinInput
        ? time(() => builtinInput.kernelFunc({ inputs: { dy, filter: w }, backend, attrs: { ...common, inputShape: x.shape } as unknown as tf.NamedAttrMap }) as tf.TensorInfo)
        : NaN,
      time(() => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...common, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor),
      time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: w.shape } as unknown as tf.NamedAttrMap) as tf.Tensor),
    ];
    ms.forEach((m, i) => (totals[i]! += m));
    const cell = (m: number) => `${m.toFixed(1)} ms ${(macs / m / 1e6).toFixed(2)}`.padStart(22);
    console.log(l.name.padEnd(28) + (macs / 1e6).toFixed(1).padStart(22) + ms.map(cell).join(''));
    tf.dispose([x, w, dy]);
  }
  console.log('total (one of each layer)'.padEnd(28) + ''.padStart(22) + totals.map((m) => `${m.toFixed(1)} ms`.padStart(22)).join(''));

  // Reductions of BatchNorm (Σ over N,H,W) and global average pooling (mean over H,W).
  console.log('\nreduction'.padEnd(45) + 'built-in'.padStart(14) + 'mixup'.padStart(14));
  const reductions: [string, number[], number[]][] = [
    ['Sum', [batch, 28, 28, 16], [0, 1, 2]],
    ['Sum', [batch, 14, 14, 32], [0, 1, 2]],
    ['Mean', [batch, 28, 28, 16], [0, 1, 2]],
    ['Mean', [batch, 7, 7, 64], [1, 2]],
  ];
  for (const [name, shape, axis] of reductions) {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 4);
    const attrs = { axis, keepDims: false } as unknown as tf.NamedAttrMap;
    const builtin = builtinKernel(name);
    const a = builtin ? time(() => builtin.kernelFunc({ inputs: { x }, backend, attrs }) as tf.TensorInfo) : NaN;
    const b = time(() => tf.engine().runKernel(name, { x }, attrs) as tf.Tensor);
    console.log(`${name} [${shape}] axes [${axis}]`.padEnd(44) + `${a.toFixed(2)} ms`.padStart(14) + `${b.toFixed(2)} ms`.padStart(14));
    x.dispose();
  }
}

await main();
