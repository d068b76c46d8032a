// Weights on disk (src/model/weights.ts) and back into a network. cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, truncateSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { assignWeights, createResNet, namedWeights } from '../src/engine/tfjs/resnet.js';
import { loadTensors, saveTensors } from '../src/model/weights.js';
import { scoreLogits } from '../src/evaluate/scoring.js';
import { forward } from '../src/engine/tfjs/resnet.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './fixtures/tmp.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

const tmp = () => tempDir('mixup-weights-');

test('save → load → assign gives identical predictions (parameters and moving statistics)', async () => {
  const a = createResNet({ depth: 8, numClasses: 5, mixAt: 'head', seed: 1 });
  // make the moving statistics non-trivial so that their round trip matters
  for (const [name, v] of a.aux) tf.tidy(() => v.assign(tf.add(v, tf.randomUniform(v.shape, 0.1, 0.5, 'float32', name.length))));
  const images = tf.randomNormal([3, 8, 8, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const labels = Int32Array.from([0, 3, 4]);
  const dir = tmp();
  await saveTensors(dir, namedWeights(a), { epoch: 7, note: 'test' });
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  assert.deepEqual(manifest.weightsManifest[0].paths, ['weights.bin']);
  assert.equal(manifest.weightsManifest[0].weights[0].name, 'bn_data_beta');
  assert.deepEqual(manifest.userDefinedMetadata, { epoch: 7, note: 'test' });
  assert.equal(readFileSync(join(dir, 'weights.bin')).byteLength, 4 * (a.parameterCount() + [...a.aux.values()].reduce((n, v) => n + v.size, 0)));

  const { tensors, meta } = await loadTensors(dir);
  assert.deepEqual(meta, { epoch: 7, note: 'test' });
  const b = createResNet({ depth: 8, numClasses: 5, mixAt: 'head', seed: 99 });
  assignWeights(b, tensors, dir);
  tf.dispose([...tensors.values()]);
  const za = tf.tidy(() => forward(a, images, { training: false }));
  const zb = tf.tidy(() => forward(b, images, { training: false }));
  assert.deepEqual([...zb.dataSync()], [...za.dataSync()]);
  const ea = scoreLogits(za.dataSync() as Float32Array, labels, 5);
  const eb = scoreLogits(zb.dataSync() as Float32Array, labels, 5);
  assert.deepEqual(eb, ea);
  tf.dispose([za, zb, images]);
  a.dispose();
  b.dispose();
  rmSync(dir, { recursive: true });
});

test('int32 tensors round-trip too; missing directories are created', async () => {
  const dir = join(tmp(), 'epoch-0001', 'optimizer');
  await saveTensors(dir, new Map<string, tf.Tensor>([['step', tf.tensor1d([3, -1], 'int32')], ['x', tf.tensor2d([[1.5, 2]])]]));
  const { tensors, meta } = await loadTensors(dir);
  assert.deepEqual(meta, {});
  assert.equal(tensors.get('step')!.dtype, 'int32');
  assert.deepEqual([...tensors.get('step')!.dataSync()], [3, -1]);
  assert.deepEqual(tensors.get('x')!.arraySync(), [[1.5, 2]]);
  rmSync(dir, { recursive: true });
});

test('missing or corrupt files are user errors naming the file', async () => {
  const dir = tmp();
  await saveTensors(dir, new Map<string, tf.Tensor>([['x', tf.ones([4, 4])]]));
  const bin = join(dir, 'weights.bin');
  truncateSync(bin, 10);
  await assert.rejects(
    loadTensors(dir),
    (e: unknown) => e instanceof UserError && e.message === `${join(dir, 'model.json')}: weight "x" with shape [4,4] float32 needs 64 bytes from offset 0, but weights.bin holds 10; the checkpoint is truncated or corrupt`,
  );
  rmSync(bin);
  await assert.rejects(loadTensors(dir), (e: unknown) => e instanceof UserError && e.message.includes(bin));
  writeFileSync(join(dir, 'model.json'), '{"weightsManifest": ');
  await assert.rejects(loadTensors(dir), (e: unknown) => e instanceof UserError && e.message.includes(join(dir, 'model.json')) && /not valid JSON/.test(e.message));
  writeFileSync(join(dir, 'model.json'), '{"modelTopology": {}}');
  await assert.rejects(loadTensors(dir), /no "weightsManifest"/);
  rmSync(join(dir, 'model.json'));
  assert.ok(!existsSync(join(dir, 'model.json')));
  await assert.rejects(loadTensors(dir), (e: unknown) => e instanceof UserError && e.message.startsWith(join(dir, 'model.json')));
  rmSync(dir, { recursive: true });
});

test('assigning weights of another architecture is a user error naming the tensor', () => {
  const a = createResNet({ depth: 8, numClasses: 10, mixAt: null, seed: 0 });
  const b = createResNet({ depth: 8, numClasses: 5, mixAt: null, seed: 0 });
  assert.throws(() => assignWeights(b, namedWeights(a), 'ckpt/epoch-0001'), /ckpt\/epoch-0001: tensor fc1_weight has shape \[64,10\], the network expects \[64,5\]/);
  const partial = namedWeights(a);
  partial.delete('conv0_weight');
  assert.throws(() => assignWeights(a, partial, 'ckpt'), /ckpt: tensor conv0_weight is missing/);
  a.dispose();
  b.dispose();
});
