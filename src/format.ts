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

/** Binary (IEC) units of {@link bytesText}, each 1024 times the one before. */
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/**
 * A byte count for messages, in binary (IEC 80000-13) units, 1 KiB = 1024 B: the largest unit that
 * keeps the number at or above 1, with one decimal below 10 and none from 10 on, e.g. `512 B`,
 * `623 KiB`, `5.9 MiB`, `188 MiB`, `4.0 GiB`; a value that rounds to 1024 moves to the next unit.
 * (`df -h`, `free -h` and `du -h` show the same units, without the "i".)
 * @param n bytes, a finite number ≥ 0 (a fraction is rounded).
 */
export function bytesText(n: number): string {
  let u = 0;
  while (u < BYTE_UNITS.length - 1 && n >= 1024 ** (u + 1)) u++;
  const text = (v: number) => (u === 0 ? String(Math.round(v)) : v < 9.95 ? v.toFixed(1) : String(Math.round(v)));
  let t = text(n / 1024 ** u);
  if (t === '1024' && u < BYTE_UNITS.length - 1) t = text(n / 1024 ** ++u);
  return `${t} ${BYTE_UNITS[u]}`;
}
