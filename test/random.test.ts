import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveSeed, permutation, randomInt, uniformStream } from '../src/random.js';

const draw = (u: () => number, n: number) => Array.from({ length: n }, () => u());

test('a stream is a pure function of (seed, coordinates)', () => {
  assert.deepEqual(draw(uniformStream(7, 'shuffle', 3), 20), draw(uniformStream(7, 'shuffle', 3), 20));
  assert.equal(deriveSeed(7, 'augment', 1, 2), deriveSeed(7, 'augment', 1, 2));
  for (const x of draw(uniformStream(0, 'x'), 1000)) assert.ok(x >= 0 && x < 1);
});

test('distinct coordinates give different streams', () => {
  const base = draw(uniformStream(7, 'augment', 1, 2), 8);
  for (const other of [
    uniformStream(8, 'augment', 1, 2),
    uniformStream(7, 'shuffle', 1, 2),
    uniformStream(7, 'augment', 2, 1),
    uniformStream(7, 'augment', 1, 3),
    uniformStream(7, 'augment', 1),
    uniformStream(7, 'augment', 1, 2 + 2 ** 32),
  ]) {
    assert.notDeepEqual(draw(other, 8), base);
  }
  const seeds = new Set<number>();
  for (let i = 0; i < 10000; i++) seeds.add(deriveSeed(0, 'augment', 0, i));
  assert.equal(seeds.size, 10000);
});

test('permutation is a permutation of 0..n-1, seeded, and not the identity', () => {
  for (const n of [0, 1, 2, 17, 1000]) {
    const p = permutation(n, uniformStream(1, 'shuffle', n));
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
  }
  const a = permutation(1000, uniformStream(1, 'shuffle', 0));
  assert.deepEqual(a, permutation(1000, uniformStream(1, 'shuffle', 0)));
  assert.notDeepEqual(a, permutation(1000, uniformStream(1, 'shuffle', 1)));
  assert.ok(a.some((v, i) => v !== i));
});

test('randomInt stays in [0, n) and hits every value', () => {
  const u = uniformStream(2, 'int');
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const k = randomInt(u, 13);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 13);
    seen.add(k);
  }
  assert.equal(seen.size, 13);
  assert.equal(randomInt(() => 0.9999999999, 5), 4);
});
