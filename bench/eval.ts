/**
 * `npm run bench:eval`: inference images per second of `evaluate()` (src/evaluate/evaluate.ts: BatchNorm
 * moving statistics, no gradient tape) over the validation split, batches of train.evalBatchSize
 * (default 500), the depth-50 network with freshly initialised weights (a benchmark, not a test).
 *
 *   npm run bench:eval -- [--data-dir DIR] [--backends wasm,cpu] [--depth N] [--eval-batch N]
 *                         [--limit N] [--threads N] [--reps N]      (--help: each option)
 *
 * With `--data-dir` the val split comes through `openPipeline(cfg, 'val')` (decode + center crop in
 * worker threads, as `mixup train` evaluates after every epoch); without it, synthetic batches
 * (10,000 samples). `--limit` uses the first N validation samples (data.valLimit). The first pass is
 * a warm-up (decode, XNNPACK packing); `--reps` (default 1) timed passes follow, the best is
 * reported. The cpu backend runs only when named in `--backends` (it takes minutes).
 */
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { releaseBackends, selectBackend, type ConcreteBackend, type SelectedBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { openPipeline } from '../src/data/index.js';
import type { DataPipeline } from '../src/data/types.js';
import { TfjsEngine } from '../src/engine/tfjs/engine.js';
import { engineOptions } from '../src/engine/engine.js';
import { evaluate } from '../src/evaluate/evaluate.js';
import { inferLogits } from '../src/engine/tfjs/step.js';
import { deviceKernelMs, intOption, listDefault, listOption, loadLine, machineLine, repoRoot, syntheticPipeline } from './common.js';

const pos = intOption(1);
const opts = new Command('bench:eval')
  .description('inference images per second of evaluate() over the validation split, per backend')
  .option('--data-dir <dir>', 'CIFAR-10 directory whose val split is read through openPipeline (default: synthetic batches)')
  .addOption(listDefault(new Option('--backends <list>', 'comma-separated backends to run (cpu takes minutes)').argParser(listOption), ['wasm']))
  .option('--depth <n>', 'ResNet depth (model.depth)', pos, 50)
  .option('--eval-batch <n>', 'samples per inference batch (train.evalBatchSize)', pos, 500)
  .option('--limit <n>', 'use only the first N validation samples (data.valLimit; default: all, 10,000 synthetic)', pos)
  .option('--threads <n>', 'XNNPACK threads of the wasm backend (wasmThreads)', pos)
  .option('--reps <n>', 'timed passes after the warm-up pass; the best is reported', pos, 1)
  .parse()
  .opts<{ dataDir?: string; backends: string[]; depth: number; evalBatch: number; limit?: number; threads?: number; reps: number }>();

const { depth, evalBatch, reps, threads, dataDir } = opts;
const limit = opts.limit ?? null;
const backends = opts.backends as ConcreteBackend[];

console.log(machineLine());
console.log(loadLine('start'));
console.log(`network: ResNet-${depth} (fresh weights), eval batch ${evalBatch}; data: ${dataDir ? `${dataDir} val split through openPipeline` : 'synthetic'}`);
for (const name of backends) {
  let sel: SelectedBackend;
  try {
    sel = await selectBackend(name, undefined, threads !== undefined ? { wasmThreads: threads } : {});
  } catch (e) {
    console.log(`backend ${name}: does not load (${e instanceof Error ? e.message : String(e)})`);
    continue;
  }
  console.log(`backend: ${sel.description}`);
  const overrides: [string, unknown][] = [
    ['model.depth', depth],
    ['train.evalBatchSize', evalBatch],
  ];
  if (dataDir) overrides.push(['data.dir', dataDir]);
  if (limit !== null) overrides.push(['data.valLimit', limit]);
  const cfg = loadConfig(`${repoRoot}configs/erm.json`, { overrides });
  const [, h, w] = cfg.data.imageShape as [number, number, number];
  const n = limit ?? 10_000;
  const data: DataPipeline = dataDir ? await openPipeline(cfg, 'val') : syntheticPipeline(evalBatch, h, w, 10, Math.ceil(n / evalBatch));
  const engine = new TfjsEngine(engineOptions(cfg));
  const net = engine.net;
  try {
    const passes: number[] = [];
    for (let r = 0; r <= reps; r++) {
      const t0 = performance.now();
      const ev = await evaluate(engine, data);
      const s = (performance.now() - t0) / 1000;
      const ips = ev.samples / s;
      console.log(`  ${r === 0 ? 'warm-up' : `pass ${r}`}: ${ev.samples} samples in ${s.toFixed(2)} s = ${ips.toFixed(1)} img/s (top-1 ${(100 * ev.accuracy).toFixed(1)}% of untrained weights)`);
      if (r > 0) passes.push(ips);
    }
    console.log(`${name}: inference ${Math.max(...passes).toFixed(1)} img/s (best of ${reps})`);
    // One more batch, split: host dispatch of the forward pass, then the wait for the device and the read.
    const probe = syntheticPipeline(evalBatch, h, w, 10, 1);
    for await (const b of probe.epoch(0)) {
      const images = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
      const t0 = performance.now();
      const z = inferLogits(net, images);
      const t1 = performance.now();
      await z.data();
      const t2 = performance.now();
      z.dispose();
      const kernels = await deviceKernelMs(() => inferLogits(net, images).dispose());
      images.dispose();
      const dev = typeof kernels === 'number' ? `device kernels ${kernels.toFixed(1)} ms (timestamp-query)` : `device kernel time: ${kernels}`;
      console.log(`  per batch of ${b.size}: dispatch (host) ${(t1 - t0).toFixed(1)} ms, wait for device + read ${(t2 - t1).toFixed(1)} ms; ${dev}`);
    }
    if (name === 'webgpu') releaseBackends();
  } finally {
    engine.dispose();
    await data.close();
  }
}
console.log(`tensors alive: ${tf.memory().numTensors}`);
console.log(loadLine('end'));
releaseBackends();
