/** `mixup train`: a new run from a config file, or a resumed one. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { BackendName, Config } from '../config/schema.js';
import { DEFAULT_DATA_DIR } from '../data/paths.js';
import { absoluteDataPaths, loadConfig, parseOverrideValue, parseSetArgs } from '../config/load.js';
import { configKeyDocs } from '../config/keys.js';
import { UserError, isUserError, firstLine } from '../errors.js';
import { RESUME_KEYS, finishedRunLine, prepareResume } from '../train/resume.js';
import { assertCanStartNewRun, assertNotTraining } from '../rundir/rundir.js';
import type { TrainIo } from '../train/run.js';
import { checkDataPaths } from '../data/index.js';
import { RunLog } from '../rundir/log.js';
import { aboveBars } from '../train/progress.js';
import { globals, pkg, setUpBackend, type Io } from './common.js';
import { EXIT_RUN_DIFFERS, checkRun } from './check-run.js';

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
  const lines = ['Config keys (JSON or YAML files, e.g. under configs/; "extends": "base.json" inherits from another file):', ''];
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
  refuseContradictions(overrides, origins);
  return { overrides, origins };
}

/**
 * Refuses two flags that set one key (or a key and an object holding it) to different values
 * (`--epochs 3 --set train.epochs=5`, `--backend cpu --set backend=wasm`): which should win is not
 * something to guess, in either order. The same value twice is no contradiction.
 * @throws UserError naming both flags.
 */
function refuseContradictions(overrides: [string, unknown][], origins: string[]): void {
  for (let i = 0; i < overrides.length; i++) {
    for (let j = i + 1; j < overrides.length; j++) {
      const [a, va] = overrides[i]!;
      const [b, vb] = overrides[j]!;
      const overlap = a === b || b.startsWith(`${a}.`) || a.startsWith(`${b}.`);
      if (overlap && (a !== b || JSON.stringify(va) !== JSON.stringify(vb))) {
        throw new UserError(`${origins[i]} and ${origins[j]} both set ${a.length <= b.length ? a : b}: give it once`);
      }
    }
  }
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
    if (extra.length > 0) {
      throw new UserError(`train --resume: only --epochs, --force, --print-config and --set ${RESUME_KEYS.join(', ')} go with --resume (the run keeps its config.json); got --${extra[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    }
    const epochs = opts['epochs'] === undefined ? undefined : Number(opts['epochs']);
    if (epochs !== undefined && !(Number.isInteger(epochs) && epochs > 0)) throw new UserError(`--epochs: expected a positive integer, got ${String(opts['epochs'])}`);
    const cfg = prepareResume(opts['resume'], epochs, Boolean(opts['force']), parseSetArgs((opts['set'] as string[] | undefined) ?? []));
    if (opts['printConfig']) return printConfig(cfg, sink);
    // the run directory and the data are checked before the backend starts: a refusal comes at once
    assertNotTraining(cfg.out!);
    const finished = finishedRunLine(cfg);
    if (finished !== null) return sink.info(finished);
    checkDataPaths(cfg.data);
    await setUpBackend(g.backend ?? cfg.backend, cfg, g.gpu, lines);
    const { runTraining } = await import('../train/run.js'); // the run loop and TensorFlow.js load only now
    process.exitCode = await runTraining({ cfg, source: null, resume: true, overwrite: false, handleSignals: true, log }, sink);
    return;
  }
  if (typeof opts['config'] !== 'string') throw new UserError('train: --config <file> is required (e.g. --config configs/mixup.json), or --resume <run dir>');
  if (opts['checkRun'] && opts['printConfig']) throw new UserError('train: --check-run and --print-config do not go together (one compares the run in --out with this command, the other prints the config); give one');
  const { overrides, origins } = trainOverrides(opts, g.backend);
  const loaded = loadConfig(opts['config'], { overrides, overrideOrigins: origins });
  const { data } = loaded;
  if (data.dir === null && data.train === null && data.val === null && existsSync(DEFAULT_DATA_DIR)) {
    loaded.data = { ...data, dir: DEFAULT_DATA_DIR };
    if (!opts['checkRun']) sink.info(`data: no data.dir given (--data-dir); using ${DEFAULT_DATA_DIR}, where \`mixup data download\` puts it`);
  }
  const cfg = absoluteDataPaths(loaded);
  if (opts['checkRun']) {
    const differs = checkRun(cfg);
    if (differs !== null) {
      sink.line(differs);
      process.exitCode = EXIT_RUN_DIFFERS;
    }
    return;
  }
  if (opts['printConfig']) return printConfig(cfg, sink);
  // the run directory and the data are checked before the backend starts: a refusal comes at once
  assertCanStartNewRun(cfg.out!, Boolean(opts['overwrite']));
  if (cfg.data.dir === null && cfg.data.train === null && cfg.data.val === null) {
    // say where the default was looked for: data/cifar10 is relative to the directory the command ran in
    throw new UserError(`no data: no --data-dir (data.dir) given, and no ${DEFAULT_DATA_DIR} in ${process.cwd()} (where mixup train looks then); give --data-dir DIR, or get the data with: mixup data download cifar10 --dir ${DEFAULT_DATA_DIR}`);
  }
  checkDataPaths(cfg.data);
  await setUpBackend(cfg.backend, cfg, g.gpu, lines);
  const source = { configFile: resolve(opts['config']), overrides, version: pkg.version, created: new Date().toISOString(), cwd: process.cwd() };
  const { runTraining } = await import('../train/run.js');
  process.exitCode = await runTraining({ cfg, source, resume: false, overwrite: Boolean(opts['overwrite']), handleSignals: true, log }, sink);
}

/** Adds `mixup train` to the program. */
export function addTrainCommand(program: Command, io: Io): void {
  // ------------------------------------------------------------------ train
  const train = program
    .command('train')
    .description('train a ResNet on CIFAR-10 with ERM, input mixup or feature-map mixup')
    .option('-c, --config <file>', 'experiment config (JSON, or YAML as .yaml/.yml), e.g. configs/mixup.json')
    .option('--help-config', 'list every config key with its default and description');
  for (const o of TRAIN_OVERRIDES) train.option(o.flag, `${o.description} (config ${o.key})`);
  train
    .option('--set <key=value>', 'override any config key, e.g. --set mixup.at=head (repeatable)', collect)
    .option('--resume <dir>', 'continue the run in <dir> from its newest checkpoint (with --epochs N: extend it)')
    .option('--force', 'with --resume: resume even though the config file changed since the run started')
    .option('--overwrite', 'replace an existing run in the --out directory (or write into a folder holding other files; they are kept)')
    .option('--print-config', 'print the resolved config (file, flags and --set applied) as JSON and exit, training nothing')
    .option('--check-run', 'train nothing: exit 0 when --out holds no run or one with this config (the backend aside), else print which keys differ and exit 4')
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
        'Flags and --set override the config file; two flags that set one key to different values',
        '(--epochs 3 --set train.epochs=5, --backend cpu --set backend=wasm) are refused.',
        'Writes <out>/config.json, curves.csv (one row per epoch), status.json and checkpoints/epoch-NNNN/.',
        'Exit codes: 0 finished, 1 internal error (a bug; please report it), 2 bad input (a batch too large for the backend too),',
        '3 loss became NaN, 130/143 stopped by Ctrl-C/SIGTERM (resumable);',
        'with --check-run: 0 same config (or no run in --out), 4 the run there was trained with another config (one line names the keys).',
      ].join('\n'),
    )
    // a stray argument gets a line of ours, not commander's "too many arguments" (below)
    .allowExcessArguments(true)
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const stray = cmd.args[0];
      if (stray !== undefined) {
        throw new UserError(/\.(json|ya?ml)$/i.test(stray) ? `train: the config file goes after --config: mixup train --config ${stray}` : `train: unexpected argument ${stray} (train takes only options; see mixup train --help)`);
      }
      if (opts['helpConfig']) {
        io.out(formatConfigHelp());
        return;
      }
      // Every line also goes to <out>/train.log (opened by runTraining once the run directory is ready).
      const log = new RunLog();
      // A line printed while a progress bar is drawn clears the bar's row first (progress.ts).
      const out = aboveBars((l: string) => (io.out(l), log.write(l)));
      const err = aboveBars((l: string) => (io.err(l), log.write(l)));
      const sink = { line: out, info: err, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr };
      try {
        await trainAction(opts, globals(cmd), sink, log);
      } catch (e) {
        for (const line of (isUserError(e) ? e.message : firstLine(e)).split('\n')) log.write(`mixup: error: ${line}`);
        throw e;
      } finally {
        log.close();
      }
    });

}
