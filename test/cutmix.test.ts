// CutMix (mixup.kind: cutmix) through the plan machinery (src/mixup/plan.ts, src/engine/tfjs/mixlayer.ts), cpu backend,
// and label smoothing of the targets (src/mixup/targets.ts).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { applyMix } from '../src/engine/tfjs/mixlayer.js';
import { boxWeights, cutBox, planMix } from '../src/mixup/plan.js';
import { majorityLabels, mixLabels, smoothLabels } from '../src/mixup/targets.js';
import { betaSampler } from '../src/mixup/beta.js';
import { uniformStream, type Uniform } from '../src/random.js';
import { loadConfig } from '../src/config/load.js';
import { UserError } from '../src/errors.js';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fixtures/tmp.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

/** A stream that returns the given numbers in order. */
function fixed(...values: number[]): Uniform {
  let k = 0;
  return () => {
    if (k >= values.length) throw new Error('fixed stream exhausted');
    return values[k++]!;
  };
}

test('cutBox: side √(1−λ)·H, centred on the drawn pixel, clipped to the image', () => {
  // 4×4 image, keep 3/4: side ratio 1/2, a 2×2 box; centre (cy, cx) = (floor(0.6·4), floor(0.3·4)) = (2, 1)
  assert.deepEqual(cutBox(0.75, 4, 4, fixed(0.6, 0.3)), [1, 0, 3, 2]);
  // centre (0, 0): the box starts at (−1, −1) and is clipped to rows 0..0, columns 0..0, one pixel
  assert.deepEqual(cutBox(0.75, 4, 4, fixed(0, 0)), [0, 0, 1, 1]);
  // keep 0.1 on 8×6: r = √0.9 = 0.9487, box floor(7.59) × floor(5.69) = 7×5; centre (7, 5) → rows 4..7, columns 3..5
  assert.deepEqual(cutBox(0.1, 8, 6, fixed(0.99, 0.99)), [4, 3, 8, 6]);
  // keep 1: an empty box
  const [y0, x0, y1, x1] = cutBox(1, 4, 4, fixed(0.5, 0.5));
  assert.equal((y1 - y0) * (x1 - x0), 0);
});

test('cutmix permutation plan: one box for the batch, label weights = 1 − pasted area / image area', () => {
  const u = uniformStream(4, 'mixup', 0, 0);
  const plan = planMix(5, { alpha: 1, mixRate: 1, scheme: 'permutation', kind: 'cutmix' }, u, { height: 4, width: 4 });
  // the same draws as plain mixup (λ, then the permutation), then the box centre
  const mix = planMix(5, { alpha: 1, mixRate: 1, scheme: 'permutation' }, uniformStream(4, 'mixup', 0, 0));
  assert.deepEqual(plan.partner, mix.partner);
  const replay = uniformStream(4, 'mixup', 0, 0);
  const lambda = betaSampler(1, replay)();
  for (let i = 4; i > 0; i--) replay(); // the Fisher-Yates draws
  const box = cutBox(lambda, 4, 4, replay);
  const area = (box[2] - box[0]) * (box[3] - box[1]);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual([...plan.boxes!.subarray(4 * i, 4 * i + 4)], box);
    assert.equal(plan.weight[i], 1 - area / 16);
  }
  assert.equal(plan.height, 4);
  // boxWeights: 0 inside the box, 1 outside; mean = the row's weight
  const w = boxWeights(plan);
  assert.equal(w.length, 5 * 16);
  const row0 = [...w.subarray(0, 16)];
  assert.equal(row0.filter((v) => v === 0).length, area);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
    const inside = y >= box[0] && y < box[2] && x >= box[1] && x < box[3];
    assert.equal(row0[y * 4 + x], inside ? 0 : 1, `pixel ${y},${x}`);
  }
});

test('cutmix on a small image: the partner pasted inside the box, labels mixed by its area', () => {
  // pairs, B = 4, mix_rate 1: rows 0,1 ↔ 2,3. Plan by hand: row 0 takes a 2×2 box at rows 1..2,
  // columns 0..1 from row 2; row 2 a one-pixel box at (0, 0) from row 0; rows 1 and 3 nothing.
  const plan = {
    batchSize: 4, scheme: 'pairs' as const, mixLen: 4,
    partner: Int32Array.from([2, 3, 0, 1]),
    weight: Float64Array.from([1 - 4 / 16, 1, 1 - 1 / 16, 1]),
    lambda1: new Float64Array(2), lambda2: new Float64Array(2),
    boxes: Int32Array.from([1, 0, 3, 2, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]),
    height: 4, width: 4,
  };
  // image b: every pixel (y, x) of channel c is 100·b + 10·c + (4y + x)/16 — which row a pixel came from is visible
  const data = new Float32Array(4 * 16 * 2);
  for (let b = 0; b < 4; b++) for (let p = 0; p < 16; p++) for (let c = 0; c < 2; c++) data[(b * 16 + p) * 2 + c] = 100 * b + 10 * c + p / 16;
  const out = tf.tidy(() => applyMix(tf.tensor4d(data, [4, 4, 4, 2]), plan).dataSync());
  const source = (b: number, p: number) => Math.floor(out[(b * 16 + p) * 2]! / 100);
  const rowSources = (b: number) => Array.from({ length: 16 }, (_, p) => source(b, p));
  // row 0: rows 1..2 × columns 0..1 (pixels 4, 5, 8, 9) from image 2
  assert.deepEqual(rowSources(0), [0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(rowSources(2), [0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual(rowSources(1), new Array(16).fill(1));
  // channels and positions come along unchanged: pixel 9 of row 0 is pixel 9 of image 2, channel 1
  assert.equal(out[(0 * 16 + 9) * 2 + 1], Math.fround(200 + 10 + 9 / 16));
  const y = mixLabels(Int32Array.from([3, 5, 7, 9]), 10, plan);
  assert.equal(y[0 * 10 + 3], 0.75);
  assert.equal(y[0 * 10 + 7], 0.25);
  assert.equal(y[2 * 10 + 7], 0.9375);
  assert.equal(y[2 * 10 + 3], 0.0625);
  assert.equal(y[1 * 10 + 5], 1);
  assert.deepEqual([...majorityLabels(Int32Array.from([3, 5, 7, 9]), plan)], [3, 5, 7, 9]);
});

test('cutmix pairs plan: a box per mixed row sized from its own λ, unmixed rows untouched', () => {
  const plan = planMix(7, { alpha: 0.5, mixRate: 0.6, scheme: 'pairs', kind: 'cutmix' }, uniformStream(2, 'mixup', 3, 1), { height: 8, width: 8 });
  const mix = planMix(7, { alpha: 0.5, mixRate: 0.6, scheme: 'pairs' }, uniformStream(2, 'mixup', 3, 1));
  assert.equal(plan.mixLen, 4);
  assert.deepEqual(plan.lambda1, mix.lambda1);
  assert.deepEqual(plan.partner, mix.partner);
  for (let i = 0; i < 7; i++) {
    const [y0, x0, y1, x1] = plan.boxes!.subarray(4 * i, 4 * i + 4);
    const area = (y1! - y0!) * (x1! - x0!);
    assert.equal(plan.weight[i], 1 - area / 64, `row ${i}`);
    if (i >= 4) assert.equal(area, 0);
    else {
      // the box before clipping has side floor(8·√(1 − λ)); clipping only shrinks it
      const side = Math.floor(8 * Math.sqrt(1 - mix.weight[i]!));
      assert.ok(y1! - y0! <= side && x1! - x0! <= side, `row ${i}`);
    }
  }
});

test('cutmix is an input-placement option: other placements and ERM are config errors', () => {
  const dir = tempDir('mixup-cutmix-');
  try {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ experiment: 'mixup', mixup: { kind: 'cutmix' } }));
    assert.equal(loadConfig(file).mixup.kind, 'cutmix');
    assert.equal(loadConfig(file, { overrides: [['mixup.scheme', 'permutation']] }).mixup.scheme, 'permutation');
    assert.throws(() => loadConfig(file, { overrides: [['experiment', 'mixup-feature']] }), (e: unknown) => e instanceof UserError && /mixup\.kind.*cutmix.*"head".*input placement/.test(e.message));
    assert.throws(() => loadConfig(file, { overrides: [['mixup.at', 'stage2']] }), (e: unknown) => e instanceof UserError && /mixup\.kind.*"stage2"/.test(e.message));
    assert.throws(() => loadConfig(file, { overrides: [['experiment', 'erm']] }), (e: unknown) => e instanceof UserError && /mixup\.kind.*erm/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('label smoothing: one-hot rows become 1 − ε + ε/K and ε/K; mixed rows keep their sum', () => {
  const y = mixLabels(Int32Array.from([2, 0]), 4, null);
  const s = smoothLabels(y, 4, 0.1);
  assert.deepEqual([...s], [0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025].map(Math.fround));
  // a mixed row 0.7·e1 + 0.3·e3 with ε 0.2, K 4: 0.8·y + 0.05
  const mixed = Float32Array.from([0, 0.7, 0, 0.3]);
  assert.deepEqual([...smoothLabels(mixed, 4, 0.2)], [0.05, 0.8 * Math.fround(0.7) + 0.05, 0.05, 0.8 * Math.fround(0.3) + 0.05].map(Math.fround));
  assert.equal(smoothLabels(y, 4, 0), y);
  assert.throws(() => smoothLabels(y, 4, 1), RangeError);
  assert.throws(() => smoothLabels(y, 3, 0.1), RangeError);
});
