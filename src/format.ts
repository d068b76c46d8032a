/**
 * Small text helpers for messages shown to users.
 */

/**
 * A count with its noun: `1 epoch`, `2 epochs`, `1 batch`, `3 batches`.
 * @param many the plural form when it is not `one` + "s".
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * A fraction as a percentage with `digits` decimals: `pct(0.9512)` is `95.12%`; NaN gives `NaN%`.
 * @param sep between the number and `%` (reliability.ts prints `95.12 %`).
 */
export function pct(x: number, digits = 2, sep = ''): string {
  return `${(100 * x).toFixed(digits)}${sep}%`;
}
