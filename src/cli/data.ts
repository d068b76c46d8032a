/** `mixup data inspect | preview | download`. */
import { Option, type Command } from 'commander';
import { DEFAULT_DATA_DIR } from '../data/paths.js';
import { loadConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { checkOutputFile } from '../fsutil.js';
import { hideBackendOptions, type Io } from './common.js';

/** Most images `data preview --count` draws (1,024 in the default 8 columns make an 822 × 15,132-pixel PNG). */
export const MAX_PREVIEW_COUNT = 1024;

/** Adds `mixup data` and its subcommands to the program. */
export function addDataCommands(program: Command, io: Io): void {
  // ------------------------------------------------------------------ data
  const data = program.command('data').description('inspect, preview and download CIFAR-10 data');
  // No data command runs a model: their help leaves out --backend and --gpu (subcommands inherit this).
  hideBackendOptions(data, program);
  data
    .command('inspect')
    .description('format, record count, image size, label histogram and anything odd in a data file')
    .argument('<path>', '.rec, .bin, CIFAR-10 python batch (data_batch_1), directory, cifar-10-binary.tar.gz or cifar-10-python.tar.gz')
    .option('--num-classes <n>', 'labels outside [0, n) are reported as odd', '10')
    .option('--label-index <i>', 'which label of multi-label records the histogram counts', '0')
    .addOption(new Option('--label-field <f>', 'CIFAR-100 binary: which label byte').choices(['fine', 'coarse']).default('fine'))
    .action(async (path: string, opts: { numClasses: string; labelIndex: string; labelField: 'fine' | 'coarse' }) => {
      const { inspectPath, formatInspect } = await import('../data/inspect.js');
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
    .argument('<path>', '.rec, .bin, CIFAR-10 python batch (data_batch_1), directory, cifar-10-binary.tar.gz or cifar-10-python.tar.gz')
    .requiredOption('--out <file>', 'PNG file to write, e.g. grid.png')
    .option('--augment', 'show the training augmentation (crop, HSL jitter, mirror) as the network sees it, before mean subtraction')
    .option('--count <n>', `number of samples (at most ${MAX_PREVIEW_COUNT})`, '64')
    .option('--columns <n>', 'images per row', '8')
    .addOption(new Option('--split <split>', 'split to take from a directory or archive').choices(['train', 'val']).default('train'))
    .option('-c, --config <file>', 'take data and augmentation settings from this experiment config')
    .option('--force', 'replace the --out file when it exists')
    .action(async (path: string, opts: { out: string; augment?: boolean; count: string; columns: string; split: 'train' | 'val'; config?: string; force?: boolean }) => {
      const { writePreview } = await import('../data/preview.js');
      const { configSchema } = await import('../config/schema.js');
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
      const { downloadCifar10, terminalProgress } = await import('../data/download.js');
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

}
