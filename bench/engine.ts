/**
 * `npm run bench:engine`: the static WebGPU engine's training step (src/engine/webgpu) at depth 50,
 * 28×28 crops, a benchmark, not a test.
 *
 *   npm run bench:engine -- [--device null|gpu] [--batch N] [--depth N] [--arch A] [--width W] [--steps N] [--warmup N]
 *                           [--experiments erm,mixup,mixup-feature] [--toggles none,skip_validation,...]
 *                           [--read-every N]
 *
 * Prints per configuration: dispatches per step, distinct pipelines, device memory, the GPU objects
 * created per step after warm-up (every `create*` call of the device during the timed steps, counted
 * by device.ts countingDevice as the engine test does: buffers, bind groups, pipelines and other
 * objects, 0 for a static engine, and the single-use command encoders, one per submit and settle),
 * the FLOPs of a step (convolutions forward, backward-data and backward-filter, 2 FLOPs per
 * multiply-add; fc1 too), the wall time per step and from it img/s and TFLOPS, and (on a GPU) the host
 * time per step spent inside trainStep (the rest of the wall time is the device's, or waiting for it).
 * The batch is `--batch`, default 128. When the device runs out of memory building it, the bench
 * names the device memory the engine asked for and the largest batch that fits (bisection over real
 * builds): with `--batch`, or when none fits, that one line on stderr and exit 2; without, it times
 * the largest batch that fits (the dispatches and objects of a step, hence its host cost, do not
 * depend on the batch).
 * - `--device null` (Dawn's null backend: accepts every command, runs nothing): the wall time is
 *   pure host cost (JavaScript, Dawn's validation and encoding). The null backend holds at most
 *   512 MiB of buffers (device.ts NULL_BACKEND_MEMORY, a fixed cap of that backend), less than PreAct
 *   ResNet-18 takes at batch 128 (744 MiB); the ceiling at batch 128 is 128 / (host time per step).
 * - `--device gpu` (default): Dawn's default adapter (a GPU, else lavapipe);
 *   the wall time includes the device's work (settled every `--read-every` steps, default 8).
 * Then (unless `--no-model`) the model table of bench/engine-model.ts: per kernel class and stage the
 * dispatches, FLOPs, global-memory bytes, workgroups and waves on a 132-SM GPU, from the kernels'
 * own indexing — the same on every device, a model rather than a measurement.
 * `--profile` (a GPU with timestamp-query): one more step with a timestamped pass per dispatch, its
 * device time per kernel class and stage with achieved TFLOPS and GB/s (src/engine/webgpu/profile.ts).
 * `--arch preact-resnet18 | wrn-28-10` (and `--width`) benchmarks the paper's networks on 32×32 with
 * its authors' recipe (PyTorch SGD, soft-ce, one λ and a permutation); every run line starts with the
 * network's trainable parameters and forward multiply-adds per image (model/spec.ts forwardMacs: PreAct
 * ResNet-18 11,171,274 and 0.56 G). A network the static engine cannot build (engine/webgpu/fit.ts)
 * prints why instead of a timing.
 * `--toggles` runs each configuration once per Dawn toggle set (`none`, `skip_validation`,
 * `disable_robustness`, `skip_validation+disable_robustness`; a fresh Dawn instance each).
 * Images, targets and plans are synthetic and made before timing; a step's time is
 * StaticResNet.trainStep (plan packing, two writeBuffers, encoding one compute pass, submit).
 */
import os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { countingDevice, createdSince, keptObjects, NULL_BACKEND_MEMORY, openDevice, type CreateCounts } from '../src/engine/webgpu/device.js';
import { StaticResNet } from '../src/engine/webgpu/engine.js';
import { planMix, type MixPlan } from '../src/mixup/plan.js';
import { majorityLabels, mixLabels } from '../src/mixup/targets.js';
import { convOutSize } from '../src/engine/webgpu/convs.js';
import { forwardMacs, networkSpec, parameterCount, type NetworkSpec } from '../src/model/spec.js';
import { staticEngineUnsupported } from '../src/engine/webgpu/fit.js';
import { uniformStream } from '../src/random.js';
import { MODEL_ARCHS, type MixupPlacement, type ModelArch } from '../src/config/schema.js';
import type { DispatchCost } from '../src/engine/webgpu/cost.js';
import { modelLines } from './engine-model.js';
import { StepProfiler, timeBreakdown, type TimedGroup } from '../src/engine/webgpu/profile.js';

const MiB = 2 ** 20;
const EXPERIMENTS: Record<string, MixupPlacement | null> = { erm: null, mixup: 'input', 'mixup-feature': 'head' };

function int(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
    return n;
  };
}

/**
 * FLOPs of one training step of a batch (2 per multiply-add): every convolution forward, its
 * backward-data (conv0's too: bn_data's β needs it) and backward-filter, and fc1 three times.
 */
export function stepFlops(spec: NetworkSpec, batch: number, height: number, width: number): number {
  let f = 0;
  let h = height;
  let w = width;
  const conv = (k: number, stride: number, inC: number, outC: number) => {
    const o = convOutSize({ batch, inH: h, inW: w, inC, outC, k: k as 1 | 3, stride: stride as 1 | 2 });
    f += 3 * 2 * batch * o.outH * o.outW * k * k * inC * outC;
    return o;
  };
  conv(3, 1, 3, spec.conv0.outC);
  for (const st of spec.stages) {
    for (const u of st) {
      const o = conv(u.convs[0]!.k, u.stride, u.inC, u.outC);
      if (u.sc) conv(1, u.stride, u.inC, u.outC);
      h = o.outH;
      w = o.outW;
      conv(3, 1, u.outC, u.outC);
    }
  }
  return f + 3 * 2 * batch * spec.fcIn * spec.numClasses;
}

interface Run {
  experiment: string;
  toggles: string[];
  /** The batch timed: the asked one (default 128), or the largest below it that the device holds. */
  batch: number;
  /** Why the asked batch was not built (the device's memory), or null. */
  refusal: string | null;
  /** Device memory the engine takes at the asked batch, MiB (what it asked for when the device refused). */
  plannedMb: number;
  /** GPU objects created during the timed steps (after warm-up): {@link countingDevice}. */
  created: CreateCounts;
  /** Settles during the timed steps (each submits one command encoder of its own). */
  settles: number;
  dispatches: number;
  pipelines: number;
  mb: number;
  msPerStep: number;
  /** Host time per step inside trainStep (packing, writeBuffers, encoding, submit), without settles. */
  hostMsPerStep: number;
  flops: number;
  /** The step's dispatches with their modelled cost. */
  costs: DispatchCost[];
  /** One profiled step per class and stage (`--profile`), or why there is none. */
  profile?: TimedGroup[] | string;
}

type BuildOptions = ConstructorParameters<typeof StaticResNet>[1];

/** A build the device refused: its first error line, and the bytes of buffers the engine asked for. */
interface Refused {
  why: string;
  /** The device ran out of memory (rather than refusing a descriptor). */
  oom: boolean;
  bytes: number;
}

/**
 * Builds the engine and waits for the device's verdict: the engine, or why the device refused it
 * (the engine still asks for every buffer when one fails, so `bytes` is its whole plan).
 */
async function tryBuild(device: GPUDevice, o: BuildOptions): Promise<StaticResNet | Refused> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let e: StaticResNet | null = null;
  let thrown: Error | null = null;
  try {
    e = new StaticResNet(device, o);
  } catch (x) {
    thrown = x as Error;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (e && !validation && !oom) return e;
  const bytes = e?.bytes ?? 0;
  e?.dispose();
  const why = (oom ?? validation)?.message ?? thrown?.message ?? 'refused';
  return { why: why.split('\n')[0]!, oom: oom !== null, bytes };
}

/**
 * The engine at `wanted`, or else at the largest batch below it that the device builds (bisection
 * over real builds, starting at `hint`), with the refusal of `wanted`; batch 0 when none builds.
 * @throws Error when the device refuses `wanted` for anything but memory (a validation error).
 */
async function buildLargest(device: GPUDevice, o: Omit<BuildOptions, 'batch'>, wanted: number, hint: number): Promise<{ engine: StaticResNet | null; batch: number; refused: Refused | null; bytesAtOne?: number }> {
  const first = await tryBuild(device, { ...o, batch: wanted });
  if (first instanceof StaticResNet) return { engine: first, batch: wanted, refused: null };
  if (!first.oom) throw new Error(`batch ${wanted}: ${first.why}`);
  let atOne = 0;
  const fits = async (b: number) => {
    const r = await tryBuild(device, { ...o, batch: b });
    if (r instanceof StaticResNet) r.dispose();
    else if (b === 1) atOne = r.bytes;
    return r instanceof StaticResNet;
  };
  let lo = 0;
  let hi = wanted;
  if (hint > 0 && hint < wanted && (await fits(hint))) {
    lo = hint;
    if (hint + 1 < wanted && !(await fits(hint + 1))) hi = hint + 1;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (await fits(mid)) lo = mid;
    else hi = mid;
  }
  const engine = lo > 0 ? ((await tryBuild(device, { ...o, batch: lo })) as StaticResNet) : null;
  return { engine, batch: lo, refused: first, bytesAtOne: atOne };
}

/**
 * Why batch `wanted` was not built, in one line, naming the largest batch that fits (`fits`; 0 for
 * none, then what batch 1 takes, `atOne` bytes).
 */
function refusalLine(label: string, wanted: number, r: Refused, adapter: string, nullBackend: boolean, fits: number, atOne: number): string {
  const cap = nullBackend
    ? `Dawn's null backend, which backs every buffer with host memory and holds at most ${NULL_BACKEND_MEMORY / MiB} MiB of them`
    : `${adapter} (${r.why})`;
  const best = fits > 0 ? `the largest batch that fits is ${fits} (--batch ${fits})` : `no batch fits (batch 1 takes ${(atOne / MiB).toFixed(0)} MiB)`;
  return `${label} batch ${wanted}: the static engine's buffers take ${(r.bytes / MiB).toFixed(0)} MiB, more than ${cap}; ${best}`;
}

interface BenchOptions { device: string; batch?: number; depth: number; arch: ModelArch; width?: number; steps: number; warmup: number; readEvery: number; profile: boolean }

/** Thrown when no engine is built at the asked batch: the one line to print. */
class Refusal extends Error {}

async function bench(opts: BenchOptions, experiment: string, toggles: string[], hint: number): Promise<Run> {
  // no adapter (no libvulkan, no Vulkan driver): the one line that says what is missing, exit 2, no stack trace
  const dev = await openDevice({ backend: opts.device === 'null' ? 'null' : undefined, toggles, features: opts.profile ? ['timestamp-query'] : [] }).catch((e: Error) => {
    console.error(`bench:engine: ${e.message}`);
    return process.exit(2);
  });
  // Every create* call of the engine goes through the counter (a Proxy: a property lookup more per call).
  const { device, counts } = countingDevice(dev.device);
  try {
    const mixAt = EXPERIMENTS[experiment]!;
    const paper = opts.arch !== 'mxnet-preact';
    const H = paper ? 32 : 28;
    const K = 10;
    const wanted = opts.batch ?? 128;
    const built = await buildLargest(device, {
      arch: opts.arch, depth: opts.depth, modelWidth: opts.width ?? null, numClasses: K, height: H, width: H, shards: 1, mixAt, mixBackward: 'exact',
      loss: mixAt && !paper ? 'mixture-nll' : 'soft-ce', gradScale: mixAt && !paper ? 1 / 64 : 1, momentum: 0.9, wd: 1e-4, sgd: paper ? 'pytorch' : 'mxnet',
      evalBatch: 0, capacity: Math.max(64, opts.readEvery),
    }, wanted, hint);
    const refusal = built.refused ? refusalLine(`${experiment}: ${networkSpec(opts.depth, K, opts.arch, opts.width ?? null).label}`, wanted, built.refused, dev.adapter, opts.device === 'null', built.batch, built.bytesAtOne ?? 0) : null;
    // An asked-for batch is timed as asked or not at all; the default one falls back to the largest that fits (the host cost does not depend on it).
    if (refusal !== null && (opts.batch !== undefined || built.engine === null)) {
      built.engine?.dispose();
      throw new Refusal(refusal);
    }
    const engine = built.engine!;
    const B = built.batch;
    const plannedBytes = built.refused?.bytes ?? engine.bytes;
    const images = Float32Array.from({ length: B * H * H * 3 }, (_, i) => Math.sin(i));
    const labels = Int32Array.from({ length: B }, (_, i) => i % K);
    const plans: (MixPlan | null)[] = [];
    for (let s = 0; s < 4; s++) plans.push(mixAt ? planMix(B, { alpha: 1, mixRate: 0.7, scheme: paper ? 'permutation' : 'pairs' }, uniformStream(1, 'mixup', 0, s)) : null);
    const targets = plans.map((p) => mixLabels(labels, K, p));
    const majority = plans.map((p) => majorityLabels(labels, p));
    let hostMs = 0;
    let settles = 0;
    const settle = async () => {
      if (engine.pending === 0) return;
      settles++;
      await engine.settle();
    };
    const step = async (s: number) => {
      const h0 = performance.now();
      engine.trainStep(images, targets[s % 4]!, majority[s % 4]!, plans[s % 4]!, 0.1);
      hostMs += performance.now() - h0;
      if (engine.pending >= opts.readEvery) await settle();
    };
    for (let s = 0; s < Math.max(1, opts.warmup); s++) await step(s);
    await settle();
    hostMs = 0;
    settles = 0;
    const warm = { ...counts };
    const t0 = performance.now();
    for (let s = 0; s < opts.steps; s++) await step(s);
    await settle();
    const ms = (performance.now() - t0) / opts.steps;
    const created = createdSince(warm, counts);
    let profile: TimedGroup[] | string | undefined;
    if (opts.profile) {
      if (opts.device === 'null') profile = 'the null backend runs nothing';
      else if (!dev.device.features.has('timestamp-query')) profile = `${dev.adapter} has no timestamp-query`;
      else {
        const p = new StepProfiler(dev.device, engine.dispatchesPerStep);
        engine.profileWith(p);
        await step(0);
        engine.profileWith(null);
        await engine.settle();
        profile = timeBreakdown(engine.stepCosts(), await p.durations());
        p.destroy();
      }
    }
    const run: Run = {
      experiment, toggles, batch: B, refusal, plannedMb: plannedBytes / MiB, created, settles, dispatches: engine.dispatchesPerStep, pipelines: engine.pipelineCount,
      mb: engine.bytes / MiB, msPerStep: ms, hostMsPerStep: hostMs / opts.steps, flops: stepFlops(engine.spec, B, H, H), costs: engine.stepCosts(), profile,
    };
    engine.dispose();
    return run;
  } finally {
    dev.close();
  }
}

/** The measured table of one profiled step (device time per class and stage, modelled work per second). */
function profileLines(groups: readonly TimedGroup[]): string[] {
  const out = [`one profiled step (timestamp-query, a pass per dispatch): ms, and the model's FLOPs and distinct bytes per measured second`];
  out.push(`${'class'.padEnd(16)} ${'stage'.padEnd(7)} ${'disp'.padStart(5)} ${'ms'.padStart(9)} ${'TFLOPS'.padStart(8)} ${'GB/s'.padStart(8)}`);
  for (const g of groups) {
    out.push(`${(g.class === 'all' ? (g.stage === 'all' ? 'step' : 'all classes') : g.class).padEnd(16)} ${g.stage.padEnd(7)} ${String(g.dispatches).padStart(5)} ${g.ms.toFixed(3).padStart(9)} ${g.tflops.toFixed(2).padStart(8)} ${g.gbps.toFixed(0).padStart(8)}`);
  }
  return out;
}

const program = new Command('bench:engine')
  .description('the static WebGPU engine: dispatches, host/device time per step, img/s, TFLOPS')
  .option('--device <kind>', 'null (host cost only) or gpu (Dawn default adapter)', 'gpu')
  .option('--batch <n>', 'training batch, exactly (default: 128, else the largest that fits the device)', int(1))
  .option('--depth <n>', 'ResNet depth of mxnet-preact (6n+2 below 164)', int(8), 50)
  .option('--arch <name>', `model.arch: ${MODEL_ARCHS.join(', ')}`, 'mxnet-preact')
  .option('--width <n>', "model.width (stage 1's channels; default the arch's own)", int(1))
  .option('--steps <n>', 'timed steps', int(1), 100)
  .option('--warmup <n>', 'untimed steps first', int(0), 3)
  .option('--read-every <n>', 'settle every N steps', int(1), 8)
  .option('--experiments <list>', 'erm, mixup (input), mixup-feature (head)', 'erm,mixup,mixup-feature')
  .option('--toggles <list>', 'Dawn toggle sets, comma-separated; + joins toggles of one set', 'none')
  .option('--no-model', 'leave out the model table (FLOPs, bytes, workgroups per kernel class and stage)')
  .option('--profile', 'time one step per kernel class and stage with timestamp-query (gpu)', false)
  .parse();
const o = program.opts<BenchOptions & { experiments: string; toggles: string; model: boolean }>();
if (!(MODEL_ARCHS as readonly string[]).includes(o.arch)) program.error(`error: option '--arch <name>' must be one of ${MODEL_ARCHS.join(', ')}, got ${o.arch}`);
if (o.device !== 'null' && o.device !== 'gpu') program.error(`error: option '--device <kind>' must be null or gpu, got ${o.device}`);
const experiments = o.experiments.split(',');
for (const e of experiments) if (!(e in EXPERIMENTS)) program.error(`error: option '--experiments': unknown experiment ${e} (erm, mixup, mixup-feature)`);
const toggleSets = o.toggles.split(',').map((t) => (t === 'none' ? [] : t.split('+')));
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; node ${process.version}`);
const spec = networkSpec(o.depth, 10, o.arch, o.width ?? null);
const side = o.arch === 'mxnet-preact' ? 28 : 32;
console.log(`network: ${spec.label}, ${parameterCount(spec).toLocaleString('en-US')} trainable parameters, ${(forwardMacs(spec, side, side) / 1e9).toFixed(3)} G multiply-adds forward per ${side}×${side} image`);
const unsupported = staticEngineUnsupported(spec);
if (unsupported !== null) {
  console.log(`the static engine ${unsupported}: no timing (a run falls back to tfjs-webgpu)`);
  process.exit(0);
}
let hint = 0;
try {
  for (const toggles of toggleSets) {
    for (const e of experiments) {
      const r = await bench({ ...o }, e, toggles, hint);
      hint = r.batch;
      if (r.refusal !== null) console.log(`${r.refusal}; timed at batch ${r.batch} (a static engine's host cost per step does not depend on the batch: the same dispatches and objects)`);
      const perImage = r.flops / r.batch;
      const speed =
        o.device === 'null'
          ? `host ceiling at batch 128: ${Math.round((128 * 1000) / r.msPerStep)} img/s`
          : `${Math.round((r.batch * 1000) / r.msPerStep)} img/s, ${((r.flops / r.msPerStep) * 1e-9).toFixed(2)} TFLOPS; host ${r.hostMsPerStep.toFixed(3)} ms/step in trainStep`;
      const c = r.created;
      const memory = r.refusal === null ? `${r.mb.toFixed(0)} MiB device memory` : `${r.mb.toFixed(0)} MiB device memory (${r.plannedMb.toFixed(0)} MiB at batch ${o.batch ?? 128})`;
      console.log(
        `${e.padEnd(13)} toggles ${(toggles.join('+') || 'none').padEnd(36)} ${spec.label} batch ${r.batch}: ${r.dispatches} dispatches/step, ${r.pipelines} pipelines, ${memory}; ` +
          `${keptObjects(c) / o.steps} objects created per step after warm-up (${o.steps} steps: ${c.buffers} buffers, ${c.bindGroups} bind groups, ${c.pipelines} pipelines, ${c.other} other; ` +
          `${c.commandEncoders} single-use command encoders for ${o.steps} submits and ${r.settles} settles); ` +
          `${(perImage / 1e9).toFixed(3)} GFLOP/image, ${(r.flops / 1e9).toFixed(1)} GFLOP/step; ${r.msPerStep.toFixed(3)} ms/step (${o.device === 'null' ? 'host only' : 'host + device'}), ${speed}`,
      );
      if (o.model && toggles === toggleSets[0]) console.log(modelLines(r.costs).join('\n'));
      if (typeof r.profile === 'string') console.log(`profile: none (${r.profile})`);
      else if (r.profile) console.log(profileLines(r.profile).join('\n'));
    }
  }
} catch (e) {
  if (!(e instanceof Refusal)) throw e;
  console.error(`bench:engine: ${e.message}`);
  process.exit(2);
}
console.log(`load at end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
