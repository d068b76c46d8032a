// The GPU check's per-class breakdown (issue 24 item 7) on lavapipe, which has timestamp-query: one
// profiled training step (a timestamped pass per dispatch) computes what an ordinary step computes,
// and its device time adds up per kernel class and stage. Lavapipe's times say nothing about a GPU.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { StaticResNet } from '../src/engine/webgpu/engine.js';
import type { StaticResNetOptions } from '../src/engine/webgpu/engine_options.js';
import { StepProfiler, timeBreakdown } from '../src/engine/webgpu/profile.js';
import { withParts } from '../src/engine/webgpu/cost.js';
import { engineDevice } from './fixtures/engine.js';

const opened = await engineDevice(['timestamp-query']);
const dev = 'skip' in opened ? null : opened.dev;
const skip = 'skip' in opened ? opened.skip : dev!.device.features.has('timestamp-query') ? false : `${dev!.adapter} has no timestamp-query`;
after(() => dev?.close());

const options: StaticResNetOptions = {
  depth: 8, numClasses: 4, height: 8, width: 8, batch: 4, shards: 1, mixAt: null, mixBackward: 'exact',
  loss: 'soft-ce', gradScale: 1, momentum: 0.9, wd: 1e-4, evalBatch: 0, seed: 3,
};

test('a profiled step equals an ordinary one, and its per-dispatch times add up per class and stage', { skip }, async () => {
  const B = options.batch;
  const K = options.numClasses;
  const images = Float32Array.from({ length: B * 8 * 8 * 3 }, (_, i) => Math.sin(i));
  const targets = Float32Array.from({ length: B * K }, (_, i) => (i % K === Math.floor(i / K) % K ? 1 : 0));
  const majority = Int32Array.from({ length: B }, (_, i) => i % K);
  const plain = new StaticResNet(dev!.device, options);
  const profiled = new StaticResNet(dev!.device, options);
  const p = new StepProfiler(dev!.device, profiled.dispatchesPerStep);
  try {
    plain.trainStep(images, targets, majority, null, 0.1);
    profiled.profileWith(p);
    profiled.trainStep(images, targets, majority, null, 0.1);
    profiled.profileWith(null);
    const [a] = await plain.settle();
    const [b] = await profiled.settle();
    assert.deepEqual(b, a, 'the same loss and correct count');
    const wa = await plain.readWeights();
    const wb = await profiled.readWeights();
    for (const [name, v] of wa) assert.deepEqual(wb.get(name), v, `${name}: the same after the step`);

    const ns = await p.durations();
    assert.equal(ns.length, profiled.dispatchesPerStep);
    assert.ok(ns.every((t) => t >= 0) && ns.some((t) => t > 0), 'timestamps that advance');
    const groups = timeBreakdown(profiled.stepCosts(), ns);
    const step = groups.find((g) => g.class === 'all' && g.stage === 'all')!;
    assert.equal(step.dispatches, profiled.dispatchesPerStep);
    const total = ns.reduce((x, y) => x + y, 0) * 1e-6;
    assert.ok(Math.abs(step.ms - total) <= 1e-9 * total + 1e-12);
    // The classes over all stages, and the stages over all classes, each add up to the step.
    const classes = groups.filter((g) => g.class !== 'all' && g.stage === 'all');
    // Every conv's two gradients run as one dispatch (class conv_bwd; conv0's too, bn_data needs its dx),
    // timed as one: its parts (backward-data, backward-filter) are in the model, not in the measurement.
    assert.deepEqual(classes.map((g) => g.class), ['conv_fwd', 'conv_bwd', 'bn', 'other']);
    assert.deepEqual([...new Set(withParts(profiled.stepCosts()).map((d) => d.cost.class))].sort(), ['bn', 'conv_bwd_data', 'conv_bwd_filter', 'conv_fwd', 'other']);
    assert.ok(Math.abs(classes.reduce((x, g) => x + g.ms, 0) - step.ms) <= 1e-9 * step.ms);
    const stages = groups.filter((g) => g.class === 'all' && g.stage !== 'all');
    assert.deepEqual(stages.map((g) => g.stage), ['stem', 'stage1', 'stage2', 'stage3', 'head', 'update']);
    assert.equal(stages.reduce((x, g) => x + g.dispatches, 0), step.dispatches);
    assert.ok(step.tflops > 0 && step.gbps > 0);
  } finally {
    p.destroy();
    plain.dispose();
    profiled.dispose();
  }
});
