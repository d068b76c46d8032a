/**
 * The results table of `mixup report` as records (see {@link tableRecords}): the JSON and CSV outputs.
 */
import { createArrayCsvStringifier } from 'csv-writer';
import type { MeanStd } from './stats.js';
import { hasEce, type TableRow } from './table.js';

const round = (x: number, digits = 4) => Number(x.toFixed(digits));
const roundStd = (m: MeanStd | null) => (m === null || m.std === null ? null : round(m.std));

/**
 * One plain object per row, numbers rounded to 4 decimals: the JSON and CSV outputs
 * (`val_limit`: validation images evaluated, null / empty for all). When some row has calibration
 * figures, every row also gets `final_ece`, `final_ece_std`, `best_acc_ece`, `best_acc_ece_std`
 * (% ECE, null where a run did not log it).
 */
export function tableRecords(rows: readonly TableRow[]): Record<string, unknown>[] {
  const columns = recordColumns(rows);
  return rows.map((r) => Object.fromEntries(columns.map(([name, value]) => [name, value(r)])));
}

/** The columns of the JSON and CSV outputs, in order, each with how a row fills it. */
const RECORD_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['config', (r) => r.config],
  ['experiment', (r) => r.experiment],
  ['epochs', (r) => r.epochs],
  ['alpha', (r) => r.alpha],
  ['mix_rate', (r) => r.mixRate],
  ['final_acc', (r) => round(r.finalAcc.mean)],
  ['final_acc_std', (r) => (r.finalAcc.std === null ? null : round(r.finalAcc.std))],
  ['best_acc', (r) => round(r.bestAcc.mean)],
  ['best_acc_std', (r) => (r.bestAcc.std === null ? null : round(r.bestAcc.std))],
  ['lr', (r) => r.lr],
  ['batch_size', (r) => r.batchSize],
  ['val_limit', (r) => r.valLimit],
  ['n', (r) => r.finalAcc.n],
  ['seeds', (r) => r.seeds],
  ['status', (r) => (r.finished ? 'finished' : (r.status ?? 'in progress'))],
  ['last_epoch', (r) => r.lastEpoch],
  ['reference_acc', (r) => r.reference],
  ['diff', (r) => (r.diff === null ? null : round(r.diff))],
  ['runs', (r) => r.runs],
];

/** Columns added at the end when some row has calibration figures. */
const RECORD_ECE_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['final_ece', (r) => (r.finalEce === null ? null : round(r.finalEce.mean))],
  ['final_ece_std', (r) => roundStd(r.finalEce)],
  ['best_acc_ece', (r) => (r.bestEce === null ? null : round(r.bestEce.mean))],
  ['best_acc_ece_std', (r) => roundStd(r.bestEce)],
];

/** Columns added at the end when some row picked its best epoch on a holdout. */
const RECORD_HOLDOUT_COLUMNS: readonly (readonly [string, (r: TableRow) => unknown])[] = [
  ['best_on', (r) => r.bestOn],
  ['best_ece_scaled', (r) => (r.bestEceScaled === null ? null : round(r.bestEceScaled.mean))],
  ['best_ece_scaled_std', (r) => roundStd(r.bestEceScaled)],
];

/**
 * The record columns of a table: ECE columns only when some row has calibration figures, and
 * `best_on` (holdout or test) with the ECE after temperature scaling only when some row has a holdout.
 */
function recordColumns(rows: readonly TableRow[]): readonly (readonly [string, (r: TableRow) => unknown])[] {
  return [...RECORD_COLUMNS, ...(hasEce(rows) ? RECORD_ECE_COLUMNS : []), ...(rows.some((r) => r.bestOn === 'holdout') ? RECORD_HOLDOUT_COLUMNS : [])];
}

/** The table as JSON: an array of {@link tableRecords}. */
export function formatJson(rows: readonly TableRow[]): string {
  return JSON.stringify(tableRecords(rows), null, 2);
}

/** The table as CSV with a header line; empty cells for nulls, lists joined by spaces. */
export function formatCsv(rows: readonly TableRow[]): string {
  const records = tableRecords(rows);
  const columns = recordColumns(rows).map(([name]) => name);
  const stringifier = createArrayCsvStringifier({ header: columns });
  const cell = (v: unknown) => (v === null ? '' : Array.isArray(v) ? v.join(' ') : (v as string | number));
  return (
    stringifier.getHeaderString()! +
    stringifier.stringifyRecords(records.map((rec) => columns.map((c) => cell(rec[c]))))
  ).replace(/\n$/, '');
}
