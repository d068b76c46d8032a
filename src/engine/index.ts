/**
 * Builds the executor of a run, and nowhere else is one chosen:
 * - on tfjs's `webgpu` backend (engine/tfjs/backend.ts selected it, so Dawn is set up on the chosen
 *   adapter), the static WebGPU engine (engine/webgpu/static.ts) on Dawn's engine device
 *   (engine/dawn.ts `engineDevice`), for every network with basic units at any width (the paper's
 *   PreAct ResNet-18 and WRN-28-10 included); for a network it cannot build (bottleneck units, depth
 *   ≥ 164; more than 1,024 BatchNorm channels × train.shards; engine/webgpu/fit.ts) the tfjs executor
 *   on tfjs-webgpu instead, with one note line on stderr. A batch whose buffers pass
 *   the device's limits is refused before anything is built (UserError, one line naming the
 *   largest batch that fits);
 * - otherwise the tfjs executor on tfjs's current backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/schema.js';
import { engineOptions, type Engine } from './engine.js';
import { engineDevice, webgpuAdapter } from './dawn.js';
import { TfjsEngine } from './tfjs/engine.js';
import { StaticEngine, staticShape } from './webgpu/static.js';
import { networkSpecOf } from '../model/spec.js';
import { UserError } from '../errors.js';
import { staticBufferRefusal, staticEngineUnsupported } from './webgpu/fit.js';
import { loadCheckpoint, type CheckpointState } from '../rundir/checkpoint.js';

export { engineOptions } from './engine.js';

/** Networks whose fallback note was printed (once per process each). */
const noted = new Set<string>();

/**
 * A freshly initialised network and optimiser for a config (weights seeded from train.seed).
 * @throws UserError for an invalid depth, or a batch whose buffers pass the WebGPU device's limits.
 */
export function createEngine(cfg: Config): Engine {
  const device = tf.getBackend() === 'webgpu' ? engineDevice() : null;
  if (device) {
    const spec = networkSpecOf(cfg.model);
    const why = staticEngineUnsupported(spec, cfg.train.shards);
    if (why === null) {
      const shape = staticShape(cfg);
      const refusal = staticBufferRefusal(spec, shape.height, shape.width, [
        { key: 'train.batchSize', batch: shape.batch, flag: (n) => `--batch-size ${n}`, multipleOf: shape.shards },
        { key: 'train.evalBatchSize', batch: shape.evalBatch, flag: (n) => `--set train.evalBatchSize=${n}` },
      ], device.limits);
      if (refusal !== null) throw new UserError(refusal);
      return new StaticEngine(device, webgpuAdapter()?.device ?? 'webgpu', engineOptions(cfg), shape);
    }
    if (!noted.has(spec.label)) {
      noted.add(spec.label);
      process.stderr.write(`note: the static WebGPU engine ${why}, so ${spec.label} runs on tfjs-webgpu (slower)\n`);
    }
  }
  return new TfjsEngine(engineOptions(cfg));
}

/**
 * The engine of a checkpoint: its config's network with the saved parameters and moving statistics.
 * @param dir a checkpoint directory (rundir/checkpoint.ts).
 * @returns the engine (the caller disposes it), the checkpoint's config and state.
 * @throws UserError when files are missing or do not fit the config.
 */
export async function loadCheckpointEngine(dir: string): Promise<{ engine: Engine; cfg: Config; state: CheckpointState }> {
  const { cfg, state, weights } = await loadCheckpoint(dir);
  const engine = createEngine(cfg);
  try {
    engine.writeWeights(weights, dir);
  } catch (e) {
    engine.dispose();
    throw e;
  }
  return { engine, cfg, state };
}
