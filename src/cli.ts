/**
 * `mixup` command line: wires commander to the modules that do the work. Nothing here computes
 * anything; each action parses its options and calls into data / train / report.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { BACKEND_NAMES, type BackendName, type Config } from './config/schema.js';
import { DEFAULT_DATA_DIR } from './data/paths.js';
import { absoluteDataPaths, configKeyDocs, loadConfig, parseOverrideValue, parseSetArgs } from './config/load.js';
import { parseGpuIndex, probeAllBackends, releaseBackends, selectBackend, type SelectedBackend } from './backend.js';
import { UserError, isUserError, firstLine } from './errors.js';
import { checkOutputFile } from './fsutil.js';
import { resolve } from 'node:path';
import { prepareResume, runTraining, type TrainIo } from './train/run.js';
import { RunLog } from './train/log.js';
import { formatScore, scoreCheckpoint, findRunConfig } from './train/score.js';
import { DEFAULT_IFGSM_STEPS, parseAttackFlags } from './train/attack.js';

/** Options of `mixup test`, as commander gives them. */
interface TestFlags {
  checkpoint?: string;
  epoch?: string;
  data?: string;
  full?: boolean;
  json?: boolean;
  reliability?: string;
  force?: boolean;
  attack?: string;
  eps?: string;
  steps?: string;
}

/** The project's package.json: two levels up from dist/src/cli.js, one from src/cli.ts (run through tsx). */
const pkg = (() => {
  for (const rel of ['../../package.json', '../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) {
      const json = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version: string };
      if (json.name === 'mixup') return json;
    }
  }
  throw new Error('package.json of mixup not found next to the CLI');
})();

/** Printed lines go through here so tests can capture them. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const processIo: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** Most images `data preview --count` draws (1,024 in the default 8 columns make an 822 × 15,132-pixel PNG). */
export const MAX_PREVIEW_COUNT = 1024;

/** Flags of `mixup train` that override a config key. */
const TRAIN_OVERRIDES: { flag: string; key: string; description: string }[] = [
  { flag: '--epochs <n>', key: 'train.epochs', description: 'number of epochs' },
  { flag: '--lr <x>', key: 'train.lr', description: 'initial learning rate' },
  { flag: '--alpha <x>', key: 'mixup.alpha', description: 'α of Beta(α, α)' },
  { flag: '--mix-rate <x>', key: 'mixup.mixRate', description: 'share of each batch that is mixed' },
  { flag: '--batch-size <n>', key: 'train.batchSize', description: 'samples per SGD step' },
  { flag: '--data-dir <dir>', key: 'data.dir', description: `directory with the CIFAR-10 files (default: ${DEFAULT_DATA_DIR}, where \`mixup data download\` puts them)` },
  { flag: '--out <dir>', key: 'out', description: 'run directory (default: runs/<config file name>, e.g. runs/mixup)' },
  { flag: '--seed <n>', key: 'train.seed', description: 'random seed' },
];

function attrName(flag: string): string {
  return flag
    .replace(/^--/, '')
    .replace(/ .*$/, '')
    .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--help-config`: every config key with its type, default and description. */
export function formatConfigHelp(): string {
  const docs = configKeyDocs();
  const width = Math.max(...docs.map((d) => d.key.length));
  const lines = ['Config keys (JSON files under configs/; "extends": "base.json" inherits from another file):', ''];
  for (const d of docs) {
    lines.push(`  ${d.key.padEnd(width)}  ${d.type}, default ${JSON.stringify(d.default)}`);
    lines.push(`  ${''.padEnd(width)}  ${d.description}`);
  }
  lines.push('', 'Override any key with --set key.path=value (repeatable), e.g. --set train.epochs=10 --set train.gradScale=1/64');
  return lines.join('\n');
}

/**
 * Builds the overrides list from `mixup train` options: dedicated flags first, then `--set`s; with
 * each, how the user wrote it (`--epochs 0`, `--set train.lr=-1`) for messages.
 */
function trainOverrides(opts: Record<string, unknown>, globalBackend: BackendName | undefined): { overrides: [string, unknown][]; origins: string[] } {
  const overrides: [string, unknown][] = [];
  const origins: string[] = [];
  if (globalBackend !== undefined) {
    overrides.push(['backend', globalBackend]);
    origins.push(`--backend ${globalBackend}`);
  }
  for (const o of TRAIN_OVERRIDES) {
    const v = opts[attrName(o.flag)];
    if (v !== undefined) {
      overrides.push([o.key, parseOverrideValue(String(v))]);
      origins.push(`${o.flag.replace(/ .*$/, '')} ${String(v)}`);
    }
  }
  const sets = (opts['set'] as string[] | undefined) ?? [];
  overrides.push(...parseSetArgs(sets));
  origins.push(...sets.map((x) => `--set ${x}`));
  return { overrides, origins };
}

/** `train --print-config`: the config a run would get (its config.json), on stdout. */
function printConfig(cfg: Config, sink: TrainIo): void {
  sink.line(JSON.stringify(cfg, null, 2));
}

/** `mixup train` after --help-config: a new run (--config) or a resumed one (--resume). */
async function trainAction(opts: Record<string, unknown>, g: { backend?: BackendName; gpu?: string }, sink: TrainIo, log: RunLog): Promise<void> {
  const lines: Io = { out: sink.line, err: sink.info };
  if (typeof opts['resume'] === 'string') {
    const extra = Object.keys(opts).filter((k) => !['resume', 'epochs', 'force', 'set', 'printConfig'].includes(k));
    if (extra.length > 0 || opts['set'] !== undefined) {
      throw new UserError(`train --resume: only --epochs, --force and --print-config go with --resume (the run keeps its config.json); got --${extra[0] ?? 'set'}`);
    }
    const epochs = opts['epochs'] === undefined ? undefined : Number(opts['epochs']);
    if (epochs !== undefined && !(Number.isInteger(epochs) && epochs > 0)) throw new UserError(`--epochs: expected a positive integer, got ${String(opts['epochs'])}`);
    const cfg = prepareResume(opts['resume'], epochs, Boolean(opts['force']));
    if (opts['printConfig']) return printConfig(cfg, sink);
    await setUpBackend(g.backend ?? cfg.backend, cfg, g.gpu, lines);
    process.exitCode = await runTraining({ cfg, source: null, resume: true, overwrite: false, handleSignals: true, log }, sink);
    return;
  }
  if (typeof opts['config'] !== 'string') throw new UserError('train: --config <file> is required (e.g. --config configs/mixup.json), or --resume <run dir>');
  const { overrides, origins } = trainOverrides(opts, g.backend);
  const loaded = loadConfig(opts['config'], { overrides, overrideOrigins: origins });
  const { data } = loaded;
  if (data.dir === null && data.train === null && data.val === null && existsSync(DEFAULT_DATA_DIR)) {
    loaded.data = { ...data, dir: DEFAULT_DATA_DIR };
    sink.info(`data: no data.dir given (--data-dir); using ${DEFAULT_DATA_DIR}, where \`mixup data download\` puts it`);
  }
  const cfg = absoluteDataPaths(loaded);
  if (opts['printConfig']) return printConfig(cfg, sink);
  await setUpBackend(cfg.backend, cfg, g.gpu, lines);
  const source = { configFile: resolve(opts['config']), overrides, version: pkg.version, created: new Date().toISOString(), cwd: process.cwd() };
  process.exitCode = await runTraining({ cfg, source, resume: false, overwrite: Boolean(opts['overwrite']), handleSignals: true, log }, sink);
}

/**
 * Selects the backend of a command and says on stderr which backend and device run, and why
 * `auto` chose it. GPU: `--gpu`, else `MIXUP_GPU`, else the config's `gpu`.
 */
async function setUpBackend(requested: BackendName, cfg: { wasmThreads: number; gpu: number | null }, gpuFlag: string | undefined, io: Io): Promise<SelectedBackend> {
  const envGpu = (process.env['MIXUP_GPU'] ?? '') !== '';
  const gpu = (gpuFlag === undefined ? undefined : parseGpuIndex(gpuFlag, '--gpu')) ?? (envGpu ? undefined : cfg.gpu ?? undefined);
  const backend = await selectBackend(requested, undefined, { wasmThreads: cfg.wasmThreads, gpu });
  io.err(`backend: ${backend.description}`);
  if (backend.why) io.err(`backend: ${backend.why}`);
  return backend;
}

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
    .exitOverride();

  const globals = (cmd: Command) => cmd.optsWithGlobals() as { backend?: BackendName; gpu?: string; verbose?: boolean };

  // ------------------------------------------------------------------ train
  const train = program
    .command('train')
    .description('train a ResNet on CIFAR-10 with ERM, input mixup or feature-map mixup')
    .option('-c, --config <file>', 'experiment config (JSON), e.g. configs/mixup.json')
    .option('--help-config', 'list every config key with its default and description');
  for (const o of TRAIN_OVERRIDES) train.option(o.flag, `${o.description} (config ${o.key})`);
  train
    .option('--set <key=value>', 'override any config key, e.g. --set mixup.at=head (repeatable)', collect)
    .option('--resume <dir>', 'continue the run in <dir> from its newest checkpoint (with --epochs N: extend it)')
    .option('--force', 'with --resume: resume even though the config file changed since the run started')
    .option('--overwrite', 'replace an existing run in the --out directory')
    .option('--print-config', 'print the resolved config (file, flags and --set applied) as JSON and exit, training nothing')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  mixup train --config configs/mixup.json --data-dir data/cifar10',
        '  mixup train --config configs/mixup.json --set model.depth=20 --print-config',
        '  mixup train --config configs/quick.json --epochs 2 --set data.limit=2000',
        '  mixup train --resume runs/mixup            # continue after a crash or Ctrl-C',
        '  mixup train --help-config',
        '',
        'Writes <out>/config.json, curves.csv (one row per epoch), status.json and checkpoints/epoch-NNNN/.',
        'Exit codes: 0 finished, 2 bad input, 3 loss became NaN, 130/143 stopped by Ctrl-C/SIGTERM (resumable).',
      ].join('\n'),
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      if (opts['helpConfig']) {
        io.out(formatConfigHelp());
        return;
      }
      // Every line also goes to <out>/train.log (opened by runTraining once the run directory is ready).
      const log = new RunLog();
      const out = (l: string) => (io.out(l), log.write(l));
      const err = (l: string) => (io.err(l), log.write(l));
      const sink = { line: out, info: err, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr };
      try {
        await trainAction(opts, globals(cmd), sink, log);
      } catch (e) {
        log.write(`mixup: error: ${isUserError(e) ? e.message : firstLine(e)}`);
        throw e;
      } finally {
        log.close();
      }
    });

  // ------------------------------------------------------------------ test
  program
    .command('test')
    .description('score a checkpoint on the validation set: top-1 accuracy, mean loss, calibration (ECE, Brier), per-class accuracy; optionally under attack')
    .argument('[run-dir]', 'run directory (newest checkpoint) or one checkpoint directory')
    .option('--checkpoint <dir>', 'the same as RUN_DIR')
    .option('--epoch <n>', 'checkpoint of epoch N of the run')
    .option('--data <file>', 'validation data (default: the data.val of the run config)')
    .option('--full', "evaluate every validation sample, ignoring the run's data.valLimit")
    .option('--json', 'print the result as JSON')
    .option('--reliability <file>', 'draw the reliability diagram (accuracy and samples per confidence bin, ECE) into FILE (.png or .svg)')
    .option('--force', 'with --reliability: replace an existing file')
    .option('--attack <kind>', 'also attack every image, white-box: fgsm or ifgsm; prints clean and attacked top-1')
    .option('--eps <levels>', 'attack budget ε in pixel levels (0-255) of the image before mean subtraction')
    .option('--steps <n>', `I-FGSM: steps of ε/n (default ${DEFAULT_IFGSM_STEPS})`)
    .addHelpText('after', '\nExamples:\n  mixup test runs/quick\n  mixup test runs/quick --epoch 3 --full\n  mixup test --checkpoint runs/quick/checkpoints/epoch-0010 --json')
    .action(async (runDir: string | undefined, opts: TestFlags, cmd: Command) => {
      if (runDir !== undefined && opts.checkpoint !== undefined && runDir !== opts.checkpoint) {
        throw new UserError(`test: give the run directory once, as RUN_DIR or as --checkpoint (got ${runDir} and --checkpoint ${opts.checkpoint})`);
      }
      const path = runDir ?? opts.checkpoint;
      if (path === undefined) throw new UserError('test: which run? give its directory, e.g. mixup test runs/quick (or --checkpoint DIR)');
      const epoch = opts.epoch === undefined ? undefined : Number(opts.epoch);
      if (epoch !== undefined && !(Number.isInteger(epoch) && epoch > 0)) throw new UserError(`--epoch: expected a positive integer, got ${opts.epoch}`);
      const attack = parseAttackFlags(opts);
      if (opts.force && opts.reliability === undefined) throw new UserError('--force goes with --reliability FILE');
      const reliability = opts.reliability === undefined ? null : await import('./report/reliability.js');
      reliability?.checkReliabilityFile(opts.reliability!, opts.force === true);
      const { cfg } = findRunConfig(path, epoch);
      await setUpBackend(globals(cmd).backend ?? cfg.backend, cfg, globals(cmd).gpu, io);
      if (attack) io.err(`attack: ${attack.kind === 'fgsm' ? 'FGSM' : `I-FGSM (${attack.steps} steps)`}, ε ${attack.eps}/255, after the clean evaluation`);
      const score = await scoreCheckpoint(path, { epoch, data: opts.data, full: opts.full, attack });
      if (opts.json) io.out(JSON.stringify(score, null, 2));
      else for (const l of formatScore(score)) io.out(l);
      if (reliability) {
        await reliability.writeReliability(opts.reliability!, score.calibration, opts.force === true, { subtitle: `checkpoint ${score.checkpoint} (epoch ${score.epoch})` });
        io.err(`reliability diagram written to ${opts.reliability}`);
      }
    });

  // ------------------------------------------------------------------ data
  const data = program.command('data').description('inspect, preview and download CIFAR-10 data');
  data
    .command('inspect')
    .description('format, record count, image size, label histogram and anything odd in a data file')
    .argument('<path>', '.rec, .bin, directory or cifar-10-binary.tar.gz')
    .option('--num-classes <n>', 'labels outside [0, n) are reported as odd', '10')
    .option('--label-index <i>', 'which label of multi-label records the histogram counts', '0')
    .addOption(new Option('--label-field <f>', 'CIFAR-100 binary: which label byte').choices(['fine', 'coarse']).default('fine'))
    .action(async (path: string, opts: { numClasses: string; labelIndex: string; labelField: 'fine' | 'coarse' }) => {
      const { inspectPath, formatInspect } = await import('./data/inspect.js');
      const numClasses = Number(opts.numClasses);
      const labelIndex = Number(opts.labelIndex);
      if (!Number.isInteger(numClasses) || numClasses < 1) throw new UserError(`--num-classes ${opts.numClasses}: expected a positive whole number`);
      if (!Number.isInteger(labelIndex) || labelIndex < 0) throw new UserError(`--label-index ${opts.labelIndex}: expected a whole number >= 0`);
      const reports = await inspectPath(path, { numClasses, labelIndex, labelField: opts.labelField });
      for (const r of reports) for (const l of formatInspect(r)) io.out(l);
      const bad = reports.filter((r) => r.oddCount > 0);
      if (bad.length > 0) {
        throw new UserError(`${bad[0]!.path}: ${bad[0]!.oddCount} problem(s), first: ${bad[0]!.odd[0]}`);
      }
    });

  data
    .command('preview')
    .description('a PNG contact sheet of the first samples with their class names (upright? right labels?)')
    .argument('<path>', '.rec, .bin, directory or cifar-10-binary.tar.gz')
    .requiredOption('--out <file>', 'PNG file to write, e.g. grid.png')
    .option('--augment', 'show the training augmentation (crop, HSL jitter, mirror) as the network sees it, before mean subtraction')
    .option('--count <n>', `number of samples (at most ${MAX_PREVIEW_COUNT})`, '64')
    .option('--columns <n>', 'images per row', '8')
    .addOption(new Option('--split <split>', 'split to take from a directory or archive').choices(['train', 'val']).default('train'))
    .option('-c, --config <file>', 'take data and augmentation settings from this experiment config')
    .option('--force', 'replace the --out file when it exists')
    .action(async (path: string, opts: { out: string; augment?: boolean; count: string; columns: string; split: 'train' | 'val'; config?: string; force?: boolean }) => {
      const { writePreview } = await import('./data/preview.js');
      const { configSchema } = await import('./config/schema.js');
      const count = Number(opts.count);
      const columns = Number(opts.columns);
      if (!Number.isInteger(count) || count < 1) throw new UserError(`--count ${opts.count}: expected a positive whole number`);
      if (count > MAX_PREVIEW_COUNT) throw new UserError(`--count ${opts.count}: at most ${MAX_PREVIEW_COUNT} images fit a contact sheet`);
      if (!Number.isInteger(columns) || columns < 1) throw new UserError(`--columns ${opts.columns}: expected a positive whole number`);
      checkOutputFile('--out', opts.out, ['.png'], opts.force === true);
      const cfg = opts.config ? loadConfig(opts.config) : configSchema.parse({});
      const r = await writePreview(cfg, path, opts.out, { count, columns, augment: opts.augment === true, split: opts.split });
      io.out(`wrote ${opts.out}: ${r.count} images (${r.cellSide}x${r.cellSide}${opts.augment ? ', augmented' : ''}), ${r.width}x${r.height} pixels`);
    });

  // ------------------------------------------------------------------ data download
  data
    .command('download')
    .description('fetch the published CIFAR-10 files, resuming a partial download; checks size and checksum')
    .argument('<dataset>', 'dataset to fetch: cifar10')
    .addOption(new Option('--format <fmt>', "rec: MXNet's cifar10_train.rec + cifar10_val.rec (the reference's); bin: cifar-10-binary.tar.gz").choices(['rec', 'bin']).default('rec'))
    .option('--dir <dir>', 'directory to put the files in', DEFAULT_DATA_DIR)
    .option('--base-url <url>', 'fetch from this directory URL instead of the published one (a mirror); also $MIXUP_DATA_BASE_URL')
    .option('--retries <n>', 'further tries, each resuming, after a transfer is cut off', '3')
    .action(async (dataset: string, opts: { format: 'rec' | 'bin'; dir: string; baseUrl?: string; retries: string }) => {
      if (dataset !== 'cifar10') throw new UserError(`data download: unknown dataset "${dataset}"; expected cifar10`);
      const { downloadCifar10, terminalProgress } = await import('./data/download.js');
      const retries = Number(opts.retries);
      if (!Number.isInteger(retries) || retries < 0) throw new UserError(`--retries ${opts.retries}: expected a whole number >= 0`);
      await downloadCifar10(opts.format, opts.dir, {
        baseUrl: opts.baseUrl,
        retries,
        progress: await terminalProgress(),
        log: (l) => io.err(l),
      });
      io.out(`CIFAR-10 (${opts.format}) is in ${opts.dir}; train with: mixup train --config configs/mixup.json --data-dir ${opts.dir}`);
    });

  // ------------------------------------------------------------------ report
  program
    .command('report')
    .description('turn run directories into the results table and accuracy/loss plots')
    .argument('<run-dir...>', 'run directories (each with config.json and curves.csv)')
    .addOption(new Option('--format <fmt>', 'table format').choices(['md', 'csv', 'json']).default('md'))
    .option('--compare-reference', "add the reference's published test accuracy (90/200/300 epochs) and the difference")
    .option('--plot <file>', 'draw validation accuracy, training loss (and validation ECE when logged) against epoch into FILE (.svg or .png)')
    .option('--force', 'replace the --plot file when it exists')
    .addHelpText(
      'after',
      '\nRuns that share a config apart from the seed make one row: mean ± sample std (n − 1);\na seed run twice counts once (the first given). Rows of one config file that differ in\noverrides name the keys that differ; the runs column names the directories.\nA directory without curves.csv is named and skipped; an unfinished run is shown as such.\nFinished label-noise runs (data.labelNoise > 0) also get a table by noise level and method:\nbest and last test accuracy and the memorised share of the corrupted labels (Markdown only).\n\nExamples:\n  mixup report runs/* --compare-reference\n  mixup report runs/* --format csv > table.csv\n  mixup report runs/mixup-200-s0 runs/erm-200-s0 --plot curves.png',
    )
    .action(async (dirs: string[], opts: { format: 'md' | 'csv' | 'json'; compareReference?: boolean; plot?: string; force?: boolean }) => {
      const { report } = await import('./report/report.js');
      await report(dirs, { format: opts.format, compareReference: opts.compareReference ?? false, plot: opts.plot, force: opts.force === true }, io);
    });

  // ------------------------------------------------------------------ backends
  program
    .command('backends')
    .description('which TensorFlow.js backends load on this machine, and why not')
    .action(async (_opts: unknown, cmd: Command) => {
      const rows = await probeAllBackends(undefined, { gpu: globals(cmd).gpu === undefined ? undefined : parseGpuIndex(globals(cmd).gpu!, '--gpu') });
      const w = Math.max(...rows.map((r) => r.name.length));
      io.out(`${'backend'.padEnd(w)}  loads  details`);
      for (const r of rows) {
        io.out(`${r.name.padEnd(w)}  ${(r.loads ? 'yes' : 'no').padEnd(5)}  ${r.loads ? r.detail : `${r.reason}; to get it, ${r.hint}`}`);
      }
    });

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

/**
 * Runs the CLI on `argv` (without the node and script entries).
 * @returns the process exit code: 0 success, 2 user error, 1 internal error (or a UserError's own code).
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
      if (e.code === 'commander.help') return 0;
      const msg = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      io.err(`mixup: error: ${msg}`);
      return 2;
    }
    if (isUserError(e)) {
      io.err(`mixup: error: ${e.message}`);
      if (verbose && e.stack) io.err(e.stack);
      return e.exitCode;
    }
    const fsLine = fileSystemErrorLine(e);
    if (fsLine !== null) {
      io.err(`mixup: error: ${fsLine}`);
      if (verbose) io.err(String((e as Error).stack ?? e));
      return 2;
    }
    io.err(`mixup: error: ${firstLine(e)}`);
    io.err(verbose ? String((e as Error).stack ?? e) : '(an internal error; run with --verbose for the stack trace)');
    return 1;
  } finally {
    // Dawn (webgpu) keeps the event loop alive; every command ends by itself.
    releaseBackends();
  }
}
