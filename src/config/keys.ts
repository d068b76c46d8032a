/**
 * The config schema's keys as data: the documented keys with their types and defaults
 * (`mixup train --help-config`), and the nearest valid key to an unknown one (the "did you mean"
 * of config errors). Reads {@link configSchema} through zod's definitions; no files here.
 */
import { closest, distance } from 'fastest-levenshtein';
import type { z } from 'zod';
import { configSchema } from './schema.js';

/** One documented key of the schema, for `--help-config` and suggestions. */
export interface KeyDoc {
  /** Dotted path, e.g. `mixup.mixRate`. */
  key: string;
  /** Short type description, e.g. `number`, `"erm" | "mixup"`. */
  type: string;
  /** The default value. */
  default: unknown;
  /** One-line description. */
  description: string;
}

// ---------------------------------------------------------------- schema introspection

type AnySchema = z.ZodType;

function defOf(s: AnySchema): { type: string; innerType?: AnySchema; shape?: Record<string, AnySchema>; [k: string]: unknown } {
  return (s as unknown as { _zod: { def: never } })._zod.def;
}

/** Strips default / prefault / optional / nullable / pipe wrappers. */
function unwrap(s: AnySchema): AnySchema {
  let cur = s;
  for (;;) {
    const d = defOf(cur);
    if (d.innerType && ['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(d.type)) {
      cur = d.innerType;
    } else if (d.type === 'pipe') {
      cur = d.in as AnySchema;
    } else {
      return cur;
    }
  }
}

function objectShape(s: AnySchema): Record<string, AnySchema> | null {
  const d = defOf(unwrap(s));
  return d.type === 'object' && d.shape ? d.shape : null;
}

function typeName(s: AnySchema): string {
  const d = defOf(s);
  switch (d.type) {
    case 'default':
    case 'prefault':
    case 'optional':
    case 'readonly':
    case 'catch':
      return typeName(d.innerType!);
    case 'nullable':
      return `${typeName(d.innerType!)} | null`;
    case 'enum':
      return Object.values(d.entries as Record<string, string>).map((v) => JSON.stringify(v)).join(' | ');
    case 'literal':
      return (d.values as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
    case 'array':
      return `${typeName(d.element as AnySchema)}[]`;
    case 'tuple':
      return `[${(d.items as AnySchema[]).map(typeName).join(', ')}]`;
    case 'number': {
      const checks = (d.checks as { _zod: { def: { check: string; format?: string } } }[] | undefined) ?? [];
      return checks.some((c) => c._zod.def.format === 'safeint' || c._zod.def.check === 'number_format') ? 'integer' : 'number';
    }
    default:
      return d.type;
  }
}

/** Every leaf key of the config schema with its type, default and description, in schema order. */
export function configKeyDocs(): KeyDoc[] {
  const defaults = configSchema.parse({}) as unknown as Record<string, unknown>;
  const out: KeyDoc[] = [];
  const walk = (shape: Record<string, AnySchema>, prefix: string, defs: Record<string, unknown>) => {
    for (const [name, s] of Object.entries(shape)) {
      const key = prefix + name;
      const inner = objectShape(s);
      if (inner) {
        walk(inner, key + '.', defs[name] as Record<string, unknown>);
      } else {
        out.push({ key, type: typeName(s), default: defs[name], description: s.description ?? '' });
      }
    }
  };
  walk(objectShape(configSchema)!, '', defaults);
  return out;
}

/** Valid keys directly under `path` (the top level for `[]`), or null when `path` is not an object. */
function keysAt(path: (string | number)[]): string[] | null {
  let shape = objectShape(configSchema);
  for (const p of path) {
    const next: AnySchema | undefined = shape?.[String(p)];
    shape = next ? objectShape(next) : null;
  }
  return shape ? Object.keys(shape) : null;
}

/** All dotted paths of the schema, leaves and objects (`mixup`, `mixup.alpha`, ...). */
function allPaths(): string[] {
  const out: string[] = [];
  const walk = (shape: Record<string, AnySchema>, prefix: string) => {
    for (const [name, s] of Object.entries(shape)) {
      out.push(prefix + name);
      const inner = objectShape(s);
      if (inner) walk(inner, prefix + name + '.');
    }
  };
  walk(objectShape(configSchema)!, '');
  return out;
}

/**
 * Other frameworks' names for keys of this schema (PyTorch scripts, Keras, MXNet's fit.py,
 * facebookresearch/mixup-cifar10's flags), by the last segment of a key with case, `_` and `-`
 * removed: `train.learningRate`, `lr_schedule`, `weight_decay`, `batch_size`, `num_epochs`.
 */
const OTHER_FRAMEWORKS: Record<string, string> = {
  learningrate: 'train.lr',
  learnrate: 'train.lr',
  baselr: 'train.lr',
  initlr: 'train.lr',
  lrschedule: 'train.lrStepEpochs',
  lrsteps: 'train.lrStepEpochs',
  lrstepepochs: 'train.lrStepEpochs',
  milestones: 'train.lrStepEpochs',
  lrdecayepochs: 'train.lrStepEpochs',
  lrdecay: 'train.lrFactor',
  lrdecayfactor: 'train.lrFactor',
  gamma: 'train.lrFactor',
  weightdecay: 'train.wd',
  decay: 'train.wd',
  batchsize: 'train.batchSize',
  batch: 'train.batchSize',
  numepochs: 'train.epochs',
  nepochs: 'train.epochs',
  maxepochs: 'train.epochs',
  numepoch: 'train.epochs',
  epoch: 'train.epochs',
  randomseed: 'train.seed',
  manualseed: 'train.seed',
  mixuprate: 'mixup.mixRate',
  mixupalpha: 'mixup.alpha',
  numlayers: 'model.depth',
  numclasses: 'model.numClasses',
  datadir: 'data.dir',
  dataroot: 'data.dir',
  outputdir: 'out',
  outdir: 'out',
  logdir: 'out',
};

/**
 * The valid dotted key nearest to an unknown one, or null when nothing is close.
 * Another framework's name for a key ({@link OTHER_FRAMEWORKS}: `weight_decay` → `train.wd`) comes
 * first; then siblings (`mixup.mixrate` → `mixup.mixRate`); then a misspelt other-framework name
 * (`lerningRate` → `train.lr`); then any key of the schema (`mixRate` → `mixup.mixRate`). Comparison ignores case.
 */
export function suggestKey(unknownPath: string): string | null {
  const alias = OTHER_FRAMEWORKS[unknownPath.split('.').pop()!.toLowerCase().replace(/[_-]/g, '')];
  if (alias !== undefined && alias !== unknownPath) return alias;
  const parts = unknownPath.split('.');
  const parent = parts.slice(0, -1);
  const leaf = parts[parts.length - 1]!;
  const siblings = keysAt(parent) ?? [];
  const lowerLeaf = leaf.toLowerCase();
  if (siblings.length > 0) {
    const best = closest(lowerLeaf, siblings.map((s) => s.toLowerCase()));
    const idx = siblings.findIndex((s) => s.toLowerCase() === best);
    if (distance(lowerLeaf, best) <= Math.max(2, Math.floor(leaf.length / 3))) {
      return [...parent, siblings[idx]!].join('.');
    }
  }
  // a misspelt other-framework name (`lerningRate`, `wieght_decay`): close to one of them
  const norm = leaf.toLowerCase().replace(/[_-]/g, '');
  const names = Object.keys(OTHER_FRAMEWORKS);
  const near = closest(norm, names);
  if (near.length >= 8 && distance(norm, near) <= 2 && OTHER_FRAMEWORKS[near] !== unknownPath) return OTHER_FRAMEWORKS[near]!;
  const paths = allPaths();
  const lowerPaths = paths.map((p) => p.toLowerCase());
  // Match on the last segment anywhere in the schema, then on the whole path.
  const byLeaf = paths.filter((p) => p.split('.').pop()!.toLowerCase() === lowerLeaf);
  if (byLeaf.length === 1) return byLeaf[0]!;
  const best = closest(unknownPath.toLowerCase(), lowerPaths);
  if (distance(unknownPath.toLowerCase(), best) <= Math.max(2, Math.floor(unknownPath.length / 4))) {
    return paths[lowerPaths.indexOf(best)]!;
  }
  return null;
}
