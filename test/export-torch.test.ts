// The safetensors export loads into the shipped PyTorch module (scripts/torch/mixup_resnet.py) with
// load_state_dict(strict=True) and gives the logits of the project's inference (wasm) to 1e-4: depth 8
// trained here, depth 8 and 50 from the golden weights (skipped with one line when absent). Needs a
// python3 with torch (MIXUP_PYTHON, else python3, else Debian's /usr/bin/python3); skipped with one
// line without. It reads the file with the safetensors package when that is installed, else with the
// module's own reader, and says which.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { exportCheckpoint } from '../src/export/export.js';
import { loadCheckpoint } from '../src/rundir/checkpoint.js';
import { pkg } from '../src/cli/common.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { REPO_ROOT } from './fixtures/cli.js';
import { engineLogits, goldenEval, goldenRun, initialisedRun, lcgImages, maxAbsDiff, toNchw, trainTinyRun, valImages, GOLDEN, type Images } from './fixtures/export.js';
import { tempDir } from './fixtures/tmp.js';

tf.enableProdMode();
const SCRIPT = join(REPO_ROOT, 'scripts', 'torch', 'mixup_resnet.py');
const candidates = process.env['MIXUP_PYTHON'] ? [process.env['MIXUP_PYTHON']] : ['python3', '/usr/bin/python3'];
const python = candidates.find((p) => spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0);
const skip = python === undefined ? `no python3 with torch (tried ${candidates.join(', ')}; Debian: apt-get install python3-torch)` : false;
let run = '';

before(async () => {
  if (skip) return;
  assert.equal((await tryBackend('wasm')).loads, true);
  run = await trainTinyRun(cifarBinDir(48, 40), 'wasm');
});
after(() => releaseBackends());

/** Exports `runDir` as safetensors and runs the PyTorch module on `im`: its logits and which reader loaded the file. */
async function torchLogits(runDir: string, im: Images): Promise<{ logits: number[]; reader: string }> {
  const dir = tempDir('mixup-export-torch-');
  const file = join(dir, 'm.safetensors');
  await exportCheckpoint(runDir, { format: 'safetensors', out: file, version: pkg.version });
  const x = toNchw(im);
  writeFileSync(join(dir, 'x.f32'), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const r = spawnSync(python!, [SCRIPT, file, '--input', join(dir, 'x.f32'), '--batch', String(im.n)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { logits: number[]; reader: string };
}

test('safetensors export of a depth-8 wasm checkpoint: PyTorch (strict load) gives mixup test\'s logits to 1e-4', { skip }, async (t) => {
  const ck = join(run, 'checkpoints', 'epoch-0001');
  const im = await valImages((await loadCheckpoint(ck)).cfg, 8);
  const ours = await engineLogits(ck, im, 'TfjsEngine');
  const { logits, reader } = await torchLogits(run, im);
  t.diagnostic(`${python}: file read by ${reader}`);
  assert.ok(maxAbsDiff(ours, logits) < 1e-4, `max |Δ| ${maxAbsDiff(ours, logits)}`);
  assert.ok(Math.max(...ours.map(Math.abs)) > 1e-3, 'logits are not all ~0');
});

test('safetensors export of bottleneck units (depth 164, initialised, BatchNorms perturbed): PyTorch (strict load) = mixup\'s inference to 1e-4', { skip }, async () => {
  const r = await initialisedRun(164, 8, 16);
  const im = lcgImages(2, 8, 7);
  const ours = await engineLogits(join(r, 'checkpoints', 'epoch-0001'), im, 'TfjsEngine');
  const { logits } = await torchLogits(r, im);
  assert.ok(maxAbsDiff(ours, logits) < 1e-4, `max |Δ| ${maxAbsDiff(ours, logits)}`);
});

test('scripts/torch/mixup_resnet.py parses as Python 3 (any python3, torch or not)', { skip: spawnSync('python3', ['--version']).status === 0 ? false : 'no python3' }, () => {
  const r = spawnSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

for (const name of ['eval-logits-d8', 'eval-logits-d50']) {
  const c = goldenEval(name);
  test(`safetensors export of the golden ${name} weights: PyTorch (strict load) = mixup's inference to 1e-4`, { skip: skip || (c ? false : `no golden data at ${GOLDEN}`) }, async () => {
    const goldRun = goldenRun(name, c!.depth, c!.images.n);
    const ours = await engineLogits(join(goldRun, 'checkpoints', 'epoch-0001'), c!.images, 'TfjsEngine');
    const { logits } = await torchLogits(goldRun, c!.images);
    assert.ok(maxAbsDiff(ours, logits) < 1e-4, `max |Δ| ${maxAbsDiff(ours, logits)}`);
  });
}
