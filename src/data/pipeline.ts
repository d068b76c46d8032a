/**
 * The batch iterator: epoch order, prefetching batches from worker threads (or building them on
 * the main thread with `data.workers: 0`), and clean shutdown.
 *
 * Each batch is one job; up to `prefetch` jobs are in flight, spread over the workers, and batches
 * are yielded in order. Idle workers are unref'd, so a pipeline that is never closed does not keep
 * the process alive; `close()` asks them to close their files and exit.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { AugmentSpec } from '../augment/index.js';
import type { Batch, CorruptedSplit, DataPipeline } from './types.js';
import { batchSamples, batchesPerEpoch, buildImages, epochOrder, readAll, type BatchJob, type SkippedSample } from './batch.js';
import { SampleReader, type CacheBuffers } from './reader.js';
import { IMAGE_BYTES } from './overlap.js';
import type { OpenedSource } from './source.js';
import type { WorkerInit, WorkerRequest, WorkerResponse } from './worker.js';

/** Settings of a {@link Pipeline}. */
export interface PipelineOptions {
  train: boolean;
  batchSize: number;
  seed: number;
  augment: AugmentSpec;
  /** Worker threads; 0 = build batches on the calling thread. */
  workers: number;
  /** Shared decoded-image cache, or null. */
  cache: CacheBuffers | null;
  /** Batches in flight (default 2 per worker, at least 2). */
  prefetch?: number;
  /** Skip samples that cannot be read (`data.skipUndecodable`; see batch.ts buildImages). */
  skipUndecodable?: boolean;
  /**
   * Only these sample indices of the source, in this order (the epoch's order is then a
   * permutation of them for training, this order for evaluation); default all samples.
   */
  subset?: Int32Array;
}

/** The worker entry next to this module: worker.js in dist/, worker.ts when run from source (tsx). */
export function workerUrl(): URL {
  for (const name of ['./worker.js', './worker.ts']) {
    const u = new URL(name, import.meta.url);
    if (existsSync(fileURLToPath(u))) return u;
  }
  throw new Error(`data worker not found next to ${fileURLToPath(import.meta.url)} (worker.js or worker.ts)`);
}

/**
 * Starts a worker on `url`. From source (a `.ts` file, tests under tsx) the worker first registers
 * tsx's loader, which Node 20 does not carry into worker threads by itself.
 */
function startWorker(url: URL, workerData: WorkerInit): Worker {
  if (url.pathname.endsWith('.ts')) {
    const api = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
    return new Worker(boot, { eval: true, workerData });
  }
  return new Worker(url, { workerData });
}

/** A batch's images as built, with the samples skipped in it. */
interface Built {
  images: Float32Array;
  skipped: SkippedSample[];
}

interface Pending {
  resolve: (v: Built) => void;
  reject: (e: Error) => void;
  slot: Slot;
}

interface Slot {
  worker: Worker;
  pending: number;
  exited: boolean;
}

/** Worker threads that build batches; one request per batch. */
class WorkerPool {
  private slots: Slot[] = [];
  private waiting = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(n: number, init: WorkerInit) {
    const url = workerUrl();
    for (let k = 0; k < n; k++) {
      const worker = startWorker(url, init);
      const slot: Slot = { worker, pending: 0, exited: false };
      worker.unref();
      worker.on('message', (r: WorkerResponse) => this.onMessage(r));
      worker.on('error', (e) => this.failAll(slot, e));
      worker.on('exit', (code) => {
        slot.exited = true;
        if (!this.closed) this.failAll(slot, new Error(`data worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  private onMessage(r: WorkerResponse): void {
    const p = this.waiting.get(r.id);
    if (!p) return;
    this.waiting.delete(r.id);
    if (--p.slot.pending === 0) p.slot.worker.unref();
    if ('images' in r) p.resolve({ images: r.images, skipped: r.skipped ?? [] });
    else {
      const e = r.userError ? new UserError(r.error) : new Error(r.error);
      if (r.stack && !r.userError) e.stack = r.stack;
      p.reject(e);
    }
  }

  private failAll(slot: Slot, e: Error): void {
    for (const [id, p] of this.waiting) {
      if (p.slot === slot) {
        this.waiting.delete(id);
        p.reject(e);
      }
    }
    slot.pending = 0;
  }

  /** Builds a batch in a worker; with `decodeOnly` only reads its samples (the answer is empty); `skip`: see buildImages. */
  run(job: BatchJob, decodeOnly = false, skip = false): Promise<Built> {
    if (this.closed) return Promise.reject(new Error('data pipeline is closed'));
    const live = this.slots.filter((s) => !s.exited);
    if (live.length === 0) return Promise.reject(new Error('no data worker is running'));
    const slot = live.reduce((a, b) => (b.pending < a.pending ? b : a));
    const id = this.nextId++;
    return new Promise<Built>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      if (slot.pending++ === 0) slot.worker.ref();
      const req: WorkerRequest = { id, epoch: job.epoch, train: job.train, samples: Int32Array.from(job.samples), ...(decodeOnly ? { decodeOnly } : {}), ...(skip ? { skip } : {}) };
      slot.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.waiting) p.reject(new Error('data pipeline closed'));
    this.waiting.clear();
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.exited) return;
        const exited = new Promise<void>((res) => s.worker.once('exit', () => res()));
        s.worker.postMessage('close');
        const timer = setTimeout(() => void s.worker.terminate(), 2000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** A split as batches, epoch by epoch. See {@link DataPipeline}. */
export class Pipeline implements DataPipeline {
  readonly numSamples: number;
  readonly batchesPerEpoch: number;
  readonly classNames: string[];
  readonly description: string;
  labelNoise?: CorruptedSplit;
  holdout?: DataPipeline;
  cleanTrain?: DataPipeline;
  private pool: WorkerPool | null = null;
  private local: SampleReader | null = null;
  private closed = false;
  private subsets: Pipeline[] = [];

  constructor(
    private readonly source: OpenedSource,
    private readonly opts: PipelineOptions,
  ) {
    this.numSamples = opts.subset?.length ?? source.numSamples;
    this.batchesPerEpoch = batchesPerEpoch(this.numSamples, opts.batchSize, opts.train);
    this.classNames = source.classNames;
    this.description = source.description;
    if (opts.workers > 0) {
      this.pool = new WorkerPool(opts.workers, { spec: source.spec, cache: opts.cache, augment: opts.augment, seed: opts.seed });
    } else {
      this.local = new SampleReader(source.spec, opts.cache);
    }
  }

  /**
   * A pipeline over some samples of this one's source (same files, labels and decoded-image
   * cache; its own worker threads), closed with this one. E.g. the corrupted samples of a
   * training split, evaluated in file order with the evaluation augmentation.
   * @param samples sample indices of the source, in the order batches should hold them.
   * @param opts what differs from this pipeline: mode, batch size, augmentation.
   */
  subset(samples: Int32Array, opts: Pick<PipelineOptions, 'train' | 'batchSize' | 'augment'>): Pipeline {
    if (this.closed) throw new Error('data pipeline is closed');
    const p = new Pipeline(this.source, { ...this.opts, ...opts, subset: samples });
    this.subsets.push(p);
    return p;
  }

  private buildLocal(job: BatchJob): Promise<Built> {
    try {
      const skipped: SkippedSample[] = [];
      const images = buildImages(this.local!, this.opts.augment, this.opts.seed, job, this.opts.skipUndecodable ? skipped : undefined);
      return Promise.resolve({ images, skipped });
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  async *epoch(epoch: number, fromBatch = 0): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('data pipeline is closed');
    const { train, batchSize, augment } = this.opts;
    const positions = epochOrder(this.numSamples, this.opts.seed, epoch, train);
    const subset = this.opts.subset;
    const order = subset ? positions.map((k) => subset[k]!) : positions;
    const total = this.batchesPerEpoch;
    const prefetch = this.pool ? Math.max(2, this.opts.prefetch ?? 2 * this.opts.workers) : 1;
    const inflight: { index: number; samples: Int32Array; images: Promise<Built> }[] = [];
    let next = Math.max(0, fromBatch);
    const submit = () => {
      const samples = batchSamples(order, next, batchSize);
      const job: BatchJob = { epoch, samples, train };
      const images = this.pool ? this.pool.run(job, false, this.opts.skipUndecodable) : this.buildLocal(job);
      images.catch(() => undefined); // a prefetched batch the consumer never asks for must not crash the process
      inflight.push({ index: next, samples, images });
      next++;
    };
    while (next < total || inflight.length > 0) {
      while (next < total && inflight.length < prefetch) submit();
      const head = inflight.shift()!;
      const { images, skipped } = await head.images;
      const labels = new Int32Array(head.samples.length);
      for (let k = 0; k < labels.length; k++) labels[k] = this.source.labels[head.samples[k]!]!;
      for (const s of skipped) labels[s.slot] = labels[s.from]!; // the image that took its place, with its label
      yield { images, labels, size: head.samples.length, height: augment.outH, width: augment.outW, index: head.index, ...(skipped.length > 0 ? { skipped } : {}) };
    }
  }

  /**
   * Reads every sample of the split once, in file order, in the worker threads (on this thread with
   * `data.workers: 0`): images are decoded and checked, and stored in the decoded-image cache when
   * there is one, so the first evaluation does not decode them again. A damaged record is thus found
   * before training starts rather than when an epoch reaches it. In-memory sources (`.tar.gz`, the
   * python version) hold checked raw pixels already and are not read again.
   * A training split reads its whole source, the samples it does not train on included (the
   * held-out images of `data.holdout`), so that their evaluation cannot fail after an epoch.
   * With `skipUndecodable`, such samples are listed instead (in file order; `slot` and `from` mean
   * nothing here; `heldOut` marks those outside the samples trained on).
   * @returns the samples that cannot be read ([] without `skipUndecodable`).
   * @throws UserError naming the file and record of the first sample (in file order) that cannot be
   *   read, without `skipUndecodable`.
   */
  async check(): Promise<SkippedSample[]> {
    if (this.closed) throw new Error('data pipeline is closed');
    if (this.source.spec.kind === 'mem') return [];
    const skip = this.opts.skipUndecodable === true;
    const subset = this.opts.subset;
    const whole = this.opts.train || !subset;
    const order = whole ? epochOrder(this.source.numSamples, this.opts.seed, 0, false) : subset;
    const per = Math.max(1, this.opts.batchSize);
    const chunks = Math.ceil(order.length / per);
    const skipped: SkippedSample[] = [];
    const marked = (): SkippedSample[] => {
      if (!this.opts.train || !subset) return skipped;
      const trained = new Set(subset);
      return skipped.map((s) => (trained.has(s.sample) ? s : { ...s, heldOut: true }));
    };
    if (!this.pool) {
      readAll(this.local!, order, skip ? skipped : undefined);
      return marked();
    }
    const prefetch = Math.max(2, this.opts.prefetch ?? 2 * this.opts.workers);
    const inflight: Promise<Built>[] = [];
    let next = 0;
    while (next < chunks || inflight.length > 0) {
      while (next < chunks && inflight.length < prefetch) {
        const job: BatchJob = { epoch: 0, samples: batchSamples(order, next++, per), train: false };
        const done = this.pool.run(job, true, skip);
        done.catch(() => undefined); // one not awaited after an earlier error must not crash the process
        inflight.push(done);
      }
      skipped.push(...(await inflight.shift()!).skipped);
    }
    return marked();
  }

  /**
   * The decoded pixels of some samples, `[K,32,32,3]` uint8 in the order of `samples` (default
   * all), to compare files by content (overlap.ts). Reads on this thread, through the decoded-image
   * cache when there is one (so an evaluation that follows does not decode them again).
   * @throws UserError naming the file and record of a sample that cannot be read.
   */
  pixels(samples?: Int32Array): Uint8Array {
    if (this.closed) throw new Error('data pipeline is closed');
    const which = samples ?? this.opts.subset ?? Int32Array.from({ length: this.numSamples }, (_, i) => i);
    const reader = this.local ?? new SampleReader(this.source.spec, this.opts.cache);
    const out = new Uint8Array(which.length * IMAGE_BYTES);
    try {
      which.forEach((i, k) => out.set(reader.read(i), k * IMAGE_BYTES));
    } finally {
      if (reader !== this.local) reader.close();
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.local?.close();
    await Promise.all([this.pool?.close(), ...this.subsets.map((p) => p.close())]);
  }
}
