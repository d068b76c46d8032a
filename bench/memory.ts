/**
 * `node dist/bench/memory.js [depth:batch ...]`: the peak memory of a training step on the wasm
 * backend, measured, next to the estimate of src/model/memory.ts (a calibration, not a test).
 *
 * Every (depth, batch) pair runs in its own process (a wasm heap never shrinks, so its size after
 * the steps is the step's high-water mark): configs/mixup.json (input mixup, 2 shards, 28×28
 * crops) with model.depth and train.batchSize overridden, synthetic images, 2 training steps
 * through src/train/step.ts's trainStep. Printed per pair: the wasm heap (emscripten's
 * `HEAPU8.length`, which includes its growth slack of up to 20 %, capped at 96 MiB, above the
 * request), tfjs's `tf.profile` peakBytes of the second step (tensors the engine tracks; not the
 * project's composite-kernel temporaries nor XNNPACK scratch), the estimate, and how the process
 * ended (an abort is reported with its message). A pair ending in `i` (`50:500i`) measures an
 * inference batch (inferLogits, as evaluation runs it) instead. Default pairs: depth 8 at batch 16,
 * 64; depth 14 and 20 at 8, 32, 64; depth 50 at 8, 16, 32; depth 50 inference at 500.
 *
 *   node dist/bench/memory.js                     # the default pairs
 *   node dist/bench/memory.js 50:128 8:1024 50:1000i   # these
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, selectBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { mixupPlacement } from '../src/config/schema.js';
import { planMixShards } from '../src/mixup/plan.js';
import { networkSizeOf, stepBytes, wasmMemoryCost } from '../src/model/memory.js';
import { uniformStream } from '../src/random.js';
import { buildNet } from '../src/engine/tfjs/engine.js';
import { SGD } from '../src/engine/tfjs/sgd.js';
import { inferLogits, settleStep, trainStep } from '../src/engine/tfjs/step.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 2 ** 20;

/**
 * One pair, in this process: prints one JSON line `{depth, batch, heap, peakBytes, estimate}`.
 * @param inference measure an inference batch (inferLogits, BatchNorm on moving statistics) instead of a training step.
 */
async function measureOne(config: string, depth: number, batch: number, inference: boolean): Promise<void> {
  await selectBackend('wasm', undefined, {});
  const cfg = loadConfig(config, { overrides: [['model.depth', depth], ['train.batchSize', batch]] });
  const [, h, w] = cfg.data.imageShape as [number, number, number];
  const u = uniformStream(0, 'bench-memory');
  const pixels = new Float32Array(batch * h * w * 3).map(() => (u() - 0.5) * 4);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % cfg.model.numClasses);
  const net = buildNet(cfg);
  const opt = new SGD(net, { momentum: cfg.train.momentum, wd: cfg.train.wd, form: cfg.train.sgd });
  const wasm = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
  const heapStart = wasm.HEAPU8.length;
  const placement = mixupPlacement(cfg);
  const step = async (i: number) => {
    const images = tf.tensor4d(pixels, [batch, h, w, 3]);
    try {
      if (inference) {
        const logits = inferLogits(net, images);
        await logits.data();
        logits.dispose();
        return;
      }
      const plan = placement ? planMixShards(batch, cfg.train.shards, cfg.mixup, uniformStream(0, 'mixup', 0, i)) : null;
      await settleStep(trainStep(net, opt, images, labels, plan, { lr: 0.1, gradScale: cfg.train.gradScale, loss: cfg.loss, shards: cfg.train.shards }));
    } finally {
      images.dispose();
    }
  };
  await step(0);
  let peakBytes = 0;
  const info = await tf.profile(async () => {
    await step(1);
  });
  peakBytes = info.peakBytes;
  const size = networkSizeOf(cfg.model, h, w);
  const estimate = stepBytes(size, batch, inference ? 'inference' : 'train', wasmMemoryCost(cfg.model.arch));
  console.log(JSON.stringify({ depth, batch, heapStart, heap: wasm.HEAPU8.length, peakBytes, estimate, parameters: net.parameterCount() }));
  net.dispose();
  opt.dispose();
  releaseBackends();
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--one') {
    void measureOne(args[1]!, Number(args[2]), Number(args[3]), args[4] === 'i');
    return;
  }
  const at = args.indexOf('--config');
  const config = at >= 0 ? args.splice(at, 2)[1]! : `${repoRoot}configs/mixup.json`;
  if (at >= 0) console.log(`config ${config} (model.depth applies to mxnet-preact only)`);
  const pairs = (args.length > 0 ? args : ['8:16', '8:64', '14:8', '14:32', '14:64', '20:8', '20:32', '20:64', '50:8', '50:16', '50:32', '50:500i']).map(
    (p) => [...p.replace(/i$/, '').split(':').map(Number), p.endsWith('i')] as [number, number, boolean],
  );
  console.log('depth batch   heap MiB  tf peak MiB  estimate MiB  est/heap  end');
  for (const [depth, batch, inference] of pairs) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', config, String(depth), String(batch), inference ? 'i' : 't'], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) {
      const why = (r.stderr + r.stdout).split('\n').filter((l) => /Abort|out of bounds|Error|memory/i.test(l)).slice(0, 2).join(' | ');
      console.log(`${String(depth).padStart(5)} ${String(batch).padStart(5)}  failed (exit ${r.status}, ${r.signal ?? ''}): ${why}`);
      continue;
    }
    const m = JSON.parse(line) as { heap: number; peakBytes: number; estimate: number };
    console.log(
      `${String(depth).padStart(5)} ${String(batch).padStart(5)}  ${(m.heap / MiB).toFixed(0).padStart(9)}  ${(m.peakBytes / MiB).toFixed(0).padStart(11)}  ${(m.estimate / MiB).toFixed(0).padStart(12)}  ${(m.estimate / m.heap).toFixed(2).padStart(8)}  ok${inference ? ' (inference)' : ''}`,
    );
    console.log(`  raw ${line}`);
  }
}

main();
