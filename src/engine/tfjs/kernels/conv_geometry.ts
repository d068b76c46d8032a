/**
 * Index bookkeeping for computing the two gradients of a 2-D convolution as ordinary forward
 * convolutions (plain numbers, no tfjs), one spatial axis at a time (height and width use the same
 * formulas).
 *
 * Forward convolution along one axis (TensorFlow semantics, dilation 1): input length `inLen`,
 * filter length `k`, stride `s`, padding `padBefore` (the `top`/`left` of tfjs's `padInfo`), output
 * length `outLen`; output position o reads input positions `o·s + t − padBefore`, t = 0..k−1.
 *
 * Filter gradient (dW[t] = Σ_o x[o·s + t − padBefore]·dy[o]): a convolution of x (spatial length
 * inLen, batch and channel axes swapped) with dy as the filter (length outLen, dilation s, stride 1),
 * whose output has exactly k positions. See {@link filterGradAxis}.
 *
 * Input gradient (dx[i] = Σ_{o,t: o·s+t−padBefore = i} dy[o]·W[t]): a stride-1 convolution of dy,
 * zero-dilated by s (length (outLen−1)·s+1), with the filter reversed along the axis, output
 * length inLen. See {@link inputGradAxis}. Standard derivation, e.g. Dumoulin & Visin, "A guide to
 * convolution arithmetic for deep learning" (2016), section 4 (transposed convolution).
 */

/** Geometry of the filter-gradient convolution along one axis. */
export interface FilterGradAxis {
  /** Input positions kept, from 0 (the rest, never read by the forward conv, are cropped). */
  keepLen: number;
  /** Padding before the (cropped) input. */
  padBefore: number;
  /** Padding after the (cropped) input, ≥ 0. */
  padAfter: number;
}

/**
 * Filter-gradient convolution along one axis: input x of length `inLen` cropped to `keepLen`,
 * padded by (`padBefore`, `padAfter`), convolved with a filter of length `outLen` at dilation `s`
 * and stride 1, gives exactly `k` outputs.
 * @param inLen forward input length (H or W), ≥ 1.
 * @param k forward filter length, ≥ 1.
 * @param s forward stride, ≥ 1.
 * @param padBefore forward padding before (tfjs `padInfo.top` / `.left`), ≥ 0.
 * @param outLen forward output length (dy's H or W), ≥ 1.
 * @throws Error when the numbers are inconsistent (outLen too large for the padded input).
 */
export function filterGradAxis(inLen: number, k: number, s: number, padBefore: number, outLen: number): FilterGradAxis {
  // Positions read: from −padBefore to (outLen−1)·s + k − 1 − padBefore.
  const lastRead = (outLen - 1) * s + k - 1 - padBefore;
  if (lastRead < 0 || padBefore < 0 || padBefore > k - 1 + (outLen - 1) * s) {
    throw new Error(`filterGradAxis: inconsistent geometry inLen=${inLen} k=${k} s=${s} pad=${padBefore} out=${outLen}`);
  }
  const keepLen = Math.min(inLen, lastRead + 1);
  const padAfter = lastRead + 1 - keepLen;
  // Check: keepLen + padBefore + padAfter − ((outLen−1)·s + 1) + 1 === k.
  return { keepLen, padBefore, padAfter };
}

/** Geometry of the input-gradient convolution along one axis. */
export interface InputGradAxis {
  /** Length of dy after zero-dilation by the stride: (outLen−1)·s + 1. */
  dilatedLen: number;
  /** Padding before the dilated dy. */
  padBefore: number;
  /** Padding after the dilated dy. */
  padAfter: number;
  /**
   * Rows of the dilated, padded dy to drop from the end before the convolution (when the padding
   * after would be negative: the forward conv's last input rows were cropped... never happens
   * for 'same'/'valid', kept for explicit paddings).
   */
  cropAfter: number;
}

/**
 * Input-gradient convolution along one axis: dy zero-dilated to `dilatedLen`, padded by
 * (`padBefore`, `padAfter`) (or cropped by `cropAfter`), convolved at stride 1 with the reversed
 * filter of length k, gives exactly `inLen` outputs.
 * @param inLen forward input length, ≥ 1.
 * @param k forward filter length, ≥ 1.
 * @param s forward stride, ≥ 1.
 * @param padBefore forward padding before, 0 ≤ padBefore ≤ k − 1.
 * @param outLen forward output length, ≥ 1.
 * @throws Error when padBefore > k − 1 (not produced by 'same' or 'valid').
 */
export function inputGradAxis(inLen: number, k: number, s: number, padBefore: number, outLen: number): InputGradAxis {
  if (padBefore > k - 1 || padBefore < 0) {
    throw new Error(`inputGradAxis: padding ${padBefore} outside [0, ${k - 1}] is not supported`);
  }
  const dilatedLen = (outLen - 1) * s + 1;
  const before = k - 1 - padBefore;
  // Output length = dilatedLen + before + after − k + 1 = inLen.
  const after = inLen - dilatedLen + padBefore;
  return { dilatedLen, padBefore: before, padAfter: Math.max(0, after), cropAfter: Math.max(0, -after) };
}

/** Multiply-adds of a forward NHWC conv: N·OH·OW·KH·KW·Cin·Cout (each gradient costs the same). */
export function convMacs(n: number, outH: number, outW: number, kh: number, kw: number, cin: number, cout: number): number {
  return n * outH * outW * kh * kw * cin * cout;
}
