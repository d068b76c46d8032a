/**
 * `mixup` command line: wires commander to the modules that do the work, one module per command
 * under src/cli/. Nothing here computes anything.
 */
import { Command, CommanderError, Option } from 'commander';
import { BACKEND_NAMES } from './config/schema.js';
import { releaseAll } from './engine/release.js';
import { isUserError, firstLine } from './errors.js';
import { pkg, processIo, type Io } from './cli/common.js';
import { addTrainCommand } from './cli/train.js';
import { addTestCommand } from './cli/test.js';
import { addDataCommands } from './cli/data.js';
import { addBackendsCommand, addReportCommand } from './cli/report.js';
import { addExportCommand } from './cli/export.js';

export type { Io } from './cli/common.js';

/**
 * Builds the commander program.
 * @param io where output goes (tests capture it).
 */
export function buildProgram(io: Io = processIo): Command {
  const program = new Command();
  program
    .name('mixup')
    .description(
      'Reproduce the CIFAR-10 experiments of "mixup: Beyond Empirical Risk Minimization" (Zhang et al., 2017)\nas the MXNet reference ran them, on TensorFlow.js.',
    )
    .version(pkg.version, '-V, --version', 'print the version')
    .addOption(new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKEND_NAMES))
    .option('--gpu <n>', 'which GPU (0-based): the Nth hardware adapter for webgpu, CUDA_VISIBLE_DEVICES=n for tensorflow-gpu (config gpu, env MIXUP_GPU)')
    .option('--verbose', 'print stack traces with errors')
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
      outputError: () => {
        /* reported by main() as one line */
      },
    })
    .addHelpText('after', `\nExit codes: 0 success, 2 bad input or an unavailable backend, ${EXIT_INTERNAL} internal error (a bug in mixup or a backend; please report it); train adds its own (mixup train --help).`)
    .exitOverride();

  addTrainCommand(program, io);
  addTestCommand(program, io);
  addDataCommands(program, io);
  addReportCommand(program, io);
  addExportCommand(program, io);
  addBackendsCommand(program, io);
  return program;
}

const FS_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EDQUOT: 'disk quota exceeded',
};

/**
 * One line for a file-system error a user can act on (a path that does not exist, a missing
 * permission, a full disk: Node's system errors carrying `code`, `syscall` and `path`), or null.
 */
export function fileSystemErrorLine(e: unknown): string | null {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof err.code !== 'string' || typeof err.path !== 'string') return null;
  const what = FS_ERRORS[err.code];
  if (what === undefined) return null;
  const op = err.syscall === 'mkdir' ? 'create directory' : err.syscall ?? 'use';
  return `cannot ${op} ${err.path}: ${what} (${err.code})`;
}

/** Exit code of an internal error: a bug in mixup or a failure inside a backend, not bad input (`mixup --help` lists it). */
export const EXIT_INTERNAL = 1;

/**
 * What the CLI prints for an error that is not a {@link UserError} nor a file-system error: a line
 * that says it is an internal error, with the error's first line, then the stack (`verbose`) or a
 * line saying what the exit code means. A WebAssembly trap or abort (emscripten's `Aborted()`,
 * `memory access out of bounds`) also says that the wasm backend failed and what usually causes it.
 */
export function internalErrorLines(e: unknown, verbose: boolean): string[] {
  const lines = [`mixup: internal error: ${firstLine(e)}`];
  // WebAssembly's types are not in this project's lib (ES2022, no DOM); the class is Node's global.
  const wasmTrap = (globalThis as unknown as { WebAssembly: { RuntimeError: new () => Error } }).WebAssembly.RuntimeError;
  if (e instanceof wasmTrap) {
    lines.push('(the wasm backend failed; usually its heap, at most 4 GiB, ran out: try a smaller train.batchSize or train.evalBatchSize, or a GPU backend)');
  }
  lines.push(
    verbose
      ? String((e as Error).stack ?? e)
      : `(exit ${EXIT_INTERNAL}: a bug in mixup or a backend, not a problem with your input; run with --verbose for the stack trace and please report it)`,
  );
  return lines;
}

/**
 * Runs the CLI on `argv` (without the node and script entries).
 * @returns the process exit code: 0 success, 2 user error, {@link EXIT_INTERNAL} (1) internal error (or a UserError's own code).
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const verbose = argv.includes('--verbose');
  const program = buildProgram(io);
  try {
    process.exitCode = undefined;
    await program.parseAsync(argv, { from: 'user' });
    // Actions that end with a code other than 0 (train: 130 after Ctrl-C, ...) set process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return 0;
      // help shown because a command group was given no command (`mixup data`): a usage error
      if (e.code === 'commander.help') return e.exitCode === 0 ? 0 : 2;
      const msg = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      io.err(`mixup: error: ${msg}`);
      return 2;
    }
    if (isUserError(e)) {
      for (const line of e.message.split('\n')) io.err(`mixup: error: ${line}`);
      if (verbose && e.stack) io.err(e.stack);
      return e.exitCode;
    }
    const fsLine = fileSystemErrorLine(e);
    if (fsLine !== null) {
      io.err(`mixup: error: ${fsLine}`);
      if (verbose) io.err(String((e as Error).stack ?? e));
      return 2;
    }
    for (const l of internalErrorLines(e, verbose)) io.err(l);
    return EXIT_INTERNAL;
  } finally {
    // Dawn (webgpu) keeps the event loop alive; every command ends by itself (the backend module, when
    // a command loaded it, registered its release).
    releaseAll();
  }
}
