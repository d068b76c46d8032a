/**
 * Inference-mode BatchNorm kernels of the static engine (the moving statistics as constants), NHWC
 * float32: the forward and its input gradient, one invocation per element. Formulas as
 * model/batchnorm.ts batchNormInfer; the training-mode kernels are in bn.ts.
 */
import type { BindingKind, Kernel } from './kernel.js';
import { f32, storage, elementwiseMain } from './wgsl.js';
import { BN_EPS } from './bn_state.js';

/**
 * Inference mode with the moving statistics: y = x·scale + (β − μ·scale), scale = γ/√(var + eps),
 * then ReLU when `relu` (model/batchnorm.ts batchNormInfer). One invocation per element.
 * Bindings: x, [γ,] β, moving ([mean C | var C]), y.
 */
export function bnInferKernel(n: number, channels: number, o: { fixGamma: boolean; relu: boolean; eps?: number }): Kernel {
  const decl = [storage(0, 'x', 'read')];
  const bindings: BindingKind[] = ['read'];
  if (!o.fixGamma) (decl.push(storage(1, 'gamma', 'read')), bindings.push('read'));
  const b = bindings.length;
  decl.push(storage(b, 'beta', 'read'), storage(b + 1, 'moving', 'read'), storage(b + 2, 'y', 'read_write'));
  bindings.push('read', 'read', 'read_write');
  const main = elementwiseMain(
    n,
    `  let c = i % ${channels}u;
  let scale = ${o.fixGamma ? '' : 'gamma[c] * '}inverseSqrt(moving[${channels}u + c] + ${f32(o.eps ?? BN_EPS)});
  let val = x[i] * scale + (beta[c] - moving[c] * scale);
  y[i] = ${o.relu ? 'select(val, 0.0, val < 0.0)' : 'val'};`,
  );
  return { label: `bn_infer n${n} C${channels}${o.relu ? ' relu' : ''}${o.eps !== undefined && o.eps !== BN_EPS ? ` eps${o.eps}` : ''}`, code: `${decl.join('\n')}\n${main.code}`, bindings, workgroups: main.workgroups };
}

/**
 * Inference-mode backward to the input (for input gradients): dx = dy·[a > 0]·γ/√(var + eps)
 * (`add`: dx += …). One invocation per element. Bindings: dy, [a,] [γ,] moving, dx.
 */
export function bnInferBackwardKernel(n: number, channels: number, o: { fixGamma: boolean; relu: boolean; add: boolean; eps?: number }): Kernel {
  const decl = [storage(0, 'dy', 'read')];
  const bindings: BindingKind[] = ['read'];
  const add = (name: string, access: 'read' | 'read_write') => (decl.push(storage(bindings.length, name, access)), bindings.push(access));
  if (o.relu) add('a', 'read');
  if (!o.fixGamma) add('gamma', 'read');
  add('moving', 'read');
  add('dx', 'read_write');
  const main = elementwiseMain(
    n,
    `  let c = i % ${channels}u;
  let scale = ${o.fixGamma ? '' : 'gamma[c] * '}inverseSqrt(moving[${channels}u + c] + ${f32(o.eps ?? BN_EPS)});
  let g = ${o.relu ? 'select(0.0, dy[i], a[i] > 0.0)' : 'dy[i]'};
  dx[i] = ${o.add ? 'dx[i] + ' : ''}g * scale;`,
  );
  return { label: `bn_infer_bwd n${n} C${channels}${o.relu ? ' relu' : ''}${o.eps !== undefined && o.eps !== BN_EPS ? ` eps${o.eps}` : ''}`, code: `${decl.join('\n')}\n${main.code}`, bindings, workgroups: main.workgroups };
}
