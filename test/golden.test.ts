/**
 * Parity with an independent PyTorch implementation of the reference network (../shared/golden,
 * see its README): inference logits of depth 8 and 50 from given weights, and two full training
 * steps of depth 8 (BatchNorm in training mode, a fixed mix plan, the loss, gradScale, MXNet SGD)
 * for ERM, input mixup, feature-map mixup with the exact and the reference op's gradient, and the
 * two 2-shard cases. Each case runs through the project's own network, plan functions and
 * training step, on every backend of BACKENDS.
 *
 * Bounds (from the golden README): logits within 1e-5 absolute; both step losses within 1e-5; the
 * 2-step change (after − init) of every trainable parameter within 1e-2 relative, as a norm:
 * ‖Δours − Δgolden‖ ≤ 1e-2·‖Δgolden‖.
 *
 * Skipped, with one line, when the golden directory is absent (a clone outside this project's
 * CI); MIXUP_GOLDEN_DIR points elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type ConcreteBackend } from '../src/backend.js';
import type { MixupPlacement } from '../src/config/schema.js';
import type { MixBackward } from '../src/mixup/layer.js';
import { combinePlans, mixLength, pairsPlan, type MixPlan } from '../src/mixup/plan.js';
import { assignWeights, createResNet, forward, type ResNet } from '../src/model/resnet.js';
import { loadTensors } from '../src/model/weights.js';
import type { LossName } from '../src/train/loss.js';
import { SGD } from '../src/train/sgd.js';
import { settleStep, trainStep, type StepOptions, type StepResult } from '../src/train/step.js';

/** Backends every case runs on; add one here (e.g. 'webgpu') once selectBackend knows it. */
const BACKENDS: readonly ConcreteBackend[] = ['cpu', 'wasm'];

const GOLDEN = process.env['MIXUP_GOLDEN_DIR'] ?? fileURLToPath(new URL('../../../shared/golden', import.meta.url));

const EVAL_CASES = ['eval-logits-d8', 'eval-logits-d50'] as const;
const STEP_CASES = [
  'step-erm',
  'step-input-mixup',
  'step-head-exact',
  'step-head-reference',
  'step-head-reference-2shards',
  'step-input-2shards',
] as const;

interface EvalCase {
  depth: number;
  imagesNHWC: number[];
  shape: [number, number, number, number];
  logits: number[][];
}

interface StepCase {
  depth: number;
  batch: number;
  mixAt: 'none' | MixupPlacement;
  loss: LossName;
  backward?: MixBackward;
  shards: number;
  lr: number;
  momentum: number;
  wd: number;
  gradScale: number;
  steps: number;
  imagesNHWC: number[];
  shape: [number, number, number, number];
  labels: number[];
  partner?: number[];
  weight?: number[];
  lambda1?: number[];
  lambda2?: number[];
  losses: number[];
}

const readCase = <T>(name: string): T => JSON.parse(readFileSync(join(GOLDEN, name, 'case.json'), 'utf8')) as T;

/** One training step through the project's API (dispatched, then read); the only place the tests call it. */
async function step(net: ResNet, opt: SGD, images: tf.Tensor4D, labels: Int32Array, plan: MixPlan | null, o: StepOptions): Promise<StepResult> {
  return settleStep(trainStep(net, opt, images, labels, plan, o));
}

/** A network of the case's depth holding the weights (parameters and moving statistics) in `dir`. */
async function loadNet(dir: string, depth: number, mixAt: MixupPlacement | null, mixBackward: MixBackward = 'exact'): Promise<ResNet> {
  const net = createResNet({ depth, numClasses: 10, mixAt, seed: 0, mixBackward });
  const { tensors } = await loadTensors(dir);
  try {
    assignWeights(net, tensors, dir);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return net;
}

async function paramValues(net: ResNet): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of net.params) out.set(name, (await v.data()) as Float32Array);
  return out;
}

/**
 * The case's plan built by the project's own functions from its λ (pairsPlan per shard,
 * combinePlans), checked against the case's `partner` and `weight`.
 */
function planOf(c: StepCase): MixPlan | null {
  if (c.mixAt === 'none') return null;
  const perShard = c.batch / c.shards;
  const h = mixLength(perShard, 0.7) / 2;
  assert.equal(c.lambda1!.length, h * c.shards, 'λ1 per shard: mixLength(B/shards, 0.7)/2');
  const plans: MixPlan[] = [];
  for (let k = 0; k < c.shards; k++) {
    const l1 = Float64Array.from(c.lambda1!.slice(k * h, (k + 1) * h));
    const l2 = Float64Array.from(c.lambda2!.slice(k * h, (k + 1) * h));
    plans.push(pairsPlan(perShard, l1, l2));
  }
  const plan = combinePlans(plans);
  assert.deepEqual([...plan.partner], c.partner);
  plan.weight.forEach((w, i) => assert.ok(Math.abs(w - c.weight![i]!) < 1e-12, `weight[${i}] ${w} vs ${c.weight![i]}`));
  return plan;
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));

if (!existsSync(GOLDEN)) {
  test('golden parity tests', { skip: `${GOLDEN} is absent: parity tests against the PyTorch implementation skipped` }, () => {});
} else {
  for (const backend of BACKENDS) {
    for (const name of EVAL_CASES) {
      test(`${name} on ${backend}: inference logits within 1e-5 of the PyTorch implementation`, async () => {
        await selectBackend(backend);
        const c = readCase<EvalCase>(name);
        const net = await loadNet(join(GOLDEN, name, 'weights'), c.depth, null);
        const images = tf.tensor4d(c.imagesNHWC, c.shape, 'float32');
        try {
          const logits = forward(net, images, { training: false });
          const got = (await logits.data()) as Float32Array;
          logits.dispose();
          const want = c.logits.flat();
          assert.equal(got.length, want.length);
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
          assert.ok(worst <= 1e-5, `max |logit − golden| = ${worst.toExponential(2)} > 1e-5`);
        } finally {
          images.dispose();
          net.dispose();
        }
      });
    }
    for (const name of STEP_CASES) {
      test(`${name} on ${backend}: two training steps match the PyTorch implementation`, async () => {
        await selectBackend(backend);
        const c = readCase<StepCase>(name);
        const mixAt = c.mixAt === 'none' ? null : c.mixAt;
        const plan = planOf(c);
        const net = await loadNet(join(GOLDEN, name, 'init'), c.depth, mixAt, c.backward ?? 'exact');
        const opt = new SGD(net, { momentum: c.momentum, wd: c.wd });
        const images = tf.tensor4d(c.imagesNHWC, c.shape, 'float32');
        const labels = Int32Array.from(c.labels);
        const after = await loadTensors(join(GOLDEN, name, 'after'));
        try {
          const init = await paramValues(net);
          const losses: number[] = [];
          for (let s = 0; s < c.steps; s++) {
            const r = await step(net, opt, images, labels, plan, { lr: c.lr, gradScale: c.gradScale, loss: c.loss, shards: c.shards });
            assert.ok(r.updated, `step ${s + 1} did not update`);
            losses.push(r.loss);
          }
          losses.forEach((l, s) => assert.ok(Math.abs(l - c.losses[s]!) <= 1e-5, `step ${s + 1} loss ${l} vs golden ${c.losses[s]}`));
          const now = await paramValues(net);
          const bad: string[] = [];
          for (const [p, w0] of init) {
            const golden = after.tensors.get(p);
            assert.ok(golden, `golden 'after' lacks ${p}`);
            const g = (await golden.data()) as Float32Array;
            const w1 = now.get(p)!;
            const dGolden = g.map((x, i) => x - w0[i]!);
            const dDiff = w1.map((x, i) => x - g[i]!); // Δours − Δgolden = after_ours − after_golden
            const rel = norm(dDiff) / norm(dGolden);
            if (!(rel <= 1e-2)) bad.push(`${p} ${rel.toExponential(2)}`);
          }
          assert.deepEqual(bad, [], `parameters whose 2-step change is off by more than 1e-2 relative: ${bad.join(', ')}`);
        } finally {
          for (const t of after.tensors.values()) t.dispose();
          images.dispose();
          opt.dispose();
          net.dispose();
        }
      });
    }
  }
}
