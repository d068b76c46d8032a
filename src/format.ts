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
