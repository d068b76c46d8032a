import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterForGpu, isSoftwareName, parseAdapterList, WebgpuUnavailable, withoutDawnLimitNotices } from '../src/engine/dawn.js';
import { localLavapipe } from '../src/engine/vulkan.js';
import { gpuDeviceNodes } from '../src/engine/gpu-devices.js';

// Dawn 0.6.2's rejection for an adapter name no adapter has (src/dawn/node/binding/GPU.cpp).
const DAWN_LIST = `no suitable backends found
Available adapters:
 * backend: 'vulkan', name: 'NVIDIA H200'
 * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'
 * backend: 'vulkan', name: 'AMD Instinct MI300X (RADV GFX942)'`;

test('parseAdapterList reads the backend and name of each listed adapter', () => {
  assert.deepEqual(parseAdapterList(DAWN_LIST), [
    { backend: 'vulkan', name: 'NVIDIA H200' },
    { backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' },
    { backend: 'vulkan', name: 'AMD Instinct MI300X (RADV GFX942)' },
  ]);
  assert.deepEqual(parseAdapterList('no adapter found'), []);
});

test('software adapters: llvmpipe/lavapipe and SwiftShader, not GPUs', () => {
  assert.equal(isSoftwareName('llvmpipe (LLVM 15.0.6, 256 bits)'), true);
  assert.equal(isSoftwareName('SwiftShader Device (Subzero)'), true);
  assert.equal(isSoftwareName('NVIDIA H200', 'NVIDIA 570.86'), false);
  assert.equal(isSoftwareName('AMD Radeon', 'lavapipe'), true);
});

test('--gpu N is the Nth hardware adapter, selected by name; software ones do not count', () => {
  const list = parseAdapterList(DAWN_LIST);
  assert.equal(adapterForGpu(list, undefined), null);
  assert.equal(adapterForGpu(list, 0), 'NVIDIA H200');
  assert.equal(adapterForGpu(list, 1), 'AMD Instinct MI300X (RADV GFX942)');
  assert.throws(
    () => adapterForGpu(list, 2),
    (e: unknown) =>
      e instanceof WebgpuUnavailable &&
      e.badGpu &&
      e.message === "--gpu 2: Dawn lists 2 hardware adapters (adapters: 'NVIDIA H200', 'llvmpipe (LLVM 15.0.6, 256 bits)', 'AMD Instinct MI300X (RADV GFX942)'); --gpu counts from 0",
  );
});

test('--gpu N where Dawn lists only a software adapter: says no hardware adapter was found and what to install', () => {
  const check = (list: { backend: string; name: string }[], message: string) =>
    assert.throws(
      () => adapterForGpu(list, 0),
      (e: unknown) =>
        e instanceof WebgpuUnavailable &&
        e.badGpu &&
        e.message === message &&
        e.hint === 'install the GPU’s Vulkan driver (NVIDIA, AMD, Intel) and libvulkan1; to run on the software adapter (slow, for tests) leave out --gpu and give --backend webgpu',
    );
  check([{ backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' }], "--gpu 0: no hardware adapter found (Dawn lists only the software adapter 'llvmpipe (LLVM 15.0.6, 256 bits)', on the CPU)");
  check([], '--gpu 0: no hardware adapter found (Dawn lists no adapter)');
});

test("Dawn's limit notices are dropped, every other line is kept", () => {
  // Dawn 0.6.2 on lavapipe, src/dawn/native/Limits.cpp NormalizeLimits; RADV reports 500000.
  const notices =
    'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n' +
    'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 500000 to 16 to fit dynamic offset allocation limit.\n';
  assert.equal(withoutDawnLimitNotices(notices), '');
  assert.equal(withoutDawnLimitNotices(`loader: driver found\n${notices}Warning: something else\nno newline`), 'loader: driver found\nWarning: something else\nno newline');
  assert.equal(withoutDawnLimitNotices(notices.replace(/\n/g, '\r\n')), '');
  assert.equal(withoutDawnLimitNotices('Warning: maxBindGroups artificially reduced from 9 to 4.\n'), 'Warning: maxBindGroups artificially reduced from 9 to 4.\n');
});

test('gpuDeviceNodes: DRM render nodes, NVIDIA device nodes and WSL /dev/dxg; not card*, nvidiactl, nvidia-uvm', (t) => {
  const dev = mkdtempSync(join(tmpdir(), 'mixup-dev-'));
  t.after(() => rmSync(dev, { recursive: true, force: true }));
  assert.deepEqual(gpuDeviceNodes(dev), []);
  mkdirSync(join(dev, 'dri'));
  for (const f of ['dri/card0', 'dri/by-path', 'nvidiactl', 'nvidia-uvm', 'null']) writeFileSync(join(dev, f), '');
  assert.deepEqual(gpuDeviceNodes(dev), [], 'a display-only card or the NVIDIA control nodes are no GPU to compute on');
  for (const f of ['dri/renderD129', 'dri/renderD128', 'nvidia0', 'nvidia3', 'dxg']) writeFileSync(join(dev, f), '');
  assert.deepEqual(gpuDeviceNodes(dev), ['dri/renderD128', 'dri/renderD129', 'dxg', 'nvidia0', 'nvidia3'].map((f) => join(dev, f)));
  assert.deepEqual(gpuDeviceNodes(join(dev, 'missing')), []);
});

test('identical GPUs: Dawn selects by name, so the second one cannot be named; the first can', () => {
  const two = [
    { backend: 'vulkan', name: 'NVIDIA H200' },
    { backend: 'vulkan', name: 'NVIDIA H200' },
  ];
  assert.equal(adapterForGpu(two, 0), 'NVIDIA H200');
  assert.throws(() => adapterForGpu(two, 1), /--gpu 1: the adapter 'NVIDIA H200' has the name of an earlier one/);
});

test('localLavapipe: only a completed scripts/setup-lavapipe.sh counts', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mixup-lavapipe-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  assert.equal(localLavapipe(root), null);
  const lib = join(root, '.lavapipe/root/usr/lib/x86_64-linux-gnu');
  const icdDir = join(root, '.lavapipe/root/usr/share/vulkan/icd.d');
  mkdirSync(lib, { recursive: true });
  mkdirSync(icdDir, { recursive: true });
  writeFileSync(join(lib, 'libvulkan.so.1'), '');
  writeFileSync(join(icdDir, 'lvp_icd.json'), '{}');
  assert.equal(localLavapipe(root), null, 'unpacked but not stamped complete');
  writeFileSync(join(root, '.lavapipe/.complete'), 'Mesa 25.0.7-2~bpo12+1\n');
  assert.deepEqual(localLavapipe(root), { icd: join(icdDir, 'lvp_icd.json'), lib, version: 'Mesa 25.0.7-2~bpo12+1' });
});
