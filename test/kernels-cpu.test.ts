/**
 * The cpu backend's replacement Conv2DBackpropFilter (src/engine/tfjs/kernels/cpu.ts) against tfjs's built-in
 * one: the same filter gradients (max relative error ≤ 1e-5) for strides 1/2, 'same'/'valid'/explicit
 * padding, 1×1/3×3 filters, odd and even sizes.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterCpu, registerCpuTrainingKernels } from '../src/engine/tfjs/kernels/cpu.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
const CASES: { x: [number, number, number, number]; k: number; co: number; stride: number; pad: Pad }[] = [
  { x: [2, 7, 7, 3], k: 3, co: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: 3, co: 4, stride: 2, pad: 'same' },
  { x: [3, 9, 8, 2], k: 3, co: 5, stride: 2, pad: 'valid' },
  { x: [2, 8, 8, 4], k: 1, co: 3, stride: 2, pad: 'valid' },
  { x: [2, 6, 6, 3], k: 1, co: 2, stride: 1, pad: 'valid' },
  { x: [2, 7, 7, 3], k: 3, co: 4, stride: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
];

function filterGrads(): Float32Array[] {
  return CASES.map((c, i) =>
    tf.tidy(() => {
      const x = tf.randomNormal(c.x, 0, 1, 'float32', 10 + i) as tf.Tensor4D;
      const w = tf.randomNormal([c.k, c.k, c.x[3], c.co], 0, 1, 'float32', 20 + i) as tf.Tensor4D;
      const g = tf.grad((ww: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, ww as tf.Tensor4D, c.stride, c.pad))))(w);
      return g.dataSync() as Float32Array;
    }),
  );
}

test('cpu Conv2DBackpropFilter (a Conv2D over transposed tensors) matches the built-in kernel', () => {
  const builtin = filterGrads();
  registerCpuTrainingKernels();
  registerCpuTrainingKernels(); // idempotent
  assert.equal(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc, conv2DBackpropFilterCpu);
  const before = tf.memory().numTensors;
  const ours = filterGrads();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  CASES.forEach((c, i) => {
    const a = ours[i]!;
    const b = builtin[i]!;
    assert.equal(a.length, b.length);
    let scale = 1e-6;
    let err = 0;
    for (let j = 0; j < b.length; j++) {
      scale = Math.max(scale, Math.abs(b[j]!));
      err = Math.max(err, Math.abs(a[j]! - b[j]!));
    }
    assert.ok(err / scale <= 1e-5, `case ${i} (${JSON.stringify(c)}): max relative error ${err / scale}`);
  });
});
