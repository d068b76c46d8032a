/**
 * The MixUp layer's kernels (mixup/layer.ts) at any placement, NHWC float32 `[B,H,W,C]`, for
 * plain mixup and CutMix, forward and both backward modes.
 *
 * The plan is uploaded per step as `[B, PLAN_STRIDE]` floats (row r): partner p[r], its inverse
 * p⁻¹[r], the own weight w[r] and the partner's share 1 − w[r] (formed in float64 on the host, as
 * layer.ts does), the reference backward's factor s[r], and the CutMix box [y0, x0, y1, x1). A pixel
 * inside row r's box takes weight 0 (all of the partner); outside it takes (w, 1 − w), which for a
 * CutMix plan is (1, 0) on every row ({@link packPlan}).
 */
import type { MixPlan } from '../../mixup/plan.js';
import { referenceGradFactor } from '../../mixup/plan.js';
import type { MixBackward } from '../../mixup/plan.js';
import type { Kernel } from './kernel.js';
import { elementwiseMain, storage } from './wgsl.js';
import { elementwiseCost, type KernelCost } from './cost.js';

/** Floats per plan row. */
export const PLAN_STRIDE = 10;

/**
 * Packs a plan (or the identity, for null) into `[B, PLAN_STRIDE]` floats at `out[offset..]`.
 * @param backward `reference` stores s[r] = w[r] + 1 − w[p[r]] (referenceGradFactor), `zero` 0.
 * @throws RangeError when the plan is for another batch size.
 */
export function packPlan(plan: MixPlan | null, batch: number, backward: MixBackward, out: Float32Array, offset: number): void {
  if (plan && plan.batchSize !== batch) throw new RangeError(`mix plan is for a batch of ${plan.batchSize}, the engine's batch is ${batch}`);
  const factor = plan && backward === 'reference' ? referenceGradFactor(plan) : null;
  for (let r = 0; r < batch; r++) {
    const o = offset + r * PLAN_STRIDE;
    const p = plan ? plan.partner[r]! : r;
    const boxed = plan?.boxes !== undefined;
    const w = plan && !boxed ? plan.weight[r]! : 1;
    out[o] = p;
    out[o + 2] = w;
    out[o + 3] = 1 - w;
    out[o + 4] = backward === 'zero' ? 0 : factor ? factor[r]! : 1;
    for (let k = 0; k < 4; k++) out[o + 5 + k] = boxed ? plan!.boxes![4 * r + k]! : 0;
    out[o + 9] = 0;
  }
  for (let r = 0; r < batch; r++) out[offset + (out[offset + r * PLAN_STRIDE]! | 0) * PLAN_STRIDE + 1] = r;
}

/** Shape of a mixed tensor. */
export interface MixShape {
  batch: number;
  height: number;
  width: number;
  channels: number;
}

const PIXEL_WEIGHT = `fn weights(r: u32, py: u32, px: u32) -> vec2f {
  let o = r * ${PLAN_STRIDE}u;
  let inBox = f32(py) >= plan[o + 5u] && f32(py) < plan[o + 7u] && f32(px) >= plan[o + 6u] && f32(px) < plan[o + 8u];
  return select(vec2f(plan[o + 2u], plan[o + 3u]), vec2f(0.0, 1.0), inBox);
}`;

function coords(s: MixShape): string {
  return `  let c = i % ${s.channels}u; let pix = i / ${s.channels}u;
  let px = pix % ${s.width}u; let py = (pix / ${s.width}u) % ${s.height}u; let r = pix / ${s.width * s.height}u;
  let rowSize = ${s.height * s.width * s.channels}u; let within = i - r * rowSize;`;
}

/** Each element reads its own value and its partner's (requested twice, distinct once) and the plan. */
function mixCost(s: MixShape): KernelCost {
  const n = s.batch * s.height * s.width * s.channels;
  const c = elementwiseCost('other', n, 3, n + s.batch * PLAN_STRIDE, n);
  return { ...c, requested: 4 * (2 * n + s.batch * PLAN_STRIDE) };
}

/**
 * Forward: y[r] = w·x[r] + (1 − w)·x[p[r]] per pixel (w of row r at that pixel, see the module
 * comment). One invocation per element. Bindings: x, plan, y.
 */
export function mixForwardKernel(s: MixShape): Kernel {
  const n = s.batch * s.height * s.width * s.channels;
  const main = elementwiseMain(
    n,
    `${coords(s)}
  let p = u32(plan[r * ${PLAN_STRIDE}u]);
  let w = weights(r, py, px);
  y[i] = w.x * x[i] + w.y * x[p * rowSize + within];`,
  );
  return {
    label: `mix_fwd ${s.height}x${s.width}x${s.channels} B${s.batch}`,
    code: `${storage(0, 'x', 'read')}\n${storage(1, 'plan', 'read')}\n${storage(2, 'y', 'read_write')}\n${PIXEL_WEIGHT}\n${main.code}`,
    bindings: ['read', 'read', 'read_write'],
    workgroups: main.workgroups,
    cost: mixCost(s),
  };
}

/**
 * Backward. `exact`: dx[j] = w(j)·dy[j] + (1 − w(q))·dy[q] per pixel with q = p⁻¹[j] (the row that
 * took j as its partner). `reference` (and `zero`, whose factor is 0): dx[r] = s[r]·dy[r].
 * One invocation per element. Bindings: dy, plan, dx.
 */
export function mixBackwardKernel(s: MixShape, mode: 'exact' | 'factor'): Kernel {
  const n = s.batch * s.height * s.width * s.channels;
  const body =
    mode === 'exact'
      ? `  let q = u32(plan[r * ${PLAN_STRIDE}u + 1u]);
  dx[i] = weights(r, py, px).x * dy[i] + weights(q, py, px).y * dy[q * rowSize + within];`
      : `  dx[i] = plan[r * ${PLAN_STRIDE}u + 4u] * dy[i];`;
  const main = elementwiseMain(n, `${coords(s)}\n${body}`);
  return {
    label: `mix_bwd_${mode} ${s.height}x${s.width}x${s.channels} B${s.batch}`,
    code: `${storage(0, 'dy', 'read')}\n${storage(1, 'plan', 'read')}\n${storage(2, 'dx', 'read_write')}\n${PIXEL_WEIGHT}\n${main.code}`,
    bindings: ['read', 'read', 'read_write'],
    workgroups: main.workgroups,
    cost: mixCost(s),
  };
}
