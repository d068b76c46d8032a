// Every kernel a training step and an evaluation dispatch runs on webgpu, and agrees with cpu.
// Runs on lavapipe (scripts/setup-lavapipe.sh) on a machine without a GPU; skipped with a
// one-line reason where webgpu does not load (never in CI). Own process: Dawn stays out of the others.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { createResNet } from '../src/engine/tfjs/resnet.js';
import { planMix } from '../src/mixup/plan.js';
import { uniformStream } from '../src/random.js';
import { SGD } from '../src/engine/tfjs/sgd.js';
import { inferLogits, settleStep, settleSteps, trainStep } from '../src/engine/tfjs/step.js';
import type { MixupPlacement } from '../src/config/schema.js';
import { maxRelError, recordKernels, replayKernel, webgpuSkipReason, type KernelCall } from './fixtures/webgpu.js';

tf.enableProdMode();
const skip = (await webgpuSkipReason()) ?? false;
after(() => releaseBackends());

const EXPERIMENTS: [string, MixupPlacement | null][] = [
  ['erm', null],
  ['input mixup', 'input'],
  ['feature-map mixup', 'head'],
];

/** The kernel calls of one depth-8 training step per experiment and one evaluation batch, on cpu. */
async function stepKernels(): Promise<KernelCall[]> {
  await tf.setBackend('cpu');
  const B = 4;
  const calls: KernelCall[] = [];
  for (const [, mixAt] of EXPERIMENTS) {
    const net = createResNet({ depth: 8, numClasses: 10, mixAt, seed: 3 });
    const opt = new SGD(net, { momentum: 0.9, wd: 1e-4 });
    const images = tf.randomNormal([B, 8, 8, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const labels = Int32Array.from([1, 0, 7, 3]);
    const plan = mixAt === null ? null : planMix(B, { alpha: 0.2, mixRate: 0.7, scheme: 'pairs' }, uniformStream(5, 'mixup', 0, 0));
    let pending: ReturnType<typeof trainStep> | null = null;
    calls.push(...recordKernels(() => void (pending = trainStep(net, opt, images, labels, plan, { lr: 0.1, gradScale: 1 / 64, loss: 'soft-ce' }))));
    await settleStep(pending!);
    calls.push(...recordKernels(() => inferLogits(net, images).dispose()));
    images.dispose();
    opt.dispose();
    net.dispose();
  }
  return calls;
}

const calls = skip ? [] : await stepKernels();
const names = [...new Set(calls.map((c) => c.name))].sort();

test('every kernel of a depth-8 training step and an evaluation is registered for webgpu (no CPU fallback)', { skip }, () => {
  // The step's essentials are among those recorded: convolution with both gradients, the loss, the guarded update.
  for (const k of ['Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'Log', 'Select', 'ArgMax', 'Sum']) assert.ok(names.includes(k), `${k} in ${names.join(' ')}`);
  const missing = names.filter((n) => tf.getKernel(n, 'webgpu') === undefined);
  assert.deepEqual(missing, [], `kernels without a webgpu implementation: ${missing.join(', ')}`);
});

test('each kernel call of the step on webgpu equals cpu (max error ≤ 1e-4 of the tensor scale)', { skip }, async () => {
  const worst: string[] = [];
  for (const call of calls) {
    await tf.setBackend('cpu');
    const want = await replayKernel(call);
    await tf.setBackend('webgpu');
    const got = await replayKernel(call);
    assert.equal(got.length, want.length, call.name);
    got.forEach((g, i) => {
      assert.equal(g.dtype, want[i]!.dtype, `${call.name} output ${i} dtype`);
      const err = maxRelError(g.values, want[i]!.values);
      if (!(err <= 1e-4)) worst.push(`${call.name}(${call.inputs.map((x) => `[${x.shape}]`).join(',')}) output ${i}: ${err}`);
    });
  }
  await tf.setBackend('cpu');
  assert.ok(calls.length > 40, `${calls.length} distinct kernel calls recorded`);
  assert.deepEqual(worst, []);
});

test('an error the GPU device reports (a shader that does not compile) stops the next read with one line', { skip }, async () => {
  assert.ok(await tf.setBackend('webgpu'));
  try {
    // tfjs-webgpu 4.22 writes invalid WGSL for a rank-5 tensor plus a [C] vector ('cannot index type vec5'):
    // the kernel computes nothing, and only the device's error event says so.
    const bad = tf.add(tf.ones([2, 8, 8, 8, 3]), tf.ones([3]));
    const pending = { loss: tf.scalar(1), correct: tf.scalar(0, 'int32') };
    await assert.rejects(settleSteps([pending]), /^UserError: webgpu: the GPU device reported an error, so the results computed since are not valid: .*cannot index type 'vec5'/);
    // reported once: the next read goes through
    const next = await settleSteps([{ loss: tf.scalar(2), correct: tf.scalar(1, 'int32') }]);
    assert.deepEqual(next, [{ loss: 2, correct: 1, updated: true }]);
    bad.dispose();
  } finally {
    await tf.setBackend('cpu');
  }
});
