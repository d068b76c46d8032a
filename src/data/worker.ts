/**
 * Worker thread of the data pipeline: decodes and augments the batches the main thread asks for
 * (see pipeline.ts). Started with {@link WorkerInit} as `workerData`; each message is a
 * {@link WorkerRequest}, each answer a {@link WorkerResponse} whose image buffer is transferred.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../errors.js';
import type { AugmentSpec } from '../augment/index.js';
import { buildImages, readAll, type SkippedSample } from './batch.js';
import { SampleReader, type CacheBuffers } from './reader.js';
import type { SourceSpec } from './source.js';

/** What a worker is started with. */
export interface WorkerInit {
  spec: SourceSpec;
  cache: CacheBuffers | null;
  augment: AugmentSpec;
  seed: number;
}

/** One batch to build. */
export interface WorkerRequest {
  id: number;
  epoch: number;
  train: boolean;
  samples: Int32Array;
  /** Only read (decode, and cache) the samples; the answer's images are empty (see Pipeline.check). */
  decodeOnly?: boolean;
  /** Skip samples that cannot be read, listing them in the answer (`data.skipUndecodable`, see buildImages). */
  skip?: boolean;
}

/** The built batch, or the error that stopped it. */
export type WorkerResponse =
  | { id: number; images: Float32Array; skipped?: SkippedSample[] }
  | { id: number; error: string; userError: boolean; stack?: string };

if (parentPort) {
  const init = workerData as WorkerInit;
  const reader = new SampleReader(init.spec, init.cache);
  const port = parentPort;
  port.on('message', (req: WorkerRequest | 'close') => {
    if (req === 'close') {
      reader.close();
      port.close();
      return;
    }
    try {
      const skipped: SkippedSample[] | undefined = req.skip ? [] : undefined;
      if (req.decodeOnly) readAll(reader, req.samples, skipped);
      const images = req.decodeOnly ? new Float32Array(0) : buildImages(reader, init.augment, init.seed, req, skipped);
      port.postMessage({ id: req.id, images, ...(skipped?.length ? { skipped } : {}) } satisfies WorkerResponse, [images.buffer as ArrayBuffer]);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      port.postMessage({ id: req.id, error: msg, userError: isUserError(e), stack: (e as Error).stack } satisfies WorkerResponse);
    }
  });
}
