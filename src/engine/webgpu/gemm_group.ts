/**
 * Two GEMM kernels (conv_gemm.ts gemmKernel) as one dispatch ("horizontal fusion", a grouped GEMM):
 * workgroups `[0, nA)` run the first kernel's tiles, `[nA, nA + nB)` the second's, so that two
 * independent GEMMs cost one dispatch and their grids share the GPU instead of each leaving a tail.
 *
 * The fused WGSL module is composed from the two kernels' own modules:
 * - every module-scope name of kernel i (constants, functions, bindings, workgroup arrays, its `main`)
 *   gets the prefix `p_i` (`a_`, `b_`), so that the two never collide (a `.x` swizzle is not a name);
 * - the bindings are renumbered into one bind group, A's first, then B's; a binding both read
 *   (`shared`, e.g. dy) is declared once, as `array<vec4<f32>>` if either side loads vec4s, and the
 *   other side's `name[i]` becomes `shared[(i) / 4u][(i) % 4u]`;
 * - the workgroup arrays of `f32` and `vec4<f32>` are aliased into one `array<vec4<f32>>` sized for
 *   the larger kernel (a workgroup runs only one of the two), each kernel's arrays at their own offsets
 *   in it, so the fused kernel needs no more workgroup memory than the larger of the two;
 * - each kernel's entry point becomes `fn p_main(lid, wid)`, and the new entry point decodes the
 *   linear workgroup index (`wid.y · X + wid.x`; 2-D only past 65,535) into the kernel's own
 *   `[x, y, z]` grid and calls it. The branch depends on `workgroup_id` only (uniform), so the
 *   barriers inside stay in uniform control flow; workgroups past nA + nB return at once.
 * Both kernels must have the same workgroup size.
 */
import { GEMM_MAIN } from './conv_gemm.js';
import { MAX_WORKGROUPS_PER_DIMENSION, type BindingKind, type Kernel } from './kernel.js';
import type { KernelClass, KernelCost } from './cost.js';

/** Storage buffers a kernel may bind (WebGPU's default `maxStorageBuffersPerShaderStage`). */
const MAX_STORAGE_BINDINGS = 8;

/** A grouped kernel and how to bind it from the bindings of its two kernels. */
export interface KernelGroup {
  kernel: Kernel;
  /** The bindings of the grouped kernel from those of A and B (each in its kernel's order). */
  bind<T>(a: readonly T[], b: readonly T[]): T[];
}

/** Options of {@link groupKernels}. */
export interface GroupOptions {
  label: string;
  /** Cost class of the grouped dispatch; the two kernels' costs become its `parts`. */
  class: KernelClass;
  /** Pairs (binding of A, binding of B) bound to the same buffer, declared once; both read-only. */
  shared?: [number, number][];
  /** Distinct bytes both kernels read (a shared binding): counted once in the dispatch's `read`. */
  sharedReadBytes?: number;
}

interface Binding {
  name: string;
  kind: BindingKind;
  vec4: boolean;
}

interface WorkgroupArray {
  name: string;
  vec4: boolean;
  length: number;
}

/** Module-scope declarations of WGSL `code` (comments stripped): names, bindings, workgroup arrays. */
function moduleScope(code: string): { names: string[]; bindings: Map<number, Binding>; arrays: WorkgroupArray[]; decls: Map<string, string> } {
  const names: string[] = [];
  const bindings = new Map<number, Binding>();
  const arrays: WorkgroupArray[] = [];
  const decls = new Map<string, string>();
  let depth = 0;
  let start = 0;
  const segment = (end: number) => {
    const text = code.slice(start, end).trim();
    start = end;
    const m = /^((?:@\w+(?:\([^)]*\))?\s*)*)(const|fn|var|override|alias|struct)\b(<[^>]*>)?\s+([A-Za-z_]\w*)/.exec(text);
    if (!m) return;
    const name = m[4]!;
    names.push(name);
    decls.set(name, text);
    const binding = /@binding\((\d+)\)/.exec(m[1]!);
    if (binding) {
      const kind: BindingKind = m[3] === '<uniform>' ? 'uniform' : /read_write/.test(m[3] ?? '') ? 'read_write' : 'read';
      bindings.set(Number(binding[1]), { name, kind, vec4: /:\s*array<vec4<f32>>/.test(text) });
    }
    const wg = /^var<workgroup>\s+\w+\s*:\s*array<(f32|vec4<f32>),\s*(\d+)u?>\s*;?$/.exec(text.slice(m[1]!.length));
    if (m[3] === '<workgroup>' && wg) arrays.push({ name, vec4: wg[1] === 'vec4<f32>', length: Number(wg[2]) });
  };
  for (let i = 0; i < code.length; i++) {
    const ch = code[i];
    if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) segment(i + 1);
    } else if (ch === ';' && depth === 0) segment(i + 1);
  }
  return { names, bindings, arrays, decls };
}

const stripComments = (code: string) => code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');

/** `code` with every use of `name` (not a member after `.`) renamed by `to`. */
function rename(code: string, names: readonly string[], to: (n: string) => string): string {
  if (names.length === 0) return code;
  const re = new RegExp(`(?<![.\\w])(${names.join('|')})(?!\\w)`, 'g');
  return code.replace(re, (n) => to(n));
}

/**
 * `code` with every indexing `name[E]` replaced by `f(E')` (E' itself rewritten).
 * @throws Error when `name` is used other than indexed (a pointer to it, `arrayLength`).
 */
function reindex(code: string, name: string, f: (index: string) => string): string {
  const re = new RegExp(`(?<![.\\w])${name}(?!\\w)`, 'g');
  let out = '';
  let at = 0;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    let i = m.index + name.length;
    while (code[i] === ' ') i++;
    if (code[i] !== '[') throw new Error(`gemm group: ${name} is used other than indexed`);
    let depth = 1;
    let j = i + 1;
    for (; depth > 0; j++) {
      if (j >= code.length) throw new Error(`gemm group: unbalanced [ after ${name}`);
      if (code[j] === '[') depth++;
      else if (code[j] === ']') depth--;
    }
    out += code.slice(at, m.index) + f(reindex(code.slice(i + 1, j - 1), name, f));
    at = j;
    re.lastIndex = j;
  }
  return out + code.slice(at);
}

/**
 * Invocations of a gemmKernel's workgroup (its `@workgroup_size`).
 * @throws Error for a kernel gemmKernel did not generate.
 */
export function gemmWorkgroupSize(k: Kernel): number {
  const m = new RegExp(`@compute @workgroup_size\\((\\d+)\\)\\n${GEMM_MAIN.replace(/[()]/g, '\\$&')}`).exec(k.code);
  if (!m) throw new Error(`gemm group: ${k.label} is not a gemmKernel`);
  return Number(m[1]);
}

/**
 * Kernels `a` and `b` (gemmKernel's, the same workgroup size) as one dispatch; module comment.
 * @throws Error when their workgroup sizes differ, a shared binding is not read-only in both, or the
 *   grouped kernel would bind more than 8 storage buffers.
 */
export function groupKernels(a: Kernel, b: Kernel, o: GroupOptions): KernelGroup {
  const size = gemmWorkgroupSize;
  const wg = size(a);
  if (size(b) !== wg) throw new Error(`gemm group: workgroups of ${wg} (${a.label}) and ${size(b)} (${b.label}) invocations`);
  const shared = o.shared ?? [];
  const parts = [a, b].map((k, i) => {
    const code = stripComments(k.code.replace(`@compute @workgroup_size(${wg})\n${GEMM_MAIN}`, 'fn main(lid: u32, wid: vec3<u32>)'));
    return { k, prefix: 'ab'[i]!, code, scope: moduleScope(code) };
  });
  for (const [ia, ib] of shared) {
    if (a.bindings[ia] !== 'read' || b.bindings[ib] !== 'read') throw new Error(`gemm group: shared bindings ${ia} of ${a.label} and ${ib} of ${b.label} must be read-only`);
  }
  // Binding order: A's, then B's that are not shared.
  const order: { part: number; index: number }[] = [
    ...a.bindings.map((_, index) => ({ part: 0, index })),
    ...b.bindings.map((_, index) => ({ part: 1, index })).filter(({ index }) => !shared.some(([, ib]) => ib === index)),
  ];
  const storage = order.filter(({ part, index }) => [a, b][part]!.bindings[index] !== 'uniform').length;
  if (storage > MAX_STORAGE_BINDINGS) throw new Error(`gemm group: ${storage} storage bindings, at most ${MAX_STORAGE_BINDINGS}`);
  const slot = new Map(order.map((e, i) => [`${e.part}:${e.index}`, i]));

  const wgmLength = Math.max(...parts.map((p) => p.scope.arrays.reduce((n, w) => n + (w.vec4 ? w.length : Math.ceil(w.length / 4)), 0)));
  const bodies = parts.map((p, pi) => {
    const prefixed = (n: string) => `${p.prefix}_${n}`;
    let code = p.code;
    // Declarations rewritten below: bindings (renumbered, or the shared one dropped) and aliased arrays.
    for (const [index, bd] of p.scope.bindings) {
      const decl = p.scope.decls.get(bd.name)!;
      const sh = shared.find((s) => s[pi] === index);
      if (sh && pi === 1) code = code.replace(decl, '');
      else {
        const vec4 = bd.vec4 || (sh !== undefined && parts[1]!.scope.bindings.get(sh[1])!.vec4);
        const type = bd.kind === 'uniform' ? 'uniform' : `storage, ${bd.kind === 'read' ? 'read' : 'read_write'}`;
        const elem = bd.kind === 'uniform' ? decl.slice(decl.indexOf(':') + 1).replace(/;$/, '').trim() : `array<${vec4 ? 'vec4<f32>' : 'f32'}>`;
        code = code.replace(decl, `@group(0) @binding(${slot.get(`${pi}:${index}`)}) var<${type}> ${bd.name}: ${elem};`);
      }
    }
    for (const w of p.scope.arrays) code = code.replace(p.scope.decls.get(w.name)!, '');
    // A shared binding A reads as floats and B as vec4s is declared vec4: A's indexing becomes a component's.
    for (const [ia, ib] of shared) {
      const ab = parts[0]!.scope.bindings.get(ia)!;
      if (pi === 0 && !ab.vec4 && parts[1]!.scope.bindings.get(ib)!.vec4) code = reindex(code, ab.name, (e) => `${ab.name}[(${e}) / 4u][(${e}) % 4u]`);
    }
    // A shared binding of B takes A's name; where A declares it vec4 and B reads floats, B's indexing becomes a component's.
    for (const [ia, ib] of shared) {
      if (pi !== 1) continue;
      const bb = p.scope.bindings.get(ib)!;
      const ab = parts[0]!.scope.bindings.get(ia)!;
      const target = `a_${ab.name}`;
      const marker = `__shared_${ib}`;
      code = rename(code, [bb.name], () => marker);
      code = reindex(code, marker, (e) => (ab.vec4 && !bb.vec4 ? `${target}[(${e}) / 4u][(${e}) % 4u]` : `${target}[${e}]`));
    }
    // Workgroup arrays at their offsets in the one shared array (vec4s first, then floats).
    let at = 0;
    for (const w of [...p.scope.arrays.filter((x) => x.vec4), ...p.scope.arrays.filter((x) => !x.vec4)]) {
      const off = at === 0 ? '' : `${at}u + `;
      code = reindex(code, w.name, (e) => (w.vec4 ? `wgm[${off}${e}]` : `wgm[${off}(${e}) / 4u][(${e}) % 4u]`));
      at += w.vec4 ? w.length : Math.ceil(w.length / 4);
    }
    const names = p.scope.names.filter((n) => !p.scope.arrays.some((w) => w.name === n) && !(pi === 1 && shared.some(([, ib]) => p.scope.bindings.get(ib)!.name === n)));
    return rename(code, names, prefixed).replace(/\n\s*\n+/g, '\n');
  });

  const grid = [a, b].map((k) => k.workgroups);
  const counts = grid.map((g) => g[0] * g[1] * g[2]);
  const total = counts[0]! + counts[1]!;
  const workgroups: [number, number, number] = total <= MAX_WORKGROUPS_PER_DIMENSION ? [total, 1, 1] : [MAX_WORKGROUPS_PER_DIMENSION, Math.ceil(total / MAX_WORKGROUPS_PER_DIMENSION), 1];
  if (workgroups[1] > MAX_WORKGROUPS_PER_DIMENSION) throw new Error(`${o.label}: ${total} workgroups`);
  const decode = (g: [number, number, number], i: string) => `vec3<u32>(${i} % ${g[0]}u, (${i} / ${g[0]}u) % ${g[1]}u, ${i} / ${g[0] * g[1]}u)`;
  const code = `// ${o.label}
// Two GEMMs in one dispatch (gemm_group.ts): linear workgroup i < ${counts[0]} runs A (${a.label}, grid ${grid[0]!.join('x')}),
// i < ${total} runs B (${b.label}, grid ${grid[1]!.join('x')}); both of ${wg} invocations, their
// workgroup arrays aliased in wgm.
var<workgroup> wgm: array<vec4<f32>, ${wgmLength}>;
${bodies[0]}
${bodies[1]}
@compute @workgroup_size(${wg})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.y * ${workgroups[0]}u + wid.x;
  if (i < ${counts[0]}u) {
    a_main(lid, ${decode(grid[0]!, 'i')});
  } else if (i < ${total}u) {
    let j = i - ${counts[0]}u;
    b_main(lid, ${decode(grid[1]!, 'j')});
  }
}
`;
  const ca = a.cost!;
  const cb = b.cost!;
  const cost: KernelCost = {
    class: o.class,
    flops: ca.flops + cb.flops,
    usefulFlops: ca.usefulFlops + cb.usefulFlops,
    read: ca.read + cb.read - (o.sharedReadBytes ?? 0),
    written: ca.written + cb.written,
    requested: ca.requested + cb.requested,
    parts: [
      { label: a.label, workgroups: counts[0]!, cost: ca },
      { label: b.label, workgroups: counts[1]!, cost: cb },
    ],
  };
  const bindings = order.map(({ part, index }) => [a, b][part]!.bindings[index]!);
  return {
    kernel: { label: o.label, code, bindings, workgroups, cost },
    bind: <T,>(x: readonly T[], y: readonly T[]) => order.map(({ part, index }) => (part === 0 ? x : y)[index]!),
  };
}
