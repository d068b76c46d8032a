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
 * Other architectures (`arch`, model/spec.ts) skip bn_data, add a post-activated stem (bn0-ReLU
 * after conv0) or drop bn1, as their spec says; BatchNorm eps is the spec's.
 *
 * The MixUp layer sits at `mixAt`: `input` (before bn_data), `head` (after conv0, or after the stem's ReLU), `stage1`–`stage3`
 * (after that stage's last unit). Its gradient is exact unless `mixBackward` asks for the reference
 * op's backward (`reference`, a per-row factor on the output gradient) or none (`zero`).
 * Training with `shards` > 1 gives every shard of the batch its own BatchNorm statistics, as the
 * reference's 2 GPUs had (batchnorm.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import type { MixupPlacement, ModelArch } from '../../config/schema.js';
import { applyMix } from './mixlayer.js';
import type { MixBackward } from '../../mixup/plan.js';
import type { MixPlan } from '../../mixup/plan.js';
import { batchNormInfer, batchNormTrain, movingUpdate } from './batchnorm.js';
import { initialParam, type InitScheme } from '../../model/init.js';
import { networkSpecOf, type NetworkSpec, type UnitSpec } from '../../model/spec.js';

/** What a network is built from. */
export interface ResNetOptions {
  /** `model.arch` (default `mxnet-preact`); model/spec.ts describes each. */
  arch?: ModelArch;
  /** `mxnet-preact`: 6n+2 (basic units) or 9n+2 from 164 (bottleneck units); ignored by the other archs. */
  depth: number;
  /** `model.width`: stage 1's channels, null/absent for the architecture's own. */
  width?: number | null;
  numClasses: number;
  /** Where the MixUp layer sits, or null (ERM). */
  mixAt: MixupPlacement | null;
  /** Seed of the weight initialisation (`train.seed`). */
  seed: number;
  /** `model.init` (default `he-normal`; model/init.ts initialParam). */
  init?: InitScheme;
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
  /** The network it was built from (model/spec.ts). */
  readonly spec: NetworkSpec;
  /** Trainable parameters by reference name, in the reference's order (bn_data_beta, conv0_weight, ...). */
  readonly params: Map<string, tf.Variable>;
  /** BatchNorm moving statistics (`<bn>_moving_mean`, `<bn>_moving_var`), not trainable. */
  readonly aux: Map<string, tf.Variable>;
  /** Number of trainable scalars. */
  parameterCount(): number;
  /** Disposes every variable. */
  dispose(): void;
}

export { resnetLayout, type ResNetLayout } from '../../model/spec.js';

/** A variable holding `t`'s data; `t` itself is disposed (the variable keeps the data alive). */
function ownedVariable(t: tf.Tensor, trainable: boolean): tf.Variable {
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

class ResNetImpl implements ResNet {
  readonly params = new Map<string, tf.Variable>();
  readonly aux = new Map<string, tf.Variable>();
  readonly spec: NetworkSpec;

  constructor(readonly options: ResNetOptions) {
    this.spec = networkSpecOf(options);
    // Variables get tfjs's automatic unique names: two networks can live in one process.
    for (const p of this.spec.params) {
      const values = initialParam(p, options.seed, options.init ?? 'he-normal', this.spec.fcIn);
      this.params.set(p.name, ownedVariable(tf.tensor(values, p.shape, 'float32'), true));
    }
    for (const b of this.spec.bns) {
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

  const eps = impl.spec.bnEps;
  const bn = (x: tf.Tensor4D, name: string, fixGamma = false): tf.Tensor4D => {
    const gamma = fixGamma ? null : (P(`${name}_gamma`) as tf.Tensor1D);
    const beta = P(`${name}_beta`) as tf.Tensor1D;
    const mm = A(`${name}_moving_mean`);
    const mv = A(`${name}_moving_var`);
    if (!o.training) return batchNormInfer(x, gamma, beta, mm as tf.Tensor1D, mv as tf.Tensor1D, eps);
    const r = batchNormTrain(x, gamma, beta, eps, shards);
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
    const act1 = tf.relu(bn(x, u.bns[0]!.name));
    let h = conv(act1, u.convs[0]!.name, u.convs[0]!.stride);
    for (let i = 1; i < u.convs.length; i++) h = conv(tf.relu(bn(h, u.bns[i]!.name)), u.convs[i]!.name, u.convs[i]!.stride);
    const shortcut = u.sc ? conv(act1, u.sc.name, u.sc.stride) : u.identityFrom === 'act1' ? act1 : x;
    return tf.add(h, shortcut);
  };

  const spec = impl.spec;
  return tf.tidy(() => {
    let h = mixHere('input', images);
    if (spec.bnData) h = bn(h, spec.bnData.name, true);
    h = conv(h, spec.conv0.name, 1);
    if (spec.stemBn) h = tf.relu(bn(h, spec.stemBn.name));
    h = mixHere('head', h);
    spec.stages.forEach((stage, s) => {
      for (const u of stage) h = unit(h, u);
      h = mixHere(`stage${s + 1}` as MixupPlacement, h);
    });
    if (spec.bn1) h = tf.relu(bn(h, spec.bn1.name));
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

/** How many unexpected tensor names {@link assignWeights} lists before counting the rest. */
export const EXTRA_NAMES_SHOWN = 3;

/**
 * Copies loaded tensors into the network's variables (parameters and moving statistics).
 * @param tensors by reference name, e.g. from loadTensors (weights.ts); exactly the network's
 *   parameters and moving statistics, plus optionally the fixed γ of `bn_data` (`bn_data_gamma`,
 *   which MXNet checkpoints hold although fix_gamma=True ignores it), ignored.
 * @param source file or directory they came from, for the error message.
 * @throws UserError naming `source` and the tensor when one is missing or has another shape, or
 *   naming the first {@link EXTRA_NAMES_SHOWN} tensors the network does not have (and how many
 *   more), e.g. depth-50 weights given to a depth-8 network.
 */
export function assignWeights(net: ResNet, tensors: Map<string, tf.Tensor>, source: string): void {
  const targets = [...net.params, ...net.aux];
  // The fixed γ of bn_data is not a parameter here, but MXNet's checkpoints (fix_gamma=True) store it.
  const fixedGammas = net.spec.bns.filter((b) => b.fixGamma).map((b) => `${b.name}_gamma`);
  const known = new Set([...targets.map(([name]) => name), ...fixedGammas]);
  const extra = [...tensors.keys()].filter((name) => !known.has(name));
  if (extra.length > 0) {
    const shown = extra.slice(0, EXTRA_NAMES_SHOWN).join(', ');
    const more = extra.length > EXTRA_NAMES_SHOWN ? ` and ${extra.length - EXTRA_NAMES_SHOWN} more` : '';
    throw new UserError(
      `${source}: ${extra.length} tensor${extra.length === 1 ? '' : 's'} the network does not have: ${shown}${more} (the checkpoint is not of a ${net.spec.label} with ${net.options.numClasses} classes?)`,
    );
  }
  for (const [name, v] of targets) {
    const t = tensors.get(name);
    if (!t) {
      throw new UserError(`${source}: tensor ${name} is missing (the checkpoint is not of a ${net.spec.label} with ${net.options.numClasses} classes?)`);
    }
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new UserError(`${source}: tensor ${name} has shape [${t.shape.join(',')}], the network expects [${v.shape.join(',')}]`);
    }
  }
  for (const [name, v] of targets) tf.tidy(() => v.assign(tensors.get(name)!.toFloat()));
}
