/**
 * How much memory one training step (or one inference batch) of the network needs, estimated from
 * the network's description ({@link networkSpec}) alone: no tfjs, no backend.
 *
 * A training step (src/train/step.ts, `tf.variableGrads` over the forward and the loss) keeps every
 * activation of the forward alive until the backward has used it, then holds the gradients while
 * SGD updates the parameters and momentum buffers. An inference batch (evaluation, `mixup test`)
 * runs the forward inside one `tf.tidy`, which frees intermediates only at its end, so there too
 * every activation is alive at the peak, without gradients. So, in bytes,
 *
 * ```
 * train:     base + 5·4·P + 16·B·A
 * inference: base + 1·4·P +  5·B·A          base = 16 MiB
 * ```
 *
 * - `P` the trainable scalars ({@link parameterCount}); in training the parameters, their
 *   gradients, the momentum buffers and SGD's temporaries are each 4·P bytes.
 * - `A` the activation values per sample ({@link networkSize}): every feature map the forward
 *   produces, counted once per layer output (the input, BatchNorm, ReLU, convolution, projection
 *   shortcut, residual add). What the backend really holds per value (4 bytes for the value, more
 *   for BatchNorm's temporaries, the gradient maps while the backward runs, convolution scratch,
 *   allocator slack) is the per-value factor, 16 bytes in training and 5 in inference.
 * - `base` what a step needs whatever the batch (the backend's own buffers, kernels' scratch).
 *
 * The constants are measured, not derived: {@link WASM_MEMORY_COST} comes from the peak wasm heap
 * of training steps and inference batches at several depths and batch sizes (bench/memory.ts; the
 * measurements and the fit are in docs/memory.md).
 */
import type { ModelArch } from '../config/schema.js';
import { networkSpecOf, parameterCount, type NetworkSpec } from './spec.js';

/** Per-sample activation values and trainable scalars of a network at an input size. */
export interface NetworkSize {
  /** Trainable scalars P. */
  parameters: number;
  /** Activation values per sample A (see the module comment). */
  activations: number;
  /** Values per sample of the largest single feature map (one tensor: the largest buffer is 4·B times this bytes). */
  largestMap: number;
}

/** The constants of the estimate (see the module comment); bytes. */
export interface MemoryCost {
  /** Bytes a step needs whatever the batch and network. */
  base: number;
  /** Copies of the parameters alive during a training step (parameters, gradients, momentum, temporaries). */
  parameterCopies: number;
  /** Training: bytes per activation value per sample, i.e. 4 · k_act for float32. */
  trainBytesPerActivation: number;
  /**
   * Inference (evaluation, `mixup test`): bytes per activation value per sample. The forward runs
   * inside one `tf.tidy`, which frees its intermediates only at the end, so every activation is
   * alive at the peak here too, but there is no gradient and BatchNorm uses its moving statistics.
   */
  inferenceBytesPerActivation: number;
}

/** What the memory is for: a training step (also an attack, which back-propagates to the input) or an inference batch. */
export type MemoryUse = 'train' | 'inference';

/**
 * The wasm backend's constants, measured by bench/memory.ts on tfjs-backend-wasm 4.22 (1 thread,
 * 28×28 crops, configs/mixup.json; docs/memory.md has the table). The measured peak heap grows by
 * 14.8–16.6 bytes per activation value per sample in training (depth 8 to 50; slope between
 * batches) and 4.0–4.6 in inference; the constants are rounded up (16 and 5) so that the estimate
 * is at or above every measured heap, emscripten's growth slack included, at batch 16 and more.
 */
export const WASM_MEMORY_COST: MemoryCost = { base: 16 * 2 ** 20, parameterCopies: 5, trainBytesPerActivation: 16, inferenceBytesPerActivation: 5 };

/**
 * PreAct ResNet-18's training constant on wasm, measured by bench/memory.ts
 * (`--config configs/paper/mixup-preact18.json 50:32 50:128`; 32×32, width 64, α = 1, PyTorch SGD):
 * heap 1,207,500,800 bytes at batch 32 and 4,130,340,864 at batch 128, i.e. 30,446,251 bytes per
 * sample for A = 2,092,554 activation values, 14.55 bytes per value (tf.profile's tracked tensors:
 * 14.42), and 233 MB at batch 0 against the estimate's 240 MB. Rounded up to 15, the estimate at
 * batch 128 is 4,258 MB, 3 % above the measured heap and below the heap's maximum; with the
 * reference's 16 it was 4,526 MB (4.2 GiB), which refused a batch that runs.
 */
export const WASM_MEMORY_COST_PREACT18: MemoryCost = { ...WASM_MEMORY_COST, trainBytesPerActivation: 15 };

/**
 * The wasm constants for a `model.arch`: {@link WASM_MEMORY_COST_PREACT18} for `preact-resnet18`,
 * else {@link WASM_MEMORY_COST} (fitted on the reference's network; WRN-28-10 is not measured, so it
 * keeps the larger constant).
 */
export function wasmMemoryCost(arch: ModelArch | undefined): MemoryCost {
  return arch === 'preact-resnet18' ? WASM_MEMORY_COST_PREACT18 : WASM_MEMORY_COST;
}

/**
 * The sizes the estimate needs for a network at an input size.
 * @param spec the network ({@link networkSpec}).
 * @param height input height in pixels after cropping (`data.imageShape[1]`).
 * @param width input width in pixels after cropping (`data.imageShape[2]`).
 * Source of the geometry: symbols/resnet.py (3×3 convolutions pad 1, stride 2 halves with
 * ceil((n − 1)/2) + 1 = ceil(n/2) outputs; 1×1 with stride 2 likewise).
 */
export function networkSize(spec: NetworkSpec, height: number, width: number): NetworkSize {
  let h = height;
  let w = width;
  let activations = 3 * h * w * (spec.bnData ? 2 : 1); // the input and bn_data's output
  let largestMap = 3 * h * w;
  const map = (channels: number) => {
    const v = channels * h * w;
    largestMap = Math.max(largestMap, v);
    return v;
  };
  activations += map(spec.conv0.outC); // conv0
  if (spec.stemBn) activations += 2 * map(spec.conv0.outC); // the stem's BatchNorm and ReLU
  for (const stage of spec.stages) {
    for (const unit of stage) {
      // bn1 and its ReLU on the unit's input
      activations += 2 * map(unit.inC);
      for (let i = 0; i < unit.convs.length; i++) {
        const c = unit.convs[i]!;
        if (c.stride === 2) {
          h = Math.ceil(h / 2);
          w = Math.ceil(w / 2);
        }
        activations += map(c.outC); // the convolution
        if (i + 1 < unit.convs.length) activations += 2 * map(c.outC); // the next BatchNorm and its ReLU
      }
      if (unit.sc) activations += map(unit.sc.outC); // projection shortcut
      activations += map(unit.outC); // residual add
    }
  }
  if (spec.bn1) activations += 2 * map(spec.bn1.channels); // bn1 and its ReLU
  activations += spec.fcIn + spec.numClasses; // pooled features and logits
  return { parameters: parameterCount(spec), activations, largestMap };
}

/**
 * Estimated peak bytes of one training step or one inference batch:
 * `base + copies·4·P + bytesPerActivation·B·A` (copies 5 in training, 1 in inference).
 * @param size from {@link networkSize}.
 * @param batch samples per step (`train.batchSize`, all shards together) or per evaluation batch (`train.evalBatchSize`).
 * @param cost the backend's constants (default {@link WASM_MEMORY_COST}).
 */
export function stepBytes(size: NetworkSize, batch: number, use: MemoryUse, cost: MemoryCost = WASM_MEMORY_COST): number {
  return fixedBytes(size, use, cost) + batch * perSampleBytes(size, use, cost);
}

function fixedBytes(size: NetworkSize, use: MemoryUse, cost: MemoryCost): number {
  return cost.base + (use === 'train' ? cost.parameterCopies : 1) * 4 * size.parameters;
}

function perSampleBytes(size: NetworkSize, use: MemoryUse, cost: MemoryCost): number {
  return (use === 'train' ? cost.trainBytesPerActivation : cost.inferenceBytesPerActivation) * size.activations;
}

/**
 * The largest batch whose {@link stepBytes} is at most `limit` bytes, rounded down to a multiple
 * of `multipleOf` (`train.shards` for training); 0 when none fits.
 */
export function largestBatch(size: NetworkSize, limit: number, use: MemoryUse, multipleOf = 1, cost: MemoryCost = WASM_MEMORY_COST): number {
  const n = Math.floor((limit - fixedBytes(size, use, cost)) / perSampleBytes(size, use, cost));
  return Math.max(0, n - (n % multipleOf));
}

/** {@link networkSize} of the network a config's `model` describes (convenience for callers holding a config). */
export function networkSizeOf(model: { arch?: ModelArch; depth: number; width?: number | null; numClasses: number }, height: number, width: number): NetworkSize {
  return networkSize(networkSpecOf(model), height, width);
}
