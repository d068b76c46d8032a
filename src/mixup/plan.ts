/**
 * MixUp bookkeeping: which samples of a batch are mixed, with whom and with which weight λ.
 * Pure functions over typed arrays (no tfjs); src/mixup/layer.ts applies a plan to a tensor.
 *
 * The reference's layer (hongyi-zhang/mixup, mxnet/symbols/mixup.py, class MixUp) does, for a
 * batch of B samples:
 *   mixLen = int(mix_rate·B), plus 1 when odd;
 *   a = x[0 : mixLen/2], b = x[mixLen/2 : mixLen]   (pairs i = 0..mixLen/2−1);
 *   λ1, λ2 ~ Beta(α, α), mixLen/2 of each, independent;
 *   out = concat([λ1·a + (1−λ1)·b,  λ2·a + (1−λ2)·b,  x[mixLen:]]), labels mixed alike.
 * So output row i < h (h = mixLen/2) holds pair i with λ1ᵢ, output row h+i holds pair i with λ2ᵢ,
 * and rows ≥ mixLen pass through. The batch size stays B.
 *
 * Every plan, of either scheme, is stored in one form: output row i is
 *   out[i] = weight[i]·x[i] + (1 − weight[i])·x[partner[i]]
 * where `partner` is a permutation of 0..B−1 (for `pairs` the swap i ↔ h+i, identity on the
 * unmixed rows, where weight = 1). Row h+i of the reference, λ2ᵢ·aᵢ + (1−λ2ᵢ)·bᵢ with
 * bᵢ = x[h+i], therefore has weight 1−λ2ᵢ and partner i. Being a permutation, the plan's
 * gradient is a gather by the inverse permutation (layer.ts).
 *
 * CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
 * Localizable Features", `mixup.kind: cutmix`) uses the same plan with a box per row: row i keeps
 * x[i] outside its box and takes x[partner[i]] inside it. The λ drawn for a row (its own share, as
 * above) sets the box's area share 1 − λ; the box is centred on a uniformly drawn pixel and clipped
 * to the image, and weight[i] becomes the share actually kept, 1 − (box area)/(H·W), so the labels
 * are mixed by the pasted area. The `permutation` scheme draws one box for the whole batch (as
 * Yun et al.'s code does), `pairs` one per mixed row; box centres are drawn after everything
 * else, so `kind: mixup` plans are unchanged by the option.
 */
import { UserError } from '../errors.js';
import { permutation, randomInt, type Uniform } from '../random.js';
import { betaSampler } from './beta.js';

/** The two mixing schemes of config `mixup.scheme`. */
export type MixScheme = 'pairs' | 'permutation';

/** What is mixed (config `mixup.kind`): whole images blended, or a box pasted (CutMix). */
export type MixKind = 'mixup' | 'cutmix';

/**
 * How many of the first samples of a batch the reference's layer mixes: floor(mixRate·B), plus 1
 * when that is odd, so the mixed samples form pairs; when B is odd and the +1 would pass B
 * (mixRate 1), one less instead. Never above B, always even.
 * @param batchSize B ≥ 0.
 * @param mixRate share of the batch to mix, in [0, 1] (config `mixup.mixRate`).
 * Source: mxnet/symbols/mixup.py, MixUp.forward (`mix_len = int(self.mix_rate*data.shape[0])`).
 */
export function mixLength(batchSize: number, mixRate: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 0) throw new RangeError(`mixLength: batch size ${batchSize} is not a non-negative integer`);
  if (!(mixRate >= 0 && mixRate <= 1)) throw new RangeError(`mixLength: mix rate ${mixRate} is outside [0, 1]`);
  let n = Math.floor(mixRate * batchSize);
  if (n % 2 !== 0) n = n + 1 <= batchSize ? n + 1 : n - 1;
  return n;
}

/** One batch's mixing, for {@link applyMix} (layer.ts), {@link mixLabels} and {@link majorityLabels}. */
export interface MixPlan {
  /** B, the batch size the plan is for. */
  readonly batchSize: number;
  readonly scheme: MixScheme;
  /** Number of mixed rows: `pairs` the first mixLen (even); `permutation` B. */
  readonly mixLen: number;
  /** `[B]` int32, a permutation of 0..B−1: row i is mixed with row partner[i]. */
  readonly partner: Int32Array;
  /** `[B]` weight of row i's own sample: out[i] = weight[i]·x[i] + (1 − weight[i])·x[partner[i]]. */
  readonly weight: Float64Array;
  /** `pairs`: λ1 of each pair `[mixLen/2]` (output rows 0..h−1); `permutation`: the batch's one λ `[1]`. */
  readonly lambda1: Float64Array;
  /** `pairs`: λ2 of each pair `[mixLen/2]` (output rows h..mixLen−1); `permutation`: empty. */
  readonly lambda2: Float64Array;
  /**
   * CutMix only: `[B·4]` int32, row i's box [y0, x0, y1, x1) in pixels (rows y0..y1−1, columns
   * x0..x1−1) of a `height`×`width` image, taken from x[partner[i]]; an empty box (all 0) keeps the
   * row unmixed. Absent for plain mixup.
   */
  readonly boxes?: Int32Array;
  /** CutMix only: the image size the boxes are for. */
  readonly height?: number;
  readonly width?: number;
}

/**
 * A CutMix box for a row that should keep a share `keep` of its own image: side ratio
 * r = √(1 − keep), box ⌊r·H⌋ × ⌊r·W⌋ centred on (cy, cx) = (randomInt(u, H), randomInt(u, W))
 * (top-left at the centre minus half the side, rounded down), then clipped to the image.
 * Source: Yun et al. 2019, Algorithm A1 / clovaai/CutMix-PyTorch rand_bbox.
 * @param keep λ in [0, 1], the share the box should leave.
 * @param height H ≥ 1, width W ≥ 1 of the image.
 * @param u the batch's uniform stream (draws cy, then cx).
 * @returns [y0, x0, y1, x1), 0 ≤ y0 ≤ y1 ≤ H, 0 ≤ x0 ≤ x1 ≤ W.
 */
export function cutBox(keep: number, height: number, width: number, u: Uniform): [number, number, number, number] {
  const r = Math.sqrt(Math.max(0, 1 - keep));
  const ch = Math.floor(height * r);
  const cw = Math.floor(width * r);
  const cy = randomInt(u, height);
  const cx = randomInt(u, width);
  const clip = (v: number, n: number) => Math.min(n, Math.max(0, v));
  const y0 = cy - Math.floor(ch / 2);
  const x0 = cx - Math.floor(cw / 2);
  return [clip(y0, height), clip(x0, width), clip(y0 + ch, height), clip(x0 + cw, width)];
}

/**
 * The per-pixel weight of each row's own image under a CutMix plan: 0 inside the row's box, 1
 * outside, so out = w·x + (1 − w)·x[partner]. The mean of row i is plan.weight[i].
 * @returns `[B,H,W]` row-major float32 (H, W = plan.height, plan.width).
 * @throws RangeError when the plan has no boxes.
 */
export function boxWeights(plan: MixPlan): Float32Array {
  const { boxes, height: H, width: W } = plan;
  if (!boxes || H === undefined || W === undefined) throw new RangeError('boxWeights: the plan has no CutMix boxes');
  const w = new Float32Array(plan.batchSize * H * W).fill(1);
  for (let i = 0; i < plan.batchSize; i++) {
    const [y0, x0, y1, x1] = boxes.subarray(4 * i, 4 * i + 4);
    for (let y = y0!; y < y1!; y++) w.fill(0, (i * H + y) * W + x0!, (i * H + y) * W + x1!);
  }
  return w;
}

/** Turns a mixup plan into a CutMix plan: a box per mixed row, weights = the share actually kept. */
function withBoxes(plan: MixPlan, height: number, width: number, u: Uniform): MixPlan {
  const B = plan.batchSize;
  const boxes = new Int32Array(4 * B);
  const weight = Float64Array.from(plan.weight);
  const shared = plan.scheme === 'permutation' ? cutBox(plan.weight[0]!, height, width, u) : null;
  for (let i = 0; i < plan.mixLen; i++) {
    // rows from mixLen on (pairs) pass unmixed: no box, weight 1
    const box = shared ?? cutBox(plan.weight[i]!, height, width, u);
    boxes.set(box, 4 * i);
    weight[i] = 1 - ((box[2] - box[0]) * (box[3] - box[1])) / (height * width);
  }
  return { ...plan, weight, boxes, height, width };
}

/**
 * Draws the mixing of one batch.
 * - `pairs` (the reference's layer): mixLen = {@link mixLength}(B, mixRate); λ1 of all pairs are
 *   drawn first, then λ2 of all pairs (the reference's order), from one Beta(α, α) sampler fed by `u`.
 * - `permutation` (the paper's form, §2 / Fig. 1a): one λ ~ Beta(α, α), then a random permutation of
 *   the whole batch (Fisher-Yates on `u`); every row i is λ·x[i] + (1−λ)·x[perm[i]]; mixRate is unused.
 * @param batchSize B ≥ 1.
 * - `kind: cutmix`: the same draws, then a box per mixed row ({@link cutBox}; one for the whole
 *   batch with `permutation`), and weights set to the share each row keeps.
 * @param batchSize B ≥ 1.
 * @param m config `mixup`: α > 0, mixRate in [0, 1], scheme, kind (default mixup).
 * @param u seeded uniform stream for this batch, e.g. `uniformStream(seed, 'mixup', epoch, batchIndex)`.
 * @param image `{height, width}` of the batch's images; needed for cutmix.
 * @throws UserError when α ≤ 0; RangeError for cutmix without an image size.
 */
export function planMix(
  batchSize: number,
  m: { alpha: number; mixRate: number; scheme: MixScheme; kind?: MixKind },
  u: Uniform,
  image?: { height: number; width: number },
): MixPlan {
  if (m.kind === 'cutmix') {
    if (!image) throw new RangeError('planMix: cutmix needs the image size');
    return withBoxes(planMix(batchSize, { ...m, kind: 'mixup' }, u), image.height, image.width, u);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`planMix: batch size ${batchSize} is not a positive integer`);
  const draw = betaSampler(m.alpha, u);
  const partner = new Int32Array(batchSize);
  const weight = new Float64Array(batchSize);
  if (m.scheme === 'permutation') {
    const lambda = draw();
    const perm = permutation(batchSize, u);
    partner.set(perm);
    weight.fill(lambda);
    return { batchSize, scheme: 'permutation', mixLen: batchSize, partner, weight, lambda1: Float64Array.of(lambda), lambda2: new Float64Array(0) };
  }
  const mixLen = mixLength(batchSize, m.mixRate);
  const h = mixLen / 2;
  const lambda1 = new Float64Array(h);
  const lambda2 = new Float64Array(h);
  for (let i = 0; i < h; i++) lambda1[i] = draw();
  for (let i = 0; i < h; i++) lambda2[i] = draw();
  for (let i = 0; i < h; i++) {
    // row i: λ1ᵢ·aᵢ + (1−λ1ᵢ)·bᵢ, aᵢ = x[i], bᵢ = x[h+i]
    partner[i] = h + i;
    weight[i] = lambda1[i]!;
    // row h+i: λ2ᵢ·aᵢ + (1−λ2ᵢ)·bᵢ = (1−λ2ᵢ)·x[h+i] + λ2ᵢ·x[i]
    partner[h + i] = i;
    weight[h + i] = 1 - lambda2[i]!;
  }
  for (let i = mixLen; i < batchSize; i++) {
    partner[i] = i;
    weight[i] = 1;
  }
  return { batchSize, scheme: 'pairs', mixLen, partner, weight, lambda1, lambda2 };
}

function checkLabels(labels: Int32Array, numClasses: number, plan: MixPlan | null): void {
  if (plan && plan.batchSize !== labels.length) {
    throw new RangeError(`mix plan is for a batch of ${plan.batchSize} but the batch has ${labels.length} labels`);
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= numClasses) {
      throw new UserError(`label ${l} of sample ${i} of the batch is outside [0, ${numClasses}) (config model.numClasses = ${numClasses})`);
    }
  }
}

/**
 * The (mixed) one-hot labels of a batch: row i = weight[i]·onehot(labels[i]) + (1−weight[i])·onehot(labels[partner[i]]),
 * the reference's `label_1 = λ1·y1 + (1−λ1)·y2` etc.; plain one-hot when `plan` is null.
 * @param labels `[B]` class indices.
 * @returns `[B, numClasses]` row-major float32; each row sums to 1.
 * @throws UserError when a label is outside [0, numClasses).
 */
export function mixLabels(labels: Int32Array, numClasses: number, plan: MixPlan | null): Float32Array {
  checkLabels(labels, numClasses, plan);
  const B = labels.length;
  const y = new Float32Array(B * numClasses);
  for (let i = 0; i < B; i++) {
    if (!plan) {
      y[i * numClasses + labels[i]!] = 1;
      continue;
    }
    const w = plan.weight[i]!;
    y[i * numClasses + labels[i]!] += w;
    y[i * numClasses + labels[plan.partner[i]!]!] += 1 - w;
  }
  return y;
}

/**
 * For training accuracy: the label with the larger weight in each (mixed) sample, the sample's own
 * label on a tie; `labels` itself when `plan` is null.
 * @returns `[B]` int32.
 */
export function majorityLabels(labels: Int32Array, plan: MixPlan | null): Int32Array {
  if (!plan) return labels.slice();
  if (plan.batchSize !== labels.length) throw new RangeError(`mix plan is for a batch of ${plan.batchSize} but the batch has ${labels.length} labels`);
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) out[i] = plan.weight[i]! >= 0.5 ? labels[i]! : labels[plan.partner[i]!]!;
  return out;
}

/** The inverse of a permutation: inv[p[i]] = i. */
export function inversePermutation(p: Int32Array): Int32Array {
  const inv = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]!] = i;
  return inv;
}
