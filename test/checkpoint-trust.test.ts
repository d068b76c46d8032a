// A checkpoint is untrusted input (issue 18 items 9 and 11): crafted model.json manifests that name
// files outside the checkpoint, impossible shapes or dtypes, and tensors the network does not have.
// cpu backend; the CLI cases run `mixup --backend cpu test` as a child process.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { assignWeights, createResNet, namedWeights } from '../src/engine/tfjs/resnet.js';
import { loadTensors, saveTensors } from '../src/model/weights.js';
import { saveCheckpoint, emptySums } from '../src/rundir/checkpoint.js';
import type { HostTensor } from '../src/model/weights.js';
import { loadConfig } from '../src/config/load.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './fixtures/tmp.js';
import { cifarBinDir } from './fixtures/cifar.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

/** Writes `model.json` with one manifest group and, unless null, `weights.bin` of `bytes` bytes (values 0..). */
function craft(dir: string, paths: unknown[], weights: unknown[], bytes: number | null = 16): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'mixup-weights', weightsManifest: [{ paths, weights }] }));
  if (bytes !== null) writeFileSync(join(dir, 'weights.bin'), new Float32Array(bytes / 4).map((_, i) => i));
  return join(dir, 'model.json');
}

/** The message of loadTensors' rejection, checking it is a one-line UserError and that no tensor was made. */
async function refusal(dir: string): Promise<string> {
  const before = tf.memory().numTensors;
  const e = await loadTensors(dir).then(
    () => assert.fail('expected a UserError'),
    (err: unknown) => err,
  );
  assert.ok(e instanceof UserError, String(e));
  assert.equal(e.message.split('\n').length, 1);
  assert.equal(tf.memory().numTensors, before);
  return e.message;
}

const X4 = { name: 'x', shape: [4], dtype: 'float32' };
const PLAIN = `is not a plain file name in the checkpoint's directory (no "/", "\\", ":", ".." or absolute paths)`;

test('a manifest path that leaves the checkpoint directory is refused, naming model.json and the path, although the file exists', async () => {
  const top = tempDir('mixup-trust-');
  const dir = join(top, 'a', 'b', 'c', 'epoch-0001');
  // the file the path points to exists and has the right size: following it would succeed
  writeFileSync(join(top, 'outside.bin'), new Float32Array([9, 9, 9, 9]));
  const json = craft(dir, ['../../../../outside.bin'], [X4]);
  assert.equal(await refusal(dir), `${json}: weightsManifest path "../../../../outside.bin" ${PLAIN}`);
  craft(dir, [join(top, 'outside.bin')], [X4]);
  assert.equal(await refusal(dir), `${json}: weightsManifest path ${JSON.stringify(join(top, 'outside.bin'))} ${PLAIN}`);
  for (const p of ['..\\outside.bin', '..', '.', 'sub/weights.bin', 'C:weights.bin', 'a\u0000b']) {
    craft(dir, [p], [X4]);
    assert.equal(await refusal(dir), `${json}: weightsManifest path ${JSON.stringify(p)} ${PLAIN}`);
  }
  for (const p of ['', 7, null]) {
    craft(dir, [p], [X4]);
    assert.equal(await refusal(dir), `${json}: weightsManifest path ${JSON.stringify(p)} is not a file name`);
  }
});

test('a weights file that is a symbolic link out of the checkpoint is refused; a link inside it is followed', async () => {
  const top = tempDir('mixup-trust-');
  const dir = join(top, 'epoch-0001');
  const json = craft(dir, ['w.bin'], [X4], null);
  writeFileSync(join(top, 'outside.bin'), new Float32Array([9, 9, 9, 9]));
  symlinkSync(join(top, 'outside.bin'), join(dir, 'w.bin'));
  assert.equal(await refusal(dir), `${json}: weightsManifest path "w.bin" is a link to ${join(top, 'outside.bin')}, outside the checkpoint's directory`);

  const ok = join(top, 'epoch-0002');
  craft(ok, ['w.bin'], [X4]);
  symlinkSync('weights.bin', join(ok, 'w.bin'));
  const { tensors } = await loadTensors(ok);
  assert.deepEqual([...tensors.get('x')!.dataSync()], [0, 1, 2, 3]);
  tf.dispose([...tensors.values()]);

  const notFile = join(top, 'epoch-0003');
  craft(notFile, ['sub'], [X4], null);
  mkdirSync(join(notFile, 'sub'));
  assert.equal(await refusal(notFile), `${join(notFile, 'sub')}: not a regular file; expected the checkpoint's weights`);
});

test('shapes that overflow, are negative or fractional, or need more bytes than the file holds are refused before anything is read or allocated', async () => {
  const dir = join(tempDir('mixup-trust-'), 'epoch-0001');
  const json = craft(dir, ['weights.bin'], [X4]);
  const cases: [unknown, string][] = [
    [[2 ** 30, 2 ** 30, 2 ** 30], 'weight "huge" has shape [1073741824,1073741824,1073741824], whose size overflows'],
    [[-4], 'weight "huge" has shape [-4]: a dimension is not a non-negative integer'],
    [[1.5, 2], 'weight "huge" has shape [1.5,2]: a dimension is not a non-negative integer'],
    [['4'], 'weight "huge" has shape ["4"]: a dimension is not a non-negative integer'],
    [4, 'weight "huge" has no shape array'],
    // 1e5·1e5·1e5 values · 4 bytes = 4e15 bytes: a safe integer, far more than the 16 bytes there are
    [[100000, 100000, 100000], 'weight "huge" with shape [100000,100000,100000] float32 needs 4000000000000000 bytes from offset 16, but weights.bin holds 16; the checkpoint is truncated or corrupt'],
    [[2], 'weight "huge" with shape [2] float32 needs 8 bytes from offset 16, but weights.bin holds 16; the checkpoint is truncated or corrupt'],
  ];
  for (const [shape, msg] of cases) {
    craft(dir, ['weights.bin'], [X4, { name: 'huge', shape, dtype: 'float32' }]);
    assert.equal(await refusal(dir), `${json}: ${msg}`);
  }
  // fewer values than bytes: the extra bytes are refused too
  craft(dir, ['weights.bin'], [{ name: 'x', shape: [3], dtype: 'float32' }]);
  assert.equal(await refusal(dir), `${join(dir, 'weights.bin')}: 16 bytes, the manifest in model.json describes 12; the checkpoint is corrupt`);
});

test('a wrong dtype, quantization, a duplicate or missing name is refused naming the entry', async () => {
  const dir = join(tempDir('mixup-trust-'), 'epoch-0001');
  const json = craft(dir, ['weights.bin'], [X4]);
  const expectPlain = 'expected a plain float32 or int32 tensor';
  craft(dir, ['weights.bin'], [{ name: 'x', shape: [2], dtype: 'complex64' }]);
  assert.equal(await refusal(dir), `${json}: weight "x" has dtype "complex64"; ${expectPlain}`);
  craft(dir, ['weights.bin'], [{ name: 'x', shape: [16], dtype: 'string' }]);
  assert.equal(await refusal(dir), `${json}: weight "x" has dtype "string"; ${expectPlain}`);
  craft(dir, ['weights.bin'], [{ name: 'x', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', scale: 1, min: 0 } }]);
  assert.equal(await refusal(dir), `${json}: weight "x" has dtype "float32" with quantization; ${expectPlain}`);
  craft(dir, ['weights.bin'], [{ name: 'x', shape: [2], dtype: 'float32' }, { name: 'x', shape: [2], dtype: 'float32' }]);
  assert.equal(await refusal(dir), `${json}: weight "x" appears twice in the manifest`);
  craft(dir, ['weights.bin'], [{ shape: [4], dtype: 'float32' }]);
  assert.equal(await refusal(dir), `${json}: weight {"shape":[4],"dtype":"float32"} has no name`);
  // the same file with an honest manifest loads: the checks refuse only what is wrong
  craft(dir, ['weights.bin'], [{ name: 'a', shape: [2], dtype: 'int32' }, { name: 'b', shape: [2], dtype: 'float32' }]);
  const { tensors } = await loadTensors(dir);
  assert.deepEqual([...tensors.get('a')!.dataSync()], [0, 0x3f800000]); // 0.0f and 1.0f read as int32
  assert.deepEqual([...tensors.get('b')!.dataSync()], [2, 3]);
  tf.dispose([...tensors.values()]);
});

test('weights of a deeper network (depth 50 into depth 8) are refused, naming the first extra tensors and how many more', () => {
  const deep = createResNet({ depth: 50, numClasses: 10, mixAt: null, seed: 1 });
  const net = createResNet({ depth: 8, numClasses: 10, mixAt: null, seed: 2 });
  const before = net.params.get('conv0_weight')!.dataSync().slice();
  // depth 50: 8 basic units per stage, depth 8: 1; each extra unit has 6 parameters (bn1 γ β, conv1,
  // bn2 γ β, conv2) and 4 moving statistics: 3 stages × 7 units × 10 = 210 tensors depth 8 lacks.
  assert.throws(
    () => assignWeights(net, namedWeights(deep), 'runs/deep/checkpoints/epoch-0001'),
    (e: unknown) =>
      e instanceof UserError &&
      e.message ===
        'runs/deep/checkpoints/epoch-0001: 210 tensors the network does not have: stage1_unit2_bn1_gamma, stage1_unit2_bn1_beta, stage1_unit2_conv1_weight and 207 more (the checkpoint is not of a ResNet-8 with 10 classes?)',
  );
  // nothing was assigned
  assert.deepEqual(net.params.get('conv0_weight')!.dataSync(), before);
  const one = namedWeights(net);
  one.set('fc2_weight', tf.zeros([1]));
  assert.throws(() => assignWeights(net, one, 'ck'), /ck: 1 tensor the network does not have: fc2_weight \(the checkpoint/);
  one.get('fc2_weight')!.dispose();
  // MXNet's checkpoints hold bn_data's fixed γ (fix_gamma=True): accepted and ignored
  one.delete('fc2_weight');
  one.set('bn_data_gamma', tf.fill([3], 7));
  assignWeights(net, one, 'mxnet');
  assert.equal(net.params.has('bn_data_gamma'), false);
  one.get('bn_data_gamma')!.dispose();
  deep.dispose();
  net.dispose();
});

/** A depth-8 checkpoint directory `epoch-0001` (config, state, weights) under a fresh temp dir. */
async function depth8Checkpoint(): Promise<{ top: string; dir: string }> {
  const top = tempDir('mixup-trust-cli-');
  const dir = join(top, 'run', 'checkpoints', 'epoch-0001');
  // the run's data exists (mixup test checks the data paths before it reads the checkpoint)
  const cfg = loadConfig(join(root, 'configs', 'quick.json'), { overrides: [['data.dir', cifarBinDir(4, 4)]] });
  const net = createResNet({ depth: 8, numClasses: 10, mixAt: 'input', seed: 0 });
  const host = new Map<string, HostTensor>();
  for (const [name, t] of namedWeights(net)) host.set(name, { shape: [...t.shape], values: (await t.data()) as Float32Array });
  await saveCheckpoint(dir, host, null, { epoch: 1, batch: 0, sums: emptySums(), lr: 0.1, random: 'derived', created: 'test' }, cfg);
  net.dispose();
  return { top, dir };
}

/** What `mixup --backend cpu` prints on stderr before any work. */
const BACKEND_LINE = 'backend: cpu (pure JavaScript, slow)\n';

function mixupTest(dir: string) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'mixup'), '--backend', 'cpu', 'test', dir], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('mixup test: a checkpoint whose manifest points outside its directory exits 2 with one line; so does one with depth-50 weights in a depth-8 run', async () => {
  const { top, dir } = await depth8Checkpoint();
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  // move the weights outside and point at them
  renameSync(join(dir, 'weights.bin'), join(top, 'outside.bin'));
  manifest.weightsManifest[0].paths = ['../../../outside.bin'];
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
  const r = mixupTest(dir);
  assert.equal(r.err, `${BACKEND_LINE}mixup: error: ${join(dir, 'model.json')}: weightsManifest path "../../../outside.bin" ${PLAIN}\n`);
  assert.equal(r.code, 2);
  assert.equal(r.out, '');

  const deep = createResNet({ depth: 50, numClasses: 10, mixAt: null, seed: 1 });
  await saveTensors(dir, namedWeights(deep), { format: 'mixup-resnet' });
  deep.dispose();
  const d = mixupTest(dir);
  assert.equal(
    d.err,
    `${BACKEND_LINE}mixup: error: ${dir}: 210 tensors the network does not have: stage1_unit2_bn1_gamma, stage1_unit2_bn1_beta, stage1_unit2_conv1_weight and 207 more (the checkpoint is not of a ResNet-8 with 10 classes?)\n`,
  );
  assert.equal(d.code, 2);
});
