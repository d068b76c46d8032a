/**
 * What the static WebGPU engine can build, checked before it allocates anything: the network's
 * shape (basic units; any BatchNorm width, at most {@link BN_MAX_SHARD_CHANNELS} channels × shards) and the device's buffer
 * limits. A network that does not fit is refused with one line, never halfway through building.
 *
 * Buffer sizes, in bytes, from the spec alone (model/memory.ts networkSize): the largest buffer that
 * grows with the batch is one activation (or a gradient scratch of the same size), 4·B·largestMap;
 * the largest fixed one is the flat parameter buffer (and its gradient and momentum twins), 4·P
 * plus 256-byte alignment per parameter. Each must fit both `maxBufferSize` and
 * `maxStorageBufferBindingSize` (every one is bound whole as a storage buffer).
 */
import type { NetworkSpec } from '../../model/spec.js';
import { networkSize } from '../../model/memory.js';
import { bytesText } from '../../format.js';
import { BN_MAX_SHARD_CHANNELS } from './bn_state.js';

/** Why the static engine cannot run a network at all (the caller falls back to tfjs-webgpu), or null. */
export function staticEngineUnsupported(spec: NetworkSpec, shards = 1): string | null {
  if (spec.layout.bottleneck) return 'has no bottleneck units';
  const widest = Math.max(...spec.bns.map((b) => b.channels));
  if (shards * widest > BN_MAX_SHARD_CHANNELS) {
    return `takes at most ${BN_MAX_SHARD_CHANNELS} BatchNorm shard-channels in workgroup memory (${spec.label} has ${widest} channels × ${shards} shards; lower train.shards)`;
  }
  return null;
}

/** The device limits the check reads (GPUSupportedLimits). */
export interface BufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** A batch the engine would be built for: the config key, its value and the flag that sets it. */
export interface BatchUse {
  key: string;
  batch: number;
  /** The command-line flag for a batch n, e.g. `--batch-size n`. */
  flag: (n: number) => string;
  /** The batch must be a multiple of this (train.shards). */
  multipleOf?: number;
}

/**
 * The one-line refusal when a buffer of the static engine would pass the device's limits, or null.
 * @param spec the network; `height`×`width` its input.
 * @param uses the batches it is built for (training `train.batchSize`, evaluation `train.evalBatchSize`).
 * @example `train.batchSize 4096: the static WebGPU engine's largest buffer for WRN-28-10 on 32×32 would be 2.5 GiB, more than this device's maxStorageBufferBindingSize (2.0 GiB); the largest batch that fits is 3276 (--batch-size 3276)`
 */
export function staticBufferRefusal(spec: NetworkSpec, height: number, width: number, uses: BatchUse[], limits: BufferLimits): string | null {
  const [limit, limitName] = limits.maxStorageBufferBindingSize <= limits.maxBufferSize
    ? [limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize']
    : [limits.maxBufferSize, 'maxBufferSize'];
  const size = networkSize(spec, height, width);
  const paramBytes = 4 * size.parameters + 256 * spec.params.length;
  if (paramBytes > limit) {
    return `${spec.label}: its ${size.parameters.toLocaleString('en-US')} parameters need a ${bytesText(paramBytes)} buffer, more than this device's ${limitName} (${bytesText(limit)}); choose a smaller model.width`;
  }
  const perSample = 4 * Math.max(size.largestMap, height * width * 3);
  for (const u of uses) {
    if (u.batch * perSample <= limit) continue;
    const m = u.multipleOf ?? 1;
    let n = Math.floor(limit / perSample);
    n -= n % m;
    const fits = n > 0 ? `the largest batch that fits is ${n} (${u.flag(n)})` : 'no batch fits; choose a smaller model.width';
    return `${u.key} ${u.batch}: the static WebGPU engine's largest buffer for ${spec.label} on ${height}×${width} would be ${bytesText(u.batch * perSample)}, more than this device's ${limitName} (${bytesText(limit)}); ${fits}`;
  }
  return null;
}
