/**
 * What a StaticResNet (engine.ts) is built for: the network, the image and batch sizes, the
 * mixup placement, the loss and SGD settings, and which programs to compile, as static.ts fills them
 * in from a config.
 */
import type { MixupPlacement, ModelArch } from '../../config/schema.js';
import type { MixBackward } from '../../mixup/plan.js';
import type { InitScheme } from '../../model/init.js';
import type { SgdForm } from '../../model/spec.js';
import type { LossName } from '../engine.js';

/** What a StaticResNet is built for. */
export interface StaticResNetOptions {
  /** model.arch (default mxnet-preact), model.depth, model.width (null: the arch's own). */
  arch?: ModelArch;
  depth: number;
  modelWidth?: number | null;
  numClasses: number;
  /** Image height and width (28 for the reference's crops). */
  height: number;
  width: number;
  /** Training batch B, or 0 for an inference-only engine. */
  batch: number;
  /** Equal shards of the training batch, each with its own BatchNorm statistics (train.shards). */
  shards: number;
  mixAt: MixupPlacement | null;
  mixBackward: MixBackward;
  loss: LossName;
  /** train.gradScale: factor on the loss gradient. */
  gradScale: number;
  /** train.momentum, train.wd. */
  momentum: number;
  wd: number;
  /** train.sgd (default mxnet). */
  sgd?: SgdForm;
  /** Batch of engine.ts `StaticResNet.infer` (0: no inference program). */
  evalBatch: number;
  /** Build the input-gradient program (attacks) at evalBatch. */
  inputGradient?: boolean;
  /**
   * Compile the training program at the first trainStep (or the first look at it) instead of in the
   * constructor: an engine that only evaluates (`mixup test`) then never allocates it.
   */
  lazyTraining?: boolean;
  /** Steps that may be queued between two settles (default 64). */
  capacity?: number;
  /** Seed of the initialisation (model/init.ts), as createResNet. */
  seed?: number;
  /** model.init (default he-normal). */
  init?: InitScheme;
}
