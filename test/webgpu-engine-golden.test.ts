// The static WebGPU engine against the golden parity data of an independent PyTorch implementation
// (../shared/golden, README there; the tfjs side is test/fixtures/golden.ts): inference logits of
// depth 8 and 50 within 1e-5, and the two-step cases (losses within 1e-5, the change of every
// trainable parameter within 1e-2 relative as a norm, 2e-2 for the 2-shard cases as on tfjs-webgpu).
// The preact18-* cases (PreAct ResNet-18, PyTorch SGD; fixtures/golden-preact.ts) with the same bounds.
// Runs on lavapipe; skipped with one line where no adapter loads (never in CI) or the golden
// directory is absent (MIXUP_GOLDEN_DIR points elsewhere).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { StaticResNet } from '../src/engine/webgpu/engine.js';
import { combinePlans, mixLength, pairsPlan, type MixPlan } from '../src/mixup/plan.js';
import { mixLabels, majorityLabels } from '../src/mixup/targets.js';
import { loadTensors } from '../src/model/weights.js';
import { goldenAbsent, type EvalCase, type StepCase } from './fixtures/golden.js';
import { engineDevice } from './fixtures/engine.js';
import { PREACT_EVAL_CASES, PREACT_STEP_CASES, loadTorchTensors, preactPlanOf, readPreactCase } from './fixtures/golden-preact.js';

const GOLDEN = process.env['MIXUP_GOLDEN_DIR'] ?? fileURLToPath(new URL('../../../shared/golden', import.meta.url));
await tf.setBackend('cpu');
const opened = await engineDevice();
const skip = 'skip' in opened ? opened.skip : !existsSync(GOLDEN) ? goldenAbsent(GOLDEN) : false;
after(() => {
  if (!('skip' in opened)) opened.dev.close();
});

/** A golden case, training or inference (test/fixtures/golden.ts describes both). */
type Case = StepCase & Partial<EvalCase>;

const readCase = (name: string): Case => JSON.parse(readFileSync(join(GOLDEN, name, 'case.json'), 'utf8')) as Case;

async function weightsOf(dir: string): Promise<Map<string, Float32Array>> {
  const { tensors } = await loadTensors(dir);
  const m = new Map<string, Float32Array>();
  for (const [n, t] of tensors) {
    m.set(n, t.dataSync().slice() as Float32Array);
    t.dispose();
  }
  return m;
}

/**
 * The parameters whose 2-step change is off, ‖Δours − Δgolden‖ > bound·‖Δgolden‖, each with its
 * relative error (the golden README's measure); empty when all agree.
 */
function changeErrors(e: StaticResNet, init: Map<string, Float32Array>, after: Map<string, Float32Array>, got: Map<string, Float32Array>, bound: number): string[] {
  const bad: string[] = [];
  for (const p of e.spec.params) {
    const i0 = init.get(p.name)!;
    const d = after.get(p.name)!.map((v, k) => v - i0[k]!);
    const ours = got.get(p.name)!.map((v, k) => v - i0[k]!);
    const num = Math.sqrt(ours.reduce((s, v, k) => s + (v - d[k]!) ** 2, 0));
    const den = Math.sqrt(d.reduce((s, v) => s + v * v, 0));
    if (!(num <= bound * den)) bad.push(`${p.name} ${(num / den).toExponential(2)}`);
  }
  return bad;
}

/** The case's plan from its λ (pairsPlan per shard, combinePlans), checked against its partners. */
function planOf(c: Case): MixPlan | null {
  if (c.mixAt === 'none') return null;
  const per = c.batch / c.shards;
  const h = mixLength(per, 0.7) / 2;
  const plans: MixPlan[] = [];
  for (let k = 0; k < c.shards; k++) plans.push(pairsPlan(per, Float64Array.from(c.lambda1!.slice(k * h, (k + 1) * h)), Float64Array.from(c.lambda2!.slice(k * h, (k + 1) * h))));
  const plan = combinePlans(plans);
  assert.deepEqual([...plan.partner], c.partner);
  return plan;
}

/**
 * Writes `init`, trains the case's `steps` steps on its batch and plan, and checks each step's loss
 * within 1e-5 and every parameter's change (after − init) within `bound` relative (changeErrors).
 */
async function stepsMatch(
  e: StaticResNet,
  c: { labels: number[]; imagesNHWC: number[]; steps: number; lr: number; losses: number[] },
  plan: Parameters<typeof mixLabels>[2],
  init: Map<string, Float32Array>,
  after: Map<string, Float32Array>,
  bound: number,
): Promise<void> {
  e.writeWeights(init);
  const labels = Int32Array.from(c.labels);
  const images = Float32Array.from(c.imagesNHWC);
  for (let s = 0; s < c.steps; s++) e.trainStep(images, mixLabels(labels, 10, plan), majorityLabels(labels, plan), plan, c.lr);
  const r = await e.settle();
  r.forEach((x, i) => assert.ok(Math.abs(x.loss - c.losses[i]!) <= 1e-5, `loss ${i}: ${x.loss} vs ${c.losses[i]}`));
  const bad = changeErrors(e, init, after, await e.readWeights(), bound);
  assert.deepEqual(bad, [], bad.join(', '));
  if ('errors' in opened) assert.deepEqual(opened.errors, []);
}

/** Runs the golden case's images through the engine in inference mode; every logit within `tol` of the case's. */
async function logitsWithin(e: StaticResNet, c: { imagesNHWC: number[]; logits?: number[][] }, tol: number): Promise<void> {
  const got = await e.infer(Float32Array.from(c.imagesNHWC));
  const want = c.logits!.flat();
  const worst = Math.max(...want.map((v, i) => Math.abs(v - got[i]!)));
  assert.ok(worst <= tol, `max |Δlogit| ${worst}`);
}

for (const name of ['eval-logits-d8', 'eval-logits-d50']) {
  test(`golden ${name}: inference logits within 1e-5`, { skip }, async () => {
    if ('skip' in opened) return;
    const c = readCase(name);
    const [n, h, w] = c.shape;
    const e = new StaticResNet(opened.dev.device, {
      depth: c.depth, numClasses: 10, height: h, width: w, batch: 0, shards: 1, mixAt: null, mixBackward: 'exact',
      loss: 'soft-ce', gradScale: 1, momentum: 0.9, wd: 0, evalBatch: n,
    });
    try {
      e.writeWeights(await weightsOf(join(GOLDEN, name, 'weights')));
      await logitsWithin(e, c, 1e-5);
    } finally {
      e.dispose();
    }
  });
}

for (const name of ['step-erm', 'step-input-mixup', 'step-head-exact', 'step-head-reference', 'step-head-reference-2shards', 'step-input-2shards']) {
  test(`golden ${name}: two engine steps`, { skip }, async () => {
    if ('skip' in opened) return;
    const c = readCase(name);
    const [, h, w] = c.shape;
    const mixAt = c.mixAt === 'none' ? null : c.mixAt;
    const e = new StaticResNet(opened.dev.device, {
      depth: c.depth, numClasses: 10, height: h, width: w, batch: c.batch, shards: c.shards, mixAt, mixBackward: c.backward ?? 'exact',
      loss: c.loss, gradScale: c.gradScale, momentum: c.momentum, wd: c.wd, evalBatch: 0,
    });
    try {
      const init = await weightsOf(join(GOLDEN, name, 'init'));
      const after = await weightsOf(join(GOLDEN, name, 'after'));
      await stepsMatch(e, c, planOf(c), init, after, c.shards > 1 ? 2e-2 : 1e-2);
    } finally {
      e.dispose();
    }
  });
}

async function torchWeightsOf(dir: string): Promise<Map<string, Float32Array>> {
  const tensors = await loadTorchTensors(dir);
  const m = new Map<string, Float32Array>();
  for (const [n, t] of tensors) {
    m.set(n, t.dataSync().slice() as Float32Array);
    t.dispose();
  }
  return m;
}

const preactSkip = skip || (existsSync(join(GOLDEN, PREACT_STEP_CASES[0])) ? false : `no preact18-* cases in ${GOLDEN}`);

for (const name of PREACT_EVAL_CASES) {
  test(`golden ${name}: PreAct ResNet-18 inference logits within 1e-5`, { skip: preactSkip }, async () => {
    if ('skip' in opened) return;
    const c = readPreactCase(GOLDEN, name);
    const [n, h, w] = c.shape;
    const e = new StaticResNet(opened.dev.device, {
      arch: 'preact-resnet18', depth: 18, modelWidth: c.width, numClasses: 10, height: h, width: w, batch: 0, shards: 1, mixAt: null,
      mixBackward: 'exact', loss: 'soft-ce', gradScale: 1, momentum: 0.9, wd: 0, sgd: 'pytorch', evalBatch: n,
    });
    try {
      e.writeWeights(await torchWeightsOf(join(GOLDEN, name, 'weights')));
      await logitsWithin(e, c, 1e-5);
      assert.deepEqual(opened.errors, []);
    } finally {
      e.dispose();
    }
  });
}

for (const name of PREACT_STEP_CASES) {
  test(`golden ${name}: two engine steps of PreAct ResNet-18 with PyTorch SGD`, { skip: preactSkip }, async () => {
    if ('skip' in opened) return;
    const c = readPreactCase(GOLDEN, name);
    const [, h, w] = c.shape;
    const plan = preactPlanOf(c);
    const e = new StaticResNet(opened.dev.device, {
      arch: 'preact-resnet18', depth: 18, modelWidth: c.width, numClasses: 10, height: h, width: w, batch: c.batch, shards: 1,
      mixAt: plan ? 'input' : null, mixBackward: 'exact', loss: c.loss, gradScale: 1, momentum: c.momentum, wd: c.wd, sgd: 'pytorch', evalBatch: 0,
    });
    try {
      const init = await torchWeightsOf(join(GOLDEN, name, 'init'));
      const after = await torchWeightsOf(join(GOLDEN, name, 'after'));
      await stepsMatch(e, c, plan, init, after, 1e-2);
    } finally {
      e.dispose();
    }
  });
}
