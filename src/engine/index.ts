/**
 * Builds the executor of a run: today the tfjs executor on tfjs's current backend (selected by
 * engine/tfjs/backend.ts before any engine is made). A second executor is chosen here, and nowhere
 * else, by whatever config key or backend name selects it.
 */
import type { Config } from '../config/schema.js';
import { engineOptions, type Engine } from './engine.js';
import { TfjsEngine } from './tfjs/engine.js';
import { loadCheckpoint, type CheckpointState } from '../rundir/checkpoint.js';

export { engineOptions } from './engine.js';

/**
 * A freshly initialised network and optimiser for a config (weights seeded from train.seed).
 * @throws UserError for an invalid depth.
 */
export function createEngine(cfg: Config): Engine {
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
