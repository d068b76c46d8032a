// The static engine's checks before building (src/engine/webgpu/fit.ts): which networks it runs and the
// one-line refusal naming the largest batch that fits the device's buffer limits. Pure: no device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkSpec } from '../src/model/spec.js';
import { staticBufferRefusal, staticEngineUnsupported } from '../src/engine/webgpu/fit.js';

const MiB = 2 ** 20;
const train = (batch: number) => ({ key: 'train.batchSize', batch, flag: (n: number) => `--batch-size ${n}` });

test('static engine: basic units at any width up to 1,024 BatchNorm channels × shards; bottleneck networks fall back', () => {
  assert.equal(staticEngineUnsupported(networkSpec(50, 10)), null);
  assert.equal(staticEngineUnsupported(networkSpec(18, 10, 'preact-resnet18', 32)), null); // 256 channels in stage 4
  assert.equal(staticEngineUnsupported(networkSpec(18, 10, 'preact-resnet18')), null); // 512
  assert.equal(staticEngineUnsupported(networkSpec(18, 10, 'preact-resnet18'), 2), null); // 512 × 2 = 1,024
  assert.equal(staticEngineUnsupported(networkSpec(28, 10, 'wrn-28-10')), null); // 640
  assert.match(staticEngineUnsupported(networkSpec(28, 10, 'wrn-28-10'), 2)!, /at most 1024 BatchNorm shard-channels .*\(WRN-28-10 has 640 channels × 2 shards; lower train\.shards\)/);
  assert.match(staticEngineUnsupported(networkSpec(164, 10))!, /bottleneck/);
});

test('static engine buffers: WRN-28-10 needs 4·160·32·32 bytes per sample in its largest buffer; refused over the limit with the largest batch', () => {
  const spec = networkSpec(28, 10, 'wrn-28-10');
  const perSample = 4 * 160 * 32 * 32; // the largest map: stage 1, 160 channels at 32×32 = 640 KiB
  const limits = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 160 * MiB };
  assert.equal(Math.floor((160 * MiB) / perSample), 256);
  assert.equal(staticBufferRefusal(spec, 32, 32, [train(256)], limits), null); // 256 · 640 KiB = 160 MiB exactly
  const line = staticBufferRefusal(spec, 32, 32, [train(300)], limits)!;
  assert.equal(
    line,
    "train.batchSize 300: the static WebGPU engine's largest buffer for WRN-28-10 on 32×32 would be 188 MiB, more than this device's maxStorageBufferBindingSize (160 MiB); the largest batch that fits is 256 (--batch-size 256)",
  );
  assert.ok(!line.includes('\n'));
  // The multiple of the shards, and maxBufferSize when it is the smaller limit: ⌊150 MiB / 640 KiB⌋ = 240.
  const two = staticBufferRefusal(spec, 32, 32, [{ ...train(256), multipleOf: 7 }], { maxBufferSize: 150 * MiB, maxStorageBufferBindingSize: 1024 * MiB })!;
  assert.match(two, /maxBufferSize \(150 MiB\); the largest batch that fits is 238 \(--batch-size 238\)$/);
  // Parameters alone too large: 36.5 M floats = 139 MiB.
  assert.match(staticBufferRefusal(spec, 32, 32, [train(1)], { maxBufferSize: 64 * MiB, maxStorageBufferBindingSize: 64 * MiB })!, /^WRN-28-10: its 36,479,194 parameters need a 139 MiB buffer/);
});
