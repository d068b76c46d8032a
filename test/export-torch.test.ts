// The safetensors export loads into the shipped PyTorch module (scripts/torch/mixup_resnet.py) with
// load_state_dict(strict=True) and gives the logits of the project's inference (wasm) to 1e-4: depth 8
// trained here, depth 8 and 50 from the golden weights (skipped with one line when absent). Needs a
// python3 with torch (MIXUP_PYTHON, else python3, else Debian's /usr/bin/python3); skipped with one
// line without. It reads the file with the safetensors package when that is installed, else with the
// module's own reader, and says which.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { exportCheckpoint } from '../src/export/export.js';
import { encodeSafetensors } from '../src/export/safetensors.js';
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

test('scripts/torch/mixup_resnet.py refuses bad input with one line and a non-zero exit: an ONNX file, a truncated file, --batch past the images; no torch needed', { skip: spawnSync('python3', ['--version']).status === 0 ? false : 'no python3' }, () => {
  // the checks run before torch is used: a stand-in torch package (names only) lets them run anywhere
  const dir = tempDir('mixup-torch-script-');
  mkdirSync(join(dir, 'stub', 'torch', 'nn'), { recursive: true });
  writeFileSync(join(dir, 'stub', 'torch', '__init__.py'), "__version__ = 'stub'\nfloat32 = float64 = int64 = int32 = None\nfrom . import nn\n");
  writeFileSync(join(dir, 'stub', 'torch', 'nn', '__init__.py'), 'class Module:\n    pass\nfrom . import functional\n');
  writeFileSync(join(dir, 'stub', 'torch', 'nn', 'functional.py'), '');
  const env = { ...process.env, PYTHONPATH: join(dir, 'stub') };
  const model = JSON.stringify({ arch: 'mxnet-preact', depth: 8, numClasses: 10 });
  const input = JSON.stringify({ layout: 'NCHW', height: 8, width: 8 });
  const good = encodeSafetensors(new Map([['fc1.bias', { shape: [10], dtype: 'float32' as const, values: new Float32Array(10) }]]), { model, input });
  const st = join(dir, 'm.safetensors');
  writeFileSync(st, good);
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, good.subarray(0, good.length - 12));
  const onnx = join(dir, 'm.onnx');
  writeFileSync(onnx, Buffer.from([0x08, 0x07, 0x12, 0x05, 0x6d, 0x69, 0x78, 0x75, 0x70, 0x1a, 0x05, 0x30, 0x2e, 0x31, 0x2e, 0x30]));
  const x = join(dir, 'x.f32');
  writeFileSync(x, new Uint8Array(2 * 3 * 8 * 8 * 4)); // 2 images
  const tiny = join(dir, 'tiny');
  writeFileSync(tiny, Buffer.from([1, 2, 3]));
  const oneLine = (args: string[], msg: string) => {
    const r = spawnSync('python3', [SCRIPT, ...args], { encoding: 'utf8', env });
    assert.notEqual(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.deepEqual(r.stderr.trim().split('\n'), [msg], r.stderr);
  };
  oneLine([onnx, '--input', x, '--batch', '2'], `mixup_resnet.py: error: ${onnx}: header length ${readFileSync(onnx).readBigUInt64LE(0)} at offset 0 exceeds the file's 16 bytes (an ONNX file? give the file of \`mixup export --format safetensors\`)`);
  oneLine([cut, '--input', x, '--batch', '2'], `mixup_resnet.py: error: ${cut}: tensor fc1.bias ends at data byte 40, but the file holds 28 data bytes (truncated?)`);
  oneLine([tiny, '--input', x, '--batch', '2'], `mixup_resnet.py: error: ${tiny}: 3 bytes, not a safetensors file (expected an 8-byte header length first)`);
  oneLine([st, '--input', join(dir, 'none.f32'), '--batch', '2'], `mixup_resnet.py: error: ${join(dir, 'none.f32')}: no such file (--input)`);
  oneLine([join(dir, 'none.safetensors'), '--input', x, '--batch', '2'], `mixup_resnet.py: error: [Errno 2] No such file or directory: '${join(dir, 'none.safetensors')}'`);
  // --batch past the images: answered in read_input, before torch builds a tensor (the stub has no
  // MixupResNet to load into, so check it through the function itself)
  const r = spawnSync('python3', ['-c', `import sys; sys.path.insert(0, ${JSON.stringify(join(REPO_ROOT, 'scripts', 'torch'))}); import mixup_resnet as m
try:
    m.read_input(${JSON.stringify(x)}, 8, {"height": 8, "width": 8})
except m.BadInput as e:
    print(e)`], { encoding: 'utf8', env });
  assert.equal(r.stdout.trim(), `${x}: --batch 8 needs 6144 bytes ([8, 3, 8, 8] float32), the file holds 2 image(s) (1536 bytes)`, r.stderr);
  // without torch at all: one line saying what is missing
  const none = spawnSync('python3', [SCRIPT, st, '--input', x, '--batch', '2'], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: join(dir, 'empty') } });
  if (spawnSync('python3', ['-c', 'import torch']).status !== 0) {
    assert.equal(none.status, 1);
    assert.match(none.stderr.trim(), /^mixup_resnet\.py: error: needs PyTorch \(No module named 'torch'\); pip install torch, or on Debian apt-get install python3-torch$/);
  }
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
