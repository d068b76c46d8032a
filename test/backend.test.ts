import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { probeAllBackends, selectBackend, tryBackend } from '../src/engine/tfjs/backend.js';
import type { BackendEnv } from '../src/engine/tfjs/backend-env.js';
import { UserError } from '../src/errors.js';
import { WebgpuUnavailable, type AdapterInfo } from '../src/engine/dawn.js';

/** A simulated machine: which packages are installed, which load, whether a CUDA device exists and TensorFlow uses it, which WebGPU adapter Dawn finds. */
function fakeEnv(opts: {
  installed: string[];
  broken?: string[];
  gpu?: string | null;
  onGpu?: boolean;
  adapter?: AdapterInfo | string;
}): BackendEnv & { loaded: string[]; activated: string[]; cudaAsked: (number | undefined)[]; webgpuAsked: (number | undefined)[]; released: number } {
  const loaded: string[] = [];
  const activated: string[] = [];
  const cudaAsked: (number | undefined)[] = [];
  const webgpuAsked: (number | undefined)[] = [];
  const env = {
    loaded,
    activated,
    cudaAsked,
    webgpuAsked,
    released: 0,
    resolve(id: string) {
      if (!opts.installed.includes(id)) throw new Error(`Cannot find module '${id}'`);
      return `/fake/${id}`;
    },
    load(id: string) {
      if (opts.broken?.includes(id)) throw new Error(`libtensorflow.so.2: cannot open shared object file\nmore detail`);
      loaded.push(id);
      return {};
    },
    cudaDevice: (gpu?: number) => {
      cudaAsked.push(gpu);
      return opts.gpu ?? null;
    },
    async activate(name: string) {
      activated.push(name);
      return true;
    },
    usingGpuDevice: () => opts.onGpu ?? true,
    async setUpWebgpu(gpu?: number) {
      webgpuAsked.push(gpu);
      if (typeof opts.adapter === 'string') throw new WebgpuUnavailable(opts.adapter);
      if (opts.adapter === undefined) throw new WebgpuUnavailable('Dawn finds no adapter (no Vulkan driver found)');
      return opts.adapter;
    },
    releaseWebgpu() {
      env.released++;
    },
  };
  return env;
}

const H200: AdapterInfo = { vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA 570.86', software: false, index: 0 };
const LLVMPIPE: AdapterInfo = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe (LLVM 15.0.6, 256 bits)',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  software: true,
  index: null,
};
const WEBGPU = ['webgpu', '@tensorflow/tfjs-backend-webgpu'];

const ALL = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs'];

test('auto takes tfjs-node-gpu when it loads and a CUDA device exists', async () => {
  const env = fakeEnv({ installed: ALL, gpu: 'NVIDIA A100-SXM4-40GB' });
  const sel = await selectBackend('auto', env);
  assert.deepEqual(sel, { name: 'tensorflow-gpu', description: 'tensorflow-gpu (NVIDIA A100-SXM4-40GB)' });
  assert.deepEqual(env.cudaAsked, [undefined]);
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-node-gpu']);
  assert.deepEqual(env.activated, ['tensorflow']);
});

test('auto skips tfjs-node-gpu without a CUDA device and takes tfjs-node', async () => {
  const env = fakeEnv({ installed: ALL, gpu: null });
  const sel = await selectBackend('auto', env);
  assert.equal(sel.name, 'tensorflow');
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-node'], 'the GPU package must not be loaded without a device');
  assert.equal(sel.why, 'auto skipped tensorflow-gpu (no CUDA device), webgpu (not installed)');
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
  assert.deepEqual(rows.map((r) => [r.name, r.loads]), [['tensorflow-gpu', false], ['webgpu', false], ['tensorflow', false], ['wasm', true], ['cpu', true]]);
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
    const auto = await selectBackend('auto', env, { wasmThreads: 2 });
    assert.equal(auto.description, 'wasm (WebAssembly SIMD, 2 threads)');
    assert.equal(auto.why, 'auto skipped tensorflow-gpu (not installed), webgpu (not installed), tensorflow (not installed)');
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

test('tensorflow-gpu on a CUDA 12 machine: loads, finds no GPU; asked for by name it is an error, auto goes on', async () => {
  const machine = () => fakeEnv({ installed: ALL, gpu: 'NVIDIA H200', onGpu: false });
  await assert.rejects(selectBackend('tensorflow-gpu', machine()), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.exitCode, 2);
    assert.ok(!e.message.includes('\n'));
    assert.match(e.message, /^backend tensorflow-gpu is not available: libtensorflow 2\.9\.1 .* found no GPU .*CUDA 11\.2 and cuDNN 8\.1 .*on CUDA 12\/13 use --backend webgpu; to get it/);
    return true;
  });
  const env = machine();
  const sel = await selectBackend('auto', env);
  // tfjs-node-gpu's own 'tensorflow' backend (on the CPU) is what tensorflow means now; tfjs-node is not loaded beside it.
  assert.deepEqual(sel, {
    name: 'tensorflow',
    description: 'tensorflow (libtensorflow on the CPU (the one @tensorflow/tfjs-node-gpu loaded))',
    why: 'auto skipped tensorflow-gpu (libtensorflow finds no GPU (needs CUDA 11.2 + cuDNN 8.1)), webgpu (not installed)',
  });
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-node-gpu']);
  const rows = await probeAllBackends(machine());
  assert.equal(rows[0]!.loads, false);
  assert.match(rows[0]!.reason!, /found no GPU it can use/);
});

test('webgpu: auto takes it on a hardware adapter, after tensorflow-gpu', async () => {
  const env = fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: H200 });
  const sel = await selectBackend('auto', env);
  assert.deepEqual(sel, {
    name: 'webgpu',
    description: 'webgpu (GPU 0: NVIDIA H200; vendor nvidia, architecture hopper, driver NVIDIA 570.86)',
    why: 'auto skipped tensorflow-gpu (not installed)',
  });
  assert.deepEqual(env.loaded, ['@tensorflow/tfjs-backend-webgpu']);
  assert.deepEqual(env.activated, ['webgpu']);
  assert.equal(env.released, 0);
});

test('webgpu on a software adapter (lavapipe): auto skips and releases it, by name it runs', async () => {
  const env = fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: LLVMPIPE });
  const sel = await selectBackend('auto', env);
  assert.equal(sel.name, 'wasm');
  assert.equal(
    sel.why,
    'auto skipped tensorflow-gpu (not installed), webgpu (only a software adapter, llvmpipe (LLVM 15.0.6, 256 bits); run it with --backend webgpu), tensorflow (not installed)',
  );
  assert.equal(env.released, 1, 'Dawn released, or the process would not exit');
  const named = await selectBackend('webgpu', env);
  assert.equal(
    named.description,
    'webgpu (llvmpipe (LLVM 15.0.6, 256 bits); vendor mesa, architecture software, driver llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1; software rasteriser on the CPU)',
  );
  const rows = await probeAllBackends(env);
  assert.deepEqual([rows[1]!.name, rows[1]!.loads, rows[1]!.software], ['webgpu', true, true]);
});

test('webgpu without an adapter: the reason, not installed packages, the probe row', async () => {
  const none = fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: 'no libvulkan.so.1 (the Vulkan loader)' });
  none.setUpWebgpu = async () => Promise.reject(new WebgpuUnavailable('no libvulkan.so.1 (the Vulkan loader)', false, 'install a Vulkan driver'));
  await assert.rejects(selectBackend('webgpu', none), /^UserError: backend webgpu is not available: no libvulkan\.so\.1 \(the Vulkan loader\); to get it, install a Vulkan driver$/);
  assert.equal((await selectBackend('auto', none)).why, 'auto skipped tensorflow-gpu (not installed), webgpu (no libvulkan.so.1), tensorflow (not installed)');
  await assert.rejects(selectBackend('webgpu', fakeEnv({ installed: ALL })), /backend webgpu is not available: webgpu is not installed/);
});

test('--gpu N reaches Dawn and nvidia-smi, sets CUDA_VISIBLE_DEVICES and is named; MIXUP_GPU when unset', async () => {
  const saved = { gpu: process.env['MIXUP_GPU'], cuda: process.env['CUDA_VISIBLE_DEVICES'] };
  try {
    delete process.env['MIXUP_GPU'];
    const env = fakeEnv({ installed: [...ALL, ...WEBGPU], gpu: 'NVIDIA H200', adapter: { ...H200, index: 3 } });
    assert.equal((await selectBackend('tensorflow-gpu', env, { gpu: 3 })).description, 'tensorflow-gpu (GPU 3: NVIDIA H200)');
    assert.equal(process.env['CUDA_VISIBLE_DEVICES'], '3');
    assert.match((await selectBackend('webgpu', env, { gpu: 3 })).description, /^webgpu \(GPU 3: NVIDIA H200;/);
    process.env['MIXUP_GPU'] = '2';
    await selectBackend('webgpu', env);
    await selectBackend('webgpu', env, { gpu: 1 });
    assert.deepEqual(env.cudaAsked, [3]);
    assert.deepEqual(env.webgpuAsked, [3, 2, 1]);
    process.env['MIXUP_GPU'] = 'first';
    await assert.rejects(selectBackend('webgpu', env), (e: unknown) => e instanceof UserError && e.message === "MIXUP_GPU: expected a GPU index (0, 1, ...), got 'first'");
    delete process.env['MIXUP_GPU'];
    // A --gpu Dawn has no adapter for is the user's error even under auto.
    const bad = { ...fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU] }), setUpWebgpu: async () => Promise.reject(new WebgpuUnavailable('--gpu 5: Dawn lists 1 hardware adapter', true)) };
    await assert.rejects(selectBackend('auto', bad, { gpu: 5 }), (e: unknown) => e instanceof UserError && e.message === '--gpu 5: Dawn lists 1 hardware adapter');
  } finally {
    for (const [k, v] of [['MIXUP_GPU', saved.gpu], ['CUDA_VISIBLE_DEVICES', saved.cuda]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('auto does not start Dawn where no GPU device can exist (it would find only a software adapter); by name, or with --gpu, it does', async () => {
  const saved = process.env['MIXUP_GPU'];
  delete process.env['MIXUP_GPU'];
  try {
    const env = { ...fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: LLVMPIPE }), hardwareGpu: () => false };
    const sel = await selectBackend('auto', env);
    assert.equal(sel.name, 'wasm');
    assert.equal(
      sel.why,
      'auto skipped tensorflow-gpu (not installed), webgpu (no GPU device (/dev/dri/renderD*, /dev/nvidia*), so only a software adapter; run it with --backend webgpu), tensorflow (not installed)',
    );
    assert.deepEqual(env.webgpuAsked, [], 'Dawn not set up');
    assert.equal((await selectBackend('webgpu', env)).name, 'webgpu');
    assert.deepEqual(env.webgpuAsked, [undefined]);
    // --gpu 0 under auto still asks Dawn: a GPU it lacks is the user's error, not a silent wasm.
    await selectBackend('auto', env, { gpu: 0 }).catch(() => undefined);
    assert.deepEqual(env.webgpuAsked, [undefined, 0]);
    // No Vulkan loader or driver either (issue 22 item 14): --backend webgpu would fail, so it is not suggested
    const bare = { ...fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: LLVMPIPE }), hardwareGpu: () => false, softwareWebgpu: () => false };
    assert.equal(
      (await selectBackend('auto', bare)).why,
      'auto skipped tensorflow-gpu (not installed), webgpu (no GPU device (/dev/dri/renderD*, /dev/nvidia*)), tensorflow (not installed)',
    );
    // nor without the webgpu package
    const noPkg = { ...fakeEnv({ installed: ALL.slice(2), adapter: LLVMPIPE }), hardwareGpu: () => false, softwareWebgpu: () => true };
    assert.doesNotMatch((await selectBackend('auto', noPkg)).why!, /--backend webgpu/);
    // Where a GPU device exists, auto asks Dawn as before.
    const gpuBox = { ...fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU], adapter: H200 }), hardwareGpu: () => true };
    assert.equal((await selectBackend('auto', gpuBox)).name, 'webgpu');
    assert.deepEqual(gpuBox.webgpuAsked, [undefined]);
  } finally {
    if (saved === undefined) delete process.env['MIXUP_GPU'];
    else process.env['MIXUP_GPU'] = saved;
  }
});

test('--gpu N without a hardware adapter: the error says so and what to install, and `backends` adds no npm hint', async () => {
  const noHardware = new WebgpuUnavailable(
    "--gpu 0: no hardware adapter found (Dawn lists only the software adapter 'llvmpipe (LLVM 15.0.6, 256 bits)', on the CPU)",
    true,
    'install the GPU’s Vulkan driver (NVIDIA, AMD, Intel) and libvulkan1',
  );
  const env = { ...fakeEnv({ installed: [...ALL.slice(2), ...WEBGPU] }), setUpWebgpu: async () => Promise.reject(noHardware) };
  const line = "--gpu 0: no hardware adapter found (Dawn lists only the software adapter 'llvmpipe (LLVM 15.0.6, 256 bits)', on the CPU); install the GPU’s Vulkan driver (NVIDIA, AMD, Intel) and libvulkan1";
  await assert.rejects(selectBackend('webgpu', env, { gpu: 0 }), (e: unknown) => e instanceof UserError && e.exitCode === 2 && e.message === line);
  const rows = await probeAllBackends(env, { gpu: 0 });
  assert.deepEqual(rows[1], { name: 'webgpu', loads: false, reason: line });
});
