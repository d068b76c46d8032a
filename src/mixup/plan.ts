/**
 * MixUp bookkeeping: which samples of a batch are mixed, with whom and with which weight λ.
 * Pure functions over typed arrays (no tfjs); src/engine/tfjs/mixlayer.ts applies a plan to a tensor.
 *
 * The reference's layer (unsky/mixup, forked as hdjsjyl/mixup: symbols/mixup.py, class MixUp)
 * does, for a batch of B samples:
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
 * gradient is a gather by the inverse permutation (engine/tfjs/mixlayer.ts).
 *
 * CutMix (Yun et al. 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with
 * Localizable Features", `mixup.kind: cutmix`) uses the same plan with a box per row: row i keeps
 * x[i] outside its box and takes x[partner[i]] inside it. The λ drawn for a row (its own share, as
 * above) sets the box's area share 1 − λ; the box is centred on a uniformly drawn pixel and clipped
 * to the image, and weight[i] becomes the share actually kept, 1 − (box area)/(H·W), so the labels
 * are mixed by the pasted area. The `permutation` scheme draws one box for the whole batch (as
 * Yun et al.'s code does), `pairs` one per mixed row; box centres are drawn after everything
 * else, so `kind: mixup` plans are unchanged by the option.
 *
 * Shards (config `train.shards`): the reference ran on 2 GPUs, each applying its MixUp layer to its
 * own half of the batch. {@link planMixShards} draws one plan per shard (pairs inside the shard)
 * and {@link combinePlans} joins them into one plan of the whole batch, partner indices offset by
 * the shard's first row, so the mix stays one op over the batch.
 */
import { permutation, randomInt, type Uniform } from '../random.js';
import { betaSampler } from './beta.js';

/** The two mixing schemes of config `mixup.scheme`. */
export type MixScheme = 'pairs' | 'permutation';

/** What is mixed (config `mixup.kind`): whole images blended, or a box pasted (CutMix). */
export type MixKind = 'mixup' | 'cutmix';

/** How a batch is mixed: config `mixup` (α > 0, mixRate in [0, 1], scheme, kind; default mixup). */
export interface MixOptions {
  alpha: number;
  mixRate: number;
  scheme: MixScheme;
  kind?: MixKind;
}

/** Height and width of a batch's images, in pixels. */
export interface ImageSize {
  height: number;
  width: number;
}

/**
 * How many of the first samples of a batch the reference's layer mixes: floor(mixRate·B), plus 1
 * when that is odd, so the mixed samples form pairs; when B is odd and the +1 would pass B
 * (mixRate 1), one less instead. Never above B, always even.
 * @param batchSize B ≥ 0.
 * @param mixRate share of the batch to mix, in [0, 1] (config `mixup.mixRate`).
 * Source: symbols/mixup.py, MixUp.forward (`mix_len = int(self.mix_rate*data.shape[0])`).
 */
export function mixLength(batchSize: number, mixRate: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 0) throw new RangeError(`mixLength: batch size ${batchSize} is not a non-negative integer`);
  if (!(mixRate >= 0 && mixRate <= 1)) throw new RangeError(`mixLength: mix rate ${mixRate} is outside [0, 1]`);
  let n = Math.floor(mixRate * batchSize);
  if (n % 2 !== 0) n = n + 1 <= batchSize ? n + 1 : n - 1;
  return n;
}

/** One batch's mixing, for {@link applyMix} (engine/tfjs/mixlayer.ts), {@link mixLabels} and {@link majorityLabels}. */
export interface MixPlan {
  /** B, the batch size the plan is for. */
  readonly batchSize: number;
  readonly scheme: MixScheme;
  /**
   * Number of mixed rows: `pairs` the first mixLen (even) of the batch, or of each shard in a
   * combined plan (then the sum over the shards); `permutation` B.
   */
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
 * - `kind: cutmix`: the same draws, then a box per mixed row ({@link cutBox}; one for the whole
 *   batch with `permutation`), and weights set to the share each row keeps.
 * @param batchSize B ≥ 1.
 * @param m config `mixup` ({@link MixOptions}).
 * @param u seeded uniform stream for this batch, e.g. `uniformStream(seed, 'mixup', epoch, batchIndex)`.
 * @param image `{height, width}` of the batch's images; needed for cutmix.
 * @throws UserError when α ≤ 0; RangeError for cutmix without an image size.
 */
export function planMix(
  batchSize: number,
  m: MixOptions,
  u: Uniform,
  image?: ImageSize,
): MixPlan {
  return drawPlan(batchSize, m, betaSampler(m.alpha, u), u, image);
}

/** {@link planMix} with its Beta(α, α) sampler given (shared by the shards of a batch). */
function drawPlan(
  batchSize: number,
  m: Omit<MixOptions, 'alpha'>,
  draw: () => number,
  u: Uniform,
  image?: ImageSize,
): MixPlan {
  if (m.kind === 'cutmix') {
    if (!image) throw new RangeError('planMix: cutmix needs the image size');
    return withBoxes(drawPlan(batchSize, { ...m, kind: 'mixup' }, draw, u), image.height, image.width, u);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`planMix: batch size ${batchSize} is not a positive integer`);
  if (m.scheme === 'permutation') {
    const lambda = draw();
    return permutationPlan(lambda, permutation(batchSize, u));
  }
  const h = mixLength(batchSize, m.mixRate) / 2;
  const lambda1 = new Float64Array(h);
  const lambda2 = new Float64Array(h);
  for (let i = 0; i < h; i++) lambda1[i] = draw();
  for (let i = 0; i < h; i++) lambda2[i] = draw();
  return pairsPlan(batchSize, lambda1, lambda2);
}

/**
 * The paper's plan for a given λ and permutation (mixup-cifar10 `mixup_data`): row i is
 * λ·x[i] + (1 − λ)·x[partner[i]], every row mixed.
 * @param lambda λ in [0, 1].
 * @param partner `[B]` a permutation of 0..B−1 (`torch.randperm(B)`); kept, not copied.
 */
export function permutationPlan(lambda: number, partner: Int32Array): MixPlan {
  const batchSize = partner.length;
  const weight = new Float64Array(batchSize).fill(lambda);
  return { batchSize, scheme: 'permutation', mixLen: batchSize, partner, weight, lambda1: Float64Array.of(lambda), lambda2: new Float64Array(0) };
}

/**
 * The reference layer's plan for given λ: pair i is (x[i], x[h+i]), h = λ1.length; row i gets
 * λ1ᵢ·x[i] + (1−λ1ᵢ)·x[h+i], row h+i gets λ2ᵢ·x[i] + (1−λ2ᵢ)·x[h+i]; rows ≥ 2h pass unmixed.
 * @param batchSize B.
 * @param lambda1 `[h]` λ1 of each pair, in [0, 1].
 * @param lambda2 `[h]` λ2 of each pair.
 * @throws RangeError when λ1 and λ2 differ in length or 2h > B.
 */
export function pairsPlan(batchSize: number, lambda1: Float64Array, lambda2: Float64Array): MixPlan {
  const h = lambda1.length;
  if (lambda2.length !== h) throw new RangeError(`pairsPlan: ${h} λ1 but ${lambda2.length} λ2`);
  const mixLen = 2 * h;
  if (mixLen > batchSize) throw new RangeError(`pairsPlan: ${h} pairs do not fit a batch of ${batchSize}`);
  const partner = new Int32Array(batchSize);
  const weight = new Float64Array(batchSize);
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
  return { batchSize, scheme: 'pairs', mixLen, partner, weight, lambda1: lambda1.slice(), lambda2: lambda2.slice() };
}

/**
 * One plan for a batch made of consecutive shards, from one plan per shard: shard k's rows follow
 * shard k−1's, its partner indices are offset by its first row (so every row is mixed only with rows
 * of its own shard), weight, λ1/λ2 and CutMix boxes are concatenated in shard order, batchSize and
 * mixLen summed.
 * A single plan comes back unchanged.
 * @param plans one plan per shard, all of one scheme, at least one.
 * @throws RangeError for no plans, or plans of different schemes, kinds or image sizes.
 */
export function combinePlans(plans: readonly MixPlan[]): MixPlan {
  if (plans.length === 0) throw new RangeError('combinePlans: no plans');
  if (plans.length === 1) return plans[0]!;
  const scheme = plans[0]!.scheme;
  if (plans.some((p) => p.scheme !== scheme)) throw new RangeError('combinePlans: plans of different schemes');
  const { height, width } = plans[0]!;
  const boxed = plans[0]!.boxes !== undefined;
  if (plans.some((p) => (p.boxes !== undefined) !== boxed || p.height !== height || p.width !== width)) {
    throw new RangeError('combinePlans: plans of different kinds or image sizes');
  }
  const sum = (f: (p: MixPlan) => number) => plans.reduce((a, p) => a + f(p), 0);
  const batchSize = sum((p) => p.batchSize);
  const partner = new Int32Array(batchSize);
  const weight = new Float64Array(batchSize);
  const lambda1 = new Float64Array(sum((p) => p.lambda1.length));
  const lambda2 = new Float64Array(sum((p) => p.lambda2.length));
  let row = 0;
  let l1 = 0;
  let l2 = 0;
  for (const p of plans) {
    for (let i = 0; i < p.batchSize; i++) partner[row + i] = row + p.partner[i]!;
    weight.set(p.weight, row);
    lambda1.set(p.lambda1, l1);
    lambda2.set(p.lambda2, l2);
    row += p.batchSize;
    l1 += p.lambda1.length;
    l2 += p.lambda2.length;
  }
  const combined: MixPlan = { batchSize, scheme, mixLen: sum((p) => p.mixLen), partner, weight, lambda1, lambda2 };
  if (!boxed) return combined;
  const boxes = new Int32Array(4 * batchSize);
  plans.reduce((r, p) => (boxes.set(p.boxes!, 4 * r), r + p.batchSize), 0);
  return { ...combined, boxes, height, width };
}

/**
 * The mixing of a batch split into `shards` equal shards (config `train.shards`, the reference's
 * GPUs): each shard gets its own {@link planMix} of B/shards rows, drawn shard by shard from one
 * Beta(α, α) sampler on the stream `u` (CutMix: each shard's λ, then its boxes), then
 * {@link combinePlans}. With one shard this is `planMix(B, m, u, image)` exactly.
 * E.g. B 128 in 2 shards at mixRate 0.7: 44 of each 64 mixed (88 in all, against 90 unsharded).
 * @param batchSize B, a multiple of `shards`.
 * @param shards ≥ 1.
 * @param image `{height, width}` of the batch's images; needed for cutmix.
 * @throws RangeError when B is not a multiple of shards; UserError when α ≤ 0.
 */
export function planMixShards(
  batchSize: number,
  shards: number,
  m: MixOptions,
  u: Uniform,
  image?: ImageSize,
): MixPlan {
  if (!Number.isInteger(shards) || shards < 1 || batchSize % shards !== 0) {
    throw new RangeError(`planMixShards: a batch of ${batchSize} does not split into ${shards} equal shards`);
  }
  const draw = betaSampler(m.alpha, u);
  const plans: MixPlan[] = [];
  for (let k = 0; k < shards; k++) plans.push(drawPlan(batchSize / shards, m, draw, u, image));
  return combinePlans(plans);
}

/**
 * The per-row factor of the reference MixUp op's backward (symbols/mixup.py, `app_backward`):
 * dx[r] = s[r]·dy[r] with s[r] = weight[r] + 1 − weight[partner[r]]. For the reference's pairs that
 * is λ1ᵢ + λ2ᵢ on row i, 2 − λ1ᵢ − λ2ᵢ on row h+i and 1 on unmixed rows: the op records each of its
 * two mixes with autograd, back-propagates an all-ones gradient, adds the two input gradients and
 * multiplies them by the output gradient row by row. Neither zero nor the exact gradient (which would
 * move dy between partner rows). For a `permutation` plan (one λ everywhere) s is 1.
 * @returns `[B]` float64.
 */
export function referenceGradFactor(plan: MixPlan): Float64Array {
  const s = new Float64Array(plan.batchSize);
  for (let r = 0; r < plan.batchSize; r++) s[r] = plan.weight[r]! + 1 - plan.weight[plan.partner[r]!]!;
  return s;
}

/** The inverse of a permutation: inv[p[i]] = i. */
export function inversePermutation(p: Int32Array): Int32Array {
  const inv = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]!] = i;
  return inv;
}

/**
 * What flows back through the mix (config `mixup.backward`):
 * - `exact`: the true gradient (this project's default);
 * - `reference`: the reference MixUp op's backward, dx[r] = s[r]·dy[r] with
 *   s[r] = weight[r] + 1 − weight[partner[r]] (λ1ᵢ + λ2ᵢ, 2 − λ1ᵢ − λ2ᵢ, 1 on unmixed rows);
 * - `zero`: no gradient at all (the op's zero-writing backward of the repository's first upload),
 *   so the layers before a feature-map mix learn only from weight decay.
 */
export type MixBackward = 'exact' | 'reference' | 'zero';
