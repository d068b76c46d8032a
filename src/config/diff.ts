/**
 * Comparing two resolved configs key by key: which dotted keys differ, with both values. Used by
 * `mixup train --check-run` (is the run in --out the one this command would train?).
 */

/** One key in which two configs differ. */
export interface ConfigDifference {
  /** Dotted key, e.g. `model.depth`; arrays are leaves (`train.lrStepEpochs`). */
  key: string;
  /** The value in the first config (`undefined` when it lacks the key). */
  a: unknown;
  /** The value in the second config. */
  b: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The leaves of a JSON object as `dotted.key → value`: objects are walked, everything else
 * (arrays, null, numbers, strings) is a leaf.
 */
function leaves(obj: unknown, prefix = '', into = new Map<string, unknown>()): Map<string, unknown> {
  if (isPlainObject(obj)) {
    for (const [k, v] of Object.entries(obj)) leaves(v, `${prefix}${k}.`, into);
  } else if (prefix !== '') {
    into.set(prefix.slice(0, -1), obj);
  }
  return into;
}

/**
 * The keys in which two configs (JSON objects, e.g. two validated {@link Config}s) differ, sorted by
 * key. Leaves are compared as JSON text, so `[3, 28, 28]` equals `[3, 28, 28]` and `1` equals `1.0`.
 * @param ignore dotted keys (or key prefixes: `data` covers `data.dir`) left out of the comparison.
 */
export function configDifferences(a: unknown, b: unknown, ignore: readonly string[] = []): ConfigDifference[] {
  const la = leaves(a);
  const lb = leaves(b);
  const ignored = (k: string) => ignore.some((i) => k === i || k.startsWith(`${i}.`));
  return [...new Set([...la.keys(), ...lb.keys()])]
    .filter((k) => !ignored(k) && JSON.stringify(la.get(k)) !== JSON.stringify(lb.get(k)))
    .sort()
    .map((key) => ({ key, a: la.get(key), b: lb.get(key) }));
}

/** A value as the difference lines show it: JSON (`null`, `500`, `"mixup"`, `[10,100,200]`), `(none)` when absent. */
export function showValue(v: unknown): string {
  return v === undefined ? '(none)' : JSON.stringify(v);
}
