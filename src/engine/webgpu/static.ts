/// <reference types="@webgpu/types" />
/**
 * The static WebGPU engine behind the {@link Engine} seam: a {@link StaticResNet} (engine.ts) built
 * once for a run's shapes, driven by host batches.
 *
 * - Training: one StaticResNet at the config's training batch B×H×W, its shards, loss and gradScale
 *   (all fixed at build; a step asking for others is refused), and its evaluation batch
 *   (train.evalBatchSize). The training program is compiled at the first step (an engine that only
 *   evaluates, `mixup test`, never makes it), everything else at construction; nothing is created
 *   after the first step, so device memory is flat over epochs. The targets (mixed, then smoothed) and the
 *   majority labels are computed on the host (mixup/targets.ts) and written with the batch; the
 *   learning rate is a per-step scalar.
 * - Steps are numbered; {@link StaticEngine.settle} reads every step queued on the device in one read
 *   and hands back the ones asked for (the rest wait for their own settle; discarded ones are dropped).
 * - Evaluation: {@link StaticEngine.queueLogits} submits the forward and the copy of its logits into
 *   a readback slot of their own (StaticResNet.queueInfer), so batch i+1 runs while JavaScript scores
 *   batch i; a batch larger than evalBatch takes several slots, a shorter one is zero-padded.
 * - Attacks: a second, inference-only StaticResNet with the input-gradient program, made at the first
 *   attack and given the current weights before every attacked batch; FGSM / I-FGSM iterate on the
 *   host in pixel space (as engine/tfjs/attack.ts does on tensors; evaluate/attack.ts has the maths).
 *   The gradient w.r.t. the pixels is the gradient w.r.t. the normalised input times scale/std[c]
 *   (positive), so its sign is the input gradient's sign.
 * - Weights and momentum cross as HostTensors with the spec's shapes, with the tfjs engine's errors.
 */
import type { Config } from '../../config/schema.js';
import { UserError } from '../../errors.js';
import type { MixPlan } from '../../mixup/plan.js';
import { majorityLabels, mixLabels, smoothLabels } from '../../mixup/targets.js';
import { momentumKey, parameterCount, type NetworkSpec } from '../../model/spec.js';
import type { HostTensor } from '../../model/weights.js';
import { checkAttack, type AttackOptions, type Normalisation } from '../attack.js';
import { assertNoDeviceError } from '../dawn.js';
import type { Engine, EngineOptions, HostBatch, LossName, QueuedLogits, QueuedStep, StepOptions, StepResult } from '../engine.js';
import { StaticResNet } from './engine.js';
import type { StaticResNetOptions } from './engine_options.js';

/** Tensors named in an error before "and N more" (as the tfjs engine). */
const EXTRA_NAMES_SHOWN = 5;

/** The shapes a static engine is built for (from the config: data.imageShape, train.*, loss). */
export interface StaticShape {
  height: number;
  width: number;
  /** train.batchSize. */
  batch: number;
  shards: number;
  loss: LossName;
  gradScale: number;
  /** train.evalBatchSize. */
  evalBatch: number;
  /** Steps that may be queued between settles: at least train.readEvery (default 64). */
  capacity: number;
}

/** What a config asks of a static engine's shapes. */
export function staticShape(cfg: Config): StaticShape {
  const [, height, width] = cfg.data.imageShape;
  return {
    height: height!,
    width: width!,
    batch: cfg.train.batchSize,
    shards: cfg.train.shards,
    loss: cfg.loss,
    gradScale: cfg.train.gradScale,
    evalBatch: cfg.train.evalBatchSize,
    capacity: Math.max(64, cfg.train.readEvery ?? 0),
  };
}

interface StaticStep extends QueuedStep {
  readonly id: number;
}

interface StaticLogits extends QueuedLogits {
  /** Readback slots of the chunks, and their sizes. */
  readonly slots: { slot: number; n: number }[];
}

/** The static WebGPU executor of one run's shapes. */
export class StaticEngine implements Engine {
  readonly name: string;
  readonly onGpu = true;
  readonly spec: NetworkSpec;
  /** The network (for tests and benchmarks: counters, dispatches). */
  readonly net: StaticResNet;
  private attackNet: StaticResNet | null = null;
  private nextId = 0;
  /** Ids of steps queued on the device and not yet read, in order. */
  private onDevice: number[] = [];
  /** Results read but not yet asked for. */
  private readonly results = new Map<number, StepResult>();
  private readonly discarded = new Set<number>();

  /**
   * Builds the network's buffers, pipelines and programs and writes the initial weights (He normal
   * from `options.seed`, as the tfjs engine).
   * @param adapter the adapter's name, for {@link name}.
   * @throws UserError for an invalid depth or class count. (A bottleneck depth, ≥ 164, or a batch
   *   that does not split into the shards throws RangeError at the first step: createEngine never
   *   builds this engine for a bottleneck depth, and the config refuses such a batch.)
   */
  constructor(
    readonly device: GPUDevice,
    adapter: string,
    readonly options: EngineOptions,
    readonly shape: StaticShape,
  ) {
    this.name = `webgpu-static (${adapter})`;
    this.net = new StaticResNet(device, this.netOptions(shape.batch, false));
    this.spec = this.net.spec;
  }

  private netOptions(batch: number, inputGradient: boolean): StaticResNetOptions {
    const o = this.options;
    const s = this.shape;
    return {
      arch: o.arch, depth: o.depth, modelWidth: o.width, sgd: o.sgd, init: o.init, numClasses: o.numClasses, height: s.height, width: s.width, batch, shards: s.shards, mixAt: o.mixAt,
      mixBackward: o.mixBackward ?? 'exact', loss: s.loss, gradScale: s.gradScale, momentum: o.momentum, wd: o.wd,
      evalBatch: s.evalBatch, inputGradient, capacity: s.capacity, seed: o.seed, lazyTraining: true,
    };
  }

  parameterCount(): number {
    return parameterCount(this.spec);
  }

  /**
   * Queues one step (StaticResNet.trainStep) with the host-computed targets: mixLabels, then
   * smoothLabels(ε = o.labelSmoothing), and majorityLabels for the correct count.
   * @throws RangeError when the batch, shards, loss or gradScale differ from the built ones, or
   *   more than `shape.capacity` steps are queued; UserError for a label outside [0, K).
   */
  trainStep(batch: HostBatch, plan: MixPlan | null, o: StepOptions): QueuedStep {
    const s = this.shape;
    if (batch.labels.length !== batch.size) throw new RangeError(`trainStep: ${batch.labels.length} labels for a batch of ${batch.size}`);
    if (batch.size !== s.batch || batch.height !== s.height || batch.width !== s.width) {
      throw new RangeError(`webgpu-static: built for training batches of ${s.batch}x${s.height}x${s.width}, got ${batch.size}x${batch.height}x${batch.width}`);
    }
    if ((o.shards ?? 1) !== s.shards || o.loss !== s.loss || o.gradScale !== s.gradScale) {
      throw new RangeError(
        `webgpu-static: built for shards ${s.shards}, loss ${s.loss}, gradScale ${s.gradScale}; a step asked for ${o.shards ?? 1}, ${o.loss}, ${o.gradScale}`,
      );
    }
    const K = this.options.numClasses;
    const targets = smoothLabels(mixLabels(batch.labels, K, plan), K, o.labelSmoothing ?? 0);
    this.net.trainStep(batch.images, targets, majorityLabels(batch.labels, plan), plan, o.lr);
    const step: StaticStep = { kind: 'step', id: this.nextId++ };
    this.onDevice.push(step.id);
    return step;
  }

  async settle(steps: readonly QueuedStep[]): Promise<StepResult[]> {
    const want = steps.map((s) => (s as StaticStep).id);
    if (want.some((id) => !this.results.has(id)) && this.onDevice.length > 0) {
      const ids = this.onDevice;
      this.onDevice = [];
      const read = await this.net.settle();
      assertNoDeviceError();
      ids.forEach((id, i) => {
        if (!this.discarded.delete(id)) this.results.set(id, read[i]!);
      });
    }
    return want.map((id) => {
      const r = this.results.get(id);
      if (!r) throw new RangeError(`webgpu-static: step ${id} was not queued, or was settled or discarded already`);
      this.results.delete(id);
      return r;
    });
  }

  discard(steps: readonly QueuedStep[]): void {
    for (const s of steps) {
      const id = (s as StaticStep).id;
      if (!this.results.delete(id)) this.discarded.add(id);
    }
  }

  queueLogits(batch: Omit<HostBatch, 'labels'>): QueuedLogits {
    const per = batch.height * batch.width * 3;
    const E = this.shape.evalBatch;
    const slots: { slot: number; n: number }[] = [];
    try {
      for (let at = 0; at < batch.size; at += E) {
        const n = Math.min(E, batch.size - at);
        slots.push({ slot: this.net.queueInfer(batch.images.subarray(at * per, (at + n) * per)), n });
      }
    } catch (e) {
      for (const c of slots) this.net.releaseInfer(c.slot);
      throw e;
    }
    const q: StaticLogits = { kind: 'logits', size: batch.size, slots };
    return q;
  }

  async readLogits(q: QueuedLogits): Promise<Float32Array> {
    const { slots, size } = q as StaticLogits;
    const K = this.options.numClasses;
    const out = new Float32Array(size * K);
    let at = 0;
    let i = 0;
    try {
      for (; i < slots.length; i++) {
        out.set(await this.net.readInfer(slots[i]!.slot, slots[i]!.n), at * K);
        at += slots[i]!.n;
      }
    } finally {
      for (let j = i; j < slots.length; j++) this.net.releaseInfer(slots[j]!.slot);
    }
    assertNoDeviceError();
    return out;
  }

  discardLogits(q: QueuedLogits): void {
    for (const c of (q as StaticLogits).slots) this.net.releaseInfer(c.slot);
  }

  attackPredictions(batch: HostBatch, norm: Normalisation, o: AttackOptions): Promise<Int32Array> {
    return this.attack(batch, norm, o);
  }

  private async attack(batch: HostBatch, norm: Normalisation, o: AttackOptions): Promise<Int32Array> {
    checkAttack(o);
    const B = batch.size;
    if (batch.labels.length !== B) throw new RangeError(`attackPixels: ${batch.labels.length} labels for ${B} images`);
    this.attackNet ??= new StaticResNet(this.device, this.netOptions(0, true));
    const a = this.attackNet;
    a.writeWeights(await this.net.readWeights());
    const per = batch.height * batch.width * 3;
    const E = this.shape.evalBatch;
    const steps = o.kind === 'fgsm' ? 1 : o.steps;
    const stepSize = o.eps / steps;
    const out = new Int32Array(2 * B);
    for (let at = 0; at < B; at += E) {
      const n = Math.min(E, B - at);
      const images = batch.images.subarray(at * per, (at + n) * per);
      const labels = batch.labels.subarray(at, at + n);
      const clean = pixelsOf(images, norm);
      let x = clean;
      for (let t = 0; t < steps; t++) {
        const { grad } = await a.inputGradient(normalise(x, norm), labels);
        const next = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) {
          const v = x[i]! + Math.sign(grad[i]!) * stepSize;
          next[i] = Math.min(Math.max(v, Math.max(clean[i]! - o.eps, 0)), Math.min(clean[i]! + o.eps, 255));
        }
        x = next;
      }
      out.set(argmaxRows(await a.infer(images), this.options.numClasses), at);
      out.set(argmaxRows(await a.infer(normalise(x, norm)), this.options.numClasses), B + at);
    }
    assertNoDeviceError();
    return out;
  }

  async readWeights(): Promise<Map<string, HostTensor>> {
    const w = await this.net.readWeights();
    const shapes = this.weightShapes();
    return new Map([...w].map(([name, values]) => [name, { shape: shapes.get(name)!, values }]));
  }

  writeWeights(weights: Map<string, HostTensor>, source: string): void {
    const o = this.options;
    const which = `(the checkpoint is not of a ${this.spec.label} with ${o.numClasses} classes?)`;
    const shapes = this.weightShapes();
    // The fixed γ of bn_data is not a parameter, but MXNet's checkpoints (fix_gamma=True) store it.
    const known = new Set([...shapes.keys(), ...this.spec.bns.filter((b) => b.fixGamma).map((b) => `${b.name}_gamma`)]);
    const extra = [...weights.keys()].filter((n) => !known.has(n));
    if (extra.length > 0) {
      const more = extra.length > EXTRA_NAMES_SHOWN ? ` and ${extra.length - EXTRA_NAMES_SHOWN} more` : '';
      throw new UserError(`${source}: ${extra.length} tensor${extra.length === 1 ? '' : 's'} the network does not have: ${extra.slice(0, EXTRA_NAMES_SHOWN).join(', ')}${more} ${which}`);
    }
    const host = new Map<string, Float32Array>();
    for (const [name, shape] of shapes) {
      const t = weights.get(name);
      if (!t) throw new UserError(`${source}: tensor ${name} is missing ${which}`);
      if (!sameShape(t.shape, shape)) throw new UserError(`${source}: tensor ${name} has shape [${t.shape.join(',')}], the network expects [${shape.join(',')}]`);
      host.set(name, Float32Array.from(t.values));
    }
    this.net.writeWeights(host);
  }

  async readOptimizerState(): Promise<Map<string, HostTensor>> {
    const m = await this.net.readMomentum();
    return new Map(this.spec.params.map((p) => [momentumKey(p.name), { shape: [...p.shape], values: m.get(momentumKey(p.name))! }]));
  }

  writeOptimizerState(state: Map<string, HostTensor>): void {
    const host = new Map<string, Float32Array>();
    for (const p of this.spec.params) {
      const key = momentumKey(p.name);
      const t = state.get(key);
      if (!t) throw new UserError(`optimizer state: momentum buffer ${key} is missing`);
      if (!sameShape(t.shape, p.shape)) throw new UserError(`optimizer state: ${key} has shape [${t.shape.join(',')}], expected [${p.shape.join(',')}]`);
      host.set(key, Float32Array.from(t.values));
    }
    this.net.writeMomentum(host);
  }

  /** Shapes of the parameters and moving statistics by name (model/spec.ts). */
  private weightShapes(): Map<string, number[]> {
    const m = new Map<string, number[]>();
    for (const p of this.spec.params) m.set(p.name, [...p.shape]);
    for (const b of this.spec.bns) {
      m.set(`${b.name}_moving_mean`, [b.channels]);
      m.set(`${b.name}_moving_var`, [b.channels]);
    }
    return m;
  }

  dispose(): void {
    this.net.dispose();
    this.attackNet?.dispose();
    this.attackNet = null;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Network input back to pixel levels, rounded (as engine/tfjs/attack.ts `pixelsOf`).
 * @param x `[n,H,W,3]` float32, normalised. @returns `[n,H,W,3]` float32 whole pixel levels.
 */
export function pixelsOf(x: Float32Array, n: Normalisation): Float32Array {
  const f = Math.fround;
  return x.map((v, i) => Math.round(f(f(f(v * n.std[i % 3]!) + n.mean[i % 3]!) / n.scale)));
}

/**
 * Pixel levels to network input, `(p·scale − mean[c]) / std[c]` (as engine/tfjs/attack.ts `normalise`,
 * in float32 steps). @param p `[n,H,W,3]` float32. @returns `[n,H,W,3]` float32.
 */
export function normalise(p: Float32Array, n: Normalisation): Float32Array {
  const f = Math.fround;
  return p.map((v, i) => f(f(f(v * n.scale) - n.mean[i % 3]!) / n.std[i % 3]!));
}

/** First-max argmax of each row of `[n,K]` logits (as tf.argMax). @returns `[n]` int32. */
export function argmaxRows(logits: Float32Array, K: number): Int32Array {
  const n = logits.length / K;
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[r * K + k]! > logits[r * K + best]!) best = k;
    out[r] = best;
  }
  return out;
}
