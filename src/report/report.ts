/**
 * `mixup report RUN_DIR...`: reads the runs, prints the results table (Markdown, CSV or JSON),
 * names every run left out or still in progress on one line each, and optionally draws the curves.
 */
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { isRun, readRun, type Run } from './runs.js';
import { referenceEpochRuns } from './checkpoints.js';
import { buildTable, dropRepeatedSeeds } from './table.js';
import { formatMarkdown } from './table-markdown.js';
import { formatCsv, formatJson } from './table-records.js';
import { checkPlotFile, writePlot } from './plot.js';
import { buildNoiseTable, formatNoiseCsv, formatNoiseJson, formatNoiseMarkdown } from './noise.js';

/** Output formats of the table. */
export const REPORT_FORMATS = ['md', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Which table to print: the main results table, or the label-noise table (noise.ts). */
export const REPORT_TABLES = ['main', 'noise'] as const;
export type ReportTable = (typeof REPORT_TABLES)[number];

/** Options of {@link report}. */
export interface ReportOptions {
  format?: ReportFormat;
  /**
   * Print only this table. Unset: the main table, and in Markdown the label-noise table after it
   * when there is one (CSV and JSON hold one table: a note then names `--table noise`).
   */
  table?: ReportTable;
  /** Add the reference's published accuracy and the difference. */
  compareReference?: boolean;
  /** Draw the curves into this `.svg` or `.png` file. */
  plot?: string;
  /** Replace an existing plot file. */
  force?: boolean;
}

/** Where the report writes: the table to `out`, notes about runs to `err`. */
export interface ReportIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * Reads `dirs`, prints the table (in Markdown followed by the label-noise table when finished runs
 * have `data.labelNoise` > 0, see noise.ts; `opts.table` picks one of them, in any format), and
 * draws the plot when asked.
 * A directory without config.json or curves.csv (or with a malformed one) is named on one line
 * `mixup: note: <file>: <why>; skipped` on `io.err`; a run with fewer epochs than planned is named
 * `mixup: note: <dir>: in progress ...` and shown as an unfinished row. Finished runs of one config
 * with the same seed are counted once (the first given), the others named on one note line.
 * @returns the runs in the table and the plot.
 * @throws UserError when no directory holds a run with at least one finished epoch, `--table noise`
 *   finds no finished label-noise run, or the plot
 *   file cannot be written; a plot file with the wrong extension, in a missing or read-only
 *   directory, or one that exists (without `force`), is refused before anything is printed.
 */
export async function report(dirs: readonly string[], opts: ReportOptions, io: ReportIo): Promise<Run[]> {
  // a bad --plot file fails before a line is printed, not after the whole table
  if (opts.plot !== undefined) checkPlotFile(opts.plot, '--plot', { replace: opts.force ?? false });
  const runs: Run[] = [];
  const seen = new Set<string>();
  for (const dir of dirs) {
    const key = resolve(dir);
    if (seen.has(key)) {
      io.err(`mixup: note: ${dir}: given more than once; counted once`);
      continue;
    }
    seen.add(key);
    const r = readRun(dir);
    if (!isRun(r)) {
      io.err(`mixup: note: ${r.reason}; skipped`);
      continue;
    }
    if (!r.complete) {
      const last = r.curves[r.curves.length - 1]!.epoch;
      io.err(`mixup: note: ${r.dir}: ${r.status ?? 'in progress'} at epoch ${last}/${r.epochs}; shown as unfinished, in no mean`);
    }
    runs.push(r);
  }
  if (runs.length === 0) {
    const which = dirs.length === 1 ? `${dirs[0]} holds` : `none of the ${dirs.length} directories holds`;
    throw new UserError(`report: ${which} no run with a finished epoch (see the note${dirs.length === 1 ? '' : 's'} above)`);
  }
  const { runs: counted, repeats } = dropRepeatedSeeds(runs);
  for (const { kept, dropped } of repeats) {
    io.err(
      `mixup: note: ${dropped.map((r) => r.dir).join(', ')}: same config (${kept.name}) and seed ${kept.seed} as ${kept.dir}; ` +
        `left out, each seed is counted once (the first given)`,
    );
  }
  // --compare-reference: the 90/200-epoch rows also from the curves of longer runs, as the reference scored them
  const tableRuns = opts.compareReference ? [...counted, ...referenceEpochRuns(counted)] : counted;
  const rows = buildTable(tableRuns, { compareReference: opts.compareReference ?? false });
  const format = opts.format ?? 'md';
  const noise = buildNoiseTable(counted);
  if (opts.table === 'noise') {
    if (noise.length === 0) {
      throw new UserError(`report --table noise: none of the ${counted.length} run${counted.length === 1 ? '' : 's'} is a finished label-noise run (data.labelNoise > 0)`);
    }
    io.out(format === 'csv' ? formatNoiseCsv(noise) : format === 'json' ? formatNoiseJson(noise) : formatNoiseMarkdown(noise));
  } else {
    io.out(format === 'csv' ? formatCsv(rows) : format === 'json' ? formatJson(rows) : formatMarkdown(rows, { compareReference: opts.compareReference ?? false }));
    if (noise.length > 0 && opts.table === undefined) {
      if (format === 'md') io.out(`\n${formatNoiseMarkdown(noise)}`);
      else io.err(`mixup: note: the label-noise table (${noise.length} row${noise.length === 1 ? '' : 's'}) is not in this ${format.toUpperCase()}; print it with --table noise --format ${format}`);
    }
  }
  if (opts.plot !== undefined) {
    await writePlot(opts.plot, counted, opts.force ?? false);
    io.err(`mixup: plot of ${counted.length} run${counted.length === 1 ? '' : 's'} written to ${opts.plot}`);
  }
  return counted;
}
