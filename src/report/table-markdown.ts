/**
 * The results table of `mixup report` as Markdown (see {@link formatMarkdown}): the header, one line
 * per row and the notes on how the figures were computed.
 */
import { basename } from 'node:path';
import { formatMeanStd } from './stats.js';
import { isPaperArch } from './reference.js';
import { hasEce, type TableOptions, type TableRow } from './table.js';

function fmtDiff(d: number): string {
  return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(2)}`;
}

function progressText(r: TableRow): string {
  return r.finished ? 'finished' : `${r.status ?? 'in progress'}, epoch ${r.lastEpoch}/${r.epochs}`;
}

/**
 * How the Markdown table names run directories: the base name (`runs/erm-90-s0/` → `erm-90-s0`),
 * or the directory as given where two directories of the table share a base name.
 */
function runNames(rows: readonly TableRow[]): Map<string, string> {
  const dirs = [...new Set(rows.flatMap((r) => r.runs))];
  const base = (d: string) => basename(d.replace(/\/+$/, '')) || d;
  const count = new Map<string, number>();
  for (const d of dirs) count.set(base(d), (count.get(base(d)) ?? 0) + 1);
  return new Map(dirs.map((d) => [d, count.get(base(d))! > 1 ? d.replace(/(.)\/+$/, '$1') : base(d)]));
}

/** A Markdown table cell: `|` escaped. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** `all`, or the number of validation images (`data.valLimit`) with thousands separators. */
function valImagesText(valLimit: number | null): string {
  return valLimit === null ? 'all' : valLimit.toLocaleString('en-US');
}

/** The note on what `test acc` is: how many validation images, when all rows used the same. */
function testAccNote(rows: readonly TableRow[], perRow: boolean): string {
  const which = perRow
    ? 'the CIFAR-10 test images; column val images: all, or the first N (data.valLimit)'
    : rows[0]!.valLimit === null
      ? 'all CIFAR-10 test images'
      : `the first ${valImagesText(rows[0]!.valLimit)} CIFAR-10 test images, data.valLimit`;
  const best = bestText(rows);
  return `test acc: top-1 % on the validation set (${which}); final = after the last epoch, best = ${best.note}.`;
}

/** How the "best" column is named and explained: picked on the holdout, on the test set, or a mix of both. */
function bestText(rows: readonly TableRow[]): { header: string; note: string } {
  const on = new Set(rows.map((r) => r.bestOn));
  if (on.size === 1 && on.has('holdout')) {
    return { header: 'test acc % (best on holdout)', note: 'at the epoch of the best accuracy on the held-out training images (data.holdout)' };
  }
  const optimistic = 'the best epoch, picked on the test set itself (optimistic; with data.holdout N it is picked on held-out training images)';
  if (on.size === 1) return { header: 'test acc % (best, picked on test: optimistic)', note: optimistic };
  return {
    header: 'test acc % (best: holdout or test)',
    note: `for rows with a holdout (data.holdout) at the epoch of the best holdout accuracy, for the others ${optimistic}; column best on`,
  };
}

/**
 * The table as Markdown: one header, one line per row, then notes that state how the figures
 * were computed, including how many validation images were evaluated (`data.valLimit`). A
 * `val images` column is added when rows used different numbers, ECE columns (final and at the
 * best-accuracy epoch) when some run logged calibration, a `status` column when some row is unfinished. The `config` column shows each row's {@link TableRow.label}; the last
 * column, `runs`, names the row's run directories (base names).
 */
export function formatMarkdown(rows: readonly TableRow[], opts: TableOptions = {}): string {
  const anyUnfinished = rows.some((r) => !r.finished);
  const valPerRow = new Set(rows.map((r) => r.valLimit)).size > 1;
  const header = [
    'config',
    'experiment',
    'epochs',
    'alpha',
    'mix_rate',
    'test acc % (final)',
    bestText(rows).header,
    'initial learning rate',
    'batch size',
  ];
  const mixedBest = new Set(rows.map((r) => r.bestOn)).size > 1;
  if (mixedBest) header.splice(header.indexOf('initial learning rate'), 0, 'best on');
  if (valPerRow) header.push('val images');
  const anyEce = hasEce(rows);
  if (anyEce) header.push('ECE % (final)', 'ECE % (at best acc)');
  const anyScaled = rows.some((r) => r.bestEceScaled !== null);
  if (anyScaled) header.push('ECE % after T (at best)');
  header.push('train.seed');
  if (opts.compareReference) header.push('reference %', 'final − reference');
  if (anyUnfinished) header.push('status');
  header.push('runs');
  const names = runNames(rows);
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((h) => (['config', 'experiment', 'status', 'runs'].includes(h) ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const cells = [
      cell(r.label),
      r.experiment,
      String(r.epochs),
      r.alpha === null ? '-' : String(r.alpha),
      r.mixRate === null ? '-' : String(r.mixRate),
      formatMeanStd(r.finalAcc),
      formatMeanStd(r.bestAcc),
      ...(mixedBest ? [r.bestOn] : []),
      String(r.lr),
      String(r.batchSize),
      ...(valPerRow ? [valImagesText(r.valLimit)] : []),
      ...(anyEce ? [r.finalEce, r.bestEce].map((m) => (m === null ? '-' : formatMeanStd(m))) : []),
      ...(anyScaled ? [r.bestEceScaled === null ? '-' : formatMeanStd(r.bestEceScaled)] : []),
      r.seeds.join(', '),
    ];
    if (opts.compareReference) cells.push(r.reference === null ? '-' : r.reference.toFixed(2), r.diff === null ? '-' : fmtDiff(r.diff));
    if (anyUnfinished) cells.push(progressText(r));
    cells.push(cell(r.runs.map((d) => names.get(d)!).join(', ')));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push(
    '',
    testAccNote(rows, valPerRow),
    'train.seed: the seed of each run of the row. Several seeds of one config: mean ± sample standard deviation, s = sqrt(Σ(x − mean)² / (n − 1)).',
  );
  if (anyEce) lines.push(ECE_NOTE);
  if (anyScaled) lines.push(SCALED_NOTE);
  if (opts.compareReference) {
    lines.push(
      'reference: the MXNet reference implementation (unsky/mixup, forked as hdjsjyl/mixup), one run each; final − reference in percentage points.',
      'Its 90- and 200-epoch figures are checkpoints of its 300-epoch runs: rows "<config> at epoch N" read them from a longer run\'s curves.',
      'Its ERM 200/300-epoch recipe is inferred (its only ERM log is a 90-epoch run), and its 300-epoch ERM figure (89.32) is no better than its 200-epoch one.',
    );
    if (rows.some((r) => isPaperArch(r.arch))) {
      lines.push(
        'Rows of the paper\'s networks (model.arch preact-resnet18, wrn-28-10) compare with the mixup paper instead: Table 1 of arXiv:1710.09412, ' +
          'CIFAR-10 test error 5.6 → 4.2 % (PreAct ResNet-18), 3.8 → 2.7 % (WRN-28-10), ERM → mixup α 1, 200 epochs, as accuracy; recipe configs/paper/.',
      );
    }
    const off = rows.filter((r) => r.offRecipe.length > 0);
    if (off.length > 0) {
      lines.push(
        `reference left empty for ${off.map((r) => `${r.label} (${r.offRecipe.join(', ')})`).join('; ')}: ` +
          "trained with other settings than the reference's recipe (configs/<experiment>-<epochs>.json, or -300 for a length it did not publish), so its figure does not compare.",
      );
    }
    const unpublished = rows.filter((r) => r.offRecipe.length === 0 && r.reference === null);
    if (unpublished.length > 0) {
      lines.push(`reference left empty for ${unpublished.map((r) => `${r.label} (${r.epochs} epochs)`).join('; ')}: the reference published no figure for ${unpublished.length === 1 ? 'it' : 'them'}.`);
    }
  }
  if (anyUnfinished) lines.push('Unfinished runs show the last finished epoch and are in no mean.');
  return lines.join('\n');
}

const ECE_NOTE =
  'ECE: expected calibration error of the validation predictions in % (15 equal-width bins of top-1 confidence, Guo et al. 2017); ' +
  'final = after the last epoch, at best acc = at the best epoch (as test acc best); - for runs that did not log it.';

const SCALED_NOTE =
  'ECE after T: the validation ECE after temperature scaling (softmax(z/T), one T per epoch fitted by NLL on the held-out images, Guo et al. 2017) at the best epoch; - for rows without a holdout.';
