/**
 * `npm run bench:train`: training images per second of the reference's network (depth 50,
 * batch 128, 28×28 crops by default) for the experiments erm / mixup / mixup-feature, on each
 * backend that loads, with the data pipeline running as in `mixup train` (a benchmark, not a test).
 *
 *   npm run bench:train -- [--data-dir DIR] [--backends wasm,cpu] [--experiments erm,mixup,mixup-feature]
 *                          [--steps N] [--warmup N] [--cpu-steps N] [--batch N] [--depth N]
 *                          [--threads N] [--kernels LIST] [--profile]       (--help: each option)
 *
 * Each experiment's config is configs/<experiment>.json (α, mix_rate, loss, gradScale as in
 * training) with model.depth / train.batchSize overridden. The loop is the training loop's
 * (src/train/run.ts): next batch from the pipeline → `tf.tensor4d` → planMixShards → trainStep → dispose.
 * With `--data-dir` the batches come from `openPipeline(cfg, 'train')` on that directory (decode,
 * augment in data.workers worker threads, as in training); without it, from synthetic batches
 * (random pixels, made once; no pipeline cost). `--warmup` steps (default 1: XNNPACK's first
 * packing, kernel setup) are not timed; then `--steps` (default 5) are, and img/s is their batch
 * total over their wall time, data waits included; img per CPU-second (all threads of the process)
 * is printed too: it moves less than img/s when other jobs share the cores. Default backends: every one that loads except
 * cpu; the cpu backend (pure JS: ~1 min per depth-8 batch-32 step here, ~25 min at depth 50 batch
 * 128) runs only when named in `--backends`, and then `--cpu-steps` (default 1) steps, no warm-up.
 *
 * `--profile` then runs one more step under `tf.profile` and prints the time per kernel (wall time
 * of each kernel call, the project's composite wasm kernels counted as one) and the rest of the
 * step (JS, tape bookkeeping) — profiling itself slows the step a little.
 *
 * `--kernels LIST` (wasm only): keep only these of the project's wasm kernels (src/engine/tfjs/kernels,
 * WASM_TRAINING_KERNELS), restore the built-in ones for the rest — e.g. `--kernels
 * Conv2DBackpropFilter` is the state before issue 6 (only the missing kernel added); `none` is not
 * possible (wasm has no Conv2DBackpropFilter of its own).
 *
 * `--threads N`: XNNPACK threads of the wasm backend (config key wasmThreads; MIXUP_WASM_THREADS
 * overrides). The machine is printed with its load average at start and end: on a shared machine,
 * compare numbers taken at similar load.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { releaseBackends, selectBackend, AUTO_ORDER, type ConcreteBackend, type SelectedBackend } from '../src/engine/tfjs/backend.js';
import { builtinKernel, WASM_TRAINING_KERNELS } from '../src/engine/tfjs/kernels/index.js';
import { EXPERIMENTS, mixupPlacement, type Config, type Experiment } from '../src/config/schema.js';
import { loadConfig } from '../src/config/load.js';
import { openPipeline } from '../src/data/index.js';
import { planMixShards } from '../src/mixup/plan.js';
import { uniformStream } from '../src/random.js';
import { buildNet } from '../src/engine/tfjs/engine.js';
import { SGD } from '../src/engine/tfjs/sgd.js';
import { settleStep, trainStep, type PendingStep } from '../src/engine/tfjs/step.js';
import { deviceKernelMs, intOption, listDefault, listOption, loadLine, machineLine, repoRoot, syntheticPipeline } from './common.js';

type Options = {
  dataDir?: string;
  backends: string[];
  experiments: Experiment[];
  steps: number;
  warmup: number;
  cpuSteps: number;
  batch: number;
  depth: number;
  threads?: number;
  kernels?: string[];
  profile?: boolean;
};

/** `--experiments` value: each name must be one of EXPERIMENTS. */
function experimentList(value: string): Experiment[] {
  const list = listOption(value) as Experiment[];
  for (const e of list) if (!EXPERIMENTS.includes(e)) throw new InvalidArgumentError(`unknown experiment '${e}' (${EXPERIMENTS.join(', ')}).`);
  return list;
}

/** The command line of bench:train (parsed in main(), so that importing this file parses nothing). */
function parseArgs(argv: string[]): Options {
  const nonNeg = intOption(0);
  return new Command('bench:train')
    .description('training images per second of the reference ResNet per backend and experiment')
    .option('--data-dir <dir>', 'CIFAR-10 directory to read batches from through openPipeline (default: synthetic batches)')
    // cpu (pure JS) takes ~1 min per depth-8 batch-32 step here, ~25 min at depth 50 batch 128: only when named.
    .addOption(listDefault(new Option('--backends <list>', 'comma-separated backends to run (cpu only when named)').argParser(listOption), AUTO_ORDER.filter((b) => b !== 'cpu')))
    .addOption(listDefault(new Option('--experiments <list>', `comma-separated experiments (${EXPERIMENTS.join(', ')})`).argParser(experimentList), [...EXPERIMENTS]))
    .option('--steps <n>', 'timed steps per experiment', nonNeg, 5)
    .option('--warmup <n>', 'untimed warm-up steps before them', nonNeg, 1)
    .option('--cpu-steps <n>', 'timed steps on the cpu backend (no warm-up)', nonNeg, 1)
    .option('--batch <n>', 'batch size (train.batchSize)', nonNeg, 128)
    .option('--depth <n>', 'ResNet depth (model.depth)', nonNeg, 50)
    .option('--threads <n>', 'XNNPACK threads of the wasm backend (wasmThreads)', nonNeg)
    .option('--kernels <list>', `wasm only: keep only these project kernels (${WASM_TRAINING_KERNELS.join(', ')})`, listOption)
    .option('--profile', 'then profile one more step and print the time per kernel')
    .parse(argv, { from: 'user' })
    .opts<Options>();
}

interface Timing {
  steps: number;
  seconds: number;
  dataSeconds: number;
  /** Host (JavaScript) time dispatching the steps: trainStep() until it returns, nothing waited for. */
  dispatchSeconds: number;
  /** Time then spent waiting for the device to finish and the loss to be read (settleStep). */
  waitSeconds: number;
  /** webgpu with timestamp-query: device time of the kernels of one step (tf.time), else a reason. */
  deviceKernelMs?: number | string;
  /** CPU seconds of the process (all threads) over the timed steps. */
  cpuSeconds: number;
  lastLoss: number;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const { steps, warmup, cpuSteps, batch, depth, threads, dataDir } = o;
  const profile = o.profile ?? false;
  const keepKernels = o.kernels ?? null;
  const experiments = o.experiments;
  const backends = o.backends as ConcreteBackend[];

  console.log(machineLine());
  console.log(loadLine('start'));
  console.log(
    `network: ResNet-${depth}, batch ${batch}; data: ${dataDir ? `${dataDir} through openPipeline (decode + augment in data.workers threads, as in training)` : 'synthetic (one fixed random batch, no pipeline cost)'}`,
  );
  console.log(`steps: ${warmup} warm-up + ${steps} timed (cpu: ${cpuSteps} timed, no warm-up)${profile ? ', then 1 profiled' : ''}`);

  const rows: string[] = [];
  const named = process.argv.some((a) => a === '--backends' || a.startsWith('--backends='));
  for (const name of backends) {
    let sel: SelectedBackend;
    try {
      sel = await selectBackend(name, undefined, threads !== undefined ? { wasmThreads: threads } : {});
    } catch (e) {
      console.log(`\nbackend ${name}: does not load (${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    console.log(`\nbackend: ${sel.description}`);
    if (name === 'webgpu' && /software rasteriser/.test(sel.description) && !named) {
      // lavapipe: a CPU; a depth-50 step takes minutes there. Correctness, not speed (docs/backends.md).
      console.log('  skipped: a software adapter; name webgpu in --backends to time it anyway');
      releaseBackends();
      continue;
    }
    if (name === 'wasm' && keepKernels !== null) console.log(`project wasm kernels: ${restoreBuiltins(keepKernels)}`);
    const nSteps = name === 'cpu' ? cpuSteps : steps;
    const nWarm = name === 'cpu' ? 0 : warmup;
    for (const exp of experiments) {
      const overrides: [string, unknown][] = [
        ['model.depth', depth],
        ['train.batchSize', batch],
      ];
      if (dataDir) overrides.push(['data.dir', dataDir]);
      const cfg = loadConfig(`${repoRoot}configs/${exp}.json`, { overrides });
      const t = await runExperiment(cfg, nWarm, nSteps, profile, !!dataDir);
      const ips = (t.steps * batch) / t.seconds;
      const line = `${name.padEnd(5)} ${exp.padEnd(14)} ${ips.toFixed(1).padStart(7)} img/s  (${t.steps} steps in ${t.seconds.toFixed(2)} s, ${((t.seconds / t.steps) * 1000).toFixed(0)} ms/step, waiting for data ${t.dataSeconds.toFixed(2)} s; ${((t.steps * batch) / t.cpuSeconds).toFixed(1)} img per CPU-s; loss ${t.lastLoss.toFixed(3)})`;
      console.log(line);
      console.log(`  ${splitLine(t)}`);
      rows.push(`${sel.description.padEnd(40)} ${line}`);
    }
  }
  console.log(`\nsummary (batch ${batch}, depth ${depth}, ${dataDir ? 'real data' : 'synthetic data'}):`);
  for (const r of rows) console.log(`  ${r}`);
  console.log(loadLine('end'));
  releaseBackends();
}

/**
 * Where a step's time goes: host dispatch (JavaScript queuing the kernels; on the CPU backends the
 * kernels run during it) and the wait for the device and the loss read; on webgpu with
 * timestamp-query also the kernels' device time.
 */
export function splitLine(t: Pick<Timing, 'steps' | 'dispatchSeconds' | 'waitSeconds' | 'deviceKernelMs'>): string {
  const ms = (s: number) => `${((s / t.steps) * 1000).toFixed(1)} ms`;
  let line = `per step: dispatch (host) ${ms(t.dispatchSeconds)}, wait for device + read ${ms(t.waitSeconds)}`;
  if (typeof t.deviceKernelMs === 'number') line += `; device kernels ${t.deviceKernelMs.toFixed(1)} ms (timestamp-query, one step)`;
  else if (typeof t.deviceKernelMs === 'string') line += `; device kernel time: ${t.deviceKernelMs}`;
  return line;
}

/** Re-registers wasm's built-in kernel for every project kernel not in `keep`; returns the kept list. */
function restoreBuiltins(keep: string[]): string {
  for (const k of keep) if (!(WASM_TRAINING_KERNELS as readonly string[]).includes(k)) throw new Error(`--kernels: '${k}' is not one of ${WASM_TRAINING_KERNELS.join(', ')}`);
  for (const k of WASM_TRAINING_KERNELS) {
    if (keep.includes(k)) continue;
    const b = builtinKernel(k);
    if (!b) throw new Error(`--kernels: wasm has no built-in ${k} to fall back to`);
    tf.unregisterKernel(k, 'wasm');
    tf.registerKernel(b);
  }
  return `${keep.join(', ')} only (built-in ${WASM_TRAINING_KERNELS.filter((k) => !keep.includes(k)).join(', ')})`;
}

async function runExperiment(cfg: Config, warmup: number, steps: number, profile: boolean, realData: boolean): Promise<Timing> {
  const placement = mixupPlacement(cfg);
  const [, h, w] = cfg.data.imageShape as [number, number, number];
  const total = warmup + steps + (profile ? 1 : 0);
  const data = realData ? await openPipeline(cfg, 'train') : syntheticPipeline(cfg.train.batchSize, h, w, cfg.model.numClasses, total);
  const net = buildNet(cfg);
  const sgd = new SGD(net, { momentum: cfg.train.momentum, wd: cfg.train.wd });
  const memBefore = tf.memory().numTensors;
  const t: Timing = { steps: 0, seconds: 0, dataSeconds: 0, dispatchSeconds: 0, waitSeconds: 0, cpuSeconds: 0, lastLoss: NaN };
  try {
    const it = data.epoch(0)[Symbol.asyncIterator]();
    for (let i = 0; i < total; i++) {
      const timed = i >= warmup && i < warmup + steps;
      const profiled = i === warmup + steps;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const next = await it.next();
      const t1 = performance.now();
      if (next.done) throw new Error(`the training split has only ${i} batches; use fewer --steps`);
      const b = next.value;
      const step = () => {
        const images = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
        try {
          const plan = placement ? planMixShards(b.size, cfg.train.shards, cfg.mixup, uniformStream(cfg.train.seed, 'mixup', 0, b.index)) : null;
          return trainStep(net, sgd, images, b.labels, plan, { lr: cfg.train.lr, gradScale: cfg.train.gradScale, loss: cfg.loss, shards: cfg.train.shards });
        } finally {
          images.dispose();
        }
      };
      if (profiled) {
        await profileStep(step);
        continue;
      }
      const pending = step();
      const tDispatched = performance.now();
      const r = await settleStep(pending);
      const t2 = performance.now();
      const cpu = process.cpuUsage(cpu0);
      t.lastLoss = r.loss;
      if (timed) {
        t.cpuSeconds += (cpu.user + cpu.system) / 1e6;
        t.steps++;
        t.seconds += (t2 - t0) / 1000;
        t.dataSeconds += (t1 - t0) / 1000;
        t.dispatchSeconds += (tDispatched - t1) / 1000;
        t.waitSeconds += (t2 - tDispatched) / 1000;
      }
      if (i === warmup + steps - 1) {
        let p: PendingStep | null = null;
        t.deviceKernelMs = await deviceKernelMs(() => void (p = step()));
        if (p) await settleStep(p);
      }
    }
    await it.return?.();
  } finally {
    await data.close();
    net.dispose();
    sgd.dispose();
  }
  const leaked = tf.memory().numTensors - memBefore;
  if (leaked > 0) console.log(`  warning: ${leaked} tensors more than before the run`);
  return t;
}

/** One step under tf.profile; prints the kernels by total time. */
async function profileStep(step: () => PendingStep): Promise<void> {
  const checks = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const t0 = performance.now();
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(async () => {
      await settleStep(step());
    });
  } finally {
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', checks);
  }
  const wall = performance.now() - t0;
  const by = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = by.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += k.kernelTimeMs as number;
    e.calls++;
    by.set(k.name, e);
  }
  // tf.customGrad functions (the BatchNorm forward) appear as 'unnamed scope' entries whose time
  // includes the kernels they run, which are listed too: left out of the kernel total.
  const SCOPE = 'unnamed scope';
  const kernelMs = [...by.entries()].reduce((a, [n, e]) => a + (n === SCOPE ? 0 : e.ms), 0);
  const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(`  profile of one step: ${wall.toFixed(0)} ms wall, ${kernelMs.toFixed(0)} ms in kernels, ${(wall - kernelMs).toFixed(0)} ms other (JS, tape, data)`);
  for (const [name, e] of rows) {
    if (e.ms / wall < 0.002) continue;
    const label = name === SCOPE ? 'customGrad scope (BN)*' : name;
    console.log(`    ${label.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms  ${((100 * e.ms) / wall).toFixed(1).padStart(5)}%  ${String(e.calls).padStart(5)} calls`);
  }
  if (by.has(SCOPE)) console.log(`    * the BatchNorm forward as one tf.customGrad scope: its time includes kernels listed above`);
}

// Run only as the script itself (bench/eval.ts imports the helpers above).
const stem = (f: string) => path.resolve(f).replace(/\.(ts|js)$/, '');
if (process.argv[1] !== undefined && stem(fileURLToPath(import.meta.url)) === stem(process.argv[1])) await main();
