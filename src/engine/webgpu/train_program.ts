/**
 * Compiles the training step of a pre-activation ResNet of basic units (model/spec.ts networkSpec:
 * the reference's, PreAct ResNet-18 with its post-activated stem, WRN-28-10) into one {@link Program}: forward in training mode (per-shard BatchNorm statistics,
 * the MixUp layer at its placement), the loss, the backward pass and the update, each a recorded
 * dispatch over buffers made here once. Forward of a unit (model/resnet.ts):
 *   a1 = ReLU(bn1(x)); [s = sc(a1)]; c1 = conv1(a1); a2 = ReLU(bn2(c1)); out = conv2(a2) + (s or x)
 * and its backward, with G the gradient of `out`:
 *   dA = conv2ᵀ(G); dW2; dC = bn2ᵀ(dA); dA = conv1ᵀ(dC) [+ scᵀ(G)]; dW1 [, dWsc];
 *   G ← bn1ᵀ(dA) + G (identity shortcut, in place) or bn1ᵀ(dA) into the other gradient buffer.
 * Activations kept for backward: every x, a1, c1, a2 and the head's; gradients of activations live
 * in four scratch buffers of the largest activation's size (two for G, dA, dC).
 */
import type { MixupPlacement } from '../../config/schema.js';
import type { MixBackward } from '../../mixup/plan.js';
import type { BatchNormSpec, ConvSpec, SgdForm } from '../../model/spec.js';
import type { LossName } from '../engine.js';
import { bnBackwardKernel, bnForwardKernel, bnStateFloats, bnStatsKernel, type BnShape } from './bn.js';
import { conv2dBackwardData, conv2dBackwardFilter, conv2dForward, convOutSize, type ConvShape } from './convs.js';
import { fcBackwardKernel, lossKernel, poolBackwardKernel, poolKernel } from './head.js';
import { stepLayout, type EngineBuffers } from './layout.js';
import { mixBackwardKernel, mixForwardKernel } from './mix.js';
import { Program, type FlatLayout, type Pipelines, type Slice } from './program.js';
import { updateKernel } from './update.js';

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

  // Shapes first: the largest activation and split-K scratch size the shared scratch buffers.
  const shapes = new Map<string, ConvShape>();
  let hw: [number, number] = [t.height, t.width];
  let maxAct = B * t.height * t.width * 3;
  const shapeOf = (c: ConvSpec, h: number, w: number): ConvShape => {
    const s: ConvShape = { batch: B, inH: h, inW: w, inC: c.inC, outC: c.outC, k: c.k as 1 | 3, stride: c.stride as 1 | 2 };
    const o = convOutSize(s);
    maxAct = Math.max(maxAct, B * h * w * c.inC, B * o.outH * o.outW * c.outC);
    shapes.set(c.name, s);
    return s;
  };
  shapeOf(spec.conv0, hw[0], hw[1]);
  for (const stage of spec.stages) {
    for (const u of stage) {
      const s1 = shapeOf(u.convs[0]!, hw[0], hw[1]);
      if (u.sc) shapeOf(u.sc, hw[0], hw[1]);
      const o = convOutSize(s1);
      shapeOf(u.convs[1]!, o.outH, o.outW);
      hw = [o.outH, o.outW];
    }
  }
  let scratchFloats = 0;
  for (const s of shapes.values()) scratchFloats = Math.max(scratchFloats, conv2dBackwardFilter(s).scratchFloats);
  const scratch = scratchFloats > 0 ? arena.storage('split-K scratch', scratchFloats) : null;
  const gradBufs = [arena.storage('dstream 0', maxAct), arena.storage('dstream 1', maxAct)];
  let gi = 0;
  const dA = arena.storage('dA', maxAct);
  const dC = arena.storage('dC', maxAct);
  const scOut = arena.storage('shortcut out', maxAct);

  const bnShape = (x: Act): BnShape => ({ shards: t.shards, rows: (B / t.shards) * x.h * x.w, channels: x.c, eps: spec.bnEps });
  const bnFwd = (bn: BatchNormSpec, x: Act, relu: boolean): { y: Act; state: GPUBuffer } => {
    const sh = bnShape(x);
    const state = arena.storage(`${bn.name} state`, bnStateFloats(sh));
    prog.add(bnStatsKernel(sh, { backward: false }), [x.buf, state]);
    const y = act(`${bn.name} out`, x.h, x.w, x.c);
    const gamma = bn.fixGamma ? [] : [bufs.param(`${bn.name}_gamma`)];
    prog.add(bnForwardKernel(sh, { fixGamma: bn.fixGamma, relu }), [x.buf, state, ...gamma, bufs.param(`${bn.name}_beta`), y.buf, bufs.movingLayout.slice(bufs.batchStats, bn.name)]);
    return { y, state };
  };
  const bnBwd = (bn: BatchNormSpec, x: Act, a: Act | null, state: GPUBuffer, dy: GPUBuffer, dx: GPUBuffer | null, mode: 'write' | 'add' | 'none') => {
    const sh = bnShape(x);
    const mask = a ? [a.buf] : [];
    prog.add(bnStatsKernel(sh, { backward: true, relu: a !== null }), [dy, ...mask, x.buf, state]);
    const gammas = bn.fixGamma ? [] : dx ? [bufs.param(`${bn.name}_gamma`), bufs.grad(`${bn.name}_gamma`)] : [bufs.grad(`${bn.name}_gamma`)];
    const k = bnBackwardKernel(sh, { fixGamma: bn.fixGamma, relu: a !== null, dx: mode });
    prog.add(k, dx ? [dy, ...mask, x.buf, state, ...gammas, bufs.grad(`${bn.name}_beta`), dx] : [x.buf, state, ...gammas, bufs.grad(`${bn.name}_beta`)]);
  };
  const convFwd = (c: ConvSpec, x: Act, y: GPUBuffer, residual: GPUBuffer | null): Act => {
    const s = shapes.get(c.name)!;
    const o = convOutSize(s);
    prog.add(conv2dForward(s, { residual: residual !== null }), residual ? [x.buf, bufs.param(`${c.name}_weight`), residual, y] : [x.buf, bufs.param(`${c.name}_weight`), y]);
    return { buf: y, h: o.outH, w: o.outW, c: c.outC };
  };
  const convBwd = (c: ConvSpec, dy: GPUBuffer, x: Act, dx: GPUBuffer | null, accumulate: boolean) => {
    const s = shapes.get(c.name)!;
    const w = `${c.name}_weight`;
    if (dx) prog.add(conv2dBackwardData(s, { accumulate }), [dy, bufs.param(w), dx]);
    const f = conv2dBackwardFilter(s);
    if (f.passes.length === 1) prog.add(f.passes[0]!, [dy, x.buf, bufs.grad(w)]);
    else {
      const sc: Slice = { buffer: scratch!, offset: 0, size: f.scratchFloats * 4 };
      prog.add(f.passes[0]!, [dy, x.buf, sc]);
      prog.add(f.passes[1]!, [sc, bufs.grad(w)]);
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
  const x0 = t.mixAt === 'input' ? mixFwd(images, 'input') : images;
  const d0 = spec.bnData ? bnFwd(spec.bnData, x0, false) : null;
  const c0 = convFwd(spec.conv0, d0 ? d0.y : x0, arena.storage('conv0 out', B * t.height * t.width * spec.conv0.outC), null);
  // A post-activated stem (preact-resnet18): ReLU(bn0(conv0)); `head` mixes its output.
  const s0 = spec.stemBn ? bnFwd(spec.stemBn, c0, true) : null;
  const stemOut = s0 ? s0.y : c0;
  let h = t.mixAt === 'head' ? mixFwd(stemOut, 'head') : stemOut;
  interface Rec { x: Act; a1: Act; st1: GPUBuffer; c1: Act; a2: Act; st2: GPUBuffer }
  const recs: Rec[][] = [];
  const stageInputs: Act[] = [];
  spec.stages.forEach((stage, si) => {
    const rs: Rec[] = [];
    for (const u of stage) {
      const x = h;
      const b1 = bnFwd(u.bns[0]!, x, true);
      const s = u.sc ? convFwd(u.sc, b1.y, scOut, null) : null;
      const o1 = convOutSize(shapes.get(u.convs[0]!.name)!);
      const c1 = convFwd(u.convs[0]!, b1.y, arena.storage(`${u.convs[0]!.name} out`, B * o1.outH * o1.outW * u.outC), null);
      const b2 = bnFwd(u.bns[1]!, c1, true);
      const identity = u.identityFrom === 'act1' ? b1.y.buf : x.buf;
      h = convFwd(u.convs[1]!, b2.y, arena.storage(`${u.name} out`, B * c1.h * c1.w * u.outC), s ? s.buf : identity);
      rs.push({ x, a1: b1.y, st1: b1.state, c1, a2: b2.y, st2: b2.state });
    }
    recs.push(rs);
    stageInputs.push(h);
    if (t.mixAt === `stage${si + 1}`) h = mixFwd(h, `stage${si + 1}`);
  });
  const fin = spec.bn1 ? bnFwd(spec.bn1, h, true) : null;
  const C = spec.fcIn;
  const HW = h.h * h.w;
  const pooled = arena.storage('pooled', B * C);
  prog.add(poolKernel(B, HW, C), [fin ? fin.y.buf : h.buf, pooled]);
  const dz = arena.storage('dlogits', B * K);
  prog.add(lossKernel({ batch: B, channels: C, classes: K, loss: t.loss, gradScale: t.gradScale, capacity: t.capacity }), [
    pooled, bufs.param('fc1_weight'), bufs.param('fc1_bias'), stepSlice('scalars'), stepSlice('targets'), stepSlice('majority'), results, dz,
  ]);

  // ---- backward
  const dpooled = arena.storage('dpooled', B * C);
  prog.add(fcBackwardKernel(B, C, K), [pooled, bufs.param('fc1_weight'), dz, bufs.grad('fc1_weight'), bufs.grad('fc1_bias'), dpooled]);
  prog.add(poolBackwardKernel(B, HW, C), [dpooled, fin ? dA : gradBufs[gi]!]);
  if (spec.bn1 && fin) bnBwd(spec.bn1, h, fin.y, fin.state, dA, gradBufs[gi]!, 'write');
  for (let si = spec.stages.length - 1; si >= 0; si--) {
    if (t.mixAt === `stage${si + 1}`) mixBwd(stageInputs[si]!);
    const stage = spec.stages[si]!;
    for (let ui = stage.length - 1; ui >= 0; ui--) {
      const u = stage[ui]!;
      const r = recs[si]![ui]!;
      const G = gradBufs[gi]!;
      convBwd(u.convs[1]!, G, r.a2, dA, false);
      bnBwd(u.bns[1]!, r.c1, r.a2, r.st2, dA, dC, 'write');
      if (!u.sc && u.identityFrom === 'act1') {
        // The identity adds a1: its gradient conv1ᵀ(dC) + G is accumulated into G (free after conv2ᵀ).
        convBwd(u.convs[0]!, dC, r.a1, G, true);
        bnBwd(u.bns[0]!, r.x, r.a1, r.st1, G, gradBufs[1 - gi]!, 'write');
        gi = 1 - gi;
        continue;
      }
      convBwd(u.convs[0]!, dC, r.a1, dA, false);
      if (u.sc) {
        convBwd(u.sc, G, r.a1, dA, true);
        bnBwd(u.bns[0]!, r.x, r.a1, r.st1, dA, gradBufs[1 - gi]!, 'write');
        gi = 1 - gi;
      } else bnBwd(u.bns[0]!, r.x, r.a1, r.st1, dA, G, 'add');
    }
  }
  if (t.mixAt === 'head') mixBwd(stemOut);
  let dStem = gradBufs[gi]!;
  if (spec.stemBn && s0) {
    bnBwd(spec.stemBn, c0, s0.y, s0.state, dStem, dC, 'write');
    dStem = dC;
  }
  if (spec.bnData && d0) {
    convBwd(spec.conv0, dStem, d0.y, dA, false);
    bnBwd(spec.bnData, x0, null, d0.state, dA, null, 'none');
  } else convBwd(spec.conv0, dStem, x0, null, false);

  // ---- update
  prog.add(
    updateKernel({ params: bufs.paramLayout.floats, wdEnd: bufs.wdEnd, moving: bufs.movingLayout.floats, momentum: t.momentum, form: t.sgd, capacity: t.capacity }),
    [bufs.params, bufs.grads, bufs.momentum, bufs.moving, bufs.batchStats, stepSlice('scalars'), results],
  );
  return { program: prog, images: images.buf, step, stepLayout: layout, results };
}
