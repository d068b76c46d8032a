/**
 * What the benchmarks share (bench/train.ts, eval.ts, data.ts, kernels.ts): option parsers, the
 * repository root, the machine and load lines, a synthetic pipeline, and webgpu kernel timing.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError, type Option } from 'commander';
import type { Batch, DataPipeline } from '../src/data/types.js';
import { uniformStream } from '../src/random.js';
import { packageRoot } from '../src/root.js';

/**
 * Commander argument parser for an integer option ≥ `min` (0: non-negative, 1: positive); a bad
 * value throws commander's `InvalidArgumentError`, printed as one `error: option ... is invalid` line.
 */
export function intOption(min: number): (value: string) => number {
  const what = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected ${what}.`);
    return n;
  };
}

/** Comma-separated list option (`--backends wasm,cpu`). */
export function listOption(value: string): string[] {
  return value.split(',');
}

/** Sets a list option's default, shown in --help as `a,b,c` as it would be typed. */
export function listDefault<T>(option: Option, value: T[]): Option {
  return option.default(value, value.join(','));
}

/** Repository root (works from bench/ under tsx and from dist/bench/ compiled). */
export const repoRoot = packageRoot() + '/';

/** `model name` of /proc/cpuinfo (or os.cpus()), the core count and the load averages. */
export function machineLine(): string {
  let model = os.cpus()[0]?.model ?? 'unknown CPU';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!.trim();
  } catch {
    // not Linux: os.cpus() model
  }
  return `machine: ${model}, ${os.cpus().length} cores, Node ${process.version}`;
}
export function loadLine(when: string): string {
  return `load average (${when}): ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
}

/** Synthetic training batches: one fixed random batch, labels i mod classes, as a pipeline. */
export function syntheticPipeline(batch: number, h: number, w: number, classes: number, batches: number): DataPipeline {
  const u = uniformStream(0, 'bench-synthetic');
  const images = new Float32Array(batch * h * w * 3);
  for (let i = 0; i < images.length; i++) images[i] = (u() - 0.5) * 4;
  const labels = Int32Array.from({ length: batch }, (_, i) => i % classes);
  return {
    numSamples: batch * batches,
    batchesPerEpoch: batches,
    classNames: Array.from({ length: classes }, (_, i) => String(i)),
    async *epoch(_epoch: number, fromBatch = 0): AsyncIterable<Batch> {
      for (let index = fromBatch; index < batches; index++) yield { images, labels, size: batch, height: h, width: w, index };
    },
    async close() {},
  };
}

/**
 * Device time of the kernels of what `dispatch` queues, from webgpu's timestamp queries (tf.time),
 * or why there is none.
 */
export async function deviceKernelMs(dispatch: () => void): Promise<number | string> {
  if (tf.getBackend() !== 'webgpu') return 'n/a (the kernels run on the host)';
  const b = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  if (!b.supportTimestampQuery) return "unavailable (the adapter has no 'timestamp-query')";
  const info = await tf.time(dispatch);
  return typeof info.kernelMs === 'number' ? info.kernelMs : `unavailable (${info.kernelMs.error})`;
}
