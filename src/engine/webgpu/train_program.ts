/**
 * Compiles the training step of a pre-activation ResNet of basic units (model/spec.ts networkSpec:
 * the reference's, PreAct ResNet-18 with its post-activated stem, WRN-28-10) into one {@link Program}: forward in training mode (per-shard BatchNorm statistics,
 * the MixUp layer at its placement), the loss, the backward pass and the update, each a recorded
 * dispatch over buffers made here once. Forward of a unit (model/resnet.ts):
 *   a1 = ReLU(bn1(x)); [s = sc(a1)]; c1 = conv1(a1); a2 = ReLU(bn2(c1)); out = conv2(a2) + (s or x)
 * and its backward, with G the gradient of `out`:
 *   dA = conv2ᵀ(G); dW2; dC = bn2ᵀ(dA); dA = conv1ᵀ(dC) [+ scᵀ(G)]; dW1 [, dWsc];
 *   G ← bn1ᵀ(dA) + G (identity shortcut, in place) or bn1ᵀ(dA) into the other gradient buffer.
 * a1 and a2 are never written: each BatchNorm(+ReLU) runs only its statistics kernel, and the convs
 * that read its output (forward and backward-filter) apply it in their prologue from those statistics
 * (bn_state.ts bnPrologue); its backward recomputes the ReLU mask from x. Where the BatchNorm's input is
 * written by a conv forward (c1 for bn2; a unit's output, conv2 + residual, for the next bn1 and the
 * head's; conv0's for the first unit or a post-activated stem), that conv's epilogue writes per-tile
 * statistics and a finalize kernel folds them into the state and writes the batch statistics
 * (bn_epilogue.ts), unless a row tile would straddle two shards; elsewhere (bn_data on the images, a
 * MixUp layer's output) the statistics kernel reads x, and the backward-statistics kernel writes the
 * batch statistics. The head's BatchNorm is applied by the pool as it reads (head.ts poolKernel).
 * Written out are only a post-activated stem's BatchNorm (the first unit's x) and, where an identity shortcut adds
 * a1 = ReLU(bn1(x)) (PreAct ResNet-18's `identityFrom: 'act1'`), that unit's a1. Activations kept for backward: every
 * x and c1; gradients of activations live in four scratch buffers of the largest
 * activation's size (two for G, dA, dC).
 */
import type { MixupPlacement } from '../../config/schema.js';
import type { MixBackward } from '../../mixup/plan.js';
import type { BatchNormSpec, ConvSpec, SgdForm } from '../../model/spec.js';
import type { LossName } from '../engine.js';
import { bnBackwardKernel, bnForwardKernel, bnStatsKernel } from './bn.js';
import { bnStateFloats, type BnApply, type BnShape } from './bn_state.js';
import { conv2dBackward, conv2dBackwardData, conv2dBackwardFilter, conv2dForward, convOutSize, forwardStatsFit, forwardTiles, type ConvShape, type FilterGradient } from './convs.js';
import { bnFinalizeKernel, tileStatsFloats } from './bn_epilogue.js';
import { fcBackwardKernel, lossKernel, poolKernel } from './head.js';
import { stepLayout, type EngineBuffers } from './layout.js';
import { mixBackwardKernel, mixForwardKernel } from './mix.js';
import { alignFloats, Program, type FlatLayout, type Pipelines, type Slice } from './program.js';
import { updateKernel, type SplitGradient } from './update.js';

/** What a training program is compiled for. */
export interface TrainShape {
  batch: number;
  shards: number;
  height: number;
  width: number;
  mixAt: MixupPlacement | null;
  mixBackward: MixBackward;
  loss: LossName;
  gradScale: number;
  momentum: number;
  /** train.sgd (default mxnet). */
  sgd?: SgdForm;
  /** Steps whose (loss, correct) the results buffer holds before a read. */
  capacity: number;
}

/** An activation: buffer and shape `[B, h, w, c]`. */
interface Act {
  buf: GPUBuffer;
  h: number;
  w: number;
  c: number;
}

/**
 * What a convolution reads: x through its BatchNorm (statistics in `state`), applied in the conv's
 * prologue; or x itself (`bn` null: the images of a network without `bn_data`, or a BatchNorm+ReLU
 * written out because an identity shortcut adds it).
 */
interface In {
  x: Act;
  bn: BatchNormSpec | null;
  state: GPUBuffer | null;
}

/** The compiled training step and the buffers it reads and writes per step. */
export interface TrainProgram {
  program: Program;
  /** [B,H,W,3] float32 input images. */
  images: GPUBuffer;
  /** Per-step inputs in {@link stepLayout}. */
  step: GPUBuffer;
  stepLayout: FlatLayout;
  /** `[capacity, 2]` (batch-mean loss, correct count) per queued step. */
  results: GPUBuffer;
}

/**
 * Builds the training program.
 * @throws RangeError for a bottleneck network, a batch that does not split into the shards, or
 *   more than 2 shards with fewer than 2 rows each.
 */
export function compileTraining(bufs: EngineBuffers, pipelines: Pipelines, t: TrainShape): TrainProgram {
  const { spec, arena } = bufs;
  if (spec.layout.bottleneck) throw new RangeError('static engine: bottleneck units (depth ≥ 164) are not supported');
  const B = t.batch;
  if (!Number.isInteger(B / t.shards) || B < 1) throw new RangeError(`static engine: a batch of ${B} does not split into ${t.shards} equal shards`);
  const K = spec.numClasses;
  const prog = new Program('train', pipelines);
  const layout = stepLayout(B, K);
  const step = arena.storage('step inputs', layout.floats);
  const stepSlice = (name: string): Slice => layout.slice(step, name);
  const results = arena.storage('results', 2 * t.capacity);
  const act = (label: string, h: number, w: number, c: number): Act => ({ buf: arena.storage(label, B * h * w * c), h, w, c });
  const images = act('images', t.height, t.width, 3);

  // Shapes first: the largest activation sizes the shared scratch buffers.
  const shapes = new Map<string, ConvShape>();
  let hw: [number, number] = [t.height, t.width];
  let maxAct = B * t.height * t.width * 3;
  // Each convolution reads its input through the BatchNorm(+ReLU) before it (applied in its prologue).
  const inputBn = new Map<string, BnApply>();
  const bnShapeOf = (h: number, w: number, c: number): BnShape => ({ shards: t.shards, rows: (B / t.shards) * h * w, channels: c, eps: spec.bnEps });
  // Each BatchNorm's shape; `fwdFinal` where the conv that writes its input produces its statistics
  // in its epilogue (statsBy: that conv's name → the BatchNorm), with a finalize kernel after it.
  const bnShapes = new Map<string, BnShape>();
  const statsBy = new Map<string, BatchNormSpec>();
  /** Declares BatchNorm `bn` over an input of h×w×c written by conv `producer` (null: not a conv's output as it is). */
  const declareBn = (bn: BatchNormSpec, h: number, w: number, c: number, producer: string | null) => {
    const fits = producer !== null && forwardStatsFit(shapes.get(producer)!, inputBn.get(producer), t.shards);
    if (fits) statsBy.set(producer, bn);
    bnShapes.set(bn.name, { ...bnShapeOf(h, w, c), fwdFinal: fits });
  };
  /** A unit whose identity shortcut adds a1 = ReLU(bn1(x)) (PreAct ResNet-18): a1 is written out, conv1 reads it as it is. */
  const writesA1 = (u: { sc: ConvSpec | null; identityFrom?: string }) => u.sc === null && u.identityFrom === 'act1';
  const shapeOf = (c: ConvSpec, h: number, w: number, bn: BatchNormSpec | null, relu: boolean): ConvShape => {
    const s: ConvShape = { batch: B, inH: h, inW: w, inC: c.inC, outC: c.outC, k: c.k as 1 | 3, stride: c.stride as 1 | 2 };
    const o = convOutSize(s);
    maxAct = Math.max(maxAct, B * h * w * c.inC, B * o.outH * o.outW * c.outC);
    shapes.set(c.name, s);
    if (bn) inputBn.set(c.name, { shape: bnShapes.get(bn.name)!, fixGamma: bn.fixGamma, relu });
    return s;
  };
  if (spec.bnData) declareBn(spec.bnData, hw[0], hw[1], 3, null);
  shapeOf(spec.conv0, hw[0], hw[1], spec.bnData, false);
  // The conv whose output (+ residual) the next BatchNorm reads as it is (null: mixed, or a BatchNorm's output).
  let producer: string | null = spec.conv0.name;
  if (spec.stemBn) {
    declareBn(spec.stemBn, hw[0], hw[1], spec.conv0.outC, producer);
    producer = null;
  }
  if (t.mixAt === 'head') producer = null;
  spec.stages.forEach((stage, si) => {
    for (const u of stage) {
      declareBn(u.bns[0]!, hw[0], hw[1], u.inC, producer);
      const s1 = shapeOf(u.convs[0]!, hw[0], hw[1], writesA1(u) ? null : u.bns[0]!, true);
      if (u.sc) shapeOf(u.sc, hw[0], hw[1], u.bns[0]!, true);
      const o = convOutSize(s1);
      declareBn(u.bns[1]!, o.outH, o.outW, u.outC, u.convs[0]!.name);
      shapeOf(u.convs[1]!, o.outH, o.outW, u.bns[1]!, true);
      hw = [o.outH, o.outW];
      producer = u.convs[1]!.name;
    }
    if (t.mixAt === `stage${si + 1}`) producer = null;
  });
  if (spec.bn1) declareBn(spec.bn1, hw[0], hw[1], spec.fcIn, producer);
  // The tile partials of a statistics epilogue live until its finalize kernel, right after it: one scratch buffer.
  let statFloats = 0;
  for (const [name] of statsBy) {
    const s = shapes.get(name)!;
    const o = convOutSize(s);
    statFloats = Math.max(statFloats, tileStatsFloats(B * o.outH * o.outW, s.outC, forwardTiles(s, inputBn.get(name))));
  }
  const tileStats = statFloats > 0 ? arena.storage('BatchNorm tile partials', statFloats) : null;
  // Split backward-filters write their partials to their own range of one buffer; the update sums them.
  const splits: SplitGradient[] = [];
  let partialFloats = 0;
  const filters = new Map<string, FilterGradient>();
  for (const [name, s] of shapes) {
    const f = conv2dBackwardFilter(s, { bn: inputBn.get(name) });
    filters.set(name, f);
    if (f.chunks > 1) partialFloats += alignFloats(f.chunks * f.total);
  }
  const partials = partialFloats > 0 ? arena.storage('filter partials', partialFloats) : null;
  let partialAt = 0;
  const gradBufs = [arena.storage('dstream 0', maxAct), arena.storage('dstream 1', maxAct)];
  let gi = 0;
  const dA = arena.storage('dA', maxAct);
  const dC = arena.storage('dC', maxAct);
  const scOut = arena.storage('shortcut out', maxAct);

  const bnShape = (bn: BatchNormSpec): BnShape => bnShapes.get(bn.name)!;
  /** The states of the BatchNorms whose statistics a conv's epilogue and finalize kernel wrote. */
  const finalStates = new Map<string, GPUBuffer>();
  const gamma = (bn: BatchNormSpec) => (bn.fixGamma ? [] : [bufs.param(`${bn.name}_gamma`)]);
  const beta = (bn: BatchNormSpec) => bufs.param(`${bn.name}_beta`);
  const batchSlice = (bn: BatchNormSpec) => bufs.movingLayout.slice(bufs.batchStats, bn.name);
  /** x read as it is, without a BatchNorm. */
  const raw = (x: Act): In => ({ x, bn: null, state: null });
  /** The forward statistics of a BatchNorm whose consumers apply it (In: the input a conv reads through it). */
  const bnFwd = (bn: BatchNormSpec, x: Act): In & { state: GPUBuffer } => {
    const done = finalStates.get(bn.name);
    if (done) return { x, bn, state: done };
    const sh = bnShape(bn);
    const state = arena.storage(`${bn.name} state`, bnStateFloats(sh));
    prog.add(bnStatsKernel(sh, { backward: false }), [x.buf, state]);
    return { x, bn, state };
  };
  /** A BatchNorm+ReLU written out (before the head's pool), which also writes its batch statistics. */
  const bnFwdApplied = (bn: BatchNormSpec, x: Act): { y: Act; state: GPUBuffer } => {
    const { state } = bnFwd(bn, x);
    const y = act(`${bn.name} out`, x.h, x.w, x.c);
    prog.add(bnForwardKernel(bnShape(bn), { fixGamma: bn.fixGamma, relu: true }), [x.buf, state, ...gamma(bn), beta(bn), y.buf, batchSlice(bn)]);
    return { y, state };
  };
  /** Backward of a BatchNorm(+ReLU, mask from x); `batch`: also write its batch statistics (no forward kernel did). */
  const bnBwd = (bn: BatchNormSpec, x: Act, relu: boolean, state: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer | null, mode: 'write' | 'add' | 'none', batch: boolean) => {
    const sh = bnShape(bn);
    batch &&= !sh.fwdFinal;
    const maskIn = relu ? [...gamma(bn), beta(bn)] : [];
    prog.add(bnStatsKernel(sh, { backward: true, relu, fixGamma: bn.fixGamma, batch }), [dy, x.buf, state, ...maskIn, ...(batch ? [batchSlice(bn)] : [])]);
    const dgamma = bn.fixGamma ? [] : [bufs.grad(`${bn.name}_gamma`)];
    const k = bnBackwardKernel(sh, { fixGamma: bn.fixGamma, relu, dx: mode });
    prog.add(k, dx ? [dy, x.buf, state, ...gamma(bn), ...(relu ? [beta(bn)] : []), ...dgamma, bufs.grad(`${bn.name}_beta`), dx] : [state, ...dgamma, bufs.grad(`${bn.name}_beta`)]);
  };
  const bnInputs = (input: In) => (input.bn ? [input.state!, ...gamma(input.bn), beta(input.bn)] : []);
  const convFwd = (c: ConvSpec, input: In, y: GPUBuffer, residual: GPUBuffer | null): Act => {
    const s = shapes.get(c.name)!;
    const o = convOutSize(s);
    const target = statsBy.get(c.name);
    const k = conv2dForward(s, { residual: residual !== null, bn: inputBn.get(c.name), stats: target ? t.shards : undefined });
    prog.add(k, [input.x.buf, bufs.param(`${c.name}_weight`), ...bnInputs(input), ...(residual ? [residual] : []), y, ...(target ? [tileStats!] : [])]);
    if (target) {
      const sh = bnShape(target);
      const state = arena.storage(`${target.name} state`, bnStateFloats(sh));
      prog.add(bnFinalizeKernel(sh, k.tiles.BM), [tileStats!, state, batchSlice(target)]);
      finalStates.set(target.name, state);
    }
    return { buf: y, h: o.outH, w: o.outW, c: c.outC };
  };
  /** Both gradients of a conv: one dispatch (conv_fused.ts) where it has a dx, else backward-filter alone. */
  const convBwd = (c: ConvSpec, dy: GPUBuffer, input: In, dx: GPUBuffer | null, accumulate: boolean) => {
    const s = shapes.get(c.name)!;
    const w = `${c.name}_weight`;
    const f = filters.get(c.name)!;
    let dw: GPUBuffer | Slice = bufs.grad(w);
    if (f.chunks > 1) {
      const floats = f.chunks * f.total;
      dw = { buffer: partials!, offset: partialAt * 4, size: floats * 4 };
      splits.push({ offset: bufs.paramLayout.range(w)[0], total: f.total, base: partialAt, chunks: f.chunks });
      partialAt += alignFloats(floats);
    }
    const filterIn = [dy, input.x.buf, ...bnInputs(input), dw];
    const dataIn = dx ? [dy, bufs.param(w), dx] : null;
    const fused = dataIn ? conv2dBackward(s, f, { accumulate }) : null;
    if (fused) prog.add(fused.kernel, fused.bind(dataIn!, filterIn));
    else {
      if (dataIn) prog.add(conv2dBackwardData(s, { accumulate }), dataIn);
      prog.add(f.kernel, filterIn);
    }
  };
  const plan = stepSlice('plan');
  const mixFwd = (x: Act, where: string): Act => {
    const y = act(`mixed at ${where}`, x.h, x.w, x.c);
    prog.add(mixForwardKernel({ batch: B, height: x.h, width: x.w, channels: x.c }), [x.buf, plan, y.buf]);
    return y;
  };
  const mixBwd = (x: Act) => {
    const k = mixBackwardKernel({ batch: B, height: x.h, width: x.w, channels: x.c }, t.mixBackward === 'exact' ? 'exact' : 'factor');
    prog.add(k, [gradBufs[gi]!, plan, gradBufs[1 - gi]!]);
    gi = 1 - gi;
  };

  // ---- forward
  prog.stage = 'stem';
  const x0 = t.mixAt === 'input' ? mixFwd(images, 'input') : images;
  const d0 = spec.bnData ? bnFwd(spec.bnData, x0) : null;
  const in0 = d0 ?? raw(x0);
  const c0 = convFwd(spec.conv0, in0, arena.storage('conv0 out', B * t.height * t.width * spec.conv0.outC), null);
  // A post-activated stem (preact-resnet18): ReLU(bn1(conv1)) written out; `head` mixes its output.
  const s0 = spec.stemBn ? bnFwdApplied(spec.stemBn, c0) : null;
  const stemOut = s0 ? s0.y : c0;
  let h = t.mixAt === 'head' ? mixFwd(stemOut, 'head') : stemOut;
  /** a1w: a1 written out (writesA1), with its BatchNorm's statistics. */
  interface Rec { x: Act; a1: In; a1w: { y: Act; state: GPUBuffer } | null; c1: Act; a2: In }
  const recs: Rec[][] = [];
  const stageInputs: Act[] = [];
  spec.stages.forEach((stage, si) => {
    prog.stage = `stage${si + 1}`;
    const rs: Rec[] = [];
    for (const u of stage) {
      const x = h;
      const a1w = writesA1(u) ? bnFwdApplied(u.bns[0]!, x) : null;
      const a1 = a1w ? raw(a1w.y) : bnFwd(u.bns[0]!, x);
      const s = u.sc ? convFwd(u.sc, a1, scOut, null) : null;
      const o1 = convOutSize(shapes.get(u.convs[0]!.name)!);
      const c1 = convFwd(u.convs[0]!, a1, arena.storage(`${u.convs[0]!.name} out`, B * o1.outH * o1.outW * u.outC), null);
      const a2 = bnFwd(u.bns[1]!, c1);
      h = convFwd(u.convs[1]!, a2, arena.storage(`${u.name} out`, B * c1.h * c1.w * u.outC), s ? s.buf : a1w ? a1w.y.buf : x.buf);
      rs.push({ x, a1, a1w, c1, a2 });
    }
    recs.push(rs);
    stageInputs.push(h);
    if (t.mixAt === `stage${si + 1}`) h = mixFwd(h, `stage${si + 1}`);
  });
  prog.stage = 'head';
  // The head's BatchNorm+ReLU is applied by the pool as it reads h (never written out).
  const fin = spec.bn1 ? bnFwd(spec.bn1, h) : null;
  const C = spec.fcIn;
  const HW = h.h * h.w;
  const pooled = arena.storage('pooled', B * C);
  prog.add(poolKernel(B, HW, C, spec.bn1 ? { shape: bnShape(spec.bn1), fixGamma: spec.bn1.fixGamma, relu: true } : undefined), [h.buf, ...(fin ? bnInputs(fin) : []), pooled]);
  const dz = arena.storage('dlogits', B * K);
  prog.add(lossKernel({ batch: B, channels: C, classes: K, loss: t.loss, gradScale: t.gradScale, capacity: t.capacity }), [
    pooled, bufs.param('fc1_weight'), bufs.param('fc1_bias'), stepSlice('scalars'), stepSlice('targets'), stepSlice('majority'), results, dz,
  ]);

  // ---- backward
  prog.add(fcBackwardKernel(B, C, K, HW), [pooled, bufs.param('fc1_weight'), dz, bufs.grad('fc1_weight'), bufs.grad('fc1_bias'), fin ? dA : gradBufs[gi]!]);
  if (spec.bn1 && fin) bnBwd(spec.bn1, h, true, fin.state, dA, gradBufs[gi]!, 'write', true);
  for (let si = spec.stages.length - 1; si >= 0; si--) {
    if (t.mixAt === `stage${si + 1}`) mixBwd(stageInputs[si]!);
    const stage = spec.stages[si]!;
    prog.stage = `stage${si + 1}`;
    for (let ui = stage.length - 1; ui >= 0; ui--) {
      const u = stage[ui]!;
      const r = recs[si]![ui]!;
      const G = gradBufs[gi]!;
      convBwd(u.convs[1]!, G, r.a2, dA, false);
      bnBwd(u.bns[1]!, r.c1, true, r.a2.state!, dA, dC, 'write', true);
      if (r.a1w) {
        // The identity adds a1: its gradient conv1ᵀ(dC) + G is accumulated into G (free after conv2ᵀ).
        convBwd(u.convs[0]!, dC, r.a1, G, true);
        bnBwd(u.bns[0]!, r.x, true, r.a1w.state, G, gradBufs[1 - gi]!, 'write', false);
        gi = 1 - gi;
        continue;
      }
      convBwd(u.convs[0]!, dC, r.a1, dA, false);
      if (u.sc) {
        convBwd(u.sc, G, r.a1, dA, true);
        bnBwd(u.bns[0]!, r.x, true, r.a1.state!, dA, gradBufs[1 - gi]!, 'write', true);
        gi = 1 - gi;
      } else bnBwd(u.bns[0]!, r.x, true, r.a1.state!, dA, G, 'add', true);
    }
  }
  prog.stage = 'stem';
  if (t.mixAt === 'head') mixBwd(stemOut);
  let dStem = gradBufs[gi]!;
  if (spec.stemBn && s0) {
    bnBwd(spec.stemBn, c0, true, s0.state, dStem, dC, 'write', false);
    dStem = dC;
  }
  if (spec.bnData && d0) {
    convBwd(spec.conv0, dStem, d0, dA, false);
    bnBwd(spec.bnData, x0, false, d0.state!, dA, null, 'none', true);
  } else convBwd(spec.conv0, dStem, in0, null, false);

  // ---- update
  prog.stage = 'update';
  splits.sort((a, b) => a.offset - b.offset);
  prog.add(
    updateKernel({ params: bufs.paramLayout.floats, wdEnd: bufs.wdEnd, moving: bufs.movingLayout.floats, momentum: t.momentum, form: t.sgd, capacity: t.capacity, splits }),
    [bufs.params, bufs.grads, bufs.momentum, bufs.moving, bufs.batchStats, stepSlice('scalars'), results, ...(partials ? [partials] : [])],
  );
  return { program: prog, images: images.buf, step, stepLayout: layout, results };
}
