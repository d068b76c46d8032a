/**
 * One description of the network, as plain data (no tfjs), for every architecture (`model.arch`):
 * - `mxnet-preact` (default): the reference's pre-activation ResNet, CIFAR variant (unsky/mixup
 *   symbols/resnet_mixup.py, after MXNet's image-classification symbols/resnet.py; He et al. 2016,
 *   "Identity Mappings in Deep Residual Networks"), height ≤ 28: `bn_data` (γ fixed) → conv0 16 →
 *   3 stages → bn1-ReLU → pool → fc1; BatchNorm eps 2e-5.
 * - `preact-resnet18`: the mixup paper's network as its authors' code builds it
 *   (facebookresearch/mixup-cifar10 models/resnet.py `ResNet18()` = `ResNet(PreActBlock, [2,2,2,2])`):
 *   a post-activated stem conv0 3×3 → bn0 → ReLU (PyTorch: `conv1`, `bn1`), 4 stages of 2 basic
 *   pre-activation units at w, 2w, 4w, 8w (strides 1, 2, 2, 2; a 1×1 projection only where the
 *   shape changes, and identity shortcuts that add the *pre-activated* input, see
 *   {@link UnitSpec.identityFrom}), no BatchNorm after the last stage, average pool, fc1 (`linear`); eps 1e-5.
 *   11,171,274 parameters at w = 64.
 * - `wrn-28-10`: Wide ResNet 28-10 (Zagoruyko & Komodakis 2016, szagoruyko/wide-residual-networks
 *   `resnet.py`): conv0 3×3/16, 3 stages of 4 basic pre-activation units at 16k, 32k, 64k (k = 10,
 *   w = 16k = 160; strides 1, 2, 2; projection `convdim` from the pre-activated input where the
 *   channels change), bn1-ReLU, pool, fc1; no dropout (as the mixup paper); eps 1e-5.
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
import { isValidDepth, type ModelArch } from '../config/schema.js';

/** Stage layout of a depth (symbols/resnet.py, get_symbol, height ≤ 28). */
export interface ResNetLayout {
  bottleneck: boolean;
  /** Units per stage (the same for every stage). */
  unitsPerStage: number;
  /** Output channels of conv0, then of each stage (3 stages, or 4 for `preact-resnet18`). */
  filters: number[];
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

/** One BatchNorm layer (eps {@link NetworkSpec.bnEps}, momentum 0.9); moving statistics `<name>_moving_mean/_var` [channels]. */
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
  /** 1..3 (1..4 for `preact-resnet18`). */
  stage: number;
  inC: number;
  outC: number;
  stride: number;
  /** The BatchNorms in order (bn1, bn2[, bn3]). */
  bns: BatchNormSpec[];
  /** The body's convolutions in order (conv1, conv2[, conv3]). */
  convs: ConvSpec[];
  /** The projection shortcut (`mxnet-preact`: first unit of every stage; else where the shape changes), or null for the identity. */
  sc: ConvSpec | null;
  /**
   * What an identity shortcut (sc null) adds: `x`, the unit's input (MXNet, WRN), or `act1` =
   * ReLU(bn1(x)), the pre-activated input: mixup-cifar10's PreActBlock computes
   * `shortcut = self.shortcut(out)` after `out = F.relu(self.bn1(x))` with an empty `nn.Sequential()`
   * as the identity, so its identity blocks add the pre-activated input.
   */
  identityFrom: 'x' | 'act1';
}

/** Block kinds of {@link UnitSpec.kind}. */
export type UnitKind = 'basic' | 'bottleneck';

/** The whole network, for an architecture, depth, width and class count. */
export interface NetworkSpec {
  arch: ModelArch;
  /** The architecture's depth (18 and 28 for the fixed ones). */
  depth: number;
  /** Output channels of stage 1 (`model.width`; the architecture's own when not given). */
  width: number;
  numClasses: number;
  /** Human name, e.g. `ResNet-50`, `PreAct ResNet-18`, `WRN-28-10`, with `(width w)` when not the default. */
  label: string;
  layout: ResNetLayout;
  /** Eps of every BatchNorm: 2e-5 (MXNet, the reference) or 1e-5 (PyTorch's default). */
  bnEps: number;
  /** `bn_data` (γ fixed) on the 3 input channels, or null (`preact-resnet18`, `wrn-28-10`). */
  bnData: BatchNormSpec | null;
  /** `conv0`: 3×3, stride 1, 3 → filters[0]. */
  conv0: ConvSpec;
  /** A post-activated stem: ReLU(bn0(conv0(x))) (`preact-resnet18`), or null (conv0's output goes straight into stage 1). */
  stemBn: BatchNormSpec | null;
  /** Units per stage, `stages[s][u]`. */
  stages: UnitSpec[][];
  /** `bn1` (then ReLU) before the global average pool, on the last stage's channels, or null (`preact-resnet18`: pool the last unit's output). */
  bn1: BatchNormSpec | null;
  /** fc1 inputs (the last stage's channels). */
  fcIn: number;
  /** Trainable parameters in the reference's order. */
  params: ParamSpec[];
  /** Every BatchNorm in the reference's order. */
  bns: BatchNormSpec[];
  /** Every convolution in the reference's order (conv0, then per unit its body and shortcut). */
  convs: ConvSpec[];
}

/** Eps of every BatchNorm of the reference (symbols/resnet.py); the PyTorch architectures use 1e-5. */
export const BN_EPS = 2e-5;
/** PyTorch's BatchNorm2d default eps (`preact-resnet18`, `wrn-28-10`). */
export const TORCH_BN_EPS = 1e-5;

/** What an architecture fixes: its depth, default width, stages, stem and head. */
interface ArchRecipe {
  depth: number;
  width: number;
  label: string;
  unitsPerStage: number;
  /** Stage widths as multiples of the width. */
  stageMults: number[];
  /** conv0's outputs as a function of the width. */
  stem: (width: number) => number;
  bnData: boolean;
  stemBn: boolean;
  finalBn: boolean;
  bnEps: number;
  /** Projection shortcut on every stage's first unit (MXNet) or only where the shape changes (PyTorch). */
  scEveryFirstUnit: boolean;
  /** What identity shortcuts add (UnitSpec.identityFrom). */
  identityFrom: 'x' | 'act1';
}

/**
 * The recipe of an architecture. `mxnet-preact` takes its depth from `model.depth` (6n+2 basic,
 * 9n+2 from 164 bottleneck); its width is stage 1's filters (16 basic, 64 bottleneck), conv0 stays 16.
 */
function archRecipe(arch: ModelArch, depth: number): ArchRecipe {
  switch (arch) {
    case 'preact-resnet18':
      return { depth: 18, width: 64, label: 'PreAct ResNet-18', unitsPerStage: 2, stageMults: [1, 2, 4, 8], stem: (w) => w, bnData: false, stemBn: true, finalBn: false, bnEps: TORCH_BN_EPS, scEveryFirstUnit: false, identityFrom: 'act1' };
    case 'wrn-28-10':
      return { depth: 28, width: 160, label: 'WRN-28-10', unitsPerStage: 4, stageMults: [1, 2, 4], stem: () => 16, bnData: false, stemBn: false, finalBn: true, bnEps: TORCH_BN_EPS, scEveryFirstUnit: false, identityFrom: 'x' };
    default: {
      const l = resnetLayout(depth);
      return { depth, width: l.filters[1]!, label: `ResNet-${depth}`, unitsPerStage: l.unitsPerStage, stageMults: [1, 2, 4], stem: () => 16, bnData: true, stemBn: false, finalBn: true, bnEps: BN_EPS, scEveryFirstUnit: true, identityFrom: 'x' };
    }
  }
}
/** Momentum of the BatchNorm moving statistics: moving = 0.9·moving + 0.1·batch. */
export const BN_MOMENTUM = 0.9;

/**
 * The network for an architecture (`model.arch`), depth (`model.depth`, `mxnet-preact` only), width
 * (`model.width`: stage 1's channels, null for the architecture's own) and class count.
 * @throws UserError for an invalid depth (see {@link resnetLayout}), a width or class count that is
 *   not a positive integer, or a bottleneck width that is not a multiple of 4.
 */
export function networkSpec(depth: number, numClasses: number, arch: ModelArch = 'mxnet-preact', width: number | null = null): NetworkSpec {
  const r = archRecipe(arch, depth);
  const bottleneck = arch === 'mxnet-preact' && resnetLayout(depth).bottleneck;
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new UserError(`model.numClasses: ${numClasses} is not a positive integer`);
  }
  const w = width ?? r.width;
  if (!Number.isInteger(w) || w < 1 || (bottleneck && w % 4 !== 0)) {
    throw new UserError(`model.width: ${w} is not a positive integer${bottleneck ? ' divisible by 4 (bottleneck units)' : ''}`);
  }
  const layout: ResNetLayout = { bottleneck, unitsPerStage: r.unitsPerStage, filters: [r.stem(w), ...r.stageMults.map((m) => m * w)] };
  const label = w === r.width ? r.label : `${r.label} (width ${w})`;
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
  const bnData = r.bnData ? bn('bn_data', 3, true) : null;
  const conv0 = conv('conv0', 3, 1, 3, layout.filters[0]!);
  const stemBn = r.stemBn ? bn('bn0', layout.filters[0]!) : null;
  const stages: UnitSpec[][] = [];
  let inC = layout.filters[0]!;
  for (let s = 0; s < r.stageMults.length; s++) {
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
      const projected = r.scEveryFirstUnit ? u === 0 : stride !== 1 || inC !== outC;
      const sc = projected ? conv(`${name}_sc`, 1, stride, inC, outC) : null;
      units.push({ name, kind: layout.bottleneck ? 'bottleneck' : 'basic', stage: s + 1, inC, outC, stride, bns: ubns, convs: uconvs, sc, identityFrom: r.identityFrom });
      inC = outC;
    }
    stages.push(units);
  }
  const last = layout.filters[layout.filters.length - 1]!;
  const bn1 = r.finalBn ? bn('bn1', last) : null;
  params.push({ name: 'fc1_weight', shape: [last, numClasses], kind: 'fc_weight', fanIn: last });
  params.push({ name: 'fc1_bias', shape: [numClasses], kind: 'zero', fanIn: 0 });
  return { arch, depth: r.depth, width: w, numClasses, label, layout, bnEps: r.bnEps, bnData, conv0, stemBn, stages, bn1, fcIn: last, params, bns, convs };
}

/** The network of an executor's options (`model.arch`, `model.depth`, `model.width`, `model.numClasses`). */
export function networkSpecOf(o: { arch?: ModelArch; depth: number; width?: number | null; numClasses: number }): NetworkSpec {
  return networkSpec(o.depth, o.numClasses, o.arch ?? 'mxnet-preact', o.width ?? null);
}

/** Number of values of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Multiply-adds of one forward pass of one image (`height`×`width`): every convolution (outH·outW·k²·in·out)
 * and fc1 (in·classes); BatchNorm, ReLU, pooling and additions not counted, as published figures count
 * (PreAct ResNet-18 on 32×32: 0.56 G, 555,422,720; WRN-28-10: 5.24 G). A 3×3 convolution pads 1, so stride s gives
 * ceil(n/s) outputs; a 1×1 pads 0, which gives the same for n even.
 */
export function forwardMacs(spec: NetworkSpec, height: number, width: number): number {
  let macs = 0;
  const conv = (c: ConvSpec, h: number, w: number) => {
    const oh = Math.floor((h + (c.k === 3 ? 2 : 0) - c.k) / c.stride) + 1;
    const ow = Math.floor((w + (c.k === 3 ? 2 : 0) - c.k) / c.stride) + 1;
    macs += oh * ow * c.k * c.k * c.inC * c.outC;
    return [oh, ow] as const;
  };
  let [h, w] = conv(spec.conv0, height, width);
  for (const stage of spec.stages) {
    for (const u of stage) {
      if (u.sc) conv(u.sc, h, w);
      let hw: readonly [number, number] = [h, w];
      for (const c of u.convs) hw = conv(c, hw[0], hw[1]);
      [h, w] = hw;
    }
  }
  return macs + spec.fcIn * spec.numClasses;
}

/** Trainable scalars of a network. */
export function parameterCount(spec: NetworkSpec): number {
  return spec.params.reduce((n, p) => n + sizeOf(p.shape), 0);
}

/** Names of the moving statistics, in order: per BatchNorm `<name>_moving_mean`, `<name>_moving_var`. */
export function auxNames(spec: NetworkSpec): string[] {
  return spec.bns.flatMap((b) => [`${b.name}_moving_mean`, `${b.name}_moving_var`]);
}

/** The SGD form (`train.sgd`): MXNet's (the reference) or PyTorch's (torch.optim.SGD, the paper's code). */
export type SgdForm = 'mxnet' | 'pytorch';

/**
 * The weight-decay multiplier of a parameter name. `mxnet`: as MXNet's SGD applies `wd`
 * (common/fit.py with the symbol's default `wd_mult`): 1 for `*_weight` and `*_gamma`, 0 for biases
 * and β. `pytorch`: 1 for every parameter (torch.optim.SGD(model.parameters(), weight_decay=...)).
 */
export function wdMult(name: string, form: SgdForm = 'mxnet'): number {
  if (form === 'pytorch') return 1;
  return name.endsWith('_weight') || name.endsWith('_gamma') ? 1 : 0;
}

/** Name of a parameter's momentum buffer in a checkpoint's optimizer state, e.g. `conv0_weight_momentum`. */
export function momentumKey(param: string): string {
  return `${param}_momentum`;
}
