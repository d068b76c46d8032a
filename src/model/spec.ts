/**
 * One description of the network, as plain data (no tfjs): the reference's pre-activation ResNet,
 * CIFAR variant (unsky/mixup symbols/resnet_mixup.py, after MXNet's image-classification
 * symbols/resnet.py; He et al. 2016, "Identity Mappings in Deep Residual Networks"), height ≤ 28.
 *
 * Every executor builds from {@link networkSpec}: the tfjs executor (engine/tfjs/resnet.ts) and the static
 * WebGPU engine. Names and order are the reference's symbol argument order (`bn_data_beta`,
 * `conv0_weight`, `stage1_unit1_bn1_gamma`, ...); the weights format (model/weights.ts) is what
 * passes between executors.
 *
 * Layouts: activations NHWC; conv weights `[kh, kw, in, out]` (MXNet: `[out, in, kh, kw]`);
 * `fc1_weight` `[in, numClasses]` (MXNet: `[numClasses, in]`). A 3×3 convolution pads one pixel on
 * every side (MXNet `pad=(1,1)`), a 1×1 convolution pads none.
 */
import { UserError } from '../errors.js';
import { isValidDepth } from '../config/schema.js';

/** Stage layout of a depth (symbols/resnet.py, get_symbol, height ≤ 28). */
export interface ResNetLayout {
  bottleneck: boolean;
  /** Units per stage (the same for all three stages). */
  unitsPerStage: number;
  /** Output channels of conv0 and of stages 1..3. */
  filters: [number, number, number, number];
}

/**
 * The stage layout of a depth: 6n+2 below 164 (basic units, 16/16/32/64 filters), 9n+2 from 164
 * (bottleneck units, 16/64/128/256 filters).
 * @throws UserError naming `model.depth` when the depth is neither.
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

/**
 * How a trainable parameter is initialised (model/init.ts): `conv` and `fc_weight` He normal with
 * fan-in {@link ParamSpec.fanIn}; `zero` (β, biases) and `one` (γ) constant.
 */
export type ParamKind = 'conv' | 'fc_weight' | 'zero' | 'one';

/** One trainable parameter. */
export interface ParamSpec {
  /** Reference name, e.g. `stage1_unit1_conv1_weight`. */
  name: string;
  /** Shape in this project's layout (see the module comment). */
  shape: number[];
  kind: ParamKind;
  /** Inputs per output unit (kh·kw·in for a convolution, in for fc1); 0 for constants. */
  fanIn: number;
}

/** One BatchNorm layer: eps 2e-5, momentum 0.9; moving statistics `<name>_moving_mean/_var` [channels]. */
export interface BatchNormSpec {
  /** Reference name, e.g. `bn_data`, `stage2_unit1_bn1`, `bn1`. */
  name: string;
  channels: number;
  /** γ fixed at 1 and not a parameter (only `bn_data`, `fix_gamma=True` in the reference). */
  fixGamma: boolean;
}

/** One convolution without bias: weight `<name>_weight` `[k, k, inC, outC]`. */
export interface ConvSpec {
  /** Reference name, e.g. `stage1_unit1_conv1`, `stage2_unit1_sc`. */
  name: string;
  /** Kernel size: 3 (pad 1) or 1 (pad 0). */
  k: number;
  stride: number;
  inC: number;
  outC: number;
}

/**
 * One pre-activation residual unit. Basic: act1 = ReLU(bn1(x)); c1 = conv1(act1, stride);
 * body = conv2(ReLU(bn2(c1))). Bottleneck: c1 = conv1 1×1(act1); c2 = conv2 3×3(ReLU(bn2(c1)), stride);
 * body = conv3 1×1(ReLU(bn3(c2))). Output body + shortcut, the shortcut being x when `sc` is null,
 * else `sc`(act1) (a 1×1 projection with the unit's stride).
 */
export interface UnitSpec {
  /** `stage<s>_unit<u>`, 1-based. */
  name: string;
  /**
   * The unit's block kind: `basic` (two 3×3 convolutions) or `bottleneck` (1×1, 3×3, 1×1). What a
   * consumer that walks the spec generically (the exporter, src/export/graph.ts) dispatches on.
   */
  kind: UnitKind;
  /** 1..3. */
  stage: number;
  inC: number;
  outC: number;
  stride: number;
  /** The BatchNorms in order (bn1, bn2[, bn3]). */
  bns: BatchNormSpec[];
  /** The body's convolutions in order (conv1, conv2[, conv3]). */
  convs: ConvSpec[];
  /** The projection shortcut (first unit of every stage), or null for the identity. */
  sc: ConvSpec | null;
}

/** Block kinds of {@link UnitSpec.kind}. */
export type UnitKind = 'basic' | 'bottleneck';

/** The whole network, for a depth and class count. */
export interface NetworkSpec {
  depth: number;
  numClasses: number;
  layout: ResNetLayout;
  /** `bn_data` (γ fixed), on the 3 input channels. */
  bnData: BatchNormSpec;
  /** `conv0`: 3×3, stride 1, 3 → filters[0]. */
  conv0: ConvSpec;
  /** Units per stage, `stages[s][u]`. */
  stages: UnitSpec[][];
  /** `bn1` before the global average pool, on filters[3] channels. */
  bn1: BatchNormSpec;
  /** fc1 inputs (filters[3]). */
  fcIn: number;
  /** Trainable parameters in the reference's order. */
  params: ParamSpec[];
  /** Every BatchNorm in the reference's order. */
  bns: BatchNormSpec[];
  /** Every convolution in the reference's order (conv0, then per unit its body and shortcut). */
  convs: ConvSpec[];
}

/** Eps of every BatchNorm (the reference's symbols/resnet.py). */
export const BN_EPS = 2e-5;
/** Momentum of the BatchNorm moving statistics: moving = 0.9·moving + 0.1·batch. */
export const BN_MOMENTUM = 0.9;

/**
 * The network for a depth and class count.
 * @throws UserError for an invalid depth (see {@link resnetLayout}) or a class count that is not a positive integer.
 */
export function networkSpec(depth: number, numClasses: number): NetworkSpec {
  const layout = resnetLayout(depth);
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new UserError(`model.numClasses: ${numClasses} is not a positive integer`);
  }
  const params: ParamSpec[] = [];
  const bns: BatchNormSpec[] = [];
  const convs: ConvSpec[] = [];
  const bn = (name: string, channels: number, fixGamma = false): BatchNormSpec => {
    if (!fixGamma) params.push({ name: `${name}_gamma`, shape: [channels], kind: 'one', fanIn: 0 });
    params.push({ name: `${name}_beta`, shape: [channels], kind: 'zero', fanIn: 0 });
    const s = { name, channels, fixGamma };
    bns.push(s);
    return s;
  };
  const conv = (name: string, k: number, stride: number, inC: number, outC: number): ConvSpec => {
    params.push({ name: `${name}_weight`, shape: [k, k, inC, outC], kind: 'conv', fanIn: k * k * inC });
    const s = { name, k, stride, inC, outC };
    convs.push(s);
    return s;
  };
  const bnData = bn('bn_data', 3, true);
  const conv0 = conv('conv0', 3, 1, 3, layout.filters[0]);
  const stages: UnitSpec[][] = [];
  let inC = layout.filters[0];
  for (let s = 0; s < 3; s++) {
    const outC = layout.filters[s + 1]!;
    const units: UnitSpec[] = [];
    for (let u = 0; u < layout.unitsPerStage; u++) {
      const name = `stage${s + 1}_unit${u + 1}`;
      const stride = u === 0 && s > 0 ? 2 : 1;
      const ubns: BatchNormSpec[] = [];
      const uconvs: ConvSpec[] = [];
      if (layout.bottleneck) {
        const mid = Math.floor(outC * 0.25);
        ubns.push(bn(`${name}_bn1`, inC));
        uconvs.push(conv(`${name}_conv1`, 1, 1, inC, mid));
        ubns.push(bn(`${name}_bn2`, mid));
        uconvs.push(conv(`${name}_conv2`, 3, stride, mid, mid));
        ubns.push(bn(`${name}_bn3`, mid));
        uconvs.push(conv(`${name}_conv3`, 1, 1, mid, outC));
      } else {
        ubns.push(bn(`${name}_bn1`, inC));
        uconvs.push(conv(`${name}_conv1`, 3, stride, inC, outC));
        ubns.push(bn(`${name}_bn2`, outC));
        uconvs.push(conv(`${name}_conv2`, 3, 1, outC, outC));
      }
      const sc = u === 0 ? conv(`${name}_sc`, 1, stride, inC, outC) : null;
      units.push({ name, kind: layout.bottleneck ? 'bottleneck' : 'basic', stage: s + 1, inC, outC, stride, bns: ubns, convs: uconvs, sc });
      inC = outC;
    }
    stages.push(units);
  }
  const last = layout.filters[3];
  const bn1 = bn('bn1', last);
  params.push({ name: 'fc1_weight', shape: [last, numClasses], kind: 'fc_weight', fanIn: last });
  params.push({ name: 'fc1_bias', shape: [numClasses], kind: 'zero', fanIn: 0 });
  return { depth, numClasses, layout, bnData, conv0, stages, bn1, fcIn: last, params, bns, convs };
}

/** Number of values of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Trainable scalars of a network. */
export function parameterCount(spec: NetworkSpec): number {
  return spec.params.reduce((n, p) => n + sizeOf(p.shape), 0);
}

/** Names of the moving statistics, in order: per BatchNorm `<name>_moving_mean`, `<name>_moving_var`. */
export function auxNames(spec: NetworkSpec): string[] {
  return spec.bns.flatMap((b) => [`${b.name}_moving_mean`, `${b.name}_moving_var`]);
}

/**
 * The weight-decay multiplier of a parameter name, as MXNet's SGD applies `wd` (common/fit.py with
 * the symbol's default `wd_mult`): 1 for `*_weight` and `*_gamma`, 0 for biases and β.
 */
export function wdMult(name: string): number {
  return name.endsWith('_weight') || name.endsWith('_gamma') ? 1 : 0;
}

/** Name of a parameter's momentum buffer in a checkpoint's optimizer state, e.g. `conv0_weight_momentum`. */
export function momentumKey(param: string): string {
  return `${param}_momentum`;
}
