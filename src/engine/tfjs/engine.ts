/**
 * The tfjs executor behind the {@link Engine} seam: a {@link ResNet} of tf.Variables, its MXNet SGD
 * and the queued steps and logits of step.ts, on tfjs's current backend (backend.ts selects it).
 */
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../../config/schema.js';
import type { MixPlan } from '../../mixup/plan.js';
import type { NetworkSpec } from '../../model/spec.js';
import type { HostTensor } from '../../model/weights.js';
import { engineOptions, type Engine, type EngineOptions, type HostBatch, type QueuedLogits, type QueuedStep, type StepOptions, type StepResult } from '../engine.js';
import type { AttackOptions, Normalisation } from '../attack.js';
import { assertNoDeviceError } from '../dawn.js';
import { attackPredictions } from './attack.js';
import { assignWeights, createResNet, namedWeights, type ResNet } from './resnet.js';
import { SGD } from './sgd.js';
import { inferLogits, settleSteps, trainStep, type PendingStep } from './step.js';

interface TfjsStep extends QueuedStep {
  readonly pending: PendingStep;
}

interface TfjsLogits extends QueuedLogits {
  readonly logits: tf.Tensor2D;
}

/** Host copies of tensors (one asynchronous read each). */
async function toHost(tensors: Map<string, tf.Tensor>): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], values: (await t.data()) as Float32Array });
  return out;
}

/** Device copies of host tensors; the caller disposes them. */
function toDevice(host: Map<string, HostTensor>): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of host) out.set(name, tf.tensor(t.values, t.shape, t.values instanceof Int32Array ? 'int32' : 'float32'));
  return out;
}

/**
 * Whether tfjs's current backend computes on a GPU: webgpu, or tfjs-node reporting
 * `isUsingGpuDevice` (the tensorflow-gpu package on a machine where TensorFlow found CUDA).
 */
export function backendOnGpu(): boolean {
  const name = tf.getBackend();
  return name === 'webgpu' || (name === 'tensorflow' && (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true);
}

/** A ResNet and its SGD on tfjs's current backend. */
export class TfjsEngine implements Engine {
  readonly name: string;
  readonly onGpu: boolean;
  readonly spec: NetworkSpec;
  /** The tfjs network (for benchmarks and tests that call step.ts and resnet.ts directly). */
  readonly net: ResNet;
  /** Its optimiser. */
  readonly opt: SGD;

  /**
   * Builds a freshly initialised network (resnet.ts `createResNet`: He normal from train.seed) and
   * its optimiser on the backend tfjs uses now.
   * @throws UserError for an invalid depth or class count.
   */
  constructor(readonly options: EngineOptions) {
    this.name = `tfjs/${tf.getBackend()}`;
    this.onGpu = backendOnGpu();
    this.net = createResNet({ arch: options.arch, depth: options.depth, width: options.width, numClasses: options.numClasses, mixAt: options.mixAt, mixBackward: options.mixBackward, seed: options.seed, init: options.init });
    this.opt = new SGD(this.net, { momentum: options.momentum, wd: options.wd, form: options.sgd });
    this.spec = this.net.spec;
  }

  parameterCount(): number {
    return this.net.parameterCount();
  }

  trainStep(batch: HostBatch, plan: MixPlan | null, o: StepOptions): QueuedStep {
    const images = tf.tensor4d(batch.images, [batch.size, batch.height, batch.width, 3]);
    try {
      const step: TfjsStep = { kind: 'step', pending: trainStep(this.net, this.opt, images, batch.labels, plan, o) };
      return step;
    } finally {
      images.dispose();
    }
  }

  settle(steps: readonly QueuedStep[]): Promise<StepResult[]> {
    return settleSteps(steps.map((s) => (s as TfjsStep).pending));
  }

  discard(steps: readonly QueuedStep[]): void {
    for (const s of steps) tf.dispose([(s as TfjsStep).pending.loss, (s as TfjsStep).pending.correct]);
  }

  queueLogits(batch: Omit<HostBatch, 'labels'>): QueuedLogits {
    const images = tf.tensor4d(batch.images, [batch.size, batch.height, batch.width, 3]);
    try {
      const q: TfjsLogits = { kind: 'logits', size: batch.size, logits: inferLogits(this.net, images) };
      return q;
    } finally {
      images.dispose();
    }
  }

  async readLogits(q: QueuedLogits): Promise<Float32Array> {
    const { logits } = q as TfjsLogits;
    let values: Float32Array;
    try {
      values = (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
    assertNoDeviceError();
    return values;
  }

  discardLogits(q: QueuedLogits): void {
    (q as TfjsLogits).logits.dispose();
  }

  attackPredictions(batch: HostBatch, norm: Normalisation, o: AttackOptions): Promise<Int32Array> {
    return attackPredictions(this.net, batch, norm, o);
  }

  readWeights(): Promise<Map<string, HostTensor>> {
    return toHost(namedWeights(this.net));
  }

  writeWeights(weights: Map<string, HostTensor>, source: string): void {
    const tensors = toDevice(weights);
    try {
      assignWeights(this.net, tensors, source);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  readOptimizerState(): Promise<Map<string, HostTensor>> {
    return toHost(this.opt.state());
  }

  writeOptimizerState(state: Map<string, HostTensor>): void {
    const tensors = toDevice(state);
    try {
      this.opt.setState(tensors);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  }

  dispose(): void {
    this.net.dispose();
    this.opt.dispose();
  }
}

/**
 * The tfjs network alone for a config (weights seeded from train.seed), for benchmarks and tests
 * that drive step.ts directly; a run uses an {@link Engine} (engine/index.ts `createEngine`).
 * @throws UserError for an invalid depth.
 */
export function buildNet(cfg: Config): ResNet {
  const { arch, depth, width, numClasses, mixAt, mixBackward, seed, init } = engineOptions(cfg);
  return createResNet({ arch, depth, width, numClasses, mixAt, mixBackward, seed, init });
}
