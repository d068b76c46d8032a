/**
 * What the `mixup` commands share: the printing seam, the package's version, the global options
 * and backend set-up. One module per command lives beside this file; src/cli.ts wires them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Help, type Command } from 'commander';
import type { BackendName } from '../config/schema.js';
import { packageRoot } from '../root.js';
import type { SelectedBackend } from '../engine/tfjs/backend.js';

/** The project's package.json (src/root.ts finds it from src/ under tsx and from dist/src/). */
export const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { name: string; version: string };

/** Printed lines go through here so tests can capture them. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const processIo: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** The global options (`--backend`, `--gpu`, `--verbose`) as a command's action sees them. */
export function globals(cmd: Command): { backend?: BackendName; gpu?: string; verbose?: boolean } {
  return cmd.optsWithGlobals() as { backend?: BackendName; gpu?: string; verbose?: boolean };
}

/**
 * Help settings for a command that runs no model (`data ...`, `report`, `export`): the global options it
 * lists leave out `--backend` and `--gpu`, which it does not use (its subcommands inherit this).
 */
export function helpWithoutModelOptions(program: Command): Partial<Help> {
  return {
    ...program.configureHelp(),
    visibleGlobalOptions(cmd: Command) {
      return Help.prototype.visibleGlobalOptions.call(this, cmd).filter((o) => o.long !== '--backend' && o.long !== '--gpu');
    },
  };
}

/**
 * Selects the backend of a command and says on stderr which backend and device run, and why
 * `auto` chose it. GPU: `--gpu`, else `MIXUP_GPU`, else the config's `gpu`.
 */
export async function setUpBackend(requested: BackendName, cfg: { wasmThreads: number; gpu: number | null }, gpuFlag: string | undefined, io: Io): Promise<SelectedBackend> {
  // TensorFlow.js and Dawn load here, not when the CLI starts: a command that stops on bad input first
  // (a config key, a missing data directory) or needs no backend answers without them.
  const { selectBackend } = await import('../engine/tfjs/backend.js');
  const { parseGpuIndex } = await import('../engine/tfjs/backend-options.js');
  const envGpu = (process.env['MIXUP_GPU'] ?? '') !== '';
  const gpu = (gpuFlag === undefined ? undefined : parseGpuIndex(gpuFlag, '--gpu')) ?? (envGpu ? undefined : cfg.gpu ?? undefined);
  const backend = await selectBackend(requested, undefined, { wasmThreads: cfg.wasmThreads, gpu });
  io.err(`backend: ${backend.description}`);
  if (backend.why) io.err(`backend: ${backend.why}`);
  return backend;
}

