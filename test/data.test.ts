import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync, readFileSync, truncateSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { create as tarCreate } from 'tar';
import { PNG } from 'pngjs';
import { configSchema, type ConfigInput } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { RECORDIO_MAGIC, encodeRecordIO, forEachRecord, parseRecord, readHead, scanRecordIO } from '../src/data/recordio.js';
import { encodeImageRecord, parseImageRecord } from '../src/data/imagerecord.js';
import { decodeImage } from '../src/data/decode.js';
import { tarPasses } from '../src/data/cifarbin.js';
import { openSource, type SourceOptions } from '../src/data/source.js';
import { SampleReader } from '../src/data/reader.js';
import { openPipeline, resolveDataPaths, sameDataNote } from '../src/data/index.js';
import { batchesPerEpoch, epochOrder } from '../src/data/batch.js';
import { encodeJpeg, encodePng, hwcToPlanes, syntheticImage, writeBinFile, writeRecFile } from './fixtures/data.js';
import type { Batch, DataPipeline } from '../src/data/types.js';
import { tempDir } from './fixtures/tmp.js';

const tmp = () => tempDir('mixup-data-');
const OPTS: SourceOptions = { numClasses: 10, labelIndex: 0, labelField: 'fine', limit: null };
const cfgOf = (c: ConfigInput) => configSchema.parse(c);

async function rejectsUser(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

async function collect(p: DataPipeline, epoch: number, from = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of p.epoch(epoch, from)) out.push(b);
  return out;
}

// ---------------------------------------------------------------- RecordIO framing

test('a payload holding the magic at aligned offsets is split into parts 1/2/3 and joined back', () => {
  const m = Buffer.alloc(4);
  m.writeUInt32LE(RECORDIO_MAGIC);
  const payload = Buffer.concat([Buffer.from([1, 2, 3, 4]), m, Buffer.from([5, 6, 7, 8]), m, Buffer.from([9])]);
  const bytes = encodeRecordIO([payload]);
  // frames: (cflag 1, len 4), (cflag 2, len 4), (cflag 3, len 1 + 3 padding)
  assert.equal(bytes.length, 12 + 12 + 12);
  assert.equal(bytes.readUInt32LE(4), (1 << 29) | 4);
  assert.equal(bytes.readUInt32LE(16), (2 << 29) | 4);
  assert.equal(bytes.readUInt32LE(28), (3 << 29) | 1);
  const { payload: back, span } = parseRecord(bytes, 'x.rec', 0);
  assert.deepEqual([...back], [...payload]);
  assert.equal(span, 36);
  // an unaligned magic is not split
  const unaligned = Buffer.concat([Buffer.from([1, 2]), m, Buffer.from([3, 4])]);
  assert.equal(encodeRecordIO([unaligned]).readUInt32LE(4), 8);
});

test('scanRecordIO finds records across chunk boundaries, split records included', () => {
  const dir = tmp();
  const m = Buffer.alloc(4);
  m.writeUInt32LE(RECORDIO_MAGIC);
  const payloads = [Buffer.alloc(10, 7), Buffer.concat([Buffer.alloc(8, 1), m, Buffer.alloc(20, 2), m, Buffer.alloc(3, 3)]), Buffer.alloc(5, 9)];
  const file = join(dir, 'a.rec');
  writeFileSync(file, encodeRecordIO(payloads));
  const seen: number[][] = [];
  const locs = scanRecordIO(file, null, (p) => seen.push([...p]), 16);
  assert.deepEqual(
    locs.map((l) => l.offset),
    [0, 20, 76], // 8+10+2 pad; then (8+8) + (8+20) + (8+3+1 pad)
  );
  assert.deepEqual(seen, payloads.map((p) => [...p]));
});

test('readHead: the first n bytes, zero-filled past the end of a shorter file', () => {
  const dir = tmp();
  const rec = join(dir, 'a.rec');
  writeFileSync(rec, encodeRecordIO([Buffer.alloc(3, 5)]));
  assert.deepEqual([...readHead(rec, 4)], [0x0a, 0x23, 0xd7, 0xce]);
  assert.equal(readHead(rec, 4).readUInt32LE(0), RECORDIO_MAGIC);
  assert.deepEqual([...readHead(rec, 10)], [0x0a, 0x23, 0xd7, 0xce, 3, 0, 0, 0, 5, 5]);
  const short = join(dir, 'short');
  writeFileSync(short, Buffer.from([0x1f, 0x8b]));
  assert.deepEqual([...readHead(short, 4)], [0x1f, 0x8b, 0, 0]);
});

test('forEachRecord: through the .idx or by scanning, the same records, offsets and limit', () => {
  const dir = tmp();
  const m = Buffer.alloc(4);
  m.writeUInt32LE(RECORDIO_MAGIC);
  const payloads = [Buffer.alloc(10, 7), Buffer.concat([Buffer.alloc(8, 1), m, Buffer.alloc(3, 3)]), Buffer.alloc(5, 9)];
  const file = join(dir, 'a.rec');
  writeFileSync(file, encodeRecordIO(payloads));
  // offsets: 0; 8+10+2 pad = 20; 20 + (8+8) + (8+3+1 pad) = 48; the file ends at 48+8+5+3 pad = 64
  const idx = join(dir, 'a.idx');
  writeFileSync(idx, '0\t0\n1\t20\n2\t48\n');
  for (const i of [idx, null]) {
    const seen: [number[], number, number][] = [];
    const locs = forEachRecord(file, { idx: i }, (p, k, off) => seen.push([[...p], k, off]));
    assert.deepEqual(locs, [{ offset: 0, span: 20 }, { offset: 20, span: 28 }, { offset: 48, span: 16 }], String(i));
    assert.deepEqual(seen, payloads.map((p, k) => [[...p], k, [0, 20, 48][k]]), String(i));
    const two: number[] = [];
    assert.deepEqual(forEachRecord(file, { idx: i, limit: 2 }, (_p, _k, off) => two.push(off)).map((l) => l.offset), [0, 20]);
    assert.deepEqual(two, [0, 20]);
  }
});

test('image record header: flag 0 single label, flag > 0 several labels', () => {
  const one = parseImageRecord(encodeImageRecord(3, 42, Buffer.from([9, 9])), 'r');
  assert.deepEqual([one.flag, one.labels, one.id, [...one.image]], [0, [3], 42n, [9, 9]]);
  const many = parseImageRecord(encodeImageRecord([1, 5, 7], 1, Buffer.from([8])), 'r');
  assert.deepEqual([many.flag, many.labels, [...many.image]], [3, [1, 5, 7], [8]]);
});

// ---------------------------------------------------------------- decoding

test('PNG (RGB, grayscale, RGBA), JPEG and raw payloads decode to HWC RGB', () => {
  const px = syntheticImage(3);
  assert.deepEqual(decodeImage(encodePng(px), 'r').data, px);
  assert.deepEqual(decodeImage(hwcToPlanes(px), 'r').data, px);
  const gray = new PNG({ width: 2, height: 1, colorType: 0, inputColorType: 0, inputHasAlpha: false });
  gray.data = Buffer.from([10, 200]);
  const g = decodeImage(PNG.sync.write(gray, { colorType: 0, inputColorType: 0, inputHasAlpha: false }), 'r');
  assert.deepEqual([...g.data], [10, 10, 10, 200, 200, 200]);
  const rgba = new PNG({ width: 1, height: 1 });
  rgba.data = Buffer.from([1, 2, 3, 4]);
  assert.deepEqual([...decodeImage(PNG.sync.write(rgba), 'r').data], [1, 2, 3]);
  const j = decodeImage(encodeJpeg(px, 100), 'r');
  assert.equal(j.width, 32);
  let mad = 0;
  for (let i = 0; i < px.length; i++) mad += Math.abs(j.data[i]! - px[i]!);
  assert.ok(mad / px.length < 3, `JPEG q100 mean abs diff ${mad / px.length}`);
  assert.throws(() => decodeImage(Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2]), 'f.rec: record 4 at byte offset 96'), /f\.rec: record 4 at byte offset 96: undecodable JPEG/);
  assert.throws(() => decodeImage(Buffer.from([1, 2, 3]), 'r'), /undecodable image: 3 bytes starting 01 02 03/);
});

// ---------------------------------------------------------------- sources

function recFixture(dir: string, n: number, idx: boolean, enc: 'png' | 'raw' = 'png'): { path: string; labels: number[] } {
  const labels = Array.from({ length: n }, (_, i) => (i * 3) % 10);
  const path = join(dir, idx ? 'with.rec' : 'without.rec');
  writeRecFile(
    path,
    labels.map((label, i) => ({ label, image: enc === 'png' ? encodePng(syntheticImage(i)) : hwcToPlanes(syntheticImage(i)) })),
    idx,
  );
  return { path, labels };
}

test('.rec with and without .idx: same labels, same pixels, limit takes the first N', async () => {
  const dir = tmp();
  for (const idx of [true, false]) {
    const { path, labels } = recFixture(dir, 7, idx);
    const s = await openSource(path, 'train', OPTS);
    assert.equal(s.format, 'recordio');
    assert.deepEqual([...s.labels], labels);
    const r = new SampleReader(s.spec, null);
    for (let i = 0; i < 7; i++) assert.deepEqual(r.read(i), syntheticImage(i));
    r.close();
    const lim = await openSource(path, 'train', { ...OPTS, limit: 3 });
    assert.deepEqual([...lim.labels], labels.slice(0, 3));
  }
});

test('a record whose JPEG/PNG holds the magic is read back whole (split parts)', async () => {
  const dir = tmp();
  // a raw payload with the magic at an aligned offset inside the image bytes (24-byte header + 4k)
  const px = syntheticImage(0);
  const planes = hwcToPlanes(px);
  Buffer.from(planes.buffer).writeUInt32LE(RECORDIO_MAGIC, 100); // header is 24 bytes: 124 is aligned
  const path = join(dir, 's.rec');
  writeRecFile(path, [{ label: 1, image: planes }, { label: 2, image: hwcToPlanes(syntheticImage(1)) }]);
  const raw = readFileSync(path);
  assert.equal(raw.readUInt32LE(4) >>> 29, 1, 'first record is split');
  const s = await openSource(path, 'train', OPTS);
  const r = new SampleReader(s.spec, null);
  const back = r.read(0);
  assert.deepEqual([...s.labels], [1, 2]);
  assert.equal(back[(100 % 1024) * 3], 0x0a); // R plane byte 100 = low byte of the magic
  assert.deepEqual(r.read(1), syntheticImage(1));
});

test('CIFAR binary: single .bin, directory of batches, and the .tar.gz archive', async () => {
  const dir = tmp();
  const root = join(dir, 'cifar-10-batches-bin');
  mkdirSync(root);
  const imgs = Array.from({ length: 6 }, (_, i) => syntheticImage(i));
  writeBinFile(join(root, 'data_batch_1.bin'), imgs.slice(0, 2), [0, 1]);
  writeBinFile(join(root, 'data_batch_2.bin'), imgs.slice(2, 4), [2, 3]);
  writeBinFile(join(root, 'test_batch.bin'), imgs.slice(4), [8, 9]);
  writeFileSync(join(root, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n');
  const one = await openSource(join(root, 'data_batch_2.bin'), 'train', OPTS);
  assert.deepEqual([...one.labels], [2, 3]);
  assert.equal(one.classNames[9], 'j');
  const train = await openSource(root, 'train', OPTS);
  assert.deepEqual([...train.labels], [0, 1, 2, 3]);
  const r = new SampleReader(train.spec, null);
  assert.deepEqual(r.read(3), imgs[3]);
  await tarCreate({ gzip: true, file: join(dir, 'cifar-10-binary.tar.gz'), cwd: dir }, ['cifar-10-batches-bin']);
  const passes = tarPasses;
  const tgzTrain = await openSource(join(dir, 'cifar-10-binary.tar.gz'), 'train', OPTS);
  const tgzVal = await openSource(join(dir, 'cifar-10-binary.tar.gz'), 'val', OPTS);
  assert.equal(tarPasses - passes, 1, 'one gunzip + tar pass for both splits');
  assert.deepEqual([...tgzTrain.labels], [0, 1, 2, 3]);
  assert.deepEqual([...tgzVal.labels], [8, 9]);
  assert.equal(tgzVal.classNames[0], 'a');
  assert.deepEqual(new SampleReader(tgzVal.spec, null).read(1), imgs[5]);
  // a gzip archive named anything is detected from its bytes
  writeFileSync(join(dir, 'data.bin'), readFileSync(join(dir, 'cifar-10-binary.tar.gz')));
  assert.equal((await openSource(join(dir, 'data.bin'), 'val', OPTS)).numSamples, 2);
});

test('resolveDataPaths finds the usual names and names what it looked for', () => {
  const base = configSchema.parse({}).data;
  const a = tmp();
  writeFileSync(join(a, 'cifar10_train.rec'), 'x');
  writeFileSync(join(a, 'cifar10_val.rec'), 'x');
  assert.deepEqual(resolveDataPaths({ ...base, dir: a }), { train: join(a, 'cifar10_train.rec'), val: join(a, 'cifar10_val.rec') });
  const b = tmp();
  mkdirSync(join(b, 'cifar-10-batches-bin'));
  writeFileSync(join(b, 'cifar-10-batches-bin', 'data_batch_1.bin'), 'x');
  writeFileSync(join(b, 'cifar-10-batches-bin', 'test_batch.bin'), 'x');
  assert.deepEqual(resolveDataPaths({ ...base, dir: b }), { train: join(b, 'cifar-10-batches-bin'), val: join(b, 'cifar-10-batches-bin', 'test_batch.bin') });
  const c = tmp();
  writeFileSync(join(c, 'cifar-10-binary.tar.gz'), 'x');
  assert.deepEqual(resolveDataPaths({ ...base, dir: c }), { train: join(c, 'cifar-10-binary.tar.gz'), val: join(c, 'cifar-10-binary.tar.gz') });
  assert.deepEqual(resolveDataPaths({ ...base, dir: c, val: '/v.bin' }).val, '/v.bin');
  assert.throws(() => resolveDataPaths({ ...base, dir: tmp() }), (e: unknown) => e instanceof UserError && /looked for cifar10_train\.rec \+ cifar10_val\.rec, data_batch_\*\.bin/.test(e.message));
  assert.throws(() => resolveDataPaths(base), /set data\.dir/);
});

// ---------------------------------------------------------------- bad input

test('a .rec cut short next to its original .idx is named as the culprit, with both sizes; an unaligned .idx offset blames the .idx', async () => {
  const dir = tmp();
  const { path } = recFixture(dir, 4, true, 'raw'); // raw records: 8 + 24 + 3072 bytes each, 3104 in all
  const idx = path.replace(/\.rec$/, '.idx');
  truncateSync(path, 3104 * 2 + 100); // records 0, 1 and a piece of record 2; record 3 is gone
  const e = await openSource(path, 'train', OPTS).then(() => null, (x: unknown) => x);
  assert.ok(e instanceof UserError);
  assert.equal(
    e.message,
    `${path}: shorter than its index expects: the file has 6308 bytes, but ${idx} line 4 has a record at byte offset 9312 (the .rec is truncated, or the .idx belongs to another file)`,
  );
  writeFileSync(idx, '0\t0\n1\t3106\n');
  await rejectsUser(openSource(path, 'train', OPTS), new RegExp(`^${idx.replace(/[.]/g, '\\.')}: line 2: offset 3106 is not a 4-byte-aligned position`));
});

test('bad input: one line naming the file and the offset or record', async () => {
  const dir = tmp();
  const p = (n: string) => join(dir, n);
  await rejectsUser(openSource(p('missing.rec'), 'train', OPTS), /missing\.rec: no such file or directory/);
  writeFileSync(p('empty.rec'), '');
  await rejectsUser(openSource(p('empty.rec'), 'train', OPTS), /empty\.rec: empty file/);
  writeFileSync(p('text.rec'), 'hello world, not a record');
  await rejectsUser(openSource(p('text.rec'), 'train', OPTS), /text\.rec: unknown format: not a RecordIO file \(first word 0x6c6c6568 at byte offset 0/);
  writeFileSync(p('short.bin'), Buffer.alloc(3073 * 2 + 5));
  await rejectsUser(openSource(p('short.bin'), 'train', OPTS), /short\.bin: size 6151 bytes is not a multiple of the CIFAR-10 record size 3073/);
  // bad magic mid-file: second record's magic overwritten
  const { path } = recFixture(dir, 3, false, 'raw');
  const bytes = readFileSync(path);
  const second = 8 + 24 + 3072; // first frame: header + payload (3096, already aligned)
  bytes.writeUInt32LE(0xdeadbeef, second);
  writeFileSync(p('badmagic.rec'), bytes);
  await rejectsUser(openSource(p('badmagic.rec'), 'train', OPTS), new RegExp(`badmagic\\.rec: bad RecordIO magic 0xdeadbeef at byte offset ${second}`));
  // truncated last record
  writeFileSync(p('trunc.rec'), readFileSync(path));
  truncateSync(p('trunc.rec'), readFileSync(path).length - 100);
  await rejectsUser(openSource(p('trunc.rec'), 'train', OPTS), new RegExp(`trunc\\.rec: truncated record at byte offset ${2 * second}`));
  // labels: non-integer, out of range
  writeRecFile(p('frac.rec'), [{ label: 1, image: hwcToPlanes(syntheticImage(0)) }, { label: 2.5, image: hwcToPlanes(syntheticImage(1)) }]);
  await rejectsUser(openSource(p('frac.rec'), 'train', OPTS), new RegExp(`frac\\.rec: record 1 at byte offset ${second}: label 2\\.5 is not an integer in \\[0, 10\\)`));
  writeRecFile(p('range.rec'), [{ label: 10, image: hwcToPlanes(syntheticImage(0)) }]);
  await rejectsUser(openSource(p('range.rec'), 'train', OPTS), /range\.rec: record 0 at byte offset 0: label 10 is not an integer in \[0, 10\)/);
  writeBinFile(p('label.bin'), [syntheticImage(0), syntheticImage(1)], [3, 12]);
  await rejectsUser(openSource(p('label.bin'), 'train', OPTS), /label\.bin: record 1 at byte offset 3073: label 12 is not an integer in \[0, 10\)/);
  // undecodable image: found when the batch is built, named by record and offset
  writeRecFile(p('junk.rec'), [{ label: 1, image: encodePng(syntheticImage(0)) }, { label: 1, image: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]) }]);
  const junkOffset = readFileSync(p('junk.rec')).indexOf(Buffer.from([0x0a, 0x23, 0xd7, 0xce]), 8);
  for (const workers of [0, 1]) {
    const pipe = await openPipeline(cfgOf({ data: { train: p('junk.rec'), workers }, train: { batchSize: 2 } }), 'train');
    await rejectsUser(collect(pipe, 0), new RegExp(`junk\\.rec: record 1 at byte offset ${junkOffset}: undecodable JPEG image`));
    await pipe.close();
  }
});

test('several labels per record: data.labelIndex picks one, and the user is told once', async () => {
  const dir = tmp();
  const path = join(dir, 'multi.rec');
  writeRecFile(path, [0, 1, 2].map((i) => ({ label: [i, 9 - i], image: hwcToPlanes(syntheticImage(i)) })));
  const notes: string[] = [];
  const p = await openPipeline(cfgOf({ data: { train: path, labelIndex: 1, workers: 0 }, train: { batchSize: 3 } }), 'train', undefined, { warn: (l) => notes.push(l) });
  const [b] = await collect(p, 0);
  assert.deepEqual([...b!.labels].sort(), [7, 8, 9]);
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /multi\.rec: records carry 2 labels each; using label 1 \(data\.labelIndex\)/);
  await p.close();
  await rejectsUser(openSource(path, 'train', { ...OPTS, labelIndex: 2 }), /record 0 at byte offset 0: data\.labelIndex 2 but the record has 2 labels/);
});

// ---------------------------------------------------------------- batches

test('batch bookkeeping: drop last for training, every sample once for evaluation', () => {
  assert.equal(batchesPerEpoch(10, 4, true), 2);
  assert.equal(batchesPerEpoch(10, 4, false), 3);
  const o = epochOrder(10, 1, 0, true);
  assert.deepEqual([...o].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual([...o], [...epochOrder(10, 1, 1, true)]);
  assert.deepEqual([...epochOrder(4, 1, 0, false)], [0, 1, 2, 3]);
});

test('evaluation batches: file order, center crop, minus rgbMean, last batch short', async () => {
  const dir = tmp();
  const { path, labels } = recFixture(dir, 5, true, 'raw');
  const p = await openPipeline(cfgOf({ data: { val: path, workers: 0 }, train: { evalBatchSize: 2 } }), 'val');
  assert.equal(p.batchesPerEpoch, 3);
  const bs = await collect(p, 0);
  assert.deepEqual(bs.map((b) => b.size), [2, 2, 1]);
  assert.deepEqual(bs.flatMap((b) => [...b.labels]), labels);
  const b = bs[1]!;
  assert.deepEqual([b.height, b.width], [28, 28]);
  const src = syntheticImage(3); // batch 1, sample 1
  const [y, x] = [5, 7];
  const o = ((1 * 28 + y) * 28 + x) * 3;
  const s = ((y + 2) * 32 + (x + 2)) * 3;
  assert.ok(Math.abs(b.images[o]! - (src[s]! - 123.68)) < 1e-4);
  assert.ok(Math.abs(b.images[o + 2]! - (src[s + 2]! - 103.939)) < 1e-4);
  await p.close();
});

test('training batches depend only on (seed, epoch): two pipelines, fromBatch, cache and workers agree', async () => {
  const dir = tmp();
  const { path, labels } = recFixture(dir, 11, false, 'png');
  const cfg = (workers: number, cache = true, seed = 5) => cfgOf({ data: { train: path, workers, cache }, train: { batchSize: 4, seed } });
  const a = await openPipeline(cfg(0), 'train');
  const b = await openPipeline(cfg(0, false), 'train');
  assert.equal(a.batchesPerEpoch, 2);
  const a0 = await collect(a, 3);
  const a0again = await collect(a, 3); // cached pass
  const b0 = await collect(b, 3);
  const bFrom = await collect(b, 3, 1);
  assert.equal(a0.length, 2);
  for (const bs of [a0again, b0]) {
    assert.deepEqual(bs.map((x) => [...x.labels]), a0.map((x) => [...x.labels]));
    assert.deepEqual(bs.map((x) => x.images), a0.map((x) => x.images));
  }
  assert.deepEqual(bFrom.map((x) => x.index), [1]);
  assert.deepEqual(bFrom[0]!.images, a0[1]!.images);
  // the labels follow the seeded order
  const order = epochOrder(11, 5, 3, true);
  assert.deepEqual([...a0[0]!.labels], [...order.subarray(0, 4)].map((i) => labels[i]));
  // another epoch, another seed: other batches
  assert.notDeepEqual((await collect(a, 4))[0]!.images, a0[0]!.images);
  const c = await openPipeline(cfg(0, true, 6), 'train');
  assert.notDeepEqual((await collect(c, 3))[0]!.images, a0[0]!.images);
  // worker threads give the same batches as the main thread
  const w = await openPipeline(cfg(2), 'train');
  const w0 = await collect(w, 3);
  assert.deepEqual(w0.map((x) => x.images), a0.map((x) => x.images));
  // an abandoned epoch (consumer stops early) does not break the next one
  for await (const _ of w.epoch(3)) break;
  assert.deepEqual((await collect(w, 3)).map((x) => x.images), a0.map((x) => x.images));
  await Promise.all([a.close(), b.close(), c.close(), w.close()]);
});

test('paper preset: 32x32 output, (x/255 - mean)/std; a training split smaller than a batch is an error', async () => {
  const dir = tmp();
  const { path } = recFixture(dir, 3, false, 'raw');
  const p = await openPipeline(cfgOf({ data: { val: path, workers: 0, imageShape: [3, 32, 32], augment: { preset: 'paper' } }, train: { evalBatchSize: 3 } }), 'val');
  const [b] = await collect(p, 0);
  assert.deepEqual([b!.height, b!.width], [32, 32]);
  const src = syntheticImage(2);
  const o = (2 * 1024 + 40) * 3 + 1;
  assert.ok(Math.abs(b!.images[o]! - (src[40 * 3 + 1]! / 255 - 0.4822) / 0.1994) < 1e-5);
  await p.close();
  await rejectsUser(openPipeline(cfgOf({ data: { train: path, workers: 0 }, train: { batchSize: 4 } }), 'train'), /3 training samples, fewer than train\.batchSize 4/);
  // Counted after data.limit, and said so.
  await rejectsUser(
    openPipeline(cfgOf({ data: { train: path, workers: 0, limit: 2 }, train: { batchSize: 3 } }), 'train'),
    /: 2 training samples \(the first 2, data\.limit\), fewer than train\.batchSize 3: an epoch would have no batch$/,
  );
});

test('a process using worker threads exits by itself, closed or not, even mid-epoch', async () => {
  const { spawnSync } = await import('node:child_process');
  const dir = tmp();
  const { path } = recFixture(dir, 9, false, 'png');
  const mod = new URL('../src/data/index.js', import.meta.url).href;
  const schema = new URL('../src/config/schema.js', import.meta.url).href;
  for (const close of [true, false]) {
    const script = join(dir, `child-${close}.mjs`);
    writeFileSync(
      script,
      `import { openPipeline } from ${JSON.stringify(mod)};
import { configSchema } from ${JSON.stringify(schema)};
const cfg = configSchema.parse({ data: { train: ${JSON.stringify(path)}, workers: 2 }, train: { batchSize: 2 } });
const p = await openPipeline(cfg, 'train');
let n = 0;
for await (const b of p.epoch(0)) { n += b.size; break; }
${close ? 'await p.close();' : ''}
console.log('batch of', n);
`,
    );
    const r = spawnSync(process.execPath, [...process.execArgv, script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.signal, null, `child ${close ? 'with' : 'without'} close() hung`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'batch of 2');
  }
});

test('a bad label inside a .tar.gz names the archive member and the record', async () => {
  const dir = tmp();
  const root = join(dir, 'cifar-10-batches-bin');
  mkdirSync(root);
  writeBinFile(join(root, 'data_batch_1.bin'), [syntheticImage(0)], [1]);
  writeBinFile(join(root, 'data_batch_2.bin'), [syntheticImage(1), syntheticImage(2)], [2, 200]);
  writeBinFile(join(root, 'test_batch.bin'), [syntheticImage(3)], [3]);
  await tarCreate({ gzip: true, file: join(dir, 'c.tar.gz'), cwd: dir }, ['cifar-10-batches-bin']);
  await rejectsUser(
    openSource(join(dir, 'c.tar.gz'), 'train', OPTS),
    /c\.tar\.gz:cifar-10-batches-bin\/data_batch_2\.bin: record 1 at byte offset 3073: label 200 is not an integer in \[0, 10\)/,
  );
  assert.deepEqual([...(await openSource(join(dir, 'c.tar.gz'), 'train', { ...OPTS, limit: 2 })).labels], [1, 2]);
});

test('CIFAR-100 binary: 3074-byte records, coarse then fine label, data.labelField picks one', async () => {
  const dir = tmp();
  const rec = (coarse: number, fine: number, k: number) => Buffer.concat([Buffer.from([coarse, fine]), hwcToPlanes(syntheticImage(k))]);
  writeFileSync(join(dir, 'train.bin'), Buffer.concat([rec(3, 45, 0), rec(19, 99, 1)]));
  writeFileSync(join(dir, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n'));
  const fine = await openSource(join(dir, 'train.bin'), 'train', { ...OPTS, numClasses: 100 });
  assert.equal(fine.format, 'cifar100-binary');
  assert.deepEqual([...fine.labels], [45, 99]);
  assert.equal(fine.classNames[99], 'fine99');
  assert.deepEqual(new SampleReader(fine.spec, null).read(1), syntheticImage(1));
  const coarse = await openSource(join(dir, 'train.bin'), 'train', { ...OPTS, numClasses: 20, labelField: 'coarse' });
  assert.deepEqual([...coarse.labels], [3, 19]);
  assert.equal(coarse.classNames[0], 'class 0');
});

test('missing data points to mixup data download', () => {
  const empty = tempDir('mixup-nodata-');
  const cfg = configSchema.parse({ data: { dir: empty } });
  assert.throws(
    () => resolveDataPaths(cfg.data),
    (e: unknown) => e instanceof UserError && e.message.startsWith(`data.dir ${empty}: no CIFAR-10 data found; looked for `) && e.message.endsWith(`(get it with: mixup data download cifar10 --dir ${empty})`),
  );
  assert.throws(() => resolveDataPaths(configSchema.parse({}).data), /^UserError: no data: set data\.dir .*\(get the data with: mixup data download cifar10 --dir data\/cifar10\)$/);
});

// ---------------------------------------------------------------- what was opened

test('description of a CIFAR binary directory, and a note when data_batch_1..5 are incomplete', async () => {
  const dir = tmp();
  const root = join(dir, 'cifar-10-batches-bin');
  mkdirSync(root);
  writeBinFile(join(root, 'data_batch_1.bin'), [syntheticImage(0), syntheticImage(1)], [0, 1]);
  writeBinFile(join(root, 'test_batch.bin'), [syntheticImage(2)], [2]);
  const notes: string[] = [];
  const warn = (l: string) => notes.push(l);
  const tr = await openPipeline(cfgOf({ data: { dir, workers: 0 }, train: { batchSize: 1 } }), 'train', undefined, { warn });
  assert.equal(tr.description, `CIFAR-10 binary, ${root}/data_batch_1.bin (1 of the usual 5 files), 2 samples`);
  assert.deepEqual(notes, [
    `${root}: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin missing: training on data_batch_1.bin only, 2 samples instead of the usual 50000`,
  ]);
  await tr.close();
  const va = await openPipeline(cfgOf({ data: { dir, workers: 0 } }), 'val', undefined, { warn });
  assert.equal(va.description, `CIFAR-10 binary, ${root}/test_batch.bin, 1 sample`);
  assert.equal(notes.length, 1, 'no note for the validation split');
  await va.close();

  // All five: no note; a limit says how much of the split is used.
  for (let k = 2; k <= 5; k++) writeBinFile(join(root, `data_batch_${k}.bin`), [syntheticImage(k)], [k]);
  const all = await openSource(root, 'train', { ...OPTS, limit: 3 });
  assert.equal(all.description, `CIFAR-10 binary, ${root}/data_batch_{1,2,3,4,5}.bin (the usual 5 files), 3 of 6 samples (data.limit)`);
  assert.deepEqual(all.notes, []);
  assert.equal(all.numSamples, 3);
  // One file named directly: described, but it was the user's choice: no note.
  const one = await openSource(join(root, 'data_batch_2.bin'), 'train', OPTS);
  assert.equal(one.description, `CIFAR-10 binary, ${root}/data_batch_2.bin (1 of the usual 5 files), 1 sample`);
  assert.deepEqual(one.notes, []);
});

test('description of a .tar.gz missing training batches, with the note', async () => {
  const dir = tmp();
  const root = join(dir, 'cifar-10-batches-bin');
  mkdirSync(root);
  writeBinFile(join(root, 'data_batch_1.bin'), [syntheticImage(0)], [0]);
  writeBinFile(join(root, 'data_batch_3.bin'), [syntheticImage(1), syntheticImage(2)], [1, 2]);
  writeBinFile(join(root, 'test_batch.bin'), [syntheticImage(3)], [3]);
  const tgz = join(dir, 'cifar-10-binary.tar.gz');
  await tarCreate({ gzip: true, file: tgz, cwd: dir }, ['cifar-10-batches-bin']);
  const t = await openSource(tgz, 'train', OPTS);
  assert.equal(t.description, `CIFAR-10 binary, ${tgz}:data_batch_{1,3}.bin (2 of the usual 5 files), 3 samples`);
  assert.deepEqual(t.notes, [`${tgz}: data_batch_2.bin, data_batch_4.bin, data_batch_5.bin missing: training on data_batch_1.bin, data_batch_3.bin only, 3 samples instead of the usual 50000`]);
  const v = await openSource(tgz, 'val', { ...OPTS, limit: 1 });
  assert.equal(v.description, `CIFAR-10 binary, ${tgz}:test_batch.bin, 1 sample`);
  assert.deepEqual(v.notes, []);
});

test('description of RecordIO: encoding, .idx or scanned, several labels, limit; CIFAR-100 names its label field', async () => {
  const dir = tmp();
  const withIdx = recFixture(dir, 7, true).path;
  const without = recFixture(dir, 7, false, 'raw').path;
  assert.equal((await openSource(withIdx, 'train', OPTS)).description, `RecordIO ${withIdx} (PNG, with .idx), 7 records`);
  assert.equal((await openSource(without, 'val', OPTS)).description, `RecordIO ${without} (raw 3x32x32, without .idx (scanned)), 7 records`);
  assert.equal((await openSource(withIdx, 'train', { ...OPTS, limit: 3 })).description, `RecordIO ${withIdx} (PNG, with .idx), first 3 records (data.limit)`);
  assert.equal((await openSource(withIdx, 'val', { ...OPTS, limit: 30 })).description, `RecordIO ${withIdx} (PNG, with .idx), 7 records`);
  const jpg = join(dir, 'j.rec');
  writeRecFile(jpg, [{ label: [1, 2], image: encodeJpeg(syntheticImage(0)) }, { label: [3, 4], image: encodeJpeg(syntheticImage(1)) }], true);
  const pipe = await openPipeline(cfgOf({ data: { train: jpg, labelIndex: 1, workers: 0 }, train: { batchSize: 2 } }), 'train', undefined, { warn: () => {} });
  assert.equal(pipe.description, `RecordIO ${jpg} (JPEG, with .idx, label 1 of 2), 2 records`);
  await pipe.close();

  const rec = (coarse: number, fine: number, k: number) => Buffer.concat([Buffer.from([coarse, fine]), hwcToPlanes(syntheticImage(k))]);
  writeFileSync(join(dir, 'train.bin'), Buffer.concat([rec(3, 45, 0), rec(19, 99, 1)]));
  const c100 = await openSource(join(dir, 'train.bin'), 'train', { ...OPTS, numClasses: 20, labelField: 'coarse' });
  assert.equal(c100.description, `CIFAR-100 binary, ${dir}/train.bin (coarse labels), 2 samples`);
  assert.deepEqual(c100.notes, []);
});

test('sameDataNote: the same file for training and validation is a note (not an error), via warn of the val split', async () => {
  const dir = tmp();
  const { path } = recFixture(dir, 4, true);
  symlinkSync(path, join(dir, 'link.rec'));
  const same = cfgOf({ data: { train: path, val: path, workers: 0 }, train: { batchSize: 2, evalBatchSize: 2 } });
  const expected = `data.train and data.val are the same file (${path}): the validation accuracy will be measured on training data`;
  assert.equal(sameDataNote(same), expected);
  // Through a symlink and a relative path: still the same file.
  const rel = relative(process.cwd(), path);
  assert.equal(sameDataNote(cfgOf({ data: { train: rel, val: join(dir, 'link.rec') } })), `data.train and data.val are the same file (${join(dir, 'link.rec')}): the validation accuracy will be measured on training data`);
  const notes: string[] = [];
  const va = await openPipeline(same, 'val', undefined, { warn: (l) => notes.push(l) });
  assert.equal(va.numSamples, 4);
  await va.close();
  const tr = await openPipeline(same, 'train', undefined, { warn: (l) => notes.push(l) });
  await tr.close();
  assert.deepEqual(notes, [expected], 'once, from the val split');
  // An explicit path (mixup test --data) is not compared.
  notes.length = 0;
  await (await openPipeline(same, 'val', path, { warn: (l) => notes.push(l) })).close();
  assert.deepEqual(notes, []);

  // A directory or archive named for both: each split takes its own files.
  const root = join(dir, 'bins');
  mkdirSync(root);
  writeBinFile(join(root, 'data_batch_1.bin'), [syntheticImage(0)], [0]);
  writeBinFile(join(root, 'test_batch.bin'), [syntheticImage(1)], [1]);
  assert.equal(sameDataNote(cfgOf({ data: { train: root, val: root } })), null);
  assert.equal(sameDataNote(cfgOf({ data: { dir: root } })), null);
  const tgz = join(dir, 'c.tar.gz');
  await tarCreate({ gzip: true, file: tgz, cwd: dir }, ['bins']);
  assert.equal(sameDataNote(cfgOf({ data: { train: tgz, val: tgz } })), null);
  // A training batch as the validation file of a batch directory.
  assert.equal(
    sameDataNote(cfgOf({ data: { train: root, val: join(root, 'data_batch_1.bin') } })),
    `data.val ${join(root, 'data_batch_1.bin')} is one of the training files in ${root}: the validation accuracy will be measured on training data`,
  );
  // Different files, or a path that does not resolve: null.
  assert.equal(sameDataNote(cfgOf({ data: { train: path, val: join(root, 'test_batch.bin') } })), null);
  assert.equal(sameDataNote(cfgOf({ data: { train: path, val: join(dir, 'nope.rec') } })), null);
});
