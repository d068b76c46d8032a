/**
 * The seam between the run loop (src/train/), evaluation (src/evaluate/) and an executor that runs
 * the network: the tfjs executor (src/engine/tfjs/) or a static WebGPU one (src/engine/webgpu/).
 *
 * Host-side numbers cross it in both directions: images and labels go in as typed arrays, losses,
 * counts, logits and weights come back as typed arrays. What an executor keeps on its device
 * (tensors, buffers) never leaves it, so the caller needs no tensor library. Work is queued first
 * and read later (`trainStep` then `settle`, `queueLogits` then `readLogits`), so a GPU executor can
 * run ahead of JavaScript; an executor whose kernels run at dispatch may do the work at queue time.
 *
 * Every executor builds its network from one description, {@link NetworkSpec} (model/spec.ts), and
 * reads and writes weights by the spec's names in the checkpoint format of model/weights.ts.
 */
import { mixupPlacement, type Config, type MixupPlacement, type ModelArch } from '../config/schema.js';
import type { MixPlan } from '../mixup/plan.js';
import type { NetworkSpec, SgdForm } from '../model/spec.js';
import type { InitScheme } from '../model/init.js';
import type { HostTensor } from '../model/weights.js';
import type { AttackOptions, Normalisation } from './attack.js';

/** Names of the losses (config `loss`): `soft-ce` and `mixture-nll` (see engine/tfjs/loss.ts for both formulas). */
export type LossName = Config['loss'];

/** One batch on the host. */
export interface HostBatch {
  /** `[B,H,W,3]` float32, normalised, NHWC. */
  images: Float32Array;
  /** `[B]` class indices in [0, numClasses). */
  labels: Int32Array;
  /** B. */
  size: number;
  height: number;
  width: number;
}

/** Options of one training step. */
export interface StepOptions {
  /** Learning rate of this step (from learningRate(epoch, ...)). */
  lr: number;
  /** Factor on the batch-mean loss gradient before SGD (train.gradScale); weight decay untouched. */
  gradScale: number;
  /** The loss on the mixed targets (config `loss`). */
  loss: Config['loss'];
  /** ε of label smoothing on the (mixed) targets (train.labelSmoothing); default 0. */
  labelSmoothing?: number;
  /** Equal shards of the batch, each with its own BatchNorm statistics (train.shards; default 1). */
  shards?: number;
}

/** What a training step reports once read. */
export interface StepResult {
  /** Mean loss of the batch (not multiplied by gradScale), in nats. */
  loss: number;
  /** Samples whose argmax prediction is the label with the larger weight (unmixed: the label). */
  correct: number;
  /**
   * False when the loss was NaN or infinite: then nothing was changed (parameters, momentum and
   * moving statistics are as before the step), so `nanPolicy: skip-batch` really skips the batch.
   */
  updated: boolean;
}

/** A queued training step whose figures are still on the device: an executor's own token. */
export interface QueuedStep {
  readonly kind: 'step';
}

/** A queued inference forward whose logits are still on the device: an executor's own token. */
export interface QueuedLogits {
  readonly kind: 'logits';
  /** B, the batch size. */
  readonly size: number;
}

/** What an executor is built from (config keys `model.*`, `mixup.*`, `train.seed|momentum|wd`). */
export interface EngineOptions {
  /** `model.arch` (model/spec.ts); absent = `mxnet-preact`. */
  arch?: ModelArch;
  /** `model.depth` (`mxnet-preact` only). */
  depth: number;
  /** `model.width`; null/absent = the architecture's own. */
  width?: number | null;
  numClasses: number;
  /** Where the MixUp layer sits (`input`, `conv0`, `stage1`...), or null (ERM). */
  mixAt: MixupPlacement | null;
  /** Gradient through the MixUp layer (config `mixup.backward`). */
  mixBackward?: Config['mixup']['backward'];
  /** Seed of the weight initialisation (`train.seed`). */
  seed: number;
  /** `model.init`; absent = `he-normal`. */
  init?: InitScheme;
  /** SGD momentum and weight decay (`train.momentum`, `train.wd`). */
  momentum: number;
  wd: number;
  /** SGD form (`train.sgd`); absent = `mxnet`. */
  sgd?: SgdForm;
}

/**
 * A network, its optimiser state and the device they live on. One run loop and one evaluation
 * drive every executor through these methods only.
 */
export interface Engine {
  /** The executor and its device, e.g. `tfjs/wasm`. */
  readonly name: string;
  /**
   * True when work runs on a GPU that JavaScript should not wait on after every step (the run loop
   * then reads queued steps in groups, train.readEvery); false when kernels run at dispatch.
   */
  readonly onGpu: boolean;
  /** The network this engine runs (model/spec.ts). */
  readonly spec: NetworkSpec;
  readonly options: EngineOptions;
  /** Number of trainable scalars. */
  parameterCount(): number;
  /**
   * Queues one SGD step: forward in training mode (the MixUp layer at `options.mixAt` when `plan`
   * is given), loss on the mixed (and smoothed) targets, gradients of gradScale·loss, the update of
   * parameters, momentum and BatchNorm moving statistics, all skipped on the device when the loss is
   * not finite. No host read.
   * @param plan the batch's mixing (mixup/plan.ts), or null for ERM.
   * @throws RangeError when `batch.labels` does not have `batch.size` entries.
   */
  trainStep(batch: HostBatch, plan: MixPlan | null, o: StepOptions): QueuedStep;
  /**
   * Reads queued steps in one device read, in order, and releases them.
   * @throws UserError when the device reported an error.
   */
  settle(steps: readonly QueuedStep[]): Promise<StepResult[]>;
  /** Releases queued steps without reading them (a run that stops early). */
  discard(steps: readonly QueuedStep[]): void;
  /** Queues the inference-mode forward (moving statistics, no mixing) of `[B,H,W,3]` images. */
  queueLogits(batch: Omit<HostBatch, 'labels'>): QueuedLogits;
  /**
   * Reads and releases queued logits.
   * @returns `[B*K]` row-major float32 logits.
   * @throws UserError when the device reported an error.
   */
  readLogits(q: QueuedLogits): Promise<Float32Array>;
  /** Releases queued logits without reading them. */
  discardLogits(q: QueuedLogits): void;
  /**
   * White-box FGSM / I-FGSM on one batch in inference mode (evaluate/attack.ts describes the attack):
   * undoes `norm` to attack in pixel space, then predicts the clean and the attacked images.
   * @returns `[2B]` int32: the argmax of the clean images, then of the attacked ones.
   * @throws RangeError for bad attack numbers; UserError when the device reported an error.
   */
  attackPredictions(batch: HostBatch, norm: Normalisation, o: AttackOptions): Promise<Int32Array>;
  /** The parameters and BatchNorm moving statistics by reference name, as checkpoints store them. */
  readWeights(): Promise<Map<string, HostTensor>>;
  /**
   * Sets parameters and moving statistics from `weights` (extra names are ignored).
   * @param source where they came from, for the error message.
   * @throws UserError naming `source` and the tensor when one is missing or has another shape.
   */
  writeWeights(weights: Map<string, HostTensor>, source: string): void;
  /** The optimiser's momentum buffers by name (sgd.ts `momentumKey`). */
  readOptimizerState(): Promise<Map<string, HostTensor>>;
  /** Restores momentum buffers. @throws UserError when one is missing or has another shape. */
  writeOptimizerState(state: Map<string, HostTensor>): void;
  /** Frees everything the engine holds on its device. */
  dispose(): void;
}

/** What a config asks of an engine: the network (`model.*`, mixup placement and backward), `train.seed|momentum|wd`. */
export function engineOptions(cfg: Config): EngineOptions {
  return {
    arch: cfg.model.arch,
    depth: cfg.model.depth,
    width: cfg.model.width,
    numClasses: cfg.model.numClasses,
    mixAt: mixupPlacement(cfg),
    mixBackward: cfg.mixup.backward,
    seed: cfg.train.seed,
    init: cfg.model.init,
    momentum: cfg.train.momentum,
    wd: cfg.train.wd,
    sgd: cfg.train.sgd,
  };
}
