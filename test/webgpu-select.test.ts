import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adapterForGpu, isSoftwareName, localLavapipe, parseAdapterList, WebgpuUnavailable } from '../src/engine/dawn.js';

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
  assert.throws(() => adapterForGpu([{ backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' }], 0), /Dawn lists 0 hardware adapters/);
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
