/**
 * TensorFlow.js backend selection: the one place that knows which backends exist, how to load
 * them, and what to tell a user when one cannot load.
 *
 * | name           | package                      | tfjs backend |
 * | -------------- | ---------------------------- | ------------ |
 * | tensorflow-gpu | @tensorflow/tfjs-node-gpu    | tensorflow   |
 * | webgpu         | @tensorflow/tfjs-backend-webgpu + webgpu (Dawn) | webgpu |
 * | tensorflow     | @tensorflow/tfjs-node        | tensorflow   |
 * | wasm           | @tensorflow/tfjs-backend-wasm| wasm         |
 * | cpu            | @tensorflow/tfjs (pure JS)   | cpu          |
 *
 * The two tensorflow packages download libtensorflow at install time from outside the npm
 * registry, so on an offline machine their install fails and npm drops them (they are
 * optionalDependencies): then they are reported as not installed. tfjs-node-gpu 4.22 bundles
 * libtensorflow 2.9.1, which needs CUDA 11.2 and cuDNN 8.1: on a CUDA 12/13 machine it loads and
 * silently computes on the CPU, so after activation its own `isUsingGpuDevice` flag decides.
 * webgpu (Dawn through Vulkan/Metal/D3D12, ../dawn.ts) is taken by `auto` only on a hardware
 * adapter; a software rasteriser (lavapipe, SwiftShader) only when asked for by name.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError, firstLine } from '../../errors.js';
import type { BackendName } from '../../config/schema.js';
import { registerWasmTrainingKernels } from './kernels/index.js';
import { registerCpuTrainingKernels } from './kernels/cpu.js';
import { describeAdapter, releaseWebgpu, setUpDawn, watchDeviceErrors, WebgpuUnavailable, type AdapterInfo } from '../dawn.js';
import { registerRelease } from '../release.js';
import { installed, nodeBackendEnv, wasmPackageThreads, type BackendEnv } from './backend-env.js';
import { requestedGpu, requestedWasmThreads, type BackendOptions } from './backend-options.js';

/** A concrete backend (everything but `auto`). */
export type ConcreteBackend = Exclude<BackendName, 'auto'>;

/** Order `auto` tries. */
export const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** What probing a backend found. */
export interface BackendStatus {
  name: ConcreteBackend;
  /** True when the backend loaded and initialised. */
  loads: boolean;
  /** Why it does not load, one line (when `loads` is false). */
  reason?: string;
  /** How to get it, one line (when `loads` is false; absent when `reason` says it, as for a bad --gpu). */
  hint?: string;
  /** GPU name for tensorflow-gpu, thread count for wasm, etc. */
  detail?: string;
  /** Why it does not load, a few words for `auto`'s note (when `loads` is false). */
  brief?: string;
  /** webgpu: the adapter is a software rasteriser (lavapipe, SwiftShader), which `auto` skips. */
  software?: boolean;
}

const PACKAGES: Record<ConcreteBackend, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  webgpu: '@tensorflow/tfjs-backend-webgpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs',
};

const TF_NAMES: Record<ConcreteBackend, string> = {
  'tensorflow-gpu': 'tensorflow',
  webgpu: 'webgpu',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

const HINTS: Record<ConcreteBackend, string> = {
  'tensorflow-gpu':
    'run `npm install @tensorflow/tfjs-node-gpu` on a Linux x86_64 machine with an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1, with internet access (its install downloads libtensorflow); on CUDA 12/13 use --backend webgpu',
  webgpu:
    'run `npm install` (webgpu and @tensorflow/tfjs-backend-webgpu are optional dependencies; the webgpu package ships Dawn prebuilt for linux-x64/arm64, macOS and Windows); see `mixup backends`',
  tensorflow:
    'run `npm install @tensorflow/tfjs-node` on a machine with internet access (its install downloads libtensorflow); without it use --backend wasm',
  wasm: 'reinstall with `npm install` (the wasm backend ships in @tensorflow/tfjs-backend-wasm)',
  cpu: 'reinstall with `npm install`',
};

const TF_GPU_CPU_ONLY =
  'libtensorflow 2.9.1 of @tensorflow/tfjs-node-gpu 4.22 loaded but found no GPU it can use, so it would compute on the CPU: it needs the CUDA 11.2 and cuDNN 8.1 libraries (libcudart.so.11.0, libcudnn.so.8); on CUDA 12/13 use --backend webgpu';

/** Machines on which tfjs-node-gpu was loaded and found no GPU: its 'tensorflow' backend is libtensorflow on the CPU. */
const tensorflowGpuOnCpu = new WeakSet<BackendEnv>();

/**
 * Loads and activates one backend, making it tfjs's current backend.
 * @param options `wasmThreads` for wasm, `gpu` (or `MIXUP_GPU`) for webgpu and tensorflow-gpu.
 * @returns its status; `loads` false with a one-line `reason` and `hint` when it cannot load.
 *   tensorflow-gpu counts as not loading when TensorFlow finds no GPU device (it would train on the CPU).
 * @throws UserError for a bad `--gpu`/`MIXUP_GPU` or `MIXUP_WASM_THREADS`.
 */
export async function tryBackend(name: ConcreteBackend, env: BackendEnv = nodeBackendEnv, options: BackendOptions = {}): Promise<BackendStatus> {
  const pkg = PACKAGES[name];
  const fail = (reason: string, brief: string): BackendStatus => ({ name, loads: false, reason, brief, hint: HINTS[name] });
  const gpu = requestedGpu(options);
  if (name === 'tensorflow' && tensorflowGpuOnCpu.has(env)) {
    // tfjs-node-gpu already registered 'tensorflow' (on the CPU); tfjs-node cannot load beside it.
    if (!(await env.activate('tensorflow'))) return fail('the "tensorflow" backend of @tensorflow/tfjs-node-gpu failed to initialise', 'failed to initialise');
    return { name, loads: true, detail: 'libtensorflow on the CPU (the one @tensorflow/tfjs-node-gpu loaded)' };
  }
  for (const p of name === 'webgpu' ? ['webgpu', pkg] : [pkg]) {
    if (installed(env, p)) continue;
    const why =
      name === 'tensorflow-gpu' || name === 'tensorflow'
        ? `${p} is not installed (its install step downloads libtensorflow from outside the npm registry; on an offline machine npm skips this optional dependency)`
        : `${p} is not installed`;
    return fail(why, 'not installed');
  }
  let device: string | null = null;
  let adapter: AdapterInfo | null = null;
  if (name === 'tensorflow-gpu') {
    device = env.cudaDevice(gpu);
    if (device === null) {
      const none = gpu !== undefined ? `no CUDA device ${gpu} found (nvidia-smi does not list it)` : 'no CUDA device found (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them all)';
      return fail(none, 'no CUDA device');
    }
    // libtensorflow reads it when it initialises CUDA, after this.
    if (gpu !== undefined) process.env['CUDA_VISIBLE_DEVICES'] = String(gpu);
  }
  if (name === 'webgpu') {
    try {
      adapter = await (env.setUpWebgpu ?? setUpDawn)(gpu);
    } catch (e) {
      if (e instanceof WebgpuUnavailable && e.badGpu) throw new UserError(e.hint === undefined ? e.message : `${e.message}; ${e.hint}`);
      const reason = firstLine(e);
      const st = fail(reason, /no adapter/.test(reason) ? 'no adapter' : /libvulkan/.test(reason) ? 'no libvulkan.so.1' : 'Dawn does not load');
      if (e instanceof WebgpuUnavailable && e.hint !== undefined) st.hint = e.hint;
      return st;
    }
  }
  const release = () => (name === 'webgpu' ? (env.releaseWebgpu ?? releaseWebgpu)() : undefined);
  try {
    // webgpu: registers its backend now that navigator.gpu exists.
    if (name !== 'cpu') env.load(pkg);
    // The cpu backend's filter gradient runs ~30× slower than its Conv2D: replaced by a Conv2D.
    if (name === 'cpu') registerCpuTrainingKernels();
    // Training kernels wasm lacks (Conv2DBackpropFilter) or runs slowly; no-op if not really loaded.
    if (name === 'wasm') {
      const threads = requestedWasmThreads(options);
      if (env.prepareWasm) env.prepareWasm(threads);
      else registerWasmTrainingKernels({ threads });
    }
  } catch (e) {
    release();
    if (e instanceof UserError) throw e;
    return fail(`${pkg} is installed but failed to load: ${firstLine(e)}`, 'failed to load');
  }
  if (!(await env.activate(TF_NAMES[name]))) {
    release();
    return fail(`${pkg} loaded but the "${TF_NAMES[name]}" backend failed to initialise`, 'failed to initialise');
  }
  if (name === 'tensorflow-gpu') {
    const onGpu = env.usingGpuDevice ? env.usingGpuDevice() : (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
    if (!onGpu) {
      tensorflowGpuOnCpu.add(env);
      return fail(TF_GPU_CPU_ONLY, 'libtensorflow finds no GPU (needs CUDA 11.2 + cuDNN 8.1)');
    }
  }
  let wasmDetail = 'WebAssembly SIMD';
  if (name === 'wasm') {
    const n = env.wasmThreads ? env.wasmThreads() : wasmPackageThreads();
    if (n !== null) wasmDetail += `, ${n} thread${n === 1 ? '' : 's'}`;
  }
  if (adapter) {
    watchDeviceErrors();
    return { name, loads: true, detail: describeAdapter(adapter), software: adapter.software };
  }
  const cuda = gpu !== undefined ? `GPU ${gpu}: ${device}` : device!;
  const detail = name === 'tensorflow-gpu' ? cuda : name === 'wasm' ? wasmDetail : name === 'cpu' ? 'pure JavaScript, slow' : 'libtensorflow on the CPU';
  return { name, loads: true, detail };
}

/** The backend that was set up, and a line describing it. */
export interface SelectedBackend {
  name: ConcreteBackend;
  /** e.g. `tensorflow-gpu (NVIDIA A100-SXM4-40GB)`. */
  description: string;
  /** For `auto`: why the backends before it were passed over, one line; absent when it took the first. */
  why?: string;
}

/**
 * Makes the requested backend tfjs's current backend. `auto` takes the first of
 * tensorflow-gpu (when a CUDA device is present and TensorFlow really uses it), webgpu (on a
 * hardware adapter), tensorflow, wasm, cpu that loads. `auto` does not start Dawn where
 * `env.hardwareGpu` says no hardware GPU can be present (and no GPU is asked for).
 * Also enables tfjs production mode (no debug checks, no "install tfjs-node" banner).
 * @param options `wasmThreads` (config key; `MIXUP_WASM_THREADS` overrides), used when wasm is initialised;
 *   `gpu` (config key / `--gpu`; `MIXUP_GPU` when unset) for webgpu and tensorflow-gpu.
 * @throws UserError (exit 2) when an explicitly requested backend cannot load, saying why and how to get it,
 *   or when `MIXUP_WASM_THREADS`, `MIXUP_GPU` or `--gpu` is bad.
 */
export async function selectBackend(requested: BackendName, env: BackendEnv = nodeBackendEnv, options: BackendOptions = {}): Promise<SelectedBackend> {
  tf.enableProdMode();
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const failures: BackendStatus[] = [];
  const skipped: string[] = [];
  for (const name of candidates) {
    if (name === 'webgpu' && requested === 'auto' && env.hardwareGpu?.() === false && requestedGpu(options) === undefined) {
      // suggest the software adapter only where it would load (no libvulkan: `--backend webgpu` fails)
      const soft = installed(env, PACKAGES.webgpu) && (env.softwareWebgpu?.() ?? true);
      skipped.push(`${name} (no GPU device (/dev/dri/renderD*, /dev/nvidia*)${soft ? ', so only a software adapter; run it with --backend webgpu' : ''})`);
      continue;
    }
    const st = await tryBackend(name, env, options);
    if (st.loads && st.software && requested === 'auto') {
      (env.releaseWebgpu ?? releaseWebgpu)();
      skipped.push(`${name} (only a software adapter, ${st.detail!.split(';')[0]}; run it with --backend webgpu)`);
      continue;
    }
    if (st.loads) {
      const sel: SelectedBackend = { name, description: `${name} (${st.detail})` };
      if (skipped.length > 0) sel.why = `auto skipped ${skipped.join(', ')}`;
      return sel;
    }
    failures.push(st);
    skipped.push(`${name} (${st.brief ?? st.reason})`);
  }
  const f = failures[failures.length - 1]!;
  if (requested === 'auto') {
    throw new UserError(`no backend loads: ${failures.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
  }
  throw new UserError(`backend ${requested} is not available: ${f.reason}; to get it, ${f.hint}`);
}

/**
 * Probes the backends for `mixup backends`, each loaded and activated in turn (webgpu is released
 * again afterwards). When tensorflow-gpu loads, tensorflow (the same tfjs backend from another
 * package) is only checked for installation: the two cannot be loaded side by side in one process.
 */
export async function probeAllBackends(env: BackendEnv = nodeBackendEnv, options: BackendOptions = {}): Promise<BackendStatus[]> {
  const out: BackendStatus[] = [];
  for (const name of AUTO_ORDER) {
    if (name === 'tensorflow' && out[0]?.loads && installed(env, PACKAGES.tensorflow)) {
      out.push({ name, loads: true, detail: 'installed; not loaded beside tensorflow-gpu' });
      continue;
    }
    try {
      out.push(await tryBackend(name, env, options));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      out.push({ name, loads: false, reason: e.message }); // a bad --gpu: the message says what to do
    }
    if (name === 'webgpu') (env.releaseWebgpu ?? releaseWebgpu)();
  }
  return out;
}

/** Ends what a backend holds that would keep the process alive (Dawn's instance). Call when a command ends. */
export function releaseBackends(): void {
  releaseWebgpu();
}

// Loaded lazily by the CLI: whoever loads this module, the end of the command releases it (engine/release.ts).
registerRelease(releaseBackends);
