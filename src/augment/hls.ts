/**
 * OpenCV's 8-bit RGB ↔ HLS conversion and MXNet's random HSL jitter.
 *
 * MXNet's default augmenter (src/io/image_aug_default.cc, "color space augmentation") converts the
 * cropped 8-bit image with `cvtColor(BGR2HLS)`, adds one random integer per channel to every pixel
 * (H in [-random_h, random_h], S in [-random_s, random_s], L in [-random_l, random_l]), clamps H to
 * [0, 180] and L, S to [0, 255] (clamped, not wrapped), and converts back with `cvtColor(HLS2BGR)`.
 * The conversions follow OpenCV modules/imgproc/src/color_hsv.cpp (RGB2HLS_b / HLS2RGB_b, hue
 * range 180): pixels scaled by 1/255 in float32, H in degrees halved, results rounded half to even
 * (`saturate_cast<uchar>`). Float32 rounding is reproduced with Math.fround at each step, so the
 * result matches OpenCV's scalar path to the last bit in all but rare ties.
 */

const f = Math.fround;
const INV255 = f(1 / 255);
const FLT_EPSILON = 1.1920928955078125e-7;

/** `saturate_cast<uchar>(x)`: round half to even, clamp to [0, 255]. */
export function saturateU8(x: number): number {
  let r = Math.floor(x + 0.5);
  if (r - x === 0.5 && (r & 1) === 1) r -= 1;
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * One RGB pixel to OpenCV 8-bit HLS (hue range 180).
 * @returns `[H, L, S]`: H in [0, 180], L and S in [0, 255].
 */
export function rgbToHls8(r8: number, g8: number, b8: number, out: number[] = [0, 0, 0]): number[] {
  const r = f(r8 * INV255);
  const g = f(g8 * INV255);
  const b = f(b8 * INV255);
  let vmax = r;
  let vmin = r;
  if (vmax < g) vmax = g;
  if (vmax < b) vmax = b;
  if (vmin > g) vmin = g;
  if (vmin > b) vmin = b;
  let diff = f(vmax - vmin);
  const l = f(f(vmax + vmin) * 0.5);
  let h = 0;
  let s = 0;
  if (diff > FLT_EPSILON) {
    s = l < 0.5 ? f(diff / f(vmax + vmin)) : f(diff / f(f(2 - vmax) - vmin));
    diff = f(60 / diff);
    if (vmax === r) h = f(f(g - b) * diff);
    else if (vmax === g) h = f(f(f(b - r) * diff) + 120);
    else h = f(f(f(r - g) * diff) + 240);
    if (h < 0) h = f(h + 360);
  }
  out[0] = saturateU8(f(h * 0.5));
  out[1] = saturateU8(f(l * 255));
  out[2] = saturateU8(f(s * 255));
  return out;
}

// OpenCV's HLS2RGB_f sector table: indices into [p2, p1, p1+(p2-p1)(1-h), p1+(p2-p1)h] for b, g, r.
const SECTOR = [
  [1, 3, 0],
  [1, 0, 2],
  [3, 0, 1],
  [0, 2, 1],
  [0, 1, 3],
  [2, 1, 0],
];

const TAB = new Float64Array(4);
const H_SCALE = f(6 / 180);

/**
 * One OpenCV 8-bit HLS pixel (hue range 180) back to RGB.
 * @returns `[R, G, B]` in [0, 255].
 */
export function hls8ToRgb(h8: number, l8: number, s8: number, out: number[] = [0, 0, 0]): number[] {
  const l = f(l8 * INV255);
  const s = f(s8 * INV255);
  let r: number;
  let g: number;
  let b: number;
  if (s === 0) {
    r = g = b = l;
  } else {
    const p2 = l <= 0.5 ? f(l * f(1 + s)) : f(f(l + s) - f(l * s));
    const p1 = f(f(2 * l) - p2);
    let h = f(h8 * H_SCALE);
    while (h < 0) h = f(h + 6);
    while (h >= 6) h = f(h - 6);
    const sector = Math.floor(h);
    h = f(h - sector);
    const tab = TAB;
    tab[0] = p2;
    tab[1] = p1;
    tab[2] = f(p1 + f(f(p2 - p1) * f(1 - h)));
    tab[3] = f(p1 + f(f(p2 - p1) * h));
    const sd = SECTOR[sector]!;
    b = tab[sd[0]!]!;
    g = tab[sd[1]!]!;
    r = tab[sd[2]!]!;
  }
  out[0] = saturateU8(f(r * 255));
  out[1] = saturateU8(f(g * 255));
  out[2] = saturateU8(f(b * 255));
  return out;
}

/**
 * The random offsets MXNet draws for one image, in its order (h, s, l): `int(u·2·max − max)`,
 * truncated toward zero as C++'s float→int conversion does.
 * @param u three uniforms in [0, 1).
 */
export function hlsOffsets(uh: number, us: number, ul: number, maxH: number, maxS: number, maxL: number): { h: number; s: number; l: number } {
  return {
    h: Math.trunc(f(f(uh * maxH * 2) - maxH)) | 0,
    s: Math.trunc(f(f(us * maxS * 2) - maxS)) | 0,
    l: Math.trunc(f(f(ul * maxL * 2) - maxL)) | 0,
  };
}

/**
 * Applies MXNet's HSL jitter in place: RGB → HLS, add (dh, dl, ds) with H clamped to [0, 180] and
 * L, S to [0, 255], HLS → RGB. The round trip happens even when all offsets are 0 (as in MXNet,
 * which converts whenever any maximum is non-zero).
 * @param pixels `[N,3]` uint8 RGB (HWC), modified in place.
 * @param n number of pixels.
 */
export function jitterHls(pixels: Uint8Array, n: number, dh: number, ds: number, dl: number): void {
  // rgbToHls8, the clamped offsets and hls8ToRgb inlined (this loop is the pipeline's hot spot);
  // test/augment.test.ts checks it against the per-pixel functions.
  const tab = TAB;
  for (let j = 0, end = n * 3; j < end; j += 3) {
    const r = f(pixels[j]! * INV255);
    const g = f(pixels[j + 1]! * INV255);
    const b = f(pixels[j + 2]! * INV255);
    let vmax = r;
    let vmin = r;
    if (vmax < g) vmax = g;
    if (vmax < b) vmax = b;
    if (vmin > g) vmin = g;
    if (vmin > b) vmin = b;
    let diff = f(vmax - vmin);
    const l0 = f(f(vmax + vmin) * 0.5);
    let h0 = 0;
    let s0 = 0;
    if (diff > FLT_EPSILON) {
      s0 = l0 < 0.5 ? f(diff / f(vmax + vmin)) : f(diff / f(f(2 - vmax) - vmin));
      diff = f(60 / diff);
      if (vmax === r) h0 = f(f(g - b) * diff);
      else if (vmax === g) h0 = f(f(f(b - r) * diff) + 120);
      else h0 = f(f(f(r - g) * diff) + 240);
      if (h0 < 0) h0 = f(h0 + 360);
    }
    let h8 = saturateU8(f(h0 * 0.5)) + dh;
    let l8 = saturateU8(f(l0 * 255)) + dl;
    let s8 = saturateU8(f(s0 * 255)) + ds;
    h8 = h8 < 0 ? 0 : h8 > 180 ? 180 : h8;
    l8 = l8 < 0 ? 0 : l8 > 255 ? 255 : l8;
    s8 = s8 < 0 ? 0 : s8 > 255 ? 255 : s8;
    const l = f(l8 * INV255);
    const s = f(s8 * INV255);
    if (s === 0) {
      const v = saturateU8(f(l * 255));
      pixels[j] = pixels[j + 1] = pixels[j + 2] = v;
      continue;
    }
    const p2 = l <= 0.5 ? f(l * f(1 + s)) : f(f(l + s) - f(l * s));
    const p1 = f(f(2 * l) - p2);
    let h = f(h8 * H_SCALE);
    if (h >= 6) h = f(h - 6);
    const sector = Math.floor(h);
    h = f(h - sector);
    tab[0] = p2;
    tab[1] = p1;
    tab[2] = f(p1 + f(f(p2 - p1) * f(1 - h)));
    tab[3] = f(p1 + f(f(p2 - p1) * h));
    const sd = SECTOR[sector]!;
    pixels[j + 2] = saturateU8(f(tab[sd[0]!]! * 255));
    pixels[j + 1] = saturateU8(f(tab[sd[1]!]! * 255));
    pixels[j] = saturateU8(f(tab[sd[2]!]! * 255));
  }
}
