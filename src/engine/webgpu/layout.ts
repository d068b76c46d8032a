/**
 * The static engine's buffers that outlive a program: the flat parameter buffer and its twins
 * (gradients, momentum) in one {@link FlatLayout}, the moving and batch statistics, the per-step
 * inputs (scalars, targets, majority labels, mix plan) and the results of the queued steps.
 *
 * Parameter layout: parameters with weight decay (`*_weight`, `*_gamma`, train/sgd.ts wdMult) first,
 * in spec order, then the others; every range starts at a 256-byte boundary, so one parameter can be
 * bound alone, and the update kernel tells weight decay by index (i < wdEnd).
 */
import { auxNames, sizeOf, wdMult, type NetworkSpec, type SgdForm } from '../../model/spec.js';
import { PLAN_STRIDE } from './mix.js';
import { Arena, FlatLayout, type Slice } from './program.js';

/** Floats of the per-step scalars: [lr, lr·wd (train.sgd pytorch: wd), slot, 0, …]. */
export const SCALARS = 8;

/** The buffers shared by an engine's programs. */
export class EngineBuffers {
  readonly paramLayout: FlatLayout;
  /** Floats [0, wdEnd) of the flat buffer hold the parameters with weight decay. */
  readonly wdEnd: number;
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  readonly momentum: GPUBuffer;
  /** Per BatchNorm name: [mean C | var C]. */
  readonly movingLayout: FlatLayout;
  readonly moving: GPUBuffer;
  /** The step's batch statistics, in the moving layout (shards' averages). */
  readonly batchStats: GPUBuffer;

  constructor(
    readonly arena: Arena,
    readonly spec: NetworkSpec,
    sgd: SgdForm = 'mxnet',
  ) {
    const wd = spec.params.filter((p) => wdMult(p.name, sgd) !== 0);
    const rest = spec.params.filter((p) => wdMult(p.name, sgd) === 0);
    const entries = [...wd, ...rest].map((p) => ({ name: p.name, floats: sizeOf(p.shape) }));
    this.paramLayout = new FlatLayout(entries);
    const last = wd[wd.length - 1];
    if (last) {
      const [o, n] = this.paramLayout.range(last.name);
      this.wdEnd = o + n;
    } else this.wdEnd = 0;
    this.params = arena.storage('params', this.paramLayout.floats);
    this.grads = arena.storage('grads', this.paramLayout.floats);
    this.momentum = arena.storage('momentum', this.paramLayout.floats);
    this.movingLayout = new FlatLayout(spec.bns.map((b) => ({ name: b.name, floats: 2 * b.channels })));
    this.moving = arena.storage('moving statistics', this.movingLayout.floats);
    this.batchStats = arena.storage('batch statistics', this.movingLayout.floats);
  }

  /** A parameter's range in the parameter buffer. */
  param(name: string): Slice {
    return this.paramLayout.slice(this.params, name);
  }

  /** A parameter's range in the gradient buffer. */
  grad(name: string): Slice {
    return this.paramLayout.slice(this.grads, name);
  }

  /** Names of the moving statistics in spec order (`<bn>_moving_mean`, `<bn>_moving_var`). */
  auxNames(): string[] {
    return auxNames(this.spec);
  }
}

/** Layout of the per-step input buffer for a batch: scalars, targets `[B,K]`, majority `[B]`, plan `[B,PLAN_STRIDE]`. */
export function stepLayout(batch: number, classes: number): FlatLayout {
  return new FlatLayout([
    { name: 'scalars', floats: SCALARS },
    { name: 'targets', floats: batch * classes },
    { name: 'majority', floats: batch },
    { name: 'plan', floats: batch * PLAN_STRIDE },
  ]);
}
