/**
 * The model table of `npm run bench:engine`: per kernel class and per stage, the dispatches, FLOPs,
 * global-memory bytes, workgroups and waves of one training step, summed from each kernel's own cost
 * (src/engine/webgpu/cost.ts), which its generator computes from its indexing. A model: no GPU ran it.
 */
import { KERNEL_CLASSES, MODEL_SMS, totals, withParts, type CostTotals, type DispatchCost } from '../src/engine/webgpu/cost.js';

const MB = 1e6;

function row(name: string, stage: string, t: CostTotals): string {
  const cells = [
    name.padEnd(16),
    stage.padEnd(7),
    String(t.dispatches).padStart(5),
    (t.flops / 1e9).toFixed(2).padStart(9),
    (t.flops > 0 ? ((100 * t.usefulFlops) / t.flops).toFixed(0) : '-').padStart(7),
    (t.read / MB).toFixed(1).padStart(9),
    (t.written / MB).toFixed(1).padStart(9),
    (t.requested / MB).toFixed(0).padStart(10),
    String(t.workgroups).padStart(9),
    (Number.isFinite(t.minWaves) ? t.minWaves.toFixed(2) : '-').padStart(9),
  ];
  return cells.join(' ');
}

/** Whether a dispatch is a convolution GEMM (not the split-K reduce). */
export function isConvGemm(d: DispatchCost): boolean {
  return d.cost.class.startsWith('conv_') && !d.label.includes(' reduce ');
}

/**
 * The table's lines for one training step's dispatches. A grouped dispatch (a conv's two gradients
 * in one, class conv_bwd) is counted per class as its parts (`disp` then counts GEMMs, and each part
 * has its own workgroups and waves), and as one dispatch in the per-stage and step rows.
 */
export function modelLines(ds: readonly DispatchCost[]): string[] {
  const stages = [...new Set(ds.map((d) => d.stage))];
  const parts = withParts(ds);
  const out = [
    `model of one step (from each kernel's indexing; no GPU ran it): GFLOP executed, % of them useful (no padding/stride-hole/tile-edge zero),`,
    `distinct MB read and written per dispatch (DRAM with a perfect cache), MB requested by loads (L1/L2), workgroups, fewest waves on ${MODEL_SMS} SMs`,
    `${'class'.padEnd(16)} ${'stage'.padEnd(7)} ${'disp'.padStart(5)} ${'GFLOP'.padStart(9)} ${'useful%'.padStart(7)} ${'MB read'.padStart(9)} ${'MB write'.padStart(9)} ${'MB req'.padStart(10)} ${'wgroups'.padStart(9)} ${'min waves'.padStart(9)}`,
  ];
  for (const c of KERNEL_CLASSES) {
    const of = parts.filter((d) => d.cost.class === c);
    if (of.length === 0) continue;
    for (const st of stages) {
      const sub = of.filter((d) => d.stage === st);
      if (sub.length > 0) out.push(row(c, st, totals(sub)));
    }
    out.push(row(c, 'all', totals(of)));
  }
  for (const st of stages) out.push(row('all classes', st, totals(ds.filter((d) => d.stage === st))));
  const all = totals(ds);
  out.push(row('step', 'all', all));
  const grouped = ds.filter((d) => d.cost.parts);
  if (grouped.length > 0) {
    out.push(`conv_bwd: ${grouped.length} dispatches each run a conv's backward-data and backward-filter GEMMs (counted in those classes above)`);
  }
  const gemms = parts.filter(isConvGemm);
  const low = gemms.filter((d) => d.workgroups < 2 * MODEL_SMS);
  const fewest = gemms.reduce<DispatchCost | null>((a, d) => (a === null || d.workgroups < a.workgroups ? d : a), null);
  out.push(
    `conv GEMMs below 2 waves on ${MODEL_SMS} SMs: ${low.length} of ${gemms.length}` +
      (fewest ? `; fewest ${fewest.workgroups} workgroups (${(fewest.workgroups / MODEL_SMS).toFixed(2)} waves): ${fewest.label}` : ''),
  );
  const bwdData = parts.filter((d) => d.cost.class === 'conv_bwd_data' && /\/s2 /.test(d.label));
  if (bwdData.length > 0) {
    const t = totals(bwdData);
    out.push(`stride-2 backward-data: ${(t.flops / 1e9).toFixed(3)} GFLOP executed, ${(t.usefulFlops / 1e9).toFixed(3)} useful (${((100 * t.usefulFlops) / t.flops).toFixed(0)} %)`);
  }
  out.push(`step totals: ${all.dispatches} dispatches, ${((all.read + all.written) / MB).toFixed(0)} MB distinct global-memory traffic, ${(all.requested / MB).toFixed(0)} MB requested, ${(all.flops / 1e9).toFixed(1)} GFLOP executed`);
  return out;
}
