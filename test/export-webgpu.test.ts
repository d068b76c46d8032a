// `mixup export` of checkpoints from the static WebGPU engine (engine/webgpu/static.ts): ONNX Runtime
// logits equal that engine's inference (`mixup test --backend webgpu`) to 1e-4 — depth 8 trained
// here on webgpu, depth 8 and 50 from the golden weights (skipped with one line when absent). Runs on
// lavapipe; skipped with one line where webgpu does not load (never in CI). Own process: Dawn stays
// out of the others. The wasm side and the safetensors checks: export.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { exportCheckpoint } from '../src/export/export.js';
import { loadCheckpoint } from '../src/rundir/checkpoint.js';
import { pkg } from '../src/cli/common.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { engineLogits, goldenEval, goldenRun, maxAbsDiff, onnxLogits, trainTinyRun, valImages, GOLDEN } from './fixtures/export.js';
import { tempDir } from './fixtures/tmp.js';
import { webgpuSkipReason } from './fixtures/webgpu.js';

tf.enableProdMode();
const skip = (await webgpuSkipReason()) ?? false;
let run = '';

before(async () => {
  if (skip) return;
  assert.equal((await tryBackend('wasm')).loads, true);
  run = await trainTinyRun(cifarBinDir(48, 40), 'webgpu');
});
after(() => releaseBackends());

test('ONNX export of a depth-8 checkpoint trained by the static webgpu engine: ONNX Runtime = its inference to 1e-4', { skip }, async () => {
  const ck = join(run, 'checkpoints', 'epoch-0001');
  const out = join(tempDir('mixup-export-webgpu-'), 'm.onnx');
  await exportCheckpoint(run, { format: 'onnx', out, version: pkg.version });
  const { cfg } = await loadCheckpoint(ck);
  const im = await valImages(cfg, 8);
  assert.ok(await tf.setBackend('webgpu'));
  const ours = await engineLogits(ck, im, 'StaticEngine');
  const theirs = await onnxLogits(out, im);
  assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}`);
  assert.ok(Math.max(...ours.map(Math.abs)) > 1e-3, 'logits are not all ~0');
});

for (const name of ['eval-logits-d8', 'eval-logits-d50']) {
  const c = goldenEval(name);
  test(`ONNX export of the golden ${name} weights: ONNX Runtime = the static webgpu engine's inference to 1e-4`, { skip: skip || (c ? false : `no golden data at ${GOLDEN}`) }, async () => {
    const goldRun = goldenRun(name, c!.depth, c!.images.n);
    const out = join(tempDir('mixup-export-webgpu-golden-'), 'm.onnx');
    await exportCheckpoint(goldRun, { format: 'onnx', out, version: pkg.version });
    assert.ok(await tf.setBackend('webgpu'));
    const ours = await engineLogits(join(goldRun, 'checkpoints', 'epoch-0001'), c!.images, 'StaticEngine');
    const theirs = await onnxLogits(out, c!.images);
    assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}`);
  });
}
