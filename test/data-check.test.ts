/**
 * Issue 18 item 6: the validation split is read once before training (Pipeline.check), so a
 * damaged validation image stops the run before epoch 1 trains, with one line naming the record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { augmentSpec } from '../src/augment/index.js';
import { openSource } from '../src/data/source.js';
import { Pipeline } from '../src/data/pipeline.js';
import { allocCache } from '../src/data/reader.js';
import { runTraining } from '../src/train/run.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { encodePng, syntheticImage, writeRecFile, type FixtureRecord } from './fixtures/data.js';
import { tempDir } from './fixtures/tmp.js';

const OPTS = { numClasses: 10, labelIndex: 0, labelField: 'fine' as const, limit: null };

/** 12 PNG records; record `bad` (if any) is a 16×16 PNG, record `junk` 3 undecodable bytes. */
function valRec(dir: string, bad: number | null, junk: number | null): { path: string; offsets: number[] } {
  const records: FixtureRecord[] = Array.from({ length: 12 }, (_, i) => ({
    label: i % 10,
    image: i === bad ? encodePng(new Uint8Array(16 * 16 * 3), 16, 16) : i === junk ? Buffer.from([1, 2, 3]) : encodePng(syntheticImage(i)),
  }));
  const path = join(dir, 'val.rec');
  return { path, offsets: writeRecFile(path, records) };
}

function pipelineOf(source: Awaited<ReturnType<typeof openSource>>, workers: number, cache: boolean): Pipeline {
  const cfg = configSchema.parse({});
  return new Pipeline(source, { train: false, batchSize: 4, seed: 1, augment: augmentSpec(cfg, false), workers, cache: cache ? allocCache(source.numSamples) : null });
}

test('check() names the first damaged record in file order, in worker threads and on the main thread', async () => {
  const dir = tempDir('mixup-check-');
  const { path, offsets } = valRec(dir, 9, 6);
  const source = await openSource(path, 'val', OPTS); // the headers parse: nothing is decoded yet
  for (const workers of [2, 0]) {
    const p = pipelineOf(source, workers, false);
    try {
      await assert.rejects(p.check(), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.message, `${path}: record 6 at byte offset ${offsets[6]}: undecodable image: 3 bytes starting 01 02 03, neither JPEG, PNG nor a raw 3,072-byte CIFAR image`);
        return true;
      }, `workers ${workers}`);
    } finally {
      await p.close();
    }
  }
  const small = valRec(tempDir('mixup-check-'), 9, null);
  const p = pipelineOf(await openSource(small.path, 'val', OPTS), 1, false);
  await assert.rejects(p.check(), { message: `${small.path}: record 9 at byte offset ${small.offsets[9]}: image is 16x16, expected 32x32 (CIFAR)` });
  await p.close();
});

test('check() decodes every image once into the cache: the evaluation after it reads from there', async () => {
  const dir = tempDir('mixup-check-');
  const { path } = valRec(dir, null, null);
  const source = await openSource(path, 'val', OPTS);
  const cache = allocCache(source.numSamples);
  const cfg = configSchema.parse({});
  const p = new Pipeline(source, { train: false, batchSize: 5, seed: 1, augment: augmentSpec(cfg, false), workers: 2, cache });
  try {
    assert.deepEqual([...new Uint8Array(cache.ready)], new Array(12).fill(0));
    await p.check();
    assert.deepEqual([...new Uint8Array(cache.ready)], new Array(12).fill(1));
    // image 7 in the cache is the PNG's pixels (HWC)
    assert.deepEqual(Buffer.from(new Uint8Array(cache.pixels, 7 * 3072, 3072)), Buffer.from(syntheticImage(7)));
  } finally {
    await p.close();
  }
});

test('a damaged validation image stops the run before epoch 1, and nothing is written to the run directory', async () => {
  const dir = tempDir('mixup-check-');
  const { path, offsets } = valRec(dir, null, 11);
  const train = cifarBinDir(32, 1);
  const cfg = configSchema.parse({
    backend: 'cpu',
    out: join(dir, 'run'),
    model: { depth: 8 },
    data: { train, val: path, workers: 1 },
    train: { epochs: 1, batchSize: 16, evalBatchSize: 8 },
  });
  const lines: string[] = [];
  const io = { line: (l: string) => lines.push(l), info: (l: string) => lines.push(l), isTTY: false };
  await assert.rejects(runTraining({ cfg, source: null, resume: false, overwrite: false, handleSignals: false }, io), {
    message: `${path}: record 11 at byte offset ${offsets[11]}: undecodable image: 3 bytes starting 01 02 03, neither JPEG, PNG nor a raw 3,072-byte CIFAR image`,
  });
  assert.equal(existsSync(cfg.out!), false);
  assert.deepEqual(lines.filter((l) => /epoch/.test(l)), []);
});
