/**
 * Whether two data files hold the same images, by content rather than by path: e.g. the CIFAR-10
 * binary `test_batch.bin` and the RecordIO `cifar10_val.rec` made from it (JPEG, so the pixels
 * differ by a few levels). Used to refuse fitting a temperature on the test set under another name.
 *
 * Two decoded `[32,32,3]` uint8 images are the same image when their mean absolute pixel difference
 * is below {@link SAME_IMAGE_TOLERANCE}. Measured on real CIFAR-10: `test_batch.bin` against
 * `cifar10_val.rec` (JPEG) differs by 1.2–1.9 levels per value; two different images differ by tens
 * (two noisy images of one flat colour, ±20 uniform noise, by about 13). Pure functions; the
 * pixels come from the data pipeline.
 */

/** Bytes of one decoded CIFAR image, `[32,32,3]` uint8. */
export const IMAGE_BYTES = 3072;

/** Mean absolute difference (levels 0–255, per value) under which two images are the same image. */
export const SAME_IMAGE_TOLERANCE = 6;

/**
 * How many of the images `probe` (`[K,32,32,3]` uint8) have a near-identical one in `pool`
 * (`[N,32,32,3]` uint8): mean absolute difference below `tolerance`. O(K·N·3072) at worst; a pair
 * stops being compared as soon as it cannot match (a few hundred values for different images).
 */
export function countShared(probe: Uint8Array, pool: Uint8Array, tolerance = SAME_IMAGE_TOLERANCE): number {
  const limit = tolerance * IMAGE_BYTES;
  const k = probe.length / IMAGE_BYTES;
  const n = pool.length / IMAGE_BYTES;
  let shared = 0;
  for (let a = 0; a < k; a++) {
    const pa = a * IMAGE_BYTES;
    for (let b = 0; b < n; b++) {
      const pb = b * IMAGE_BYTES;
      let d = 0;
      for (let j = 0; j < IMAGE_BYTES && d < limit; j++) d += Math.abs(probe[pa + j]! - pool[pb + j]!);
      if (d < limit) {
        shared++;
        break;
      }
    }
  }
  return shared;
}

/** `count` sample indices spread evenly over `0..n−1` (all of them when count ≥ n), ascending. */
export function spreadSamples(n: number, count: number): Int32Array {
  const m = Math.min(n, count);
  return Int32Array.from({ length: m }, (_, i) => Math.floor((i * n) / m));
}
