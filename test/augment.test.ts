import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema, type ConfigInput } from '../src/config/schema.js';
import { hls8ToRgb, hlsOffsets, jitterHls, rgbToHls8, saturateU8 } from '../src/augment/hls.js';
import { augmentInto, augmentSpec, cropAndJitter, drawAugment, type AugmentDraws } from '../src/augment/index.js';
import { uniformStream } from '../src/random.js';

const cfgOf = (c: ConfigInput = {}) => configSchema.parse(c);

/** A 32×32 image whose pixel (y, x) is (y, x, 7). */
function coords(): Uint8Array {
  const px = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) px.set([y, x, 7], (y * 32 + x) * 3);
  return px;
}

test('saturate_cast rounds half to even and clamps', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 127.5, 128.5, -3, 300, 2.4999].map(saturateU8), [0, 2, 2, 128, 128, 0, 255, 2]);
});

test('RGB -> HLS as OpenCV 8-bit (hand-computed)', () => {
  assert.deepEqual(rgbToHls8(255, 0, 0), [0, 128, 255]); // l = 0.5 -> 127.5 -> 128 (half to even)
  assert.deepEqual(rgbToHls8(0, 255, 0), [60, 128, 255]); // 120° / 2
  assert.deepEqual(rgbToHls8(0, 0, 255), [120, 128, 255]);
  assert.deepEqual(rgbToHls8(127, 127, 127), [0, 127, 0]);
  // r=.7843 g=.3922 b=.1961: l=.4902 -> 125; s=diff/(max+min)=.6 -> 153; h=(g-b)·60/diff=20° -> 10
  assert.deepEqual(rgbToHls8(200, 100, 50), [10, 125, 153]);
});

test('HLS -> RGB as OpenCV 8-bit, including its quantisation (hand-computed)', () => {
  // l=128/255, s=1: p2=1, p1=2l-1=1/255 -> (255, 1, 1): pure red does not survive the round trip
  assert.deepEqual(hls8ToRgb(0, 128, 255), [255, 1, 1]);
  assert.deepEqual(hls8ToRgb(180, 128, 255), [255, 1, 1]); // H 180 = 360° wraps to sector 0
  assert.deepEqual(hls8ToRgb(60, 128, 255), [1, 255, 1]);
  // gray with S +50: l=127/255, s=50/255: p2=l(1+s)=.5957 -> 152, p1=2l-p2=.4004 -> 102
  assert.deepEqual(hls8ToRgb(0, 127, 50), [152, 102, 102]);
});

test('jitter offsets are int(u·2·max − max), truncated toward zero, in MXNet order h, s, l', () => {
  assert.deepEqual(hlsOffsets(0, 0.5, 0.999, 36, 50, 50), { h: -36, s: 0, l: 49 });
  assert.deepEqual(hlsOffsets(0.49, 0.51, 0.01, 36, 50, 50), { h: 0, s: 1, l: -49 });
});

test('jitter clamps H to [0, 180] and L, S to [0, 255] instead of wrapping', () => {
  const px = new Uint8Array([127, 127, 127, 255, 0, 0]);
  jitterHls(px, 2, -10, 50, 0); // gray: H 0-10 -> 0, S 0+50; red: H 0 -> 0, S 255+50 -> 255
  assert.deepEqual([...px], [152, 102, 102, 255, 1, 1]);
  const white = new Uint8Array([255, 255, 255]);
  jitterHls(white, 1, 0, 0, 40); // L 255+40 -> 255
  assert.deepEqual([...white], [255, 255, 255]);
});

test('reference training spec: pad 4 with 127, random 28x28 crop of 40x40, HSL (36, 50, 50), mirror, rgbMean', () => {
  const s = augmentSpec(cfgOf(), true);
  assert.deepEqual(
    [s.outH, s.outW, s.pad, s.fill, s.randomCrop, s.mirror, s.maxH, s.maxS, s.maxL, s.scale, s.mean, s.std],
    [28, 28, 4, 127, true, true, 36, 50, 50, 1, [123.68, 116.779, 103.939], [1, 1, 1]],
  );
  const e = augmentSpec(cfgOf(), false);
  assert.deepEqual([e.pad, e.randomCrop, e.mirror, e.maxH], [0, false, false, 0]);
  assert.deepEqual(drawAugment(e, 32, 32, null), { y: 2, x: 2, dh: 0, ds: 0, dl: 0, flip: false });
});

test('crop offsets cover [0, 12] uniformly-ish and mirror is a coin flip', () => {
  const s = augmentSpec(cfgOf(), true);
  const ys = new Set<number>();
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    const d = drawAugment(s, 32, 32, uniformStream(1, 'augment', 0, i));
    assert.ok(d.y >= 0 && d.y <= 12 && d.x >= 0 && d.x <= 12);
    assert.ok(d.dh >= -36 && d.dh <= 35 && d.ds >= -50 && d.ds <= 49);
    ys.add(d.y);
    if (d.flip) flips++;
  }
  assert.equal(ys.size, 13);
  assert.ok(flips > 150 && flips < 250, `flips ${flips}`);
});

test('pad + crop + mirror place pixels exactly; padding is the fill value', () => {
  const spec = { ...augmentSpec(cfgOf(), true), maxH: 0, maxS: 0, maxL: 0 };
  const src = coords();
  const crop = new Uint8Array(28 * 28 * 3);
  const at = (y: number, x: number) => [...crop.subarray((y * 28 + x) * 3, (y * 28 + x) * 3 + 3)];
  const d: AugmentDraws = { y: 0, x: 12, dh: 0, ds: 0, dl: 0, flip: false };
  cropAndJitter(spec, src, 32, 32, d, crop);
  assert.deepEqual(at(0, 0), [127, 127, 127]); // padded row above the image
  assert.deepEqual(at(4, 0), [0, 8, 7]); // padded (4, 12) = image (0, 8)
  assert.deepEqual(at(27, 27), [127, 127, 127]); // x 12+27-4 = 35: padding
  assert.deepEqual(at(27, 23), [23, 31, 7]);
  cropAndJitter(spec, src, 32, 32, { ...d, flip: true }, crop);
  assert.deepEqual(at(4, 27), [0, 8, 7]); // mirrored: column 0 goes to 27
  assert.deepEqual(at(4, 0), [127, 127, 127]);
});

test('normalisation: reference subtracts rgbMean from 0-255, paper uses (x/255 - mean)/std', () => {
  const src = coords();
  const out = new Float32Array(28 * 28 * 3);
  augmentInto(augmentSpec(cfgOf(), false), src, 32, 32, null, out, 0, new Uint8Array(28 * 28 * 3));
  // center crop offset 2: output (0, 0) = image (2, 2)
  assert.ok(Math.abs(out[0]! - (2 - 123.68)) < 1e-4);
  assert.ok(Math.abs(out[1]! - (2 - 116.779)) < 1e-4);
  assert.ok(Math.abs(out[2]! - (7 - 103.939)) < 1e-4);
  const paper = augmentSpec(cfgOf({ data: { imageShape: [3, 32, 32], augment: { preset: 'paper' } } }), false);
  const p = new Float32Array(32 * 32 * 3);
  augmentInto(paper, src, 32, 32, null, p, 0, new Uint8Array(32 * 32 * 3));
  const o = (5 * 32 + 9) * 3;
  assert.ok(Math.abs(p[o]! - (5 / 255 - 0.4914) / 0.2023) < 1e-5);
  assert.ok(Math.abs(p[o + 1]! - (9 / 255 - 0.4822) / 0.1994) < 1e-5);
  const paperTrain = augmentSpec(cfgOf({ data: { imageShape: [3, 32, 32], augment: { preset: 'paper' } } }), true);
  assert.deepEqual([paperTrain.outH, paperTrain.pad, paperTrain.fill, paperTrain.randomCrop, paperTrain.maxH], [32, 4, 0, true, 0]);
});

test('the same stream gives the same augmented image; evaluation is deterministic without a stream', () => {
  const spec = augmentSpec(cfgOf(), true);
  const src = coords();
  const run = (u: (() => number) | null) => {
    const out = new Float32Array(28 * 28 * 3);
    augmentInto(spec, src, 32, 32, u, out, 0, new Uint8Array(28 * 28 * 3));
    return out;
  };
  assert.deepEqual(run(uniformStream(3, 'augment', 1, 9)), run(uniformStream(3, 'augment', 1, 9)));
  assert.notDeepEqual(run(uniformStream(3, 'augment', 1, 9)), run(uniformStream(3, 'augment', 1, 10)));
});

test('the inlined jitter loop equals rgbToHls8 + clamp + hls8ToRgb pixel by pixel', () => {
  const u = uniformStream(9, 'hls-test');
  const n = 4000;
  const px = new Uint8Array(n * 3).map(() => Math.floor(u() * 256));
  for (const [dh, ds, dl] of [[0, 0, 0], [-36, 49, -50], [35, -50, 49], [7, 3, -2]] as const) {
    const got = px.slice();
    jitterHls(got, n, dh, ds, dl);
    for (let i = 0; i < n; i++) {
      const [h, l, s] = rgbToHls8(px[i * 3]!, px[i * 3 + 1]!, px[i * 3 + 2]!);
      const clamp = (v: number, hi: number) => Math.max(0, Math.min(hi, v));
      const want = hls8ToRgb(clamp(h! + dh, 180), clamp(l! + dl, 255), clamp(s! + ds, 255));
      assert.deepEqual([...got.subarray(i * 3, i * 3 + 3)], want, `pixel ${i} offsets ${dh},${ds},${dl}`);
    }
  }
});
