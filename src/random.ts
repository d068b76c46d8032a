/**
 * Seeded random streams. Every random choice of a run (weight init, shuffle order, augmentation,
 * mixup λ) comes from a stream whose seed is derived from `train.seed` and the stream's
 * coordinates (a name, the epoch, the batch or sample index). A stream is therefore a pure
 * function of where it is used: a resumed run, or a run with another number of worker threads,
 * draws the same numbers without any generator state being saved.
 *
 * The generator is the Mersenne Twister of @stdlib/random-base-mt19937.
 */
import mt19937 from '@stdlib/random-base-mt19937';

/**
 * A 32-bit seed derived from `seed` and coordinates, by a murmur3-style mix over their bytes.
 * Different coordinates give unrelated seeds; the result is in [1, 2^32 - 1] (MT19937 takes any
 * non-zero 32-bit seed).
 * @param seed the run's `train.seed` (a non-negative integer).
 * @param parts stream name and indices, e.g. `('shuffle', epoch)`.
 */
export function deriveSeed(seed: number, ...parts: (string | number)[]): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  const mix = (k: number) => {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  };
  mix(Math.floor(seed / 0x100000000));
  for (const p of parts) {
    if (typeof p === 'number') {
      mix(p >>> 0);
      mix(Math.floor(p / 0x100000000));
    } else {
      for (let i = 0; i < p.length; i++) mix(p.charCodeAt(i));
      mix(p.length);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 1;
}

/** A seeded generator of uniform numbers in [0, 1). */
export type Uniform = () => number;

/**
 * A uniform [0, 1) stream (MT19937, 32-bit resolution) for the given coordinates.
 * @param seed the run's `train.seed`.
 * @param parts stream name and indices, see {@link deriveSeed}.
 */
export function uniformStream(seed: number, ...parts: (string | number)[]): Uniform {
  // `normalized` (uint32 / 2^32) exists at run time but is missing from the package's typings.
  const gen = mt19937.factory({ seed: deriveSeed(seed, ...parts) }) as unknown as { normalized: Uniform };
  return gen.normalized;
}

/**
 * A uniform integer in [0, n) drawn from `u`.
 * @param n exclusive upper bound, a positive integer.
 */
export function randomInt(u: Uniform, n: number): number {
  return Math.min(n - 1, Math.floor(u() * n));
}

/**
 * A seeded permutation of 0..n-1 (Fisher-Yates).
 * @param n length.
 * @param u the uniform stream to draw from.
 */
export function permutation(n: number, u: Uniform): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(u, i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
