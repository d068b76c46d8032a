import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { probeAllBackends, selectBackend, tryBackend, type BackendEnv } from '../src/backend.js';
import { UserError } from '../src/errors.js';

/** A simulated machine: which packages are installed, which load, whether a CUDA device exists. */
function fakeEnv(opts: { installed: string[]; broken?: string[]; gpu?: string | null }): BackendEnv & { loaded: string[]; activated: string[] } {
  const loaded: string[] = [];
  const activated: string[] = [];
  return {
    loaded,
    activated,
    resolve(id) {
      if (!opts.installed.includes(id)) throw new Error(`Cannot find module '${id}'`);
      return `/fake/${id}`;
    },
    load(id) {
      if (opts.broken?.includes(id)) throw new Error(`libtensorflow.so.2: cannot open shared object file\nmore detail`);
      loaded.push(id);
      return {};
    },
    cudaDevice: () => opts.gpu ?? null,
    async activate(name) {
      activated.push(name);
      return true;
    },
  };
}

const ALL = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs'];

test('auto takes tfjs-node-gpu when it loads and a CUDA device exists', async () => {
  const env = fakeEnv({ installed: ALL, gpu: 'NVIDIA A100-SXM4-40GB' });
  const sel = await selectBackend('auto', env);
  assert.deepEqual(sel, { name: 'tensorflow-gpu', description: 'tensorflow-gpu (NVIDIA A100-SXM4-40GB)' });
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-node-gpu']);
  assert.deepEqual(env.activated, ['tensorflow']);
});

test('auto skips tfjs-node-gpu without a CUDA device and takes tfjs-node', async () => {
  const env = fakeEnv({ installed: ALL, gpu: null });
  const sel = await selectBackend('auto', env);
  assert.equal(sel.name, 'tensorflow');
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-node'], 'the GPU package must not be loaded without a device');
});

test('auto falls back to wasm when neither tensorflow package is installed, then to cpu', async () => {
  assert.equal((await selectBackend('auto', fakeEnv({ installed: ALL.slice(2) }))).name, 'wasm');
  assert.equal((await selectBackend('auto', fakeEnv({ installed: ALL.slice(2), broken: ['@tensorflow/tfjs-backend-wasm'] }))).name, 'cpu');
});

test('an explicitly requested backend that cannot load is a UserError with why and how', async () => {
  const env = fakeEnv({ installed: ALL.slice(2) });
  await assert.rejects(selectBackend('tensorflow-gpu', env), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, /^backend tensorflow-gpu is not available: @tensorflow\/tfjs-node-gpu is not installed .*; to get it, run `npm install @tensorflow\/tfjs-node-gpu` .*CUDA 11\.2 and cuDNN 8\.1/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  const broken = fakeEnv({ installed: ALL, broken: ['@tensorflow/tfjs-node'] });
  await assert.rejects(selectBackend('tensorflow', broken), /tfjs-node is installed but failed to load: libtensorflow\.so\.2: cannot open shared object file; to get it/);
  const noGpu = fakeEnv({ installed: ALL, gpu: null });
  await assert.rejects(selectBackend('tensorflow-gpu', noGpu), /no CUDA device found/);
});

test('probe table on a machine like this one: wasm and cpu load, tensorflow ones do not', async () => {
  const rows = await probeAllBackends(fakeEnv({ installed: ALL.slice(2) }));
  assert.deepEqual(rows.map((r) => [r.name, r.loads]), [['tensorflow-gpu', false], ['tensorflow', false], ['wasm', true], ['cpu', true]]);
  assert.match(rows[0]!.reason!, /not installed/);
});

test('the real machine: wasm and cpu activate as tfjs backends', async () => {
  assert.equal((await tryBackend('cpu')).loads, true);
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal((await tryBackend('wasm')).loads, true);
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(Array.from(tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync()), [4, 6]);
});

test('wasmThreads reaches the wasm setup, MIXUP_WASM_THREADS overrides it, the description names the threads', async () => {
  const saved = process.env['MIXUP_WASM_THREADS'];
  try {
    delete process.env['MIXUP_WASM_THREADS'];
    const asked: number[] = [];
    const env: BackendEnv = {
      ...fakeEnv({ installed: ALL.slice(2) }),
      prepareWasm: (n) => void asked.push(n),
      wasmThreads: () => asked[asked.length - 1] ?? null,
    };
    assert.deepEqual(await selectBackend('wasm', env), { name: 'wasm', description: 'wasm (WebAssembly SIMD, 1 thread)' });
    assert.equal((await selectBackend('auto', env, { wasmThreads: 2 })).description, 'wasm (WebAssembly SIMD, 2 threads)');
    process.env['MIXUP_WASM_THREADS'] = '3';
    assert.equal((await selectBackend('wasm', env, { wasmThreads: 2 })).description, 'wasm (WebAssembly SIMD, 3 threads)');
    assert.deepEqual(asked, [1, 2, 3]);
    process.env['MIXUP_WASM_THREADS'] = 'two';
    await assert.rejects(selectBackend('wasm', env), (e: unknown) => e instanceof UserError && /MIXUP_WASM_THREADS must be a positive integer, got 'two'/.test(e.message));
  } finally {
    if (saved === undefined) delete process.env['MIXUP_WASM_THREADS'];
    else process.env['MIXUP_WASM_THREADS'] = saved;
  }
});
