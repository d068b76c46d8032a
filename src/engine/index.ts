/**
 * Builds the executor of a run, and nowhere else is one chosen:
 * - on tfjs's `webgpu` backend (engine/tfjs/backend.ts selected it, so Dawn is set up on the chosen
 *   adapter), the static WebGPU engine (engine/webgpu/static.ts) on Dawn's engine device
 *   (engine/dawn.ts `engineDevice`); for a depth it cannot build (bottleneck units, depth ≥ 164) the
 *   tfjs executor on tfjs-webgpu instead, with one note line on stderr;
 * - otherwise the tfjs executor on tfjs's current backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { Config } from '../config/schema.js';
import { engineOptions, type Engine } from './engine.js';
import { engineDevice, webgpuAdapter } from './dawn.js';
import { TfjsEngine } from './tfjs/engine.js';
import { StaticEngine, staticShape } from './webgpu/static.js';
import { networkSpecOf } from '../model/spec.js';
import { loadCheckpoint, type CheckpointState } from '../rundir/checkpoint.js';

export { engineOptions } from './engine.js';

/** Depths whose fallback note was printed (once per process each). */
const noted = new Set<number>();

/**
 * A freshly initialised network and optimiser for a config (weights seeded from train.seed).
 * @throws UserError for an invalid depth.
 */
export function createEngine(cfg: Config): Engine {
  const device = tf.getBackend() === 'webgpu' ? engineDevice() : null;
  if (device) {
    if (!networkSpecOf(cfg.model).layout.bottleneck) {
      return new StaticEngine(device, webgpuAdapter()?.device ?? 'webgpu', engineOptions(cfg), staticShape(cfg));
    }
    if (!noted.has(cfg.model.depth)) {
      noted.add(cfg.model.depth);
      process.stderr.write(`note: the static WebGPU engine has no bottleneck units, so depth ${cfg.model.depth} runs on tfjs-webgpu (slower)\n`);
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
