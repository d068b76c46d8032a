/**
 * The reference's pre-activation ResNet, CIFAR variant, as plain functions over tf.Variables.
 *
 * Source: unsky/mixup (forked as hdjsjyl/mixup), symbols/resnet_mixup.py and, for the mix after
 * conv0, symbols/resnet_mixup_fea.py (adapted from MXNet's
 * image-classification symbols/resnet.py; He et al. 2016, "Identity Mappings in Deep Residual
 * Networks"), for image height ≤ 28:
 *   bn_data (BatchNorm, γ fixed at 1) → conv0 3×3, 16 filters →
 *   3 stages of n units (16/32/64 filters; first unit of stages 2 and 3 with stride 2) →
 *   bn1 → ReLU → global average pool → fc1 (numClasses, with bias).
 * depth = 6n+2 below 164: basic units  BN-ReLU-conv3×3, BN-ReLU-conv3×3;
 * depth = 9n+2 from 164: bottleneck units (64/128/256 filters) BN-ReLU-conv1×1(f/4),
 *   BN-ReLU-conv3×3(f/4, stride), BN-ReLU-conv1×1(f).
 * The first unit of every stage has a 1×1 projection shortcut `_sc` taken from its pre-activated
 * input (act1); the others add their input. No conv biases; BatchNorm eps 2e-5, momentum 0.9.
 *
 * Tensor layouts are TensorFlow.js's, names are the reference's: images and activations NHWC;
 * conv weights `[kh, kw, in, out]` (MXNet: `[out, in, kh, kw]`); `fc1_weight` `[in, numClasses]`
 * (MXNet: `[numClasses, in]`). A 3×3 convolution with stride 2 pads one pixel on every side as
 * MXNet's `pad=(1,1)` does (TensorFlow's 'same' would pad only bottom/right).
 *
 * The MixUp layer sits at `mixAt`: `input` (before bn_data), `head` (after conv0), `stage1`–`stage3`
 * (after that stage's last unit). Its gradient is exact unless `mixBackward` asks for the reference
 * op's backward (`reference`, a per-row factor on the output gradient) or none (`zero`).
 * Training with `shards` > 1 gives every shard of the batch its own BatchNorm statistics, as the
 * reference's 2 GPUs had (batchnorm.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import { isValidDepth, type MixupPlacement } from '../config/schema.js';
import { applyMix, type MixBackward } from '../mixup/layer.js';
import type { MixPlan } from '../mixup/plan.js';
import { batchNormInfer, batchNormTrain, movingUpdate } from './batchnorm.js';
import { heNormal } from './init.js';

/** What a network is built from. */
export interface ResNetOptions {
  /** 6n+2 (basic units) or 9n+2 from 164 (bottleneck units). */
  depth: number;
  numClasses: number;
  /** Where the MixUp layer sits, or null (ERM). */
  mixAt: MixupPlacement | null;
  /** Seed of the weight initialisation (`train.seed`). */
  seed: number;
  /**
   * Gradient through the MixUp layer (config `mixup.backward`): `exact` (default); `reference`, the
   * reference MixUp op's backward (symbols/mixup.py, `app_backward`: dx[r] = s[r]·dy[r],
   * s[r] = weight[r] + 1 − weight[partner[r]]); or `zero` (then, with the mix after conv0, conv0
   * and bn_data learn nothing from the loss).
   */
  mixBackward?: MixBackward;
}

/** A network: its options and variables. */
export interface ResNet {
  readonly options: ResNetOptions;
  /** Trainable parameters by reference name, in the reference's order (bn_data_beta, conv0_weight, ...). */
  readonly params: Map<string, tf.Variable>;
  /** BatchNorm moving statistics (`<bn>_moving_mean`, `<bn>_moving_var`), not trainable. */
  readonly aux: Map<string, tf.Variable>;
  /** Number of trainable scalars. */
  parameterCount(): number;
  /** Disposes every variable. */
  dispose(): void;
}

/** Stage layout of a depth (symbols/resnet.py, get_symbol, height ≤ 28). */
export interface ResNetLayout {
  bottleneck: boolean;
  /** Units per stage (the same for all three stages). */
  unitsPerStage: number;
  /** Output channels of conv0 and of stages 1..3. */
  filters: [number, number, number, number];
}

/**
 * The stage layout of a depth.
 * @throws UserError naming `model.depth` when the depth is neither 6n+2 (< 164) nor 9n+2 (≥ 164).
 */
export function resnetLayout(depth: number): ResNetLayout {
  if (!isValidDepth(depth)) {
    throw new UserError(
      `model.depth: ${depth} is not a valid ResNet depth: expected 6n+2 below 164 (8, 14, 20, ..., 50, ...) or 9n+2 from 164 up (164, 173, ...)`,
    );
  }
  return depth >= 164
    ? { bottleneck: true, unitsPerStage: (depth - 2) / 9, filters: [16, 64, 128, 256] }
    : { bottleneck: false, unitsPerStage: (depth - 2) / 6, filters: [16, 16, 32, 64] };
}

type ParamKind = 'conv' | 'fc_weight' | 'zero' | 'one';
interface ParamSpec {
  name: string;
  shape: number[];
  kind: ParamKind;
  fanIn: number;
}

/** One residual unit of the graph. */
interface UnitSpec {
  name: string;
  inC: number;
  outC: number;
  stride: number;
  dimMatch: boolean;
}

function unitsOf(layout: ResNetLayout): UnitSpec[][] {
  const stages: UnitSpec[][] = [];
  let inC = layout.filters[0];
  for (let s = 0; s < 3; s++) {
    const outC = layout.filters[s + 1]!;
    const units: UnitSpec[] = [];
    for (let u = 0; u < layout.unitsPerStage; u++) {
      units.push({ name: `stage${s + 1}_unit${u + 1}`, inC, outC, stride: u === 0 && s > 0 ? 2 : 1, dimMatch: u > 0 });
      inC = outC;
    }
    stages.push(units);
  }
  return stages;
}

/** The parameter and BatchNorm lists in the reference's order (symbol argument order). */
function specsOf(layout: ResNetLayout, numClasses: number): { params: ParamSpec[]; bns: { name: string; channels: number }[] } {
  const params: ParamSpec[] = [];
  const bns: { name: string; channels: number }[] = [];
  const bn = (name: string, c: number, fixGamma = false) => {
    if (!fixGamma) params.push({ name: `${name}_gamma`, shape: [c], kind: 'one', fanIn: 0 });
    params.push({ name: `${name}_beta`, shape: [c], kind: 'zero', fanIn: 0 });
    bns.push({ name, channels: c });
  };
  const conv = (name: string, k: number, inC: number, outC: number) =>
    params.push({ name: `${name}_weight`, shape: [k, k, inC, outC], kind: 'conv', fanIn: k * k * inC });
  bn('bn_data', 3, true);
  conv('conv0', 3, 3, layout.filters[0]);
  for (const stage of unitsOf(layout)) {
    for (const u of stage) {
      if (layout.bottleneck) {
        const mid = Math.floor(u.outC * 0.25);
        bn(`${u.name}_bn1`, u.inC);
        conv(`${u.name}_conv1`, 1, u.inC, mid);
        bn(`${u.name}_bn2`, mid);
        conv(`${u.name}_conv2`, 3, mid, mid);
        bn(`${u.name}_bn3`, mid);
        conv(`${u.name}_conv3`, 1, mid, u.outC);
      } else {
        bn(`${u.name}_bn1`, u.inC);
        conv(`${u.name}_conv1`, 3, u.inC, u.outC);
        bn(`${u.name}_bn2`, u.outC);
        conv(`${u.name}_conv2`, 3, u.outC, u.outC);
      }
      if (!u.dimMatch) conv(`${u.name}_sc`, 1, u.inC, u.outC);
    }
  }
  const last = layout.filters[3];
  bn('bn1', last);
  params.push({ name: 'fc1_weight', shape: [last, numClasses], kind: 'fc_weight', fanIn: last });
  params.push({ name: 'fc1_bias', shape: [numClasses], kind: 'zero', fanIn: 0 });
  return { params, bns };
}

/** A variable holding `t`'s data; `t` itself is disposed (the variable keeps the data alive). */
function ownedVariable(t: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

class ResNetImpl implements ResNet {
  readonly params = new Map<string, tf.Variable>();
  readonly aux = new Map<string, tf.Variable>();
  readonly layout: ResNetLayout;
  readonly stages: UnitSpec[][];

  constructor(readonly options: ResNetOptions) {
    this.layout = resnetLayout(options.depth);
    if (!Number.isInteger(options.numClasses) || options.numClasses < 1) {
      throw new UserError(`model.numClasses: ${options.numClasses} is not a positive integer`);
    }
    this.stages = unitsOf(this.layout);
    const { params, bns } = specsOf(this.layout, options.numClasses);
    // Variables get tfjs's automatic unique names: two networks can live in one process.
    for (const p of params) {
      const size = p.shape.reduce((a, b) => a * b, 1);
      let values: Float32Array;
      if (p.kind === 'conv' || p.kind === 'fc_weight') values = heNormal(options.seed, p.name, size, p.fanIn);
      else values = new Float32Array(size).fill(p.kind === 'one' ? 1 : 0);
      this.params.set(p.name, ownedVariable(tf.tensor(values, p.shape, 'float32'), true));
    }
    for (const b of bns) {
      this.aux.set(`${b.name}_moving_mean`, ownedVariable(tf.zeros([b.channels]), false));
      this.aux.set(`${b.name}_moving_var`, ownedVariable(tf.ones([b.channels]), false));
    }
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    for (const v of this.aux.values()) v.dispose();
    this.params.clear();
    this.aux.clear();
  }
}

/**
 * Builds a network with freshly initialised weights (He normal from the stream
 * (seed, 'init', parameter name); BatchNorm γ 1, β 0, moving mean 0, moving variance 1; fc1 bias 0).
 * @throws UserError for an invalid depth or class count.
 */
export function createResNet(o: ResNetOptions): ResNet {
  return new ResNetImpl({ ...o });
}

/** A moving statistic to assign once the step's gradients are computed. */
export interface MovingUpdate {
  variable: tf.Variable;
  /** The new value, kept outside any tidy: {@link applyMovingUpdates} assigns and disposes it. */
  value: tf.Tensor;
}

/** How to run the network. */
export interface ForwardOptions {
  /** true: BatchNorm uses batch statistics (and reports moving-stat updates); false: moving statistics. */
  training: boolean;
  /** The batch's mixing, applied at `options.mixAt` (training only); null/undefined: no mixing. */
  plan?: MixPlan | null;
  /**
   * Training only: the batch is this many equal shards (config `train.shards`, default 1), each
   * with its own BatchNorm batch statistics. The plan should then be per shard (planMixShards).
   */
  shards?: number;
  /**
   * Training only: receives the BatchNorm moving-statistic updates (momentum 0.9). Omit to leave
   * the moving statistics untouched (e.g. for gradient checks).
   */
  movingUpdates?: MovingUpdate[];
}

/**
 * Runs the network.
 * @param net a network from {@link createResNet}.
 * @param images `[B,H,W,3]` float32, normalised.
 * @returns `[B, numClasses]` logits (before softmax).
 */
export function forward(net: ResNet, images: tf.Tensor4D, o: ForwardOptions): tf.Tensor2D {
  const impl = net as ResNetImpl;
  const { mixAt } = net.options;
  const plan = o.plan ?? null;
  if (plan && mixAt === null) throw new RangeError('forward: a mix plan was given but the network has no MixUp placement (mixAt null)');
  if (plan && !o.training) throw new RangeError('forward: mixing happens in training mode only');
  if (images.shape[3] !== 3) throw new RangeError(`forward: images must be [B,H,W,3], got [${images.shape.join(',')}]`);
  const shards = o.training ? (o.shards ?? 1) : 1;
  if (images.shape[0] % shards !== 0) throw new RangeError(`forward: a batch of ${images.shape[0]} does not split into ${shards} equal shards`);
  const P = (name: string) => {
    const v = net.params.get(name);
    if (!v) throw new Error(`forward: parameter ${name} is missing (disposed network?)`);
    return v;
  };
  const A = (name: string) => net.aux.get(name)!;
  const mixBackward = net.options.mixBackward ?? 'exact';
  const mixHere = (where: MixupPlacement, x: tf.Tensor4D): tf.Tensor4D => (plan && mixAt === where ? applyMix(x, plan, mixBackward) : x);

  const bn = (x: tf.Tensor4D, name: string, fixGamma = false): tf.Tensor4D => {
    const gamma = fixGamma ? null : (P(`${name}_gamma`) as tf.Tensor1D);
    const beta = P(`${name}_beta`) as tf.Tensor1D;
    const mm = A(`${name}_moving_mean`);
    const mv = A(`${name}_moving_var`);
    if (!o.training) return batchNormInfer(x, gamma, beta, mm as tf.Tensor1D, mv as tf.Tensor1D);
    const r = batchNormTrain(x, gamma, beta, undefined, shards);
    if (o.movingUpdates) {
      o.movingUpdates.push({ variable: mm, value: tf.keep(movingUpdate(mm as tf.Tensor1D, r.mean)) });
      o.movingUpdates.push({ variable: mv, value: tf.keep(movingUpdate(mv as tf.Tensor1D, r.variance)) });
    }
    r.mean.dispose();
    r.variance.dispose();
    return r.y;
  };
  const conv = (x: tf.Tensor4D, name: string, stride: number): tf.Tensor4D => {
    const w = P(`${name}_weight`) as tf.Tensor4D;
    const k = w.shape[0];
    if (k === 1) return tf.conv2d(x, w, stride, 'valid');
    if (stride === 1) return tf.conv2d(x, w, 1, 'same'); // = MXNet pad 1 for 3×3, stride 1
    const padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    return tf.conv2d(padded, w, stride, 'valid');
  };
  const unit = (x: tf.Tensor4D, u: UnitSpec): tf.Tensor4D => {
    const act1 = tf.relu(bn(x, `${u.name}_bn1`));
    let body: tf.Tensor4D;
    if (impl.layout.bottleneck) {
      const c1 = conv(act1, `${u.name}_conv1`, 1);
      const c2 = conv(tf.relu(bn(c1, `${u.name}_bn2`)), `${u.name}_conv2`, u.stride);
      body = conv(tf.relu(bn(c2, `${u.name}_bn3`)), `${u.name}_conv3`, 1);
    } else {
      const c1 = conv(act1, `${u.name}_conv1`, u.stride);
      body = conv(tf.relu(bn(c1, `${u.name}_bn2`)), `${u.name}_conv2`, 1);
    }
    const shortcut = u.dimMatch ? x : conv(act1, `${u.name}_sc`, u.stride);
    return tf.add(body, shortcut);
  };

  return tf.tidy(() => {
    let h = mixHere('input', images);
    h = bn(h, 'bn_data', true);
    h = conv(h, 'conv0', 1);
    h = mixHere('head', h);
    impl.stages.forEach((stage, s) => {
      for (const u of stage) h = unit(h, u);
      h = mixHere(`stage${s + 1}` as MixupPlacement, h);
    });
    h = tf.relu(bn(h, 'bn1'));
    const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
    return tf.add(tf.matMul(pooled, P('fc1_weight') as tf.Tensor2D), P('fc1_bias')) as tf.Tensor2D;
  });
}

/**
 * Assigns and disposes the moving-statistic updates a training forward collected.
 * @param guard optional boolean scalar on the device: where false, every statistic keeps its value
 *   (trainStep's NaN guard, `finite(loss)`), without a host read.
 */
export function applyMovingUpdates(updates: MovingUpdate[], guard?: tf.Scalar): void {
  for (const u of updates) {
    if (guard) tf.tidy(() => u.variable.assign(tf.where(guard, u.value, u.variable)));
    else u.variable.assign(u.value);
    u.value.dispose();
  }
  updates.length = 0;
}

/** Every tensor of the network by reference name: the trainable parameters, then the moving statistics. */
export function namedWeights(net: ResNet): Map<string, tf.Tensor> {
  return new Map<string, tf.Tensor>([...net.params, ...net.aux]);
}

/**
 * Copies loaded tensors into the network's variables (parameters and moving statistics).
 * @param tensors by reference name, e.g. from loadTensors (weights.ts); extra names are ignored.
 * @param source file or directory they came from, for the error message.
 * @throws UserError naming `source` and the tensor when one is missing or has another shape.
 */
export function assignWeights(net: ResNet, tensors: Map<string, tf.Tensor>, source: string): void {
  const targets = [...net.params, ...net.aux];
  for (const [name, v] of targets) {
    const t = tensors.get(name);
    if (!t) {
      throw new UserError(`${source}: tensor ${name} is missing (the checkpoint is not of a depth-${net.options.depth} ResNet with ${net.options.numClasses} classes?)`);
    }
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new UserError(`${source}: tensor ${name} has shape [${t.shape.join(',')}], the network expects [${v.shape.join(',')}]`);
    }
  }
  for (const [name, v] of targets) tf.tidy(() => v.assign(tensors.get(name)!.toFloat()));
}
