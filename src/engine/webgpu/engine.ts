/**
 * StaticResNet: the reference's pre-activation ResNet on WebGPU with everything made once — the
 * flat parameter buffer and its gradients and momentum, every activation, BatchNorm state, pipeline
 * and bind group — so a training step is two `queue.writeBuffer`s (images; scalars, targets,
 * majority labels and mix plan) and one submitted compute pass. Host data in, host data out.
 *
 * Losses and correct counts stay on the device until {@link StaticResNet.settle} reads all queued
 * steps at once (train.readEvery). Weights and momentum move in and out as Map<name, Float32Array>
 * in spec order (model/spec.ts names; momentum as `<param>_momentum`, train/sgd.ts momentumKey).
 */
import type { MixPlan } from '../../mixup/plan.js';
import { initialParam } from '../../model/init.js';
import { momentumKey, networkSpec, sizeOf, type NetworkSpec } from '../../model/spec.js';
import { compileInference, type InferProgram } from './infer_program.js';
import { EngineBuffers } from './layout.js';
import { packPlan } from './mix.js';
import { Arena, Pipelines, submit, type Program } from './program.js';
import { compileTraining, type TrainProgram } from './train_program.js';
import { LogitSlots, mapRead } from './readback.js';
import type { DispatchCost } from './cost.js';
import type { StepProfiler } from './profile.js';
import type { StaticResNetOptions } from './engine_options.js';

/** What a settled training step reports (as train/step.ts StepResult). */
export interface EngineStepResult {
  /** Batch-mean loss (before gradScale), nats. */
  loss: number;
  /** Rows whose first argmax equals the majority label. */
  correct: number;
  /** False when the loss was not finite: then the step changed nothing. */
  updated: boolean;
}

/** Inference batches that may be queued ({@link StaticResNet.queueInfer}) before one is read. */
export const LOGIT_SLOTS = 4;

/** The static WebGPU engine of one network configuration. */
export class StaticResNet {
  readonly spec: NetworkSpec;
  private readonly arena: Arena;
  private readonly pipelines: Pipelines;
  private readonly bufs: EngineBuffers;
  private train: TrainProgram | null = null;
  private readonly inference: InferProgram | null;
  private readonly readback: GPUBuffer;
  private stepHost: Float32Array | null = null;
  private profiler: StepProfiler | null = null;
  private readonly capacity: number;
  private queued = 0;
  private slot = 0;
  private reading: Promise<unknown> = Promise.resolve();
  /** Readback buffers of queued inference logits ({@link queueInfer}). */
  private readonly logitSlots: LogitSlots;

  /**
   * Builds every buffer, pipeline and bind group, and writes the initial weights (He normal from
   * `seed`, γ 1, β 0, moving mean 0, moving variance 1, momentum 0).
   * @throws RangeError for a bottleneck depth or a batch that does not split into the shards;
   *   UserError for an invalid depth or class count.
   */
  constructor(
    readonly device: GPUDevice,
    readonly options: StaticResNetOptions,
  ) {
    this.spec = networkSpec(options.depth, options.numClasses, options.arch ?? 'mxnet-preact', options.modelWidth ?? null);
    this.arena = new Arena(device);
    this.pipelines = new Pipelines(device);
    this.bufs = new EngineBuffers(this.arena, this.spec, options.sgd ?? 'mxnet');
    this.capacity = options.capacity ?? 64;
    const o = options;
    if (!o.lazyTraining) this.training();
    this.inference = o.evalBatch > 0 ? compileInference(this.bufs, this.pipelines, o.evalBatch, o.height, o.width, o.inputGradient === true) : null;
    const eb = o.evalBatch;
    const readFloats = Math.max(this.bufs.paramLayout.floats, this.bufs.movingLayout.floats, 2 * this.capacity, eb * o.numClasses, eb * o.height * o.width * 3);
    this.readback = this.arena.readback('readback', readFloats * 4);
    this.logitSlots = new LogitSlots(this.arena, eb > 0 ? LOGIT_SLOTS : 0, eb * o.numClasses * 4);
    this.writeWeights(this.initialWeights(o.seed ?? 0));
  }

  /**
   * The training program: compiled here at the first need when `lazyTraining`, else by the constructor.
   * @throws RangeError for a bottleneck depth or a batch that does not split into the shards.
   */
  private training(): TrainProgram | null {
    const o = this.options;
    if (!this.train && o.batch > 0) {
      this.train = compileTraining(this.bufs, this.pipelines, {
        batch: o.batch, shards: o.shards, height: o.height, width: o.width, mixAt: o.mixAt, mixBackward: o.mixBackward,
        loss: o.loss, gradScale: o.gradScale, momentum: o.momentum, sgd: o.sgd ?? 'mxnet', capacity: this.capacity,
      });
      this.stepHost = new Float32Array(this.train.stepLayout.floats);
    }
    return this.train;
  }

  /** Dispatches of one training step (0 without a training program). */
  get dispatchesPerStep(): number {
    return this.training()?.program.dispatches ?? 0;
  }

  /** The training program's dispatch labels, in order. */
  stepLabels(): string[] {
    return this.training()?.program.labels() ?? [];
  }

  /**
   * Times the dispatches of the training steps queued while set (profile.ts), or stops with null.
   * A diagnostic for benchmarks: the profiler's objects are made by its caller, outside the loop.
   */
  profileWith(p: StepProfiler | null): void {
    this.profiler = p;
  }

  /** The training step's dispatches with their stage and modelled cost (cost.ts), in order. */
  stepCosts(): DispatchCost[] {
    return this.training()?.program.costs() ?? [];
  }

  /** Bytes of device memory allocated. */
  get bytes(): number {
    return this.arena.bytes;
  }

  /** Distinct compute pipelines. */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  private initialWeights(seed: number): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const p of this.spec.params) m.set(p.name, initialParam(p, seed, this.options.init ?? 'he-normal', this.spec.fcIn));
    for (const b of this.spec.bns) {
      m.set(`${b.name}_moving_mean`, new Float32Array(b.channels));
      m.set(`${b.name}_moving_var`, new Float32Array(b.channels).fill(1));
    }
    return m;
  }

  /**
   * Queues one training step (no read): forward, loss, backward, SGD and moving statistics under the
   * NaN guard, as train/step.ts trainStep.
   * @param images `[B,H,W,3]` float32, normalised.
   * @param targets `[B,K]` float32 (mixed, smoothed) label rows: mixLabels then smoothLabels.
   * @param majority `[B]` int32 majorityLabels, for the correct count.
   * @param plan the batch's mix plan (null: none; required shape as the engine's batch).
   * @param lr learning rate of the step.
   * @throws RangeError for wrong sizes, no training program, or more than `capacity` steps queued.
   */
  trainStep(images: Float32Array, targets: Float32Array, majority: Int32Array, plan: MixPlan | null, lr: number): void {
    const t = this.training();
    const host = this.stepHost;
    if (!t || !host) throw new RangeError('StaticResNet.trainStep: built without a training batch');
    const o = this.options;
    const B = o.batch;
    const K = o.numClasses;
    if (images.length !== B * o.height * o.width * 3) throw new RangeError(`trainStep: ${images.length} image values, expected [${B},${o.height},${o.width},3]`);
    if (targets.length !== B * K) throw new RangeError(`trainStep: ${targets.length} target values, expected [${B},${K}]`);
    if (majority.length !== B) throw new RangeError(`trainStep: ${majority.length} majority labels for a batch of ${B}`);
    if (plan?.boxes && (plan.height !== o.height || plan.width !== o.width || (o.mixAt !== 'input' && o.mixAt !== 'head'))) {
      throw new RangeError(`trainStep: a CutMix plan for ${plan.height}x${plan.width} cannot mix at ${o.mixAt} of ${o.height}x${o.width} images`);
    }
    if (this.queued >= this.capacity) throw new RangeError(`trainStep: ${this.queued} steps queued; settle() at least every ${this.capacity} steps`);
    const L = t.stepLayout;
    const sc = L.range('scalars')[0];
    host[sc] = lr;
    host[sc + 1] = o.sgd === 'pytorch' ? o.wd : lr * o.wd;
    host[sc + 2] = this.slot;
    host.set(targets, L.range('targets')[0]);
    const mj = L.range('majority')[0];
    for (let i = 0; i < B; i++) host[mj + i] = majority[i]!;
    packPlan(plan, B, o.mixBackward, host, L.range('plan')[0]);
    const q = this.device.queue;
    q.writeBuffer(t.images, 0, images.buffer, images.byteOffset, images.byteLength);
    q.writeBuffer(t.step, 0, host.buffer, host.byteOffset, host.byteLength);
    if (this.profiler) this.profiler.submit(t.program);
    else submit(this.device, t.program);
    this.slot = (this.slot + 1) % this.capacity;
    this.queued++;
  }

  /** Steps queued since the last {@link settle}. */
  get pending(): number {
    return this.queued;
  }

  /**
   * Reads the loss and correct count of every step queued since the last settle, in order.
   * @returns one result per step; `updated` is false exactly where the loss is not finite.
   */
  async settle(): Promise<EngineStepResult[]> {
    const n = this.queued;
    if (n === 0 || !this.train) return [];
    const first = (this.slot - n + this.capacity) % this.capacity;
    this.queued = 0;
    const all = await this.read(this.train.results, 2 * this.capacity);
    const out: EngineStepResult[] = [];
    for (let i = 0; i < n; i++) {
      const s = (first + i) % this.capacity;
      const loss = all[2 * s]!;
      out.push({ loss, correct: all[2 * s + 1]!, updated: Number.isFinite(loss) });
    }
    return out;
  }

  /** Copies `floats` values of `src` into the readback buffer and maps them (reads are serialised). */
  private read(src: GPUBuffer, floats: number): Promise<Float32Array> {
    const run = async (): Promise<Float32Array> => {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, this.readback, 0, floats * 4);
      this.device.queue.submit([enc.finish()]);
      return mapRead(this.readback, floats * 4);
    };
    const p = this.reading.then(run, run);
    this.reading = p.catch(() => undefined);
    return p;
  }

  /**
   * Inference-mode logits (moving statistics) of up to evalBatch images; a shorter batch is padded
   * with zeros and its logits cut.
   * @param images `[n,H,W,3]` float32, normalised, n ≤ evalBatch.
   * @returns `[n, K]` float32 logits.
   * @throws RangeError without an inference program or for too many images.
   */
  async infer(images: Float32Array): Promise<Float32Array> {
    const p = this.inference;
    if (!p) throw new RangeError('StaticResNet.infer: built without an evaluation batch');
    const n = this.imageCount(images, p.batch);
    this.device.queue.writeBuffer(p.images, 0, images.buffer, images.byteOffset, images.byteLength);
    if (n < p.batch) this.zeroTail(p.images, images.byteLength, p.batch);
    submit(this.device, p.forward);
    const K = this.options.numClasses;
    return (await this.read(p.logits, p.batch * K)).slice(0, n * K);
  }

  /**
   * Queues the inference forward of up to evalBatch images (padded as {@link infer}) and the copy of
   * its logits into a readback slot of their own, in one submit; nothing is read yet, so the next
   * batch can be queued while this one runs.
   * @param images `[n,H,W,3]` float32, normalised, n ≤ evalBatch.
   * @returns the slot, for {@link readInfer} or {@link releaseInfer}.
   * @throws RangeError without an inference program, for too many images, or when all
   *   {@link LOGIT_SLOTS} slots are queued and unread.
   */
  queueInfer(images: Float32Array): number {
    const p = this.inference;
    if (!p) throw new RangeError('StaticResNet.queueInfer: built without an evaluation batch');
    const n = this.imageCount(images, p.batch);
    const { slot, buffer } = this.logitSlots.take();
    this.device.queue.writeBuffer(p.images, 0, images.buffer, images.byteOffset, images.byteLength);
    if (n < p.batch) this.zeroTail(p.images, images.byteLength, p.batch);
    const bytes = p.batch * this.options.numClasses * 4;
    submit(this.device, p.forward, [[p.logits, 0, buffer, 0, bytes]]);
    return slot;
  }

  /**
   * Reads the logits of a {@link queueInfer} slot and frees the slot.
   * @param n images that were queued.
   * @returns `[n, K]` float32 logits.
   */
  async readInfer(slot: number, n: number): Promise<Float32Array> {
    return this.logitSlots.read(slot, n * this.options.numClasses * 4);
  }

  /** Frees a {@link queueInfer} slot without reading it. */
  releaseInfer(slot: number): void {
    this.logitSlots.release(slot);
  }

  /**
   * Gradient of Σ_b CE(z_b, label_b) (inference mode) w.r.t. the normalised input images, and the logits.
   * @param images `[n,H,W,3]` float32, n ≤ evalBatch.
   * @param labels `[n]` class indices.
   * @returns `grad` `[n,H,W,3]`, `logits` `[n,K]`.
   * @throws RangeError when built without `inputGradient`, or for mismatched sizes.
   */
  async inputGradient(images: Float32Array, labels: Int32Array): Promise<{ grad: Float32Array; logits: Float32Array }> {
    const p = this.inference;
    if (!p || !p.gradient || !p.labels || !p.inputGrad) throw new RangeError('StaticResNet.inputGradient: built without inputGradient');
    const n = this.imageCount(images, p.batch);
    if (labels.length !== n) throw new RangeError(`inputGradient: ${labels.length} labels for ${n} images`);
    this.device.queue.writeBuffer(p.images, 0, images.buffer, images.byteOffset, images.byteLength);
    if (n < p.batch) this.zeroTail(p.images, images.byteLength, p.batch);
    const lab = new Float32Array(p.batch).fill(-1);
    for (let i = 0; i < n; i++) lab[i] = labels[i]!;
    this.device.queue.writeBuffer(p.labels, 0, lab);
    submit(this.device, p.gradient);
    const per = this.options.height * this.options.width * 3;
    const K = this.options.numClasses;
    const grad = (await this.read(p.inputGrad, p.batch * per)).slice(0, n * per);
    const logits = (await this.read(p.logits, p.batch * K)).slice(0, n * K);
    return { grad, logits };
  }

  private imageCount(images: Float32Array, max: number): number {
    const per = this.options.height * this.options.width * 3;
    const n = images.length / per;
    if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`StaticResNet: ${images.length} image values are not 1..${max} images of ${this.options.height}x${this.options.width}x3`);
    return n;
  }

  private zeroTail(buf: GPUBuffer, from: number, batch: number): void {
    const total = batch * this.options.height * this.options.width * 3 * 4;
    this.device.queue.writeBuffer(buf, from, new Float32Array((total - from) / 4));
  }

  /**
   * Parameters and moving statistics by name, in spec order (parameters, then per BatchNorm
   * `<bn>_moving_mean`, `<bn>_moving_var`).
   */
  async readWeights(): Promise<Map<string, Float32Array>> {
    const p = await this.read(this.bufs.params, this.bufs.paramLayout.floats);
    const m = await this.read(this.bufs.moving, this.bufs.movingLayout.floats);
    const out = new Map<string, Float32Array>();
    for (const s of this.spec.params) {
      const [o, n] = this.bufs.paramLayout.range(s.name);
      out.set(s.name, p.slice(o, o + n));
    }
    for (const b of this.spec.bns) {
      const [o] = this.bufs.movingLayout.range(b.name);
      out.set(`${b.name}_moving_mean`, m.slice(o, o + b.channels));
      out.set(`${b.name}_moving_var`, m.slice(o + b.channels, o + 2 * b.channels));
    }
    return out;
  }

  /**
   * Writes parameters and moving statistics (names as {@link readWeights}; extra names ignored).
   * @throws RangeError naming a missing tensor or one of the wrong size.
   */
  writeWeights(w: Map<string, Float32Array>): void {
    const q = this.device.queue;
    for (const s of this.spec.params) {
      const v = this.need(w, s.name, sizeOf(s.shape));
      q.writeBuffer(this.bufs.params, this.bufs.paramLayout.range(s.name)[0] * 4, v.buffer, v.byteOffset, v.byteLength);
    }
    for (const b of this.spec.bns) {
      const [o] = this.bufs.movingLayout.range(b.name);
      const mean = this.need(w, `${b.name}_moving_mean`, b.channels);
      const vr = this.need(w, `${b.name}_moving_var`, b.channels);
      q.writeBuffer(this.bufs.moving, o * 4, mean.buffer, mean.byteOffset, mean.byteLength);
      q.writeBuffer(this.bufs.moving, (o + b.channels) * 4, vr.buffer, vr.byteOffset, vr.byteLength);
    }
  }

  /** Momentum buffers by `<param>_momentum`, in spec order. */
  async readMomentum(): Promise<Map<string, Float32Array>> {
    const p = await this.read(this.bufs.momentum, this.bufs.paramLayout.floats);
    const out = new Map<string, Float32Array>();
    for (const s of this.spec.params) {
      const [o, n] = this.bufs.paramLayout.range(s.name);
      out.set(momentumKey(s.name), p.slice(o, o + n));
    }
    return out;
  }

  /**
   * Writes momentum buffers (names as {@link readMomentum}).
   * @throws RangeError naming a missing buffer or one of the wrong size.
   */
  writeMomentum(m: Map<string, Float32Array>): void {
    for (const s of this.spec.params) {
      const v = this.need(m, momentumKey(s.name), sizeOf(s.shape));
      this.device.queue.writeBuffer(this.bufs.momentum, this.bufs.paramLayout.range(s.name)[0] * 4, v.buffer, v.byteOffset, v.byteLength);
    }
  }

  private need(m: Map<string, Float32Array>, name: string, n: number): Float32Array {
    const v = m.get(name);
    if (!v) throw new RangeError(`StaticResNet: tensor ${name} is missing`);
    if (v.length !== n) throw new RangeError(`StaticResNet: tensor ${name} has ${v.length} values, expected ${n}`);
    return v;
  }

  /** The training program (for benchmarks that encode it themselves). */
  get trainProgram(): Program | null {
    return this.training()?.program ?? null;
  }

  /** Destroys every buffer of the engine (the device stays the caller's). */
  dispose(): void {
    this.arena.destroy();
  }
}
