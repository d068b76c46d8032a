/**
 * The network as an exported graph: a list of inference-mode operations with PyTorch module names,
 * walked from the one description of the network ({@link networkSpec}, model/spec.ts), and the
 * checkpoint's tensors renamed and transposed to PyTorch's names and layouts. Both export formats
 * (safetensors.ts, onnx.ts) and the shipped PyTorch module (scripts/torch/mixup_resnet.py) follow it.
 *
 * Names: the reference's `bn_data`, `conv0`, `bn1`, `fc1` stay; a unit `stage<s>_unit<u>` becomes the
 * module path `stage<s>.unit<u>` and its layers keep their suffix (`stage2.unit1.bn1`,
 * `stage2.unit1.conv1`, `stage2.unit1.sc`). Tensors are `<module>.weight` etc., as PyTorch's
 * `state_dict()` names them.
 *
 * Layouts: conv weight `[out, in, kh, kw]` (from this project's `[kh, kw, in, out]`), linear weight
 * `[out, in]` (from `[in, out]`); BatchNorm `weight` (γ; ones for a fixed γ, `bn_data`), `bias` (β),
 * `running_mean`, `running_var` `[C]` float32 and `num_batches_tracked` `[]` int64.
 *
 * A new block kind needs one entry in {@link UNIT_KINDS} (and its layers in the PyTorch module);
 * a kind without one is refused with one line.
 */
import { UserError } from '../errors.js';
import { BN_EPS, sizeOf, type BatchNormSpec, type ConvSpec, type NetworkSpec, type UnitSpec } from '../model/spec.js';
import type { HostTensor } from '../model/weights.js';

/** One inference-mode operation on named values (activations NCHW float32). */
export type GraphOp =
  /** BatchNorm with moving statistics: y = (x − mean)/√(var + eps)·γ + β; `source` the spec's name. */
  | { op: 'bn'; module: string; source: string; channels: number; fixGamma: boolean; eps: number; x: string; y: string }
  | { op: 'relu'; x: string; y: string }
  /** Convolution without bias, square kernel `k`, symmetric padding `pad`. */
  | { op: 'conv'; module: string; source: string; k: number; stride: number; pad: number; inC: number; outC: number; x: string; y: string }
  | { op: 'add'; a: string; b: string; y: string }
  /** Global average pool over H and W, then flatten: `[B,C,H,W]` → `[B,C]`. */
  | { op: 'gap'; x: string; y: string }
  /** y = x·Wᵀ + b, W `[out, in]`. */
  | { op: 'linear'; module: string; source: string; inF: number; outF: number; x: string; y: string };

/** The exported network. */
export interface ExportGraph {
  /** Name of the graph input, `[B, 3, H, W]` float32. */
  input: string;
  /** Name of the graph output, `[B, numClasses]` logits. */
  output: string;
  ops: GraphOp[];
}

/** Name of the exported graph's input. */
export const INPUT_NAME = 'input';
/** Name of the exported graph's output. */
export const OUTPUT_NAME = 'logits';

/** Emits operations in order and names their outputs. */
class Builder {
  readonly ops: GraphOp[] = [];

  constructor(private readonly eps: number) {}

  bn(b: BatchNormSpec, module: string, x: string): string {
    this.ops.push({ op: 'bn', module, source: b.name, channels: b.channels, fixGamma: b.fixGamma, eps: this.eps, x, y: module });
    return module;
  }

  relu(x: string): string {
    const y = `${x}.relu`;
    this.ops.push({ op: 'relu', x, y });
    return y;
  }

  conv(c: ConvSpec, module: string, x: string): string {
    if (c.k % 2 !== 1) throw new UserError(`export: convolution ${c.name} has an even kernel (${c.k}); the exporter pads (k−1)/2 on every side`);
    this.ops.push({ op: 'conv', module, source: c.name, k: c.k, stride: c.stride, pad: (c.k - 1) / 2, inC: c.inC, outC: c.outC, x, y: module });
    return module;
  }

  add(a: string, b: string, y: string): string {
    this.ops.push({ op: 'add', a, b, y });
    return y;
  }
}

/** The module path of a layer inside a unit: `stage1_unit1_conv1` → `stage1.unit1.conv1`. */
function unitLayer(u: UnitSpec, path: string, layer: string): string {
  if (!layer.startsWith(`${u.name}_`)) throw new Error(`export: layer ${layer} is not named after its unit ${u.name}`);
  return `${path}.${layer.slice(u.name.length + 1)}`;
}

/**
 * A pre-activation unit, basic or bottleneck (the same dataflow; engine/tfjs/resnet.ts `forward`):
 * act1 = ReLU(bn1(x)); h = conv1(act1); h = conv_i(ReLU(bn_i(h))) for the others; out = h + shortcut,
 * the shortcut being x, or `sc`(act1).
 */
function preactUnit(g: Builder, u: UnitSpec, path: string, x: string): string {
  if (u.bns.length !== u.convs.length || u.convs.length === 0) throw new Error(`export: unit ${u.name} has ${u.bns.length} BatchNorms for ${u.convs.length} convolutions`);
  const act1 = g.relu(g.bn(u.bns[0]!, unitLayer(u, path, u.bns[0]!.name), x));
  let h = g.conv(u.convs[0]!, unitLayer(u, path, u.convs[0]!.name), act1);
  for (let i = 1; i < u.convs.length; i++) {
    h = g.conv(u.convs[i]!, unitLayer(u, path, u.convs[i]!.name), g.relu(g.bn(u.bns[i]!, unitLayer(u, path, u.bns[i]!.name), h)));
  }
  // an identity shortcut adds x, or the pre-activated input where the spec says so (UnitSpec.identityFrom)
  const identity = (u as UnitSpec & { identityFrom?: 'x' | 'act1' }).identityFrom === 'act1' ? act1 : x;
  const shortcut = u.sc ? g.conv(u.sc, unitLayer(u, path, u.sc.name), act1) : identity;
  return g.add(h, shortcut, path);
}

/** How each block kind is exported: its operations from input `x`, returning the output's name. */
const UNIT_KINDS: Record<string, (g: Builder, u: UnitSpec, path: string, x: string) => string> = {
  basic: preactUnit,
  bottleneck: preactUnit,
};

/**
 * What the walk reads of a spec beyond the reference network's fields: other architectures
 * (`model.arch`) may have no `bn_data` or no `bn1`, a post-activated stem BatchNorm after conv0
 * (`stemBn`, then ReLU) and their own BatchNorm eps (`bnEps`); absent, the reference's.
 */
type SpecView = Omit<NetworkSpec, 'bnData' | 'bn1'> & { bnData: BatchNormSpec | null; bn1: BatchNormSpec | null; stemBn?: BatchNormSpec | null; bnEps?: number };

/**
 * The inference graph of a network: bn_data → conv0 [→ stem BatchNorm → ReLU] → the stages' units →
 * bn1 → ReLU → global average pool → fc1 (each optional part as the spec has it), with input
 * {@link INPUT_NAME} `[B,3,H,W]` and output {@link OUTPUT_NAME}.
 * @throws UserError naming the unit and its kind when the exporter does not know a block kind.
 */
export function exportGraph(spec: NetworkSpec): ExportGraph {
  const v = spec as SpecView;
  const g = new Builder(v.bnEps ?? BN_EPS);
  let h: string = INPUT_NAME;
  if (v.bnData) h = g.bn(v.bnData, 'bn_data', h);
  h = g.conv(spec.conv0, 'conv0', h);
  if (v.stemBn) h = g.relu(g.bn(v.stemBn, v.stemBn.name, h));
  spec.stages.forEach((units, s) => {
    units.forEach((u, i) => {
      const kind = (u as { kind?: unknown }).kind;
      const emit = typeof kind === 'string' && Object.hasOwn(UNIT_KINDS, kind) ? UNIT_KINDS[kind]! : null;
      if (!emit) {
        throw new UserError(`export: unit ${u.name} is of block kind ${JSON.stringify(kind)}, which the exporter does not know (known: ${Object.keys(UNIT_KINDS).join(', ')})`);
      }
      h = emit(g, u, `stage${s + 1}.unit${i + 1}`, h);
    });
  });
  if (v.bn1) h = g.relu(g.bn(v.bn1, 'bn1', h));
  g.ops.push({ op: 'gap', x: h, y: 'pool' });
  g.ops.push({ op: 'linear', module: 'fc1', source: 'fc1', inF: spec.fcIn, outF: spec.numClasses, x: 'pool', y: OUTPUT_NAME });
  return { input: INPUT_NAME, output: OUTPUT_NAME, ops: g.ops };
}

/** One exported tensor: float32 or int64 values, row-major, in PyTorch's layout. */
export interface ExportTensor {
  shape: number[];
  dtype: 'float32' | 'int64';
  values: Float32Array | BigInt64Array;
}

/** `[kh, kw, in, out]` → `[out, in, kh, kw]`. */
function convToTorch(w: Float32Array, k: number, inC: number, outC: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < k; y++) {
    for (let x = 0; x < k; x++) {
      for (let i = 0; i < inC; i++) {
        const src = ((y * k + x) * inC + i) * outC;
        for (let o = 0; o < outC; o++) out[((o * inC + i) * k + y) * k + x] = w[src + o]!;
      }
    }
  }
  return out;
}

/** `[in, out]` → `[out, in]`. */
function linearToTorch(w: Float32Array, inF: number, outF: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < inF; i++) for (let o = 0; o < outF; o++) out[o * inF + i] = w[i * outF + o]!;
  return out;
}

/**
 * The checkpoint's tensors under PyTorch's names and layouts, in graph order (per module:
 * weight, bias, running_mean, running_var, num_batches_tracked).
 * @param weights a checkpoint's parameters and moving statistics by reference name (loadHostTensors).
 * @param numBatchesTracked the value of every BatchNorm's `num_batches_tracked`.
 * @throws UserError naming the tensor when one is missing or has another shape than the spec's, or
 *   naming the first three tensors the network does not have (a fixed γ such as `bn_data_gamma` may be there).
 */
export function torchTensors(graph: ExportGraph, weights: Map<string, HostTensor>, numBatchesTracked = 0n): Map<string, ExportTensor> {
  const used = new Set<string>();
  const get = (name: string, shape: number[]): Float32Array => {
    used.add(name);
    const t = weights.get(name);
    if (!t) throw new UserError(`export: the checkpoint has no tensor ${name}`);
    if (!(t.values instanceof Float32Array) || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new UserError(`export: tensor ${name} has shape [${t.shape.join(',')}], the network expects float32 [${shape.join(',')}]`);
    }
    return t.values;
  };
  const out = new Map<string, ExportTensor>();
  const f32 = (name: string, shape: number[], values: Float32Array) => out.set(name, { shape, dtype: 'float32', values });
  for (const o of graph.ops) {
    if (o.op === 'bn') {
      const c = o.channels;
      if (o.fixGamma) used.add(`${o.source}_gamma`); // MXNet checkpoints store the fixed γ (ones); it is not read
      f32(`${o.module}.weight`, [c], o.fixGamma ? new Float32Array(c).fill(1) : get(`${o.source}_gamma`, [c]));
      f32(`${o.module}.bias`, [c], get(`${o.source}_beta`, [c]));
      f32(`${o.module}.running_mean`, [c], get(`${o.source}_moving_mean`, [c]));
      f32(`${o.module}.running_var`, [c], get(`${o.source}_moving_var`, [c]));
      out.set(`${o.module}.num_batches_tracked`, { shape: [], dtype: 'int64', values: BigInt64Array.of(numBatchesTracked) });
    } else if (o.op === 'conv') {
      f32(`${o.module}.weight`, [o.outC, o.inC, o.k, o.k], convToTorch(get(`${o.source}_weight`, [o.k, o.k, o.inC, o.outC]), o.k, o.inC, o.outC));
    } else if (o.op === 'linear') {
      f32(`${o.module}.weight`, [o.outF, o.inF], linearToTorch(get(`${o.source}_weight`, [o.inF, o.outF]), o.inF, o.outF));
      f32(`${o.module}.bias`, [o.outF], get(`${o.source}_bias`, [o.outF]));
    }
  }
  const extra = [...weights.keys()].filter((n) => !used.has(n));
  if (extra.length > 0) {
    throw new UserError(`export: the checkpoint holds ${extra.length} tensor${extra.length === 1 ? '' : 's'} the network does not have: ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ` and ${extra.length - 3} more` : ''} (not the network of its config?)`);
  }
  for (const t of out.values()) if (t.values.length !== sizeOf(t.shape)) throw new Error(`torchTensors: ${t.values.length} values for [${t.shape.join(',')}]`);
  return out;
}
