/**
 * Multi-threaded wasm backend in Node. tfjs-backend-wasm 4.22 ships a threaded SIMD build
 * (XNNPACK with a pthreadpool on emscripten workers) but never uses it in Node:
 *  1. its `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false in Node (tfjs issue #3830);
 *  2. it hands emscripten the pthread worker script as a `blob:` URL, which Node's `Worker` rejects,
 *     and the worker then loads the main script from a `Blob`, which its Node `importScripts`
 *     (a `fs.readFileSync`) cannot read;
 *  3. its C++ caps the pool at (logical cores ÷ 2) (`emscripten_num_logical_cores() / 2`, which in
 *     Node is `os.cpus().length / 2`), i.e. one thread on a 2-core machine;
 *  4. the pool's worker stays referenced, so the process never exits by itself.
 *
 * {@link enableWasmThreads} works around all four from the outside, without touching
 * node_modules: it re-registers the 'wasm' backend with a factory that, only while the backend
 * initialises, sets the flag, points `URL.createObjectURL` for the worker blob at a file it writes
 * to the temp dir (the package's own worker script, prefixed so that the worker loads the package's
 * `wasm-out/tfjs-backend-wasm-threaded-simd.js` from disk), starts workers without this process's
 * execArgv, makes `os.cpus()` report 2·threads entries, and afterwards restores all three and
 * unrefs the workers. Measured here (2-core EPYC, other
 * core idle): a [128,28,28,16] 3×3 Conv2D takes 5.8 ms with 2 threads against 11.5 ms with 1.
 * Elementwise kernels and wasm's own Conv2DBackpropInput stay single-threaded.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const workerThreads = require('node:worker_threads') as { Worker: typeof Worker };
const OrigWorker = workerThreads.Worker;
/** A worker_threads Worker that starts without the parent's execArgv. */
class PlainWorker extends OrigWorker {
  constructor(file: string | URL, options: WorkerOptions = {}) {
    super(file, { ...options, execArgv: [] });
  }
}

/** Most threads the package's build pre-creates workers for (emscripten pthreadPoolSize). */
export const MAX_WASM_THREADS = 8;

/**
 * Thread count for the wasm backend: `MIXUP_WASM_THREADS` when set (a positive integer, at most
 * {@link MAX_WASM_THREADS}), else 1 (the single-threaded SIMD build). Not the CPU count by
 * default: the pool only pays off when the other cores are idle. Measured on this 2-core machine:
 * a [128,28,28,16] 3×3 Conv2D 11.5 → 5.8 ms with the other core idle, but a depth-50 batch-32
 * training step 39–47 → 23–29 img/s while another process kept a core busy (the main thread
 * waits for the worker that shares a core).
 * @throws Error when `MIXUP_WASM_THREADS` is not a positive integer or above {@link MAX_WASM_THREADS}.
 */
export function wantedWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['MIXUP_WASM_THREADS'];
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`MIXUP_WASM_THREADS must be a positive integer, got '${v}'`);
  if (n > MAX_WASM_THREADS) throw new Error(`MIXUP_WASM_THREADS=${v}: at most ${MAX_WASM_THREADS} (the threads the wasm build starts workers for), like the config key wasmThreads`);
  return n;
}

/** Writes (once per content) the Node pthread worker script; returns its path. */
function workerScript(): string {
  const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const outDir = path.join(pkgDir, 'wasm-out');
  const mainScript = path.join(outDir, 'tfjs-backend-wasm-threaded-simd.js');
  const contents = (require(path.join(outDir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string }).wasmWorkerContents;
  // The worker asks URL.createObjectURL for the main script's Blob: answer with the file on disk.
  // Literal newlines inside the template-string contents were "\n" escapes in the original source.
  const text = `URL.createObjectURL = () => ${JSON.stringify(mainScript)};\n${contents.replace(/\n/g, '\\n')}`;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `mixup-tfjs-wasm-pthread-worker-${hash}.cjs`);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  }
  return file;
}

interface PThreadLike {
  runningWorkers: { unref(): void }[];
  unusedWorkers: { unref(): void }[];
}

let enabledThreads = 0;

/**
 * Makes the next initialisation of the 'wasm' backend use the threaded build with `threads`
 * XNNPACK threads (see the module comment). Call after `@tensorflow/tfjs-backend-wasm` is loaded
 * and before `tf.setBackend('wasm')`; does nothing when `threads` ≤ 1, when the wasm backend is not
 * registered, or when it is already initialised.
 * @returns the thread count the wasm backend will be initialised with (1 when left unchanged).
 */
export function enableWasmThreads(threads: number): number {
  if (enabledThreads > 0) return enabledThreads;
  const wasmPkg = require('@tensorflow/tfjs-backend-wasm') as { setThreadsCount(n: number): void };
  const factory = tf.findBackendFactory('wasm');
  if (threads <= 1 || !factory || tf.engine().registry['wasm'] !== undefined) return 1;
  const n = Math.min(threads, MAX_WASM_THREADS);
  let worker: string;
  try {
    worker = workerScript();
  } catch (e) {
    process.emitWarning(`cannot write the wasm pthread worker script (${e instanceof Error ? e.message : String(e)}); the wasm backend stays single-threaded`);
    return 1;
  }
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const origUrl = URL.createObjectURL;
      const origCpus = os.cpus;
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      wasmPkg.setThreadsCount(n);
      URL.createObjectURL = (obj: Blob) => (obj instanceof Blob && obj.type === 'application/javascript' ? worker : origUrl(obj));
      // Workers would inherit this process's execArgv (e.g. `--import tsx`, `--input-type`), which
      // can make them fail to start; the worker script is plain CommonJS and needs none.
      workerThreads.Worker = PlainWorker;
      os.cpus = () => {
        const c = origCpus();
        return Array.from({ length: 2 * n }, (_, i) => c[i % c.length]!);
      };
      let backend: tf.KernelBackend;
      try {
        backend = await (factory as () => Promise<tf.KernelBackend>)();
      } catch {
        // Threaded start failed: the plain single-threaded SIMD build.
        URL.createObjectURL = origUrl;
        os.cpus = origCpus;
        workerThreads.Worker = OrigWorker;
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        wasmPkg.setThreadsCount(1);
        return (factory as () => Promise<tf.KernelBackend>)();
      } finally {
        URL.createObjectURL = origUrl;
        os.cpus = origCpus;
        workerThreads.Worker = OrigWorker;
      }
      const pthread = (backend as unknown as { wasm: { PThread?: PThreadLike } }).wasm.PThread;
      if (pthread) for (const w of [...pthread.runningWorkers, ...pthread.unusedWorkers]) w.unref();
      return backend;
    },
    2,
  );
  enabledThreads = n;
  return n;
}
