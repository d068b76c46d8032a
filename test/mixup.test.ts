// MixUp bookkeeping (src/mixup/plan.ts, targets.ts, beta.ts): pure functions, no tfjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { betaSampler } from '../src/mixup/beta.js';
import {
  combinePlans,
  inversePermutation,
  mixLength,
  pairsPlan,
  planMix,
  planMixShards,
  referenceGradFactor,
  type MixPlan,
} from '../src/mixup/plan.js';
import { majorityLabels, mixLabels } from '../src/mixup/targets.js';
import { UserError } from '../src/errors.js';
import { uniformStream } from '../src/random.js';

test('mixLength: floor(mixRate·B), +1 when odd, never above B', () => {
  assert.equal(mixLength(128, 0.7), 90); // floor(89.6) = 89, odd → 90 (the reference's batch)
  assert.equal(mixLength(64, 0.7), 44); // floor(44.8) = 44, even: kept
  assert.equal(mixLength(10, 0.7), 8); // 7 → 8
  assert.equal(mixLength(10, 0.5), 6); // 5 → 6
  assert.equal(mixLength(10, 0), 0);
  assert.equal(mixLength(1, 0.7), 0);
  assert.equal(mixLength(10, 1), 10);
  assert.equal(mixLength(9, 1), 8); // 9 is odd and 10 would pass B: round down
  assert.equal(mixLength(9, 0.9), 8); // floor(8.1) = 8
  assert.equal(mixLength(7, 0.95), 6); // floor(6.65) = 6
  assert.equal(mixLength(1, 1), 0);
  for (let B = 1; B <= 40; B++) {
    for (const r of [0, 0.1, 0.33, 0.5, 0.7, 0.99, 1]) {
      const n = mixLength(B, r);
      assert.ok(n <= B && n % 2 === 0 && n >= 0, `B=${B} rate=${r} gave ${n}`);
      assert.ok(n >= Math.floor(r * B) - 1 && n <= Math.floor(r * B) + 1);
    }
  }
  assert.throws(() => mixLength(10, 1.5), RangeError);
});

test('pairs: row i holds pair i with λ1ᵢ, row h+i holds pair i with λ2ᵢ, the rest passes through', () => {
  const B = 11;
  const plan = planMix(B, { alpha: 0.2, mixRate: 0.7, scheme: 'pairs' }, uniformStream(3, 'mixup', 0, 0));
  assert.equal(plan.mixLen, 8); // floor(7.7) = 7 → 8
  const h = 4;
  assert.equal(plan.lambda1.length, h);
  assert.equal(plan.lambda2.length, h);
  // λ1 are the first h draws of Beta(α, α) on the batch's stream, λ2 the next h (the reference's order).
  const draw = betaSampler(0.2, uniformStream(3, 'mixup', 0, 0));
  const expected = Array.from({ length: 2 * h }, () => draw());
  assert.deepEqual([...plan.lambda1, ...plan.lambda2], expected);
  for (let i = 0; i < h; i++) {
    // out[i] = λ1ᵢ·x[i] + (1−λ1ᵢ)·x[h+i]
    assert.equal(plan.partner[i], h + i);
    assert.equal(plan.weight[i], plan.lambda1[i]);
    // out[h+i] = λ2ᵢ·x[i] + (1−λ2ᵢ)·x[h+i]: own sample x[h+i] has weight 1−λ2ᵢ
    assert.equal(plan.partner[h + i], i);
    assert.equal(plan.weight[h + i], 1 - plan.lambda2[i]!);
  }
  for (let i = 8; i < B; i++) {
    assert.equal(plan.partner[i], i);
    assert.equal(plan.weight[i], 1);
  }
  // partner is a permutation (an involution for pairs)
  assert.deepEqual([...inversePermutation(plan.partner)], [...plan.partner]);
});

test('plans are a pure function of the stream; other batches draw other λ', () => {
  const m = { alpha: 0.2, mixRate: 0.7, scheme: 'pairs' as const };
  const a = planMix(128, m, uniformStream(7, 'mixup', 2, 5));
  const b = planMix(128, m, uniformStream(7, 'mixup', 2, 5));
  const c = planMix(128, m, uniformStream(7, 'mixup', 2, 6));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.lambda1, c.lambda1);
  assert.equal(a.mixLen, 90);
});

test('mixRate 0 mixes nothing, mixRate 1 mixes every pair', () => {
  const none = planMix(6, { alpha: 1, mixRate: 0, scheme: 'pairs' }, uniformStream(0, 'm'));
  assert.equal(none.mixLen, 0);
  assert.deepEqual([...none.partner], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...none.weight], [1, 1, 1, 1, 1, 1]);
  const all = planMix(6, { alpha: 1, mixRate: 1, scheme: 'pairs' }, uniformStream(0, 'm'));
  assert.deepEqual([...all.partner], [3, 4, 5, 0, 1, 2]);
});

test('permutation scheme: one λ for the batch, a random permutation partner', () => {
  const p = planMix(16, { alpha: 0.4, mixRate: 0.7, scheme: 'permutation' }, uniformStream(1, 'mixup', 0, 0));
  assert.equal(p.mixLen, 16);
  assert.equal(p.lambda1.length, 1);
  assert.ok(p.weight.every((w) => w === p.lambda1[0]));
  assert.deepEqual([...p.partner].sort((a, b) => a - b), Array.from({ length: 16 }, (_, i) => i));
  assert.notDeepEqual([...p.partner], Array.from({ length: 16 }, (_, i) => i));
});

test('combinePlans: shard k\'s partners offset by its first row, weights and λ concatenated in shard order', () => {
  // shard 0 (rows 0..3): one pair (0,1) with λ1 0.25, λ2 0.5; shard 1 (rows 4..7): one pair (4,5) with λ1 0.75, λ2 0.125
  const a = pairsPlan(4, Float64Array.of(0.25), Float64Array.of(0.5));
  const b = pairsPlan(4, Float64Array.of(0.75), Float64Array.of(0.125));
  assert.deepEqual([...a.partner], [1, 0, 2, 3]);
  assert.deepEqual([...a.weight], [0.25, 0.5, 1, 1]);
  const c = combinePlans([a, b]);
  assert.equal(c.batchSize, 8);
  assert.equal(c.mixLen, 4);
  assert.equal(c.scheme, 'pairs');
  assert.deepEqual([...c.partner], [1, 0, 2, 3, 5, 4, 6, 7]);
  assert.deepEqual([...c.weight], [0.25, 0.5, 1, 1, 0.75, 0.875, 1, 1]);
  assert.deepEqual([...c.lambda1], [0.25, 0.75]);
  assert.deepEqual([...c.lambda2], [0.5, 0.125]);
  assert.equal(combinePlans([a]), a);
  assert.throws(() => combinePlans([]), RangeError);
  const perm = planMix(4, { alpha: 1, mixRate: 1, scheme: 'permutation' }, uniformStream(0, 'm'));
  assert.throws(() => combinePlans([a, perm]), RangeError);
});

test('planMixShards: each shard mixes mixLength(B/S) of its own rows, λ drawn shard by shard from one stream', () => {
  const m = { alpha: 0.2, mixRate: 0.7, scheme: 'pairs' as const };
  const p = planMixShards(128, 2, m, uniformStream(4, 'mixup', 1, 2));
  assert.equal(p.mixLen, 88); // 44 of each 64 (the reference's 2 GPUs), against 90 of 128 in one batch
  // rows 0..43 and 64..107 mixed, each with a partner in its own shard
  for (let r = 0; r < 128; r++) {
    const mixed = r % 64 < 44;
    assert.equal(p.partner[r] !== r, mixed, `row ${r}`);
    assert.equal(Math.floor(p.partner[r]! / 64), Math.floor(r / 64), `row ${r} mixed across shards`);
  }
  // λ: shard 0's 22 λ1 and 22 λ2 are the stream's first 44 Beta draws, shard 1's the next 44
  const draw = betaSampler(0.2, uniformStream(4, 'mixup', 1, 2));
  const d = Array.from({ length: 88 }, () => draw());
  assert.deepEqual([...p.lambda1], [...d.slice(0, 22), ...d.slice(44, 66)]);
  assert.deepEqual([...p.lambda2], [...d.slice(22, 44), ...d.slice(66, 88)]);
  // one shard is planMix itself
  assert.deepEqual(planMixShards(128, 1, m, uniformStream(4, 'mixup', 1, 2)), planMix(128, m, uniformStream(4, 'mixup', 1, 2)));
  assert.throws(() => planMixShards(10, 3, m, uniformStream(0, 'm')), RangeError);
  // CutMix in shards: each shard's boxes follow its rows; one shard is planMix itself
  const c = { ...m, kind: 'cutmix' as const };
  const image = { height: 8, width: 8 };
  const cs = planMixShards(16, 2, c, uniformStream(5, 'mixup', 0, 0), image);
  assert.equal(cs.boxes!.length, 64);
  assert.deepEqual([cs.height, cs.width], [8, 8]);
  for (let r = 0; r < 16; r++) {
    const [y0, x0, y1, x1] = cs.boxes!.subarray(4 * r, 4 * r + 4);
    const area = (y1! - y0!) * (x1! - x0!);
    assert.ok(Math.abs(cs.weight[r]! - (1 - area / 64)) < 1e-12, `row ${r}`);
    if (r % 8 >= 6) assert.equal(area, 0); // mixLength(8, 0.7) = 6: rows 6, 7 of each shard unmixed
  }
  assert.deepEqual(planMixShards(16, 1, c, uniformStream(5, 'mixup', 0, 0), image), planMix(16, c, uniformStream(5, 'mixup', 0, 0), image));
});

test('referenceGradFactor: λ1ᵢ+λ2ᵢ on row i, 2−λ1ᵢ−λ2ᵢ on row h+i, 1 on unmixed rows', () => {
  const p = pairsPlan(5, Float64Array.of(0.25, 0.5), Float64Array.of(0.125, 1));
  const s = referenceGradFactor(p);
  assert.deepEqual([...s], [0.375, 1.5, 1.625, 0.5, 1]);
  // in shards too: the factor follows each row's own pair
  const c = combinePlans([pairsPlan(2, Float64Array.of(0.25), Float64Array.of(0.5)), pairsPlan(2, Float64Array.of(0.75), Float64Array.of(0))]);
  assert.deepEqual([...referenceGradFactor(c)], [0.75, 1.25, 0.75, 1.25]);
});

test('α ≤ 0 is a user error naming mixup.alpha', () => {
  assert.throws(() => planMix(8, { alpha: 0, mixRate: 0.7, scheme: 'pairs' }, uniformStream(0, 'm')), (e: unknown) => {
    return e instanceof UserError && /mixup\.alpha/.test(e.message);
  });
});

test('mixLabels: mixed one-hot rows with the plan weights; plain one-hot without a plan', () => {
  const plan: MixPlan = {
    batchSize: 3,
    scheme: 'pairs',
    mixLen: 2,
    partner: Int32Array.from([1, 0, 2]),
    weight: Float64Array.from([0.75, 1 - 0.1, 1]),
    lambda1: Float64Array.from([0.75]),
    lambda2: Float64Array.from([0.1]),
  };
  const y = mixLabels(Int32Array.from([2, 0, 1]), 3, plan);
  // row 0: 0.75·onehot(2) + 0.25·onehot(0); row 1: λ2·a + (1−λ2)·b = 0.1·onehot(2) + 0.9·onehot(0)
  const f = Math.fround;
  assert.deepEqual([...y], [f(0.25), 0, f(0.75), f(0.9), 0, f(0.1), 0, 1, 0]);
  assert.deepEqual([...mixLabels(Int32Array.from([1, 0]), 2, null)], [0, 1, 1, 0]);
  // the same class on both sides sums to 1 on that class
  assert.deepEqual([...mixLabels(Int32Array.from([1, 1, 0]), 2, plan)].slice(0, 4), [0, 1, 0, 1]);
  assert.deepEqual([...majorityLabels(Int32Array.from([2, 0, 1]), plan)], [2, 0, 1]);
  const flipped = { ...plan, weight: Float64Array.from([0.3, 0.2, 1]) };
  assert.deepEqual([...majorityLabels(Int32Array.from([2, 0, 1]), flipped)], [0, 2, 1]);
  assert.throws(() => mixLabels(Int32Array.from([0, 5]), 3, null), UserError);
});

function moments(draw: () => number, n: number): { mean: number; variance: number; min: number; max: number } {
  let s = 0;
  let s2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = draw();
    s += x;
    s2 += x * x;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  const mean = s / n;
  return { mean, variance: s2 / n - mean * mean, min, max };
}

test('Beta(α, α) samples have mean 1/2 and variance 1/(4(2α+1))', () => {
  const n = 100_000;
  for (const alpha of [0.2, 1, 2]) {
    const m = moments(betaSampler(alpha, uniformStream(11, 'beta-test', alpha * 10)), n);
    const variance = 1 / (4 * (2 * alpha + 1)); // 0.1786 for α = 0.2, 1/12 for α = 1, 0.05 for α = 2
    const seMean = Math.sqrt(variance / n); // ≤ 0.0014
    assert.ok(Math.abs(m.mean - 0.5) < 5 * seMean, `α=${alpha}: mean ${m.mean}`);
    // (X−½)² lies in [0, ¼], so its variance is below 1/64: the sample variance's standard error is < 0.0004
    assert.ok(Math.abs(m.variance - variance) < 0.002, `α=${alpha}: variance ${m.variance}, expected ${variance}`);
    assert.ok(m.min >= 0 && m.max <= 1);
  }
  // U-shaped for α < 1: most mass near 0 and 1
  const d = betaSampler(0.2, uniformStream(12, 'beta-test'));
  let extreme = 0;
  for (let i = 0; i < 10_000; i++) {
    const x = d();
    if (x < 0.1 || x > 0.9) extreme++;
  }
  // P(X < 0.1) + P(X > 0.9) for Beta(0.2, 0.2) is 0.6734 (numerical integration); σ of the share ≈ 0.0047
  assert.ok(extreme > 6590 && extreme < 6880, `extreme share ${extreme / 10_000}`);
});
