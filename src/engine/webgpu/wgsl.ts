/**
 * Small helpers shared by the static engine's WGSL generators: the dispatch grid of an
 * element-wise kernel (x up to 65,535 workgroups, then y) and the WGSL that recovers the element's
 * index from it, float literals.
 */
import { MAX_WORKGROUPS_PER_DIMENSION } from './kernel.js';

/** Invocations per workgroup of the element-wise kernels. */
export const WG = 256;

/**
 * The workgroups of a 1-D kernel over `groups` workgroups, folded into y when x would pass 65,535.
 * @returns `[x, y, 1]` with x·y ≥ groups.
 */
export function grid(groups: number): [number, number, number] {
  const g = Math.max(1, groups);
  if (g <= MAX_WORKGROUPS_PER_DIMENSION) return [g, 1, 1];
  const y = Math.ceil(g / MAX_WORKGROUPS_PER_DIMENSION);
  return [Math.ceil(g / y), y, 1];
}

/** The WGSL entry signature of a 1-D kernel of {@link WG} invocations: `wid`, `lid` and the flat workgroup index `wg`. */
export function entry(gridX: number): string {
  return `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * ${gridX}u + wid.x;`;
}

/**
 * An element-wise kernel's body wrapper: one invocation per element i < n, early return past n.
 * @returns WGSL of `main` (bindings are declared by the caller).
 */
export function elementwiseMain(n: number, body: string): { code: string; workgroups: [number, number, number] } {
  const workgroups = grid(Math.ceil(n / WG));
  return {
    workgroups,
    code: `${entry(workgroups[0])}
  let i = wg * ${WG}u + lid;
  if (i >= ${n}u) { return; }
${body}
}
`,
  };
}

/** A WGSL f32 literal of a JavaScript number (finite). */
export function f32(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`f32: ${v} is not finite`);
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** `@group(0) @binding(i)` declaration of a storage array. */
export function storage(i: number, name: string, access: 'read' | 'read_write', type = 'f32'): string {
  return `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
}
