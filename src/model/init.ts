/**
 * Seeded weight initialisation (pure, no tfjs).
 *
 * The reference initialises with `mx.init.Xavier(rnd_type='gaussian', factor_type='in',
 * magnitude=2)` (common/fit.py): weights ~ N(0, σ²), σ = √(2 / fan_in) ("He normal"), fan_in =
 * in_channels·kh·kw for a convolution and in_features for the fully-connected layer. MXNet's
 * initialiser sets names ending in `_bias` and `_beta` to 0, `_gamma` to 1, `moving_mean` to 0 and
 * `moving_var` to 1.
 */
import { uniformStream, type Uniform } from '../random.js';

/**
 * Standard normal variates by the Box-Muller transform, two per pair of uniforms.
 * @param n how many.
 * @param u uniform [0, 1) stream.
 */
export function standardNormals(n: number, u: Uniform): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u())); // 1 − u in (0, 1]: log finite
    const t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

/**
 * He-normal values for one weight, drawn from the stream (seed, 'init', name): the same seed and
 * parameter name always give the same values, whatever else the network holds.
 * @param seed `train.seed`.
 * @param name reference parameter name, e.g. `stage1_unit1_conv1_weight`.
 * @param size number of values.
 * @param fanIn inputs per output unit (in_channels·kh·kw, or in_features).
 * @returns float32 values with standard deviation √(2/fanIn).
 */
export function heNormal(seed: number, name: string, size: number, fanIn: number): Float32Array {
  const z = standardNormals(size, uniformStream(seed, 'init', name));
  const sigma = Math.sqrt(2 / fanIn);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = z[i]! * sigma;
  return out;
}

/** How weights start (`model.init`): the reference's He normal, or PyTorch's layer defaults (the paper's code). */
export type InitScheme = 'he-normal' | 'pytorch';

/**
 * The initial values of one trainable parameter, drawn from the stream (seed, 'init', name).
 * - `he-normal` (the reference, see the module comment): convolutions and fc1's weight N(0, 2/fan_in);
 *   biases and β 0, γ 1.
 * - `pytorch` (torch.nn defaults, as facebookresearch/mixup-cifar10 leaves them): `Conv2d` and `Linear`
 *   weights `kaiming_uniform_(a=√5)`, i.e. U(−1/√fan_in, 1/√fan_in); the `Linear` bias U(−1/√fan_in,
 *   1/√fan_in) with fc1's fan_in; BatchNorm γ 1, β 0.
 * @param p the parameter (model/spec.ts ParamSpec: name, shape, kind, fanIn).
 * @param seed `train.seed`.
 * @param fcIn fc1's inputs (the bias's fan_in for `pytorch`).
 */
export function initialParam(p: { name: string; shape: number[]; kind: string; fanIn: number }, seed: number, scheme: InitScheme, fcIn: number): Float32Array {
  const size = p.shape.reduce((a, b) => a * b, 1);
  const weight = p.kind === 'conv' || p.kind === 'fc_weight';
  if (scheme === 'he-normal' || !(weight || p.name.endsWith('_bias'))) {
    if (weight) return heNormal(seed, p.name, size, p.fanIn);
    return new Float32Array(size).fill(p.kind === 'one' ? 1 : 0);
  }
  const bound = 1 / Math.sqrt(weight ? p.fanIn : fcIn);
  const u = uniformStream(seed, 'init', p.name);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = (2 * u() - 1) * bound;
  return out;
}
