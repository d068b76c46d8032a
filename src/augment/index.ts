/**
 * Per-image augmentation and normalisation, from a decoded `[32,32,3]` uint8 image to the network's
 * `[H,W,3]` float32 input.
 *
 * Presets (`data.augment.preset`):
 * - `reference`: MXNet's ImageRecordIter as the reference's train_cifar10.py ran it
 *   (src/io/image_aug_default.cc + iter_image_recordio_2.cc; example/image-classification/common/
 *   data.py): pad by `padSize` with `fillValue` (cv::copyMakeBorder, constant), random crop to
 *   `imageShape` (offsets uniform in [0, padded − crop]), random HSL jitter (see hls.ts), random
 *   horizontal mirror, then subtract `rgbMean` from the 0–255 pixels (no division). Evaluation
 *   (the reference's val iterator: no pad, rand_crop 0): center crop, offset ⌊(32 − crop)/2⌋.
 * - `paper`: facebookresearch/mixup-cifar10 (torchvision): 32×32, `RandomCrop(32, padding=padSize)`
 *   with zero padding, `RandomHorizontalFlip`, then `(x/255 − mean)/std` with the CIFAR-10 mean
 *   (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010). Evaluation: the whole image.
 * - `none`: center crop to `imageShape` and subtract `rgbMean`, in training as in evaluation.
 *
 * Random draws per image, in order: crop y, crop x, (H, S, L offsets), mirror. Each image draws
 * from its own stream (see src/data/batch.ts), so results do not depend on batch composition or
 * on the number of worker threads.
 */
import type { Config } from '../config/schema.js';
import { randomInt, type Uniform } from '../random.js';
import { hlsOffsets, jitterHls } from './hls.js';

/** CIFAR-10 channel mean and std of facebookresearch/mixup-cifar10 (train.py). */
export const CIFAR10_MEAN: readonly [number, number, number] = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD: readonly [number, number, number] = [0.2023, 0.1994, 0.201];

/** Everything the per-image transform needs; plain data, so it can be sent to worker threads. */
export interface AugmentSpec {
  /** Output height and width. */
  outH: number;
  outW: number;
  /** Padding on each side before the crop, and its pixel value. */
  pad: number;
  fill: number;
  /** Random crop offsets (true) or center crop (false). */
  randomCrop: boolean;
  /** Random horizontal mirror with probability 1/2. */
  mirror: boolean;
  /** HSL jitter maxima (OpenCV units: H 0–180, S and L 0–255); all 0 = no jitter, no conversion. */
  maxH: number;
  maxS: number;
  maxL: number;
  /** Output = (pixel · scale − mean[c]) / std[c]. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * The transform of a config for training (`train` true) or evaluation.
 * Output size: `data.imageShape` (H, W), or 32×32 for the `paper` preset.
 */
export function augmentSpec(cfg: Config, train: boolean): AugmentSpec {
  const a = cfg.data.augment;
  const [, h, w] = cfg.data.imageShape;
  if (a.preset === 'paper') {
    return {
      outH: 32,
      outW: 32,
      pad: train ? cfg.data.padSize : 0,
      fill: 0,
      randomCrop: train,
      mirror: train && a.mirror,
      maxH: 0,
      maxS: 0,
      maxL: 0,
      scale: 1 / 255,
      mean: [...CIFAR10_MEAN],
      std: [...CIFAR10_STD],
    };
  }
  const reference = a.preset === 'reference' && train;
  return {
    outH: h,
    outW: w,
    pad: reference ? cfg.data.padSize : 0,
    fill: a.fillValue,
    randomCrop: reference,
    mirror: reference && a.mirror,
    maxH: reference ? a.maxRandomH : 0,
    maxS: reference ? a.maxRandomS : 0,
    maxL: reference ? a.maxRandomL : 0,
    scale: 1,
    mean: [...cfg.data.rgbMean],
    std: [1, 1, 1],
  };
}

/** Random choices for one image (exposed for tests and the preview). */
export interface AugmentDraws {
  /** Top-left corner of the crop in the padded image. */
  y: number;
  x: number;
  /** HSL offsets. */
  dh: number;
  ds: number;
  dl: number;
  flip: boolean;
}

/**
 * Draws one image's random choices from `u` (null: evaluation, no randomness: center crop).
 * @param srcH,srcW size of the decoded image before padding.
 */
export function drawAugment(spec: AugmentSpec, srcH: number, srcW: number, u: Uniform | null): AugmentDraws {
  const rangeY = srcH + 2 * spec.pad - spec.outH;
  const rangeX = srcW + 2 * spec.pad - spec.outW;
  let y = Math.floor(rangeY / 2);
  let x = Math.floor(rangeX / 2);
  let dh = 0;
  let ds = 0;
  let dl = 0;
  let flip = false;
  if (u && spec.randomCrop) {
    y = randomInt(u, rangeY + 1);
    x = randomInt(u, rangeX + 1);
  }
  if (u && (spec.maxH !== 0 || spec.maxS !== 0 || spec.maxL !== 0)) {
    ({ h: dh, s: ds, l: dl } = hlsOffsets(u(), u(), u(), spec.maxH, spec.maxS, spec.maxL));
  }
  if (u && spec.mirror) flip = u() < 0.5;
  return { y, x, dh, ds, dl, flip };
}

/**
 * Pads, crops and jitters one image into uint8 (the augmented picture, before normalisation).
 * @param src `[srcH,srcW,3]` uint8 RGB.
 * @param crop `[outH,outW,3]` uint8, written.
 */
export function cropAndJitter(spec: AugmentSpec, src: Uint8Array, srcH: number, srcW: number, d: AugmentDraws, crop: Uint8Array): void {
  const { outH, outW, pad, fill } = spec;
  for (let oy = 0; oy < outH; oy++) {
    const sy = oy + d.y - pad;
    const rowOk = sy >= 0 && sy < srcH;
    for (let ox = 0; ox < outW; ox++) {
      // Mirroring the output row is the same as mirroring after the crop (as MXNet does).
      const sx = (d.flip ? outW - 1 - ox : ox) + d.x - pad;
      const o = (oy * outW + ox) * 3;
      if (rowOk && sx >= 0 && sx < srcW) {
        const s = (sy * srcW + sx) * 3;
        crop[o] = src[s]!;
        crop[o + 1] = src[s + 1]!;
        crop[o + 2] = src[s + 2]!;
      } else {
        crop[o] = crop[o + 1] = crop[o + 2] = fill;
      }
    }
  }
  if (spec.maxH !== 0 || spec.maxS !== 0 || spec.maxL !== 0) jitterHls(crop, outH * outW, d.dh, d.ds, d.dl);
}

/**
 * The whole per-image transform: draws, pad + crop + jitter + mirror, then normalisation.
 * @param src `[srcH,srcW,3]` uint8 RGB (HWC).
 * @param u the image's own uniform stream, or null for evaluation.
 * @param out float32 batch buffer; the `[outH,outW,3]` result is written at `outOffset`.
 * @param scratch at least outH·outW·3 bytes.
 */
export function augmentInto(
  spec: AugmentSpec,
  src: Uint8Array,
  srcH: number,
  srcW: number,
  u: Uniform | null,
  out: Float32Array,
  outOffset: number,
  scratch: Uint8Array,
): void {
  const d = drawAugment(spec, srcH, srcW, u);
  cropAndJitter(spec, src, srcH, srcW, d, scratch);
  const n = spec.outH * spec.outW;
  const { scale, mean, std } = spec;
  const [m0, m1, m2] = mean;
  const i0 = 1 / std[0];
  const i1 = 1 / std[1];
  const i2 = 1 / std[2];
  const end = n * 3;
  if (std[0] === 1 && std[1] === 1 && std[2] === 1 && scale === 1) {
    for (let j = 0; j < end; j += 3) {
      out[outOffset + j] = scratch[j]! - m0;
      out[outOffset + j + 1] = scratch[j + 1]! - m1;
      out[outOffset + j + 2] = scratch[j + 2]! - m2;
    }
  } else {
    for (let j = 0; j < end; j += 3) {
      out[outOffset + j] = (scratch[j]! * scale - m0) * i0;
      out[outOffset + j + 1] = (scratch[j + 1]! * scale - m1) * i1;
      out[outOffset + j + 2] = (scratch[j + 2]! * scale - m2) * i2;
    }
  }
}
