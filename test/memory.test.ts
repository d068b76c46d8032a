// The memory estimate of a step (src/model/memory.ts), the refusal of a batch too large for the
// backend (src/memoryfit.ts), checked against a step measured on the wasm backend, and the exit
// codes of an error that is not the user's (issue 18 item 3).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { networkSize, networkSizeOf, largestBatch, stepBytes, WASM_MEMORY_COST, wasmMemoryCost } from '../src/model/memory.js';
import { networkSpec, parameterCount } from '../src/model/spec.js';
import { assertMemoryFits, memoryRefusal, WASM_HEAP_MAX } from '../src/engine/memoryfit.js';
import { loadConfig } from '../src/config/load.js';
import { UserError } from '../src/errors.js';
import { EXIT_INTERNAL, internalErrorLines } from '../src/cli.js';
import { tempDir } from './fixtures/tmp.js';
import { cifarBinDir } from './fixtures/cifar.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 2 ** 20;

test('activation values per sample of ResNet-8 at 28×28, counted by hand', () => {
  // input and bn_data 2·3·784; conv0 16·784;
  // stage1_unit1 (28×28, 16→16): bn1+ReLU 2·12544, conv1 12544, bn2+ReLU 2·12544, conv2, sc, add 12544 each;
  // stage2_unit1 (16@28×28 → 32@14×14): bn1+ReLU 2·12544, then 6272 for conv1, 2·6272 bn2+ReLU, conv2, sc, add;
  // stage3_unit1 (32@14×14 → 64@7×7): bn1+ReLU 2·6272, then 3136 for conv1, 2·3136, conv2, sc, add;
  // bn1+ReLU 2·3136; pooled 64 and logits 10.
  const byHand = 4704 + 12544 + (25088 + 12544 + 25088 + 3 * 12544) + (25088 + 6272 + 12544 + 3 * 6272) + (12544 + 3136 + 6272 + 3 * 3136) + 6272 + 74;
  assert.equal(byHand, 218026);
  const s = networkSize(networkSpec(8, 10), 28, 28);
  assert.deepEqual(s, { parameters: parameterCount(networkSpec(8, 10)), activations: 218026, largestMap: 16 * 28 * 28 });
  assert.equal(s.parameters, 78109);
  // odd sizes halve with ceil: 27 → 14 → 7, as MXNet's 3×3 pad-1 stride-2 convolutions give
  const odd = networkSize(networkSpec(8, 10), 27, 27);
  // stage1: 8 maps of 16·27·27 (bn1, ReLU, conv1, bn2, ReLU, conv2, sc, add); stages 2 and 3: bn1 and
  // ReLU on the input, then 6 maps at the halved size
  assert.equal(odd.activations, 2 * 3 * 729 + 16 * 729 + 8 * 16 * 729 + (2 * 16 * 729 + 6 * 32 * 196) + (2 * 32 * 196 + 6 * 64 * 49) + 2 * 64 * 49 + 74);
});

test('the estimate and the largest batch that fits, for depth 50 on the wasm heap', () => {
  const s = networkSizeOf({ depth: 50, numClasses: 10 }, 28, 28);
  assert.equal(s.parameters, 758621);
  assert.equal(s.activations, 1293674);
  // train: 16 MiB + 5·4·P + 16·B·A
  assert.equal(stepBytes(s, 128, 'train'), 16 * MiB + 20 * 758621 + 16 * 128 * 1293674);
  assert.equal(stepBytes(s, 500, 'inference'), 16 * MiB + 4 * 758621 + 5 * 500 * 1293674);
  // (4294901760 − 16 MiB − 20·758621) / (16·1293674) = 205.9..., a multiple of 2 shards: 204
  assert.equal(largestBatch(s, WASM_HEAP_MAX, 'train', 2), 204);
  assert.equal(largestBatch(s, WASM_HEAP_MAX, 'train'), 205);
  assert.ok(stepBytes(s, 205, 'train') <= WASM_HEAP_MAX && stepBytes(s, 206, 'train') > WASM_HEAP_MAX);
  // (4294901760 − 16 MiB − 4·758621) / (5·1293674) = 660.9...
  assert.equal(largestBatch(s, WASM_HEAP_MAX, 'inference'), 660);
  assert.equal(largestBatch(s, 1000, 'train'), 0);
});

test("PreAct ResNet-18 at the paper's batch 128 fits the wasm heap: its measured constant, above the measured heap", () => {
  const cfg = loadConfig(join(root, 'configs', 'paper', 'mixup-preact18.json'));
  const s = networkSizeOf(cfg.model, 32, 32);
  assert.equal(s.parameters, 11171274);
  assert.equal(s.activations, 2092554);
  const cost = wasmMemoryCost('preact-resnet18');
  assert.equal(cost.trainBytesPerActivation, 15);
  assert.equal(wasmMemoryCost('mxnet-preact'), WASM_MEMORY_COST);
  // 16 MiB + 20·11171274 + 15·128·2092554 = 4,257,906,376 bytes; the heap bench/memory.ts measured
  // at batch 128 was 4,130,340,864 (and 1,207,500,800 at batch 32, which the estimate is also above)
  assert.equal(stepBytes(s, 128, 'train', cost), 16 * MiB + 20 * 11171274 + 15 * 128 * 2092554);
  assert.ok(stepBytes(s, 128, 'train', cost) >= 4130340864 && stepBytes(s, 32, 'train', cost) >= 1207500800);
  // (4294901760 − 16 MiB − 20·11171274) / (15·2092554) = 129.2
  assert.equal(largestBatch(s, WASM_HEAP_MAX, 'train', 1, cost), 129);
  assert.doesNotThrow(() => assertMemoryFits(cfg, 'train', 'wasm'));
  // with the reference network's constant (16) the estimate was 4.2 GiB and refused batch 128
  assert.ok(stepBytes(s, 128, 'train') > WASM_HEAP_MAX);
});

test('a step measured on wasm stays under the estimate, and the estimate is not far above it', async () => {
  const { selectBackend, releaseBackends } = await import('../src/engine/tfjs/backend.js');
  await selectBackend('wasm', undefined, {});
  after(releaseBackends);
  const { buildNet } = await import('../src/engine/tfjs/engine.js');
  const { SGD } = await import('../src/engine/tfjs/sgd.js');
  const { settleStep, trainStep } = await import('../src/engine/tfjs/step.js');
  const cfg = loadConfig(join(root, 'configs', 'erm.json'), { overrides: [['model.depth', 8], ['train.batchSize', 32]] });
  const net = buildNet(cfg);
  const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
  const images = tf.randomNormal([32, 28, 28, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const labels = Int32Array.from({ length: 32 }, (_, i) => i % 10);
  await settleStep(trainStep(net, opt, images, labels, null, { lr: 0.1, gradScale: 1, loss: cfg.loss, shards: cfg.train.shards }));
  const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const estimate = stepBytes(networkSizeOf({ depth: 8, numClasses: 10 }, 28, 28), 32, 'train');
  tf.dispose(images);
  net.dispose();
  opt.dispose();
  // measured by bench/memory.ts: about 120 MiB (input mixup, 2 shards); the estimate is 124 MiB
  assert.ok(heap <= estimate, `heap ${heap} > estimate ${estimate}`);
  assert.ok(estimate <= 1.5 * heap, `estimate ${estimate} is more than 1.5 × the heap ${heap}`);
  assert.equal(WASM_MEMORY_COST.trainBytesPerActivation, 16);
});

test('a batch too large for wasm is refused in one line with the largest that fits; cpu has no known limit', () => {
  const cfg = loadConfig(join(root, 'configs', 'mixup.json'), { overrides: [['train.batchSize', 512]] });
  const refusal = (f: () => void) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof UserError && e.exitCode === 2);
      return e.message;
    }
    return null;
  };
  assert.equal(
    refusal(() => assertMemoryFits(cfg, 'train', 'wasm')),
    'train.batchSize 512: a training step of ResNet-50 on 28×28 crops needs about 9.9 GiB, more than the wasm backend\'s heap limit (4.0 GiB, tfjs-backend-wasm\'s maximum); ' +
      'the largest batch that fits is 204 (--batch-size 204), or use a GPU backend (--backend webgpu or tensorflow-gpu)',
  );
  assert.equal(refusal(() => assertMemoryFits(cfg, 'train', 'cpu')), null);
  assert.equal(refusal(() => assertMemoryFits({ ...cfg, train: { ...cfg.train, batchSize: 204 } }, 'train', 'wasm')), null);
  const evalCfg = { ...cfg, train: { ...cfg.train, batchSize: 128, evalBatchSize: 1000 } };
  assert.equal(
    refusal(() => assertMemoryFits(evalCfg, 'train', 'wasm')),
    'train.evalBatchSize 1000: an evaluation batch of ResNet-50 on 28×28 crops needs about 6.0 GiB, more than the wasm backend\'s heap limit (4.0 GiB, tfjs-backend-wasm\'s maximum); ' +
      'the largest batch that fits is 660 (--set train.evalBatchSize=660), or use a GPU backend (--backend webgpu or tensorflow-gpu)',
  );
  // mixup test has no flag for it: no hint
  assert.match(refusal(() => assertMemoryFits(evalCfg, 'test', 'wasm'))!, /the largest batch that fits is 660, or use a GPU backend/);
  // a per-buffer limit (webgpu's maxStorageBufferBindingSize) is compared with the largest tensor: 4·B·16·28·28 bytes
  const s = networkSizeOf({ depth: 50, numClasses: 10 }, 28, 28);
  const limit = { bytes: 128 * MiB, perBuffer: true, what: 'the largest buffer the webgpu device binds (maxStorageBufferBindingSize, 128 MiB)' };
  const use = { key: 'train.batchSize', batch: 4096, use: 'train' as const, what: 'a training step', multipleOf: 2, flag: (n: number) => `--batch-size ${n}` };
  assert.equal(
    memoryRefusal(s, use, limit, 'ResNet-50 on 28×28 crops'),
    // 4·4096·12544 = 196 MiB; 128 MiB / (4·12544) = 2674.9 → 2674
    'train.batchSize 4096: the largest tensor of a training step of ResNet-50 on 28×28 crops holds 196 MiB, more than the largest buffer the webgpu device binds (maxStorageBufferBindingSize, 128 MiB); the largest batch that fits is 2674 (--batch-size 2674)',
  );
  assert.equal(memoryRefusal(s, { ...use, batch: 2674 }, limit, 'x'), null);
});

test('mixup train --batch-size 512 on wasm exits 2 before anything is written, naming the batch that fits', () => {
  const out = join(tempDir('mixup-memory-'), 'run');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'mixup'), '--backend', 'wasm', 'train', '--config', 'configs/mixup.json', '--batch-size', '512', '--data-dir', cifarBinDir(4, 4), '--out', out], {
    cwd: root,
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0]!, /^backend: wasm/);
  assert.equal(
    lines.at(-1),
    "mixup: error: train.batchSize 512: a training step of ResNet-50 on 28×28 crops needs about 9.9 GiB, more than the wasm backend's heap limit (4.0 GiB, tfjs-backend-wasm's maximum); " +
      'the largest batch that fits is 204 (--batch-size 204), or use a GPU backend (--backend webgpu or tensorflow-gpu)',
  );
  assert.equal(r.stdout, '');
  assert.equal(existsSync(out), false);
});

test('an internal error says so, with exit 1; a WebAssembly abort also says what usually causes it', () => {
  assert.equal(EXIT_INTERNAL, 1);
  const Trap = (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } }).WebAssembly.RuntimeError;
  assert.deepEqual(internalErrorLines(new Trap('Aborted(). Build with -sASSERTIONS for more info.'), false), [
    'mixup: internal error: Aborted(). Build with -sASSERTIONS for more info.',
    '(the wasm backend failed; usually its heap, at most 4 GiB, ran out: try a smaller train.batchSize or train.evalBatchSize, or a GPU backend)',
    '(exit 1: a bug in mixup or a backend, not a problem with your input; run with --verbose for the stack trace and please report it)',
  ]);
  assert.deepEqual(internalErrorLines(new TypeError('x is undefined\nmore'), false), [
    'mixup: internal error: x is undefined',
    '(exit 1: a bug in mixup or a backend, not a problem with your input; run with --verbose for the stack trace and please report it)',
  ]);
  const withStack = internalErrorLines(new RangeError('bad'), true);
  assert.equal(withStack.length, 2);
  assert.match(withStack[1]!, /^RangeError: bad\n\s+at /);
});
