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
