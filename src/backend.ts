/**
 * TensorFlow.js backend selection: the one place that knows which backends exist, how to load
 * them, and what to tell a user when one cannot load.
 *
 * | name           | package                      | tfjs backend |
 * | -------------- | ---------------------------- | ------------ |
 * | tensorflow-gpu | @tensorflow/tfjs-node-gpu    | tensorflow   |
 * | tensorflow     | @tensorflow/tfjs-node        | tensorflow   |
 * | wasm           | @tensorflow/tfjs-backend-wasm| wasm         |
 * | cpu            | @tensorflow/tfjs (pure JS)   | cpu          |
 *
 * The two tensorflow packages download libtensorflow at install time from outside the npm
 * registry, so on an offline machine their install fails and npm drops them (they are
 * optionalDependencies): then they are reported as not installed.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { UserError, firstLine } from './errors.js';
import type { BackendName } from './config/schema.js';
import { registerWasmTrainingKernels, wantedWasmThreads } from './kernels/index.js';

/** A concrete backend (everything but `auto`). */
export type ConcreteBackend = Exclude<BackendName, 'auto'>;

/** Order `auto` tries. */
export const AUTO_ORDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** What probing a backend found. */
export interface BackendStatus {
  name: ConcreteBackend;
  /** True when the backend loaded and initialised. */
  loads: boolean;
  /** Why it does not load, one line (when `loads` is false). */
  reason?: string;
  /** How to get it, one line (when `loads` is false). */
  hint?: string;
  /** GPU name for tensorflow-gpu, thread count for wasm, etc. */
  detail?: string;
}

/**
 * What backend loading needs from the outside world; tests replace it to simulate machines
 * with tfjs-node installed or a CUDA device present.
 */
export interface BackendEnv {
  /** `require.resolve`: throws when the package is not installed. */
  resolve(id: string): string;
  /** `require`: loads a package (registers its tfjs backend as a side effect). */
  load(id: string): unknown;
  /** Name of the first visible CUDA device, or null when there is none. */
  cudaDevice(): string | null;
  /** `tf.setBackend` + `tf.ready`: resolves false when the backend fails to initialise. */
  activate(tfName: string): Promise<boolean>;
  /**
   * Before the wasm backend is activated: registers the project's wasm training kernels and asks
   * for `threads` XNNPACK threads. Optional; default `registerWasmTrainingKernels({ threads })`.
   */
  prepareWasm?(threads: number): void;
  /**
   * Threads the activated wasm backend runs, or null when unknown. Optional; default the wasm
   * package's `getThreadsCount()`.
   */
  wasmThreads?(): number | null;
}

/** Options of backend selection. */
export interface BackendOptions {
  /**
   * XNNPACK threads for the wasm backend (config key `wasmThreads`, default 1); the environment
   * variable `MIXUP_WASM_THREADS` overrides it. Takes effect only when wasm is first initialised.
   */
  wasmThreads?: number;
}

/** Threads the wasm package says its backend runs, or null (not initialised). */
function wasmPackageThreads(): number | null {
  try {
    const n = (require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number }).getThreadsCount();
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * The wasm thread count to ask for: `MIXUP_WASM_THREADS` when set, else `options.wasmThreads`, else 1.
 * @throws UserError when `MIXUP_WASM_THREADS` is not a positive integer.
 */
export function requestedWasmThreads(options: BackendOptions = {}, environ: NodeJS.ProcessEnv = process.env): number {
  const v = environ['MIXUP_WASM_THREADS'];
  if (v !== undefined && v !== '') {
    try {
      return wantedWasmThreads(environ);
    } catch (e) {
      throw new UserError(firstLine(e));
    }
  }
  return options.wasmThreads ?? 1;
}

const PACKAGES: Record<ConcreteBackend, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs',
};

const TF_NAMES: Record<ConcreteBackend, string> = {
  'tensorflow-gpu': 'tensorflow',
  tensorflow: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

const HINTS: Record<ConcreteBackend, string> = {
  'tensorflow-gpu':
    'run `npm install @tensorflow/tfjs-node-gpu` on a Linux x86_64 machine with an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1, with internet access (its install downloads libtensorflow)',
  tensorflow:
    'run `npm install @tensorflow/tfjs-node` on a machine with internet access (its install downloads libtensorflow); without it use --backend wasm',
  wasm: 'reinstall with `npm install` (the wasm backend ships in @tensorflow/tfjs-backend-wasm)',
  cpu: 'reinstall with `npm install`',
};

/** Name of the first CUDA device that `nvidia-smi` lists and `CUDA_VISIBLE_DEVICES` allows. */
function nvidiaSmiDevice(): string | null {
  let text: string;
  try {
    text = execFileSync('nvidia-smi', ['--query-gpu=index,name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return null;
  }
  const visible = process.env['CUDA_VISIBLE_DEVICES'];
  const allowed = visible === undefined ? null : visible.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s*,\s*(.+?)\s*$/.exec(line);
    if (m && (allowed === null || allowed.includes(m[1]!))) return m[2]!;
  }
  return null;
}

const require = createRequire(import.meta.url);

/** The real machine. */
export const nodeBackendEnv: BackendEnv = {
  resolve: (id) => require.resolve(id),
  load: (id) => require(id),
  cudaDevice: nvidiaSmiDevice,
  async activate(tfName) {
    try {
      const ok = await tf.setBackend(tfName);
      if (ok) await tf.ready();
      return ok;
    } catch {
      return false;
    }
  },
};

function installed(env: BackendEnv, pkg: string): boolean {
  try {
    env.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads and activates one backend, making it tfjs's current backend.
 * @returns its status; `loads` false with a one-line `reason` and `hint` when it cannot load.
 */
export async function tryBackend(name: ConcreteBackend, env: BackendEnv = nodeBackendEnv, options: BackendOptions = {}): Promise<BackendStatus> {
  const pkg = PACKAGES[name];
  const fail = (reason: string): BackendStatus => ({ name, loads: false, reason, hint: HINTS[name] });
  if (!installed(env, pkg)) {
    const why =
      name === 'tensorflow-gpu' || name === 'tensorflow'
        ? `${pkg} is not installed (its install step downloads libtensorflow from outside the npm registry; on an offline machine npm skips this optional dependency)`
        : `${pkg} is not installed`;
    return fail(why);
  }
  let device: string | null = null;
  if (name === 'tensorflow-gpu') {
    device = env.cudaDevice();
    if (device === null) return fail('no CUDA device found (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them all)');
  }
  try {
    if (name !== 'cpu') env.load(pkg);
    // Training kernels wasm lacks (Conv2DBackpropFilter) or runs slowly; no-op if not really loaded.
    if (name === 'wasm') {
      const threads = requestedWasmThreads(options);
      if (env.prepareWasm) env.prepareWasm(threads);
      else registerWasmTrainingKernels({ threads });
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    return fail(`${pkg} is installed but failed to load: ${firstLine(e)}`);
  }
  if (!(await env.activate(TF_NAMES[name]))) return fail(`${pkg} loaded but the "${TF_NAMES[name]}" backend failed to initialise`);
  let wasmDetail = 'WebAssembly SIMD';
  if (name === 'wasm') {
    const n = env.wasmThreads ? env.wasmThreads() : wasmPackageThreads();
    if (n !== null) wasmDetail += `, ${n} thread${n === 1 ? '' : 's'}`;
  }
  const detail = name === 'tensorflow-gpu' ? device! : name === 'wasm' ? wasmDetail : name === 'cpu' ? 'pure JavaScript, slow' : 'libtensorflow on the CPU';
  return { name, loads: true, detail };
}

/** The backend that was set up, and a line describing it. */
export interface SelectedBackend {
  name: ConcreteBackend;
  /** e.g. `tensorflow-gpu (NVIDIA A100-SXM4-40GB)`. */
  description: string;
}

/**
 * Makes the requested backend tfjs's current backend. `auto` takes the first of
 * tensorflow-gpu (when a CUDA device is present), tensorflow, wasm, cpu that loads.
 * Also enables tfjs production mode (no debug checks, no "install tfjs-node" banner).
 * @param options `wasmThreads` (config key; `MIXUP_WASM_THREADS` overrides), used when wasm is initialised.
 * @throws UserError (exit 2) when an explicitly requested backend cannot load, saying why and how to get it,
 *   or when `MIXUP_WASM_THREADS` is not a positive integer.
 */
export async function selectBackend(requested: BackendName, env: BackendEnv = nodeBackendEnv, options: BackendOptions = {}): Promise<SelectedBackend> {
  tf.enableProdMode();
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const failures: BackendStatus[] = [];
  for (const name of candidates) {
    const st = await tryBackend(name, env, options);
    if (st.loads) return { name, description: `${name} (${st.detail})` };
    failures.push(st);
  }
  const f = failures[failures.length - 1]!;
  if (requested === 'auto') {
    throw new UserError(`no backend loads: ${failures.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
  }
  throw new UserError(`backend ${requested} is not available: ${f.reason}; to get it, ${f.hint}`);
}

/**
 * Probes the four backends for `mixup backends`, each loaded and activated in turn. When
 * tensorflow-gpu loads, tensorflow (the same tfjs backend from another package) is only checked
 * for installation: the two cannot be loaded side by side in one process.
 */
export async function probeAllBackends(env: BackendEnv = nodeBackendEnv): Promise<BackendStatus[]> {
  const out: BackendStatus[] = [];
  for (const name of AUTO_ORDER) {
    if (name === 'tensorflow' && out[0]?.loads && installed(env, PACKAGES.tensorflow)) {
      out.push({ name, loads: true, detail: 'installed; not loaded beside tensorflow-gpu' });
      continue;
    }
    out.push(await tryBackend(name, env));
  }
  return out;
}
