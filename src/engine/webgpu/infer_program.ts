/**
 * Compiles inference-mode programs of the network (BatchNorm with the moving statistics, no
 * mixing): the logits of a batch for evaluation, and optionally the gradient of the summed
 * cross-entropy on one-hot labels w.r.t. the input images, for the attacks (train/attack.ts: every
 * sample independent of the others, L = Σ_b CE(z_b, label_b)).
 *
 * Without the input gradient the forward reuses five activation buffers (two for the residual
 * stream, the BN outputs, conv1's output, the shortcut's); with it every ReLU output is kept, as
 * the backward pass needs its mask.
 */
import type { BatchNormSpec, ConvSpec } from '../../model/spec.js';
import { bnInferBackwardKernel, bnInferKernel } from './bn_infer.js';
import { conv2dBackwardData, conv2dForward, convOutSize, type ConvShape } from './convs.js';
import { fcBackwardKernel, logitsKernel, poolKernel } from './head.js';
import type { EngineBuffers } from './layout.js';
import { Program, type Pipelines } from './program.js';

interface Act {
  buf: GPUBuffer;
  h: number;
  w: number;
  c: number;
}

/** Compiled inference programs and their inputs and outputs. */
export interface InferProgram {
  batch: number;
  /** Logits of `images`. */
  forward: Program;
  /** Logits and the input gradient (null when not built). */
  gradient: Program | null;
  images: GPUBuffer;
  /** `[B]` labels as floats (input gradient only). */
  labels: GPUBuffer | null;
  logits: GPUBuffer;
  /** `[B,H,W,3]` ∂L/∂images (input gradient only). */
  inputGrad: GPUBuffer | null;
}

/** Builds the inference program for `batch` images of height × width, with the input gradient when `withGradient`. */
export function compileInference(bufs: EngineBuffers, pipelines: Pipelines, batch: number, height: number, width: number, withGradient: boolean): InferProgram {
  const { spec, arena } = bufs;
  const B = batch;
  const K = spec.numClasses;
  const fwd = new Program('infer', pipelines);
  const grad = withGradient ? new Program('input gradient', pipelines) : null;
  const both = (k: Parameters<Program['add']>[0], b: Parameters<Program['add']>[1]) => {
    fwd.add(k, b);
    grad?.add(k, b);
  };
  let maxAct = B * height * width * 3;
  {
    let hw: [number, number] = [height, width];
    maxAct = Math.max(maxAct, B * height * width * spec.conv0.outC);
    for (const st of spec.stages) {
      for (const u of st) {
        const o = convOutSize({ batch: B, inH: hw[0], inW: hw[1], inC: u.inC, outC: u.outC, k: 3, stride: u.stride as 1 | 2 });
        maxAct = Math.max(maxAct, B * hw[0] * hw[1] * u.inC, B * o.outH * o.outW * u.outC);
        hw = [o.outH, o.outW];
      }
    }
  }
  const pool = withGradient ? null : [0, 1, 2, 3, 4].map((i) => arena.storage(`infer scratch ${i}`, maxAct));
  const buffer = (label: string, floats: number, reuse: number): GPUBuffer => (pool ? pool[reuse]! : arena.storage(label, floats));
  const images = arena.storage('infer images', B * height * width * 3);
  const shape = (c: ConvSpec, x: Act): ConvShape => ({ batch: B, inH: x.h, inW: x.w, inC: c.inC, outC: c.outC, k: c.k as 1 | 3, stride: c.stride as 1 | 2 });
  const bn = (b: BatchNormSpec, x: Act, relu: boolean, reuse: number): Act => {
    const y = { ...x, buf: buffer(`${b.name} out`, B * x.h * x.w * x.c, reuse) };
    const gamma = b.fixGamma ? [] : [bufs.param(`${b.name}_gamma`)];
    both(bnInferKernel(B * x.h * x.w * x.c, x.c, { fixGamma: b.fixGamma, relu, eps: spec.bnEps }), [x.buf, ...gamma, bufs.param(`${b.name}_beta`), bufs.movingLayout.slice(bufs.moving, b.name), y.buf]);
    return y;
  };
  const conv = (c: ConvSpec, x: Act, reuse: number, residual: GPUBuffer | null): Act => {
    const s = shape(c, x);
    const o = convOutSize(s);
    const y = buffer(`${c.name} out`, B * o.outH * o.outW * c.outC, reuse);
    both(conv2dForward(s, { residual: residual !== null }), residual ? [x.buf, bufs.param(`${c.name}_weight`), residual, y] : [x.buf, bufs.param(`${c.name}_weight`), y]);
    return { buf: y, h: o.outH, w: o.outW, c: c.outC };
  };
  const x0: Act = { buf: images, h: height, w: width, c: 3 };
  const d0 = spec.bnData ? bn(spec.bnData, x0, false, 2) : x0;
  // A post-activated stem (bn0-ReLU after conv0) reads conv0's output from stream 1 into stream 0.
  const c0 = conv(spec.conv0, d0, spec.stemBn ? 1 : 0, null);
  let h = spec.stemBn ? bn(spec.stemBn, c0, true, 0) : c0;
  const stem = h;
  let cur = 0;
  interface Rec { x: Act; a1: Act; a2: Act; c1: Act }
  const recs: Rec[] = [];
  for (const st of spec.stages) {
    for (const u of st) {
      const x = h;
      // An identity that adds a1 (UnitSpec.identityFrom) keeps a1 in the projection's buffer (4), free then.
      const fromA1 = !u.sc && u.identityFrom === 'act1';
      const a1 = bn(u.bns[0]!, x, true, fromA1 ? 4 : 2);
      const s = u.sc ? conv(u.sc, a1, 4, null) : null;
      const c1 = conv(u.convs[0]!, a1, 3, null);
      const a2 = bn(u.bns[1]!, c1, true, 2);
      h = conv(u.convs[1]!, a2, 1 - cur, s ? s.buf : fromA1 ? a1.buf : x.buf);
      cur = 1 - cur;
      recs.push({ x, a1, a2, c1 });
    }
  }
  const fin = spec.bn1 ? bn(spec.bn1, h, true, 2) : h;
  const C = spec.fcIn;
  const HW = h.h * h.w;
  const pooled = arena.storage('infer pooled', B * C);
  both(poolKernel(B, HW, C), [fin.buf, pooled]);
  const logits = arena.storage('logits', B * K);
  fwd.add(logitsKernel(B, C, K, false), [pooled, bufs.param('fc1_weight'), bufs.param('fc1_bias'), logits]);
  if (!grad) return { batch: B, forward: fwd, gradient: null, images, labels: null, logits, inputGrad: null };

  const labels = arena.storage('attack labels', B);
  const dz = arena.storage('attack dlogits', B * K);
  grad.add(logitsKernel(B, C, K, true), [pooled, bufs.param('fc1_weight'), bufs.param('fc1_bias'), logits, labels, dz]);
  const gbuf = [arena.storage('attack dstream 0', maxAct), arena.storage('attack dstream 1', maxAct)];
  const dA = arena.storage('attack dA', maxAct);
  const dC = arena.storage('attack dC', maxAct);
  let gi = 0;
  grad.add(fcBackwardKernel(B, C, K, HW), [pooled, bufs.param('fc1_weight'), dz, bufs.grad('fc1_weight'), bufs.grad('fc1_bias'), spec.bn1 ? dA : gbuf[gi]!]);
  const bnBack = (b: BatchNormSpec, a: Act | null, dy: GPUBuffer, dx: GPUBuffer, add: boolean) => {
    const n = B * (a ?? x0).h * (a ?? x0).w * (a ?? x0).c;
    const c = a ? a.c : 3;
    grad.add(bnInferBackwardKernel(n, c, { fixGamma: b.fixGamma, relu: a !== null, add, eps: spec.bnEps }), [
      dy, ...(a ? [a.buf] : []), ...(b.fixGamma ? [] : [bufs.param(`${b.name}_gamma`)]), bufs.movingLayout.slice(bufs.moving, b.name), dx,
    ]);
  };
  if (spec.bn1) bnBack(spec.bn1, fin, dA, gbuf[gi]!, false);
  const units = spec.stages.flat();
  for (let i = units.length - 1; i >= 0; i--) {
    const u = units[i]!;
    const r = recs[i]!;
    const G = gbuf[gi]!;
    grad.add(conv2dBackwardData(shape(u.convs[1]!, r.a2)), [G, bufs.param(`${u.convs[1]!.name}_weight`), dA]);
    bnBack(u.bns[1]!, r.a2, dA, dC, false);
    if (!u.sc && u.identityFrom === 'act1') {
      // The identity adds a1: its gradient conv1ᵀ(dC) + G is accumulated into G.
      grad.add(conv2dBackwardData(shape(u.convs[0]!, r.a1), { accumulate: true }), [dC, bufs.param(`${u.convs[0]!.name}_weight`), G]);
      bnBack(u.bns[0]!, r.a1, G, gbuf[1 - gi]!, false);
      gi = 1 - gi;
      continue;
    }
    grad.add(conv2dBackwardData(shape(u.convs[0]!, r.a1)), [dC, bufs.param(`${u.convs[0]!.name}_weight`), dA]);
    if (u.sc) {
      grad.add(conv2dBackwardData(shape(u.sc, r.a1), { accumulate: true }), [G, bufs.param(`${u.sc.name}_weight`), dA]);
      bnBack(u.bns[0]!, r.a1, dA, gbuf[1 - gi]!, false);
      gi = 1 - gi;
    } else bnBack(u.bns[0]!, r.a1, dA, G, true);
  }
  let dStem = gbuf[gi]!;
  if (spec.stemBn) {
    bnBack(spec.stemBn, stem, dStem, dC, false);
    dStem = dC;
  }
  const inputGrad = arena.storage('input gradient', B * height * width * 3);
  grad.add(conv2dBackwardData(shape(spec.conv0, d0)), [dStem, bufs.param(`${spec.conv0.name}_weight`), spec.bnData ? dA : inputGrad]);
  if (spec.bnData) bnBack(spec.bnData, null, dA, inputGrad, false);
  return { batch: B, forward: fwd, gradient: grad, images, labels, logits, inputGrad };
}
