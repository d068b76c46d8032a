/** `mixup report` and `mixup backends`. */
import { Option, type Command } from 'commander';
import { globals, helpWithoutModelOptions, type Io } from './common.js';
import { UserError } from '../errors.js';

/** Adds `mixup report` to the program. */
export function addReportCommand(program: Command, io: Io): void {
  // ------------------------------------------------------------------ report
  program
    .command('report')
    .description('turn run directories into the results table and accuracy/loss plots')
    .argument('<run-dir...>', 'run directories (each with config.json and curves.csv)')
    .addOption(new Option('--format <fmt>', 'table format').choices(['md', 'csv', 'json']).default('md'))
    .addOption(new Option('--table <which>', 'print only this table: main, or noise (the label-noise table); default: main, and in md the noise table after it').choices(['main', 'noise']))
    .option('--compare-reference', "add the reference's published test accuracy (90/200/300 epochs) and the difference")
    .option('--plot <file>', 'draw validation accuracy, training loss (and validation ECE when logged) against epoch into FILE (.svg or .png)')
    .option('--force', 'replace the --plot file when it exists')
    .option('--tensorboard', 'instead of the table: write TensorBoard event files (<run>/tb/) from curves.csv for runs that have none (runs from before they were written)')
    // it reads files and runs no model: --backend and --gpu are not its options
    .configureHelp(helpWithoutModelOptions(program))
    .addHelpText(
      'after',
      '\nRuns that share a config apart from the seed make one row: mean ± sample std (n − 1);\na seed run twice counts once (the first given). Rows of one config file that differ in\noverrides name the keys that differ; the runs column names the directories.\nA directory without curves.csv is named and skipped; an unfinished run is shown as such.\nFinished label-noise runs (data.labelNoise > 0) also get a table by noise level and method:\nbest and last test accuracy and the memorised share of the corrupted labels (after the main\ntable in Markdown; with --table noise alone, in any format). Column train.seed lists the\nseeds of the runs of a row (CSV/JSON: seeds, and n their number).\nRows that differ from the reference recipe (configs/<experiment>-300.json; depth, data.limit,\nepochs, ...) name those keys in their label.\n\nExamples:\n  mixup report runs/* --compare-reference\n  mixup report runs/* --format csv > table.csv\n  mixup report runs/noise/* --table noise --format csv > noise.csv\n  mixup report runs/mixup-200-s0 runs/erm-200-s0 --plot curves.png\n  mixup report --tensorboard runs/*     (then: tensorboard --logdir runs)',
    )
    .action(async (dirs: string[], opts: { format: 'md' | 'csv' | 'json'; table?: 'main' | 'noise'; compareReference?: boolean; plot?: string; force?: boolean; tensorboard?: boolean }, cmd: Command) => {
      if (opts.tensorboard) {
        // it writes event files, no table: the table's options would be silently ignored
        const given = (['format', 'table', 'compareReference', 'plot', 'force'] as const).filter((k) => cmd.getOptionValueSource(k) === 'cli');
        const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        if (given.length > 0) throw new UserError(`report --tensorboard writes event files, no table: give it without ${given.map(flag).join(', ')}`);
        const { writeRunEvents } = await import('../report/tensorboard.js');
        let runs = 0;
        for (const d of dirs) {
          const r = writeRunEvents(d);
          if ('skipped' in r) io.err(`mixup: note: ${r.skipped}`);
          else io.out(`${d}: wrote ${r.epochs} epoch${r.epochs === 1 ? '' : 's'} to ${r.file} (${r.batchesPerEpoch === null ? 'steps are epochs' : `steps in batches, ${r.batchesPerEpoch} per epoch`})`);
          if (!('notRun' in r)) runs++;
        }
        // as the table: exit 2 when no directory holds a run (the notes above say why)
        if (runs === 0) throw new UserError(`report --tensorboard: ${dirs.length === 1 ? `${dirs[0]} holds` : `none of the ${dirs.length} directories holds`} no run with a finished epoch (see the note${dirs.length === 1 ? '' : 's'} above)`);
        return;
      }
      // as mixup test --force without --reliability: a flag that would do nothing is refused
      if (opts.force && opts.plot === undefined) throw new UserError('--force goes with --plot FILE (it replaces an existing plot file)');
      const { report } = await import('../report/report.js');
      await report(dirs, { format: opts.format, table: opts.table, compareReference: opts.compareReference ?? false, plot: opts.plot, force: opts.force === true }, io);
    });

}

/** Adds `mixup backends` to the program. */
export function addBackendsCommand(program: Command, io: Io): void {
  // ------------------------------------------------------------------ backends
  program
    .command('backends')
    .description('which TensorFlow.js backends load on this machine, and why not')
    .action(async (_opts: unknown, cmd: Command) => {
      const { probeAllBackends } = await import('../engine/tfjs/backend.js');
      const { parseGpuIndex } = await import('../engine/tfjs/backend-options.js');
      const rows = await probeAllBackends(undefined, { gpu: globals(cmd).gpu === undefined ? undefined : parseGpuIndex(globals(cmd).gpu!, '--gpu') });
      const w = Math.max(...rows.map((r) => r.name.length));
      io.out(`${'backend'.padEnd(w)}  loads  details`);
      for (const r of rows) {
        io.out(`${r.name.padEnd(w)}  ${(r.loads ? 'yes' : 'no').padEnd(5)}  ${r.loads ? r.detail : r.hint === undefined ? r.reason : `${r.reason}; to get it, ${r.hint}`}`);
      }
    });

}
