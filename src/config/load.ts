/**
 * Loading experiment configs: JSON or YAML files (parse.ts) with `extends`, command-line overrides, validation
 * against {@link configSchema} with one-line messages that name the key.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, resolve, basename, extname, isAbsolute, join } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import type { z } from 'zod';
import { UserError } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { suggestKey } from './keys.js';
import { parseConfigText, parseJsonFile } from './parse.js';

export { parseJsonFile };

/** A JSON object as read from a file, before validation. */
export type RawConfig = Record<string, unknown>;

// ---------------------------------------------------------------- reading files

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Deep merge for configs: objects merge key by key, everything else (arrays included) in
 * `over` replaces `base`. Neither argument is modified.
 */
export function mergeConfig(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeConfig(out[k] as RawConfig, v) : v;
  }
  return out;
}

/**
 * The config file (`.json`, `.yaml`, `.yml`) beside a missing `file` that was probably meant: its name
 * with an extension (`configs/mixup` → `configs/mixup.json`), or the nearest name by edit distance
 * (`configs/paper/erm-preact.json` → `configs/paper/erm-preact18.json`); null when none is close.
 */
export function nearestConfigFile(file: string): string | null {
  let names: string[];
  try {
    names = readdirSync(dirname(resolve(file))).filter((n) => /\.(json|ya?ml)$/i.test(n));
  } catch {
    return null;
  }
  const want = basename(file);
  const withExt = names.find((n) => n.slice(0, n.lastIndexOf('.')) === want);
  if (withExt !== undefined) return join(dirname(file), withExt);
  if (names.length === 0) return null;
  const best = closest(want, names);
  return distance(want, best) <= Math.max(2, Math.floor(want.length / 4)) ? join(dirname(file), best) : null;
}

/**
 * Reads a config file and the chain of files it `extends` (a path relative to the file that names
 * it), merged base first. The `extends` key itself is removed.
 * @throws UserError on a missing or unreadable file, bad JSON, a non-object top level, a
 *   non-string `extends`, or a cycle of `extends`.
 */
export function readConfigFile(file: string, seen: string[] = []): RawConfig {
  const abs = resolve(file);
  if (seen.includes(abs)) {
    throw new UserError(`${file}: "extends" cycle: ${[...seen, abs].join(' -> ')}`);
  }
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const near = code === 'ENOENT' ? nearestConfigFile(file) : null;
    const why = code === 'ENOENT' ? `no such file${near === null ? '' : `; did you mean ${near}?`}` : code === 'EISDIR' ? 'is a directory, expected a JSON or YAML file' : (e as Error).message;
    const from = seen.length > 0 ? ` (extended by ${seen[seen.length - 1]})` : '';
    throw new UserError(`config ${file}${from}: ${why}`);
  }
  const raw = parseConfigText(text, file);
  if (!isPlainObject(raw)) throw new UserError(`${file}: expected an object (key: value pairs) at the top level, got ${raw === null ? 'nothing' : Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`);
  const { extends: parent, ...rest } = raw;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string') {
    throw new UserError(`${file}: "extends" must be a path to another config file (a string), got ${JSON.stringify(parent)}`);
  }
  const base = readConfigFile(resolve(dirname(abs), parent), [...seen, abs]);
  return mergeConfig(base, rest);
}

// ---------------------------------------------------------------- overrides

/**
 * Parses the value of a `key=value` override: JSON when it parses (numbers, booleans, null,
 * arrays), otherwise the raw string. `1/64` style fractions are accepted as numbers.
 */
export function parseOverrideValue(text: string): unknown {
  const frac = /^\s*(-?\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (frac) return Number(frac[1]) / Number(frac[2]);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Sets `value` at dotted `path` in a copy of `cfg`, creating objects on the way.
 * @throws UserError when a path segment crosses a non-object value.
 */
export function setPath(cfg: RawConfig, path: string, value: unknown): RawConfig {
  const parts = path.split('.');
  if (parts.some((p) => p === '')) throw new UserError(`--set ${path}: empty key segment`);
  const over: RawConfig = {};
  let cur = over;
  for (const p of parts.slice(0, -1)) {
    const next: RawConfig = {};
    cur[p] = next;
    cur = next;
  }
  cur[parts[parts.length - 1]!] = value;
  return mergeConfig(cfg, over);
}

/**
 * Parses a list of `key.path=value` strings (from repeated `--set`) into `[path, value]` pairs.
 * @throws UserError when an entry has no `=`.
 */
export function parseSetArgs(sets: string[]): [string, unknown][] {
  return sets.map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UserError(`--set ${s}: expected key.path=value, e.g. --set train.epochs=10`);
    return [s.slice(0, eq).trim(), parseOverrideValue(s.slice(eq + 1))];
  });
}

// ---------------------------------------------------------------- validation

function pathString(path: PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

function describeValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let cur = raw;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p as string];
  }
  return cur;
}

/** One line for a zod issue: `<key>: <what is wrong> (got <value>)`. */
function issueLine(issue: z.core.$ZodIssue, raw: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const key = [...issue.path.map(String), issue.keys[0]!].join('.');
    const hint = suggestKey(key);
    return `${key}: unknown key${hint ? `; did you mean ${hint}?` : ''}`;
  }
  const key = pathString(issue.path) || '(top level)';
  if (issue.code === 'custom') return `${key}: ${issue.message}`;
  const got = valueAt(raw, issue.path);
  const allowed = issue.message.replace(/^Invalid input: /, '');
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${key}: ${describeValue(got)} is not allowed; expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  if (got === undefined) return `${key}: ${allowed}`;
  return `${key}: got ${describeValue(got)}; ${allowed.charAt(0).toLowerCase() + allowed.slice(1)}`;
}

/**
 * One line listing several unknown keys, each with its nearest valid key ({@link suggestKey}), e.g.
 * `config a.json: 3 unknown keys: mixup.mixrate (did you mean mixup.mixRate?), train.epoch (did you
 * mean train.epochs?), colour (no similar key)`. A key set somewhere other than where the first was
 * (another file of the `extends` chain, a flag) says where.
 * @param paths the unknown keys' paths, in the order zod reported them.
 */
function unknownKeysLine(paths: PropertyKey[][], source: string | ((path: PropertyKey[]) => string)): string {
  const whereOf = (path: PropertyKey[]) => (typeof source === 'string' ? `config ${source}` : source(path));
  const where = whereOf(paths[0]!);
  const items = paths.map((path) => {
    const key = path.map(String).join('.');
    const hint = suggestKey(key);
    const own = whereOf(path);
    const notes = [...(own === where ? [] : [`in ${own}`]), hint ? `did you mean ${hint}?` : 'no similar key'];
    return `${key} (${notes.join('; ')})`;
  });
  return `${where}: ${paths.length} unknown keys: ${items.join(', ')}`;
}

/**
 * Validates a raw (merged) config against the schema and fills defaults.
 * @param raw the merged JSON object.
 * @param source where it came from, for the error message (file name), or a function naming where
 *   the value at a key path came from (`config configs/a.json`, `--epochs 0`).
 * @throws UserError listing every problem, one line each (lines joined by `\n`): where the value
 *   came from, the key, the value and what is allowed; several unknown keys share one line, each
 *   with its nearest valid key.
 */
export function validateConfig(raw: unknown, source: string | ((path: PropertyKey[]) => string)): Config {
  const r = configSchema.safeParse(raw);
  if (r.success) return r.data;
  const whereOf = (path: PropertyKey[]) => (typeof source === 'string' ? `config ${source}` : source(path));
  const unknown = r.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k]) : []));
  const lines: string[] = [];
  if (unknown.length > 1) lines.push(unknownKeysLine(unknown, source));
  for (const issue of r.error.issues) {
    if (issue.code === 'unrecognized_keys' && unknown.length > 1) continue;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    lines.push(`${whereOf(path)}: ${issueLine(issue, raw)}`);
  }
  throw new UserError(lines.join('\n'));
}

/** Options for {@link loadConfig}. */
export interface LoadOptions {
  /** `[dotted key, value]` overrides applied after the file, in order. */
  overrides?: [string, unknown][];
  /**
   * How the user wrote each override, for messages (`--epochs 0`, `--set train.epochs=0`), in the
   * order of `overrides`; default `--set key=value`.
   */
  overrideOrigins?: string[];
}

/**
 * The file of an `extends` chain that sets the key at `path` (the file itself before the files it
 * extends), or null when none does (a default).
 */
export function fileSetting(file: string, path: PropertyKey[], seen: string[] = []): string | null {
  const abs = resolve(file);
  if (seen.includes(abs)) return null;
  let raw: unknown;
  try {
    raw = parseConfigText(readFileSync(abs, 'utf8'), file);
  } catch {
    return null;
  }
  if (!isPlainObject(raw)) return null;
  for (let i = path.length; i > 0; i--) if (valueAt(raw, path.slice(0, i)) !== undefined) return file;
  return typeof raw['extends'] === 'string' ? fileSetting(resolve(dirname(abs), raw['extends']), path, [...seen, abs]) : null;
}

/**
 * Reads, merges (`extends`), overrides and validates a config file. When `out` is not set, it
 * becomes `runs/<file name without its extension>`. The file is validated before the overrides, so a bad
 * value in it is an error even when a flag overrides it; a message names the file that set the key
 * (`config configs/base.json: train.lr: ...`) or the flag (`--lr -1: train.lr: ...`).
 * @throws UserError for any problem with the file or a value.
 */
export function loadConfig(file: string, opts: LoadOptions = {}): Config {
  let raw = readConfigFile(file);
  validateConfig(raw, (path) => `config ${fileSetting(file, path) ?? file}`);
  const overrides = opts.overrides ?? [];
  for (const [k, v] of overrides) raw = setPath(raw, k, v);
  const origin = (path: PropertyKey[]): string => {
    const key = path.map(String).join('.');
    for (let i = overrides.length - 1; i >= 0; i--) {
      const k = overrides[i]![0];
      if (key === k || key.startsWith(`${k}.`) || k.startsWith(`${key}.`)) {
        return opts.overrideOrigins?.[i] ?? `--set ${k}=${describeValue(overrides[i]![1])}`;
      }
    }
    return `config ${file} + command-line overrides`;
  };
  const cfg = validateConfig(raw, origin);
  if (cfg.out === null) cfg.out = `runs/${basename(file, extname(file))}`;
  return cfg;
}

/**
 * Makes the data paths of a config (`data.dir`, `data.train`, `data.val`) absolute, resolved against
 * `base` (the directory the command ran in), so a run's config.json still finds its data when
 * `mixup test` or `--resume` runs from another directory. Returns a new config.
 */
export function absoluteDataPaths(cfg: Config, base: string = process.cwd()): Config {
  const abs = (p: string | null) => (p === null || isAbsolute(p) ? p : resolve(base, p));
  return { ...cfg, data: { ...cfg.data, dir: abs(cfg.data.dir), train: abs(cfg.data.train), val: abs(cfg.data.val) } };
}
