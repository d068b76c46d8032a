import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { configSchema } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { NdArray, unpickle } from '../src/data/pickle.js';
import { decodePyBatch } from '../src/data/cifarpy.js';
import { tarPasses } from '../src/data/cifarbin.js';
import { planesToHwc } from '../src/data/decode.js';
import { openSource, type SourceOptions } from '../src/data/source.js';
import { SampleReader } from '../src/data/reader.js';
import { openPipeline, resolveDataPaths } from '../src/data/index.js';
import { inspectPath, formatInspect } from '../src/data/inspect.js';
import { PickleWriter, cifarPyBatch, cifarPyDir, cyclingLabels, pyImages } from './fixtures/pickle.js';
import { tempDir } from './fixtures/tmp.js';

const OPTS: SourceOptions = { numClasses: 10, labelIndex: 0, labelField: 'fine', limit: null };
const BATCH = 'expected a CIFAR-10 python batch (a pickled dict with data, uint8 [N,3072], and labels)';

async function rejectsUser(p: Promise<unknown> | (() => unknown), message: string): Promise<void> {
  const check = (e: unknown) => {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  };
  if (typeof p === 'function') assert.throws(p, check);
  else await assert.rejects(p, check);
}

/**
 * The brief's minimal batch, by hand: PROTO 2, EMPTY_DICT, MARK, SHORT_BINSTRING 'data',
 * BINSTRING of 2·3072 bytes, SHORT_BINSTRING 'labels', EMPTY_LIST, MARK, BININT1 3, BININT1 7,
 * APPENDS, SETITEMS, STOP. Offsets: the BINSTRING opcode at 10, its length at 11..14, its bytes
 * from 15 to 6159; 6176 bytes in all.
 */
function handBatch(images: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(images.length);
  return Buffer.concat([
    Buffer.from([0x80, 2, 0x7d, 0x28, 0x55, 4]),
    Buffer.from('data'),
    Buffer.from([0x54]),
    len,
    Buffer.from(images),
    Buffer.from([0x55, 6]),
    Buffer.from('labels'),
    Buffer.from([0x5d, 0x28, 0x4b, 3, 0x4b, 7, 0x65, 0x75, 0x2e]),
  ]);
}

// ---------------------------------------------------------------- the unpickler

test('a hand-built protocol-2 batch (byte-string keys, pixels as one BINSTRING) decodes byte for byte', () => {
  const images = pyImages([3, 7], 5);
  const bytes = handBatch(images);
  assert.equal(bytes.length, 6176);
  const b = decodePyBatch(bytes, 'hand');
  assert.deepEqual(b.labels, [3, 7]);
  assert.deepEqual(Buffer.from(b.images), Buffer.from(images)); // bytes ≥ 0x80 included: read as latin1
  assert.ok(images.some((x) => x >= 0x80));
});

test('the published layout (cPickle protocol 2, numpy _reconstruct + BUILD) gives the numpy array as written', () => {
  const labels = cyclingLabels(3, 4);
  const images = pyImages(labels, 9);
  const v = unpickle(cifarPyBatch({ images, labels })) as Map<string, unknown>;
  assert.ok(v instanceof Map);
  assert.deepEqual([...v.keys()], ['data', 'labels', 'batch_label', 'filenames']);
  const data = v.get('data') as NdArray;
  assert.ok(data instanceof NdArray);
  assert.deepEqual([data.shape, data.dtype, data.byteOrder, data.fortran], [[3, 3072], 'u1', '|', false]);
  assert.deepEqual(Buffer.from(data.data!), Buffer.from(images));
  assert.deepEqual(v.get('labels'), [4, 5, 6]);
  assert.equal(v.get('batch_label'), 'training batch 1 of 5');
  assert.deepEqual(v.get('filenames'), ['image_0.png', 'image_1.png', 'image_2.png']);
});

test("Python 3's pickles of a numpy array read too: protocol 2 (_codecs.encode), 4 (BINBYTES), 5 (_frombuffer)", () => {
  // pickle.dumps({b'data': np.array([[1,2,200],[3,4,255]], np.uint8), 'labels': [7, 300]}, protocol=p)
  // with Python 3.12 and numpy 2.4 (numpy._core names).
  const hex: Record<number, string> = {
    2:
      '80027d710028635f636f646563730a656e636f64650a7101580400000064617461710258060000006c6174696e317103867104527105636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7106636e756d70790a6e6461727261790a71074b0085710868015801000000627109680386710a52710b87710c52710d284b014b024b0386710e636e756d70790a64747970650a710f5802000000753171108988877111527112284b0358010000007c71134e4e4e4affffffff4affffffff4b007471146289680158080000000102c3880304c3bf711568038671165271177471186258060000006c6162656c7371195d711a284b074d2c0165752e',
    4: '800495ae000000000000007d9428430464617461948c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b024b03869468058c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b007494628943060102c80304ff947494628c066c6162656c73945d94284b074d2c0165752e',
    5: '80059599000000000000007d9428430464617461948c136e756d70792e5f636f72652e6e756d65726963948c0b5f66726f6d627566666572949394289606000000000000000102c80304ff948c056e756d7079948c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b007494624b024b0386948c014394749452948c066c6162656c73945d94284b074d2c0165752e',
  };
  for (const [p, h] of Object.entries(hex)) {
    const v = unpickle(Buffer.from(h, 'hex')) as Map<unknown, unknown>;
    const entries = [...v].map(([k, x]) => [typeof k === 'string' ? k : Buffer.from(k as Uint8Array).toString('latin1'), x] as const);
    const data = entries.find(([k]) => k === 'data')![1] as NdArray;
    assert.deepEqual([data.shape, data.dtype, data.fortran, [...data.data!]], [[2, 3], 'u1', false, [1, 2, 200, 3, 4, 255]], `protocol ${p}`);
    assert.deepEqual(entries.find(([k]) => k === 'labels')![1], [7, 300], `protocol ${p}`);
  }
});

test('nothing a pickle names is executed: other globals are refused, a __proto__ key stays a key', () => {
  // cos\nsystem\n ('echo pwned',) R — what an attacker's pickle looks like
  const evil = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('cos\nsystem\n'), Buffer.from([0x55, 10]), Buffer.from('echo pwned'), Buffer.from([0x85, 0x52, 0x2e])]);
  assert.throws(() => unpickle(evil), { message: 'it names the Python object os.system, which is not read (only numpy arrays, lists, dicts, numbers and strings are)' });
  assert.throws(
    () => decodePyBatch(evil, '/d/data_batch_1'),
    { message: `/d/data_batch_1: not a readable pickle: it names the Python object os.system, which is not read (only numpy arrays, lists, dicts, numbers and strings are); ${BATCH}` },
  );
  // NEWOBJ of a class from __main__: refused at the name, before any construction
  const obj = Buffer.concat([Buffer.from([0x80, 2]), Buffer.from('c__main__\nEvil\n'), Buffer.from([0x29, 0x81, 0x2e])]);
  assert.throws(() => unpickle(obj), /names the Python object __main__\.Evil/);
  // {'__proto__': {'polluted': 1}}
  const w = new PickleWriter().op(0x80, 2, 0x7d, 0x28).str('__proto__').op(0x7d, 0x28).str('polluted').int(1).op(0x75, 0x75, 0x2e);
  const v = unpickle(w.bytes()) as Map<string, Map<string, number>>;
  assert.equal(v.get('__proto__')!.get('polluted'), 1);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.getPrototypeOf(v), Map.prototype);
});

test('a damaged pickle is one line naming the file and what was expected', async () => {
  const dir = tempDir('mixup-py-');
  const good = handBatch(pyImages([1, 2], 3));
  const at = (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const cut = at('cut', good.subarray(0, 3000));
  await rejectsUser(openSource(cut, 'train', OPTS), `${cut}: not a readable pickle: truncated: 6144 bytes wanted at byte offset 15, the file ends at 3000; ${BATCH}`);
  const garbage = at('garbage', Buffer.from([0x80, 2, 0xff, 0xfe, 0x00]));
  await rejectsUser(openSource(garbage, 'train', OPTS), `${garbage}: not a readable pickle: Unsupported opcode '255' (near byte offset 3); ${BATCH}`);
  // BINBYTES with length -5: refused, not a jump backwards
  const back = at('back', Buffer.from([0x80, 3, 0x42, 0xfb, 0xff, 0xff, 0xff, 0x2e]));
  await rejectsUser(openSource(back, 'train', OPTS), `${back}: not a readable pickle: bad length -5 at byte offset 7; ${BATCH}`);
  const noStop = at('nostop', good.subarray(0, good.length - 1));
  await rejectsUser(openSource(noStop, 'train', OPTS), `${noStop}: not a readable pickle: Unexpected end of file (near byte offset 6175); ${BATCH}`);
  // a list given a dict as its prototype through BUILD {'__proto__': {}}: it passes for a dict in JS
  // until it is read; that is a one-line error too, and nothing outside the list changed
  const crafted = at('crafted', Buffer.concat([Buffer.from([0x80, 2, 0x5d, 0x7d, 0x28, 0x55, 9]), Buffer.from('__proto__'), Buffer.from([0x7d, 0x75, 0x62, 0x2e])]));
  await assert.rejects(openSource(crafted, 'train', OPTS), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.ok(e.message.startsWith(`${crafted}: a malformed pickle (`) && e.message.endsWith(`); ${BATCH}`), e.message); // (V8's TypeError text)
    return true;
  });
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.equal(Object.getPrototypeOf([]), Array.prototype);
  // readable pickles that are no CIFAR batch
  const list = at('list', Buffer.from([0x80, 2, 0x5d, 0x2e]));
  await rejectsUser(openSource(list, 'train', OPTS), `${list}: the pickle holds a list of 0, ${BATCH}`);
  const w = new PickleWriter().op(0x80, 2, 0x7d, 0x28).str('data').str(new Uint8Array(3072)).op(0x75, 0x2e);
  const noLabels = at('nolabels', w.bytes());
  await rejectsUser(openSource(noLabels, 'train', OPTS), `${noLabels}: the pickled dict has no labels entry (keys: data); ${BATCH}`);
  const fewer = new PickleWriter().op(0x80, 2, 0x7d, 0x28).str('data').str(new Uint8Array(2 * 3072)).str('labels').op(0x5d, 0x28).int(1).op(0x65, 0x75, 0x2e);
  const few = at('few', fewer.bytes());
  await rejectsUser(openSource(few, 'train', OPTS), `${few}: labels has 1 entries, data 2 images`);
  const big = at('label12', cifarPyBatch({ images: pyImages([1, 12], 1), labels: [1, 12] }));
  await rejectsUser(openSource(big, 'train', OPTS), `${big}: image 1: label 12 is not an integer in [0, 10)`);
});

// ---------------------------------------------------------------- wherever data is accepted

test('a cifar-10-batches-py folder: found under --data-dir, described, images and labels as written', async () => {
  const root = tempDir('mixup-py-');
  const dir = cifarPyDir(root, 2, 12, 5);
  assert.deepEqual(resolveDataPaths({ ...configSchema.parse({}).data, dir: root }), {
    train: dir,
    val: join(dir, 'test_batch'),
  });
  const tr = await openSource(dir, 'train', OPTS);
  assert.equal(tr.format, 'cifar-python');
  assert.equal(tr.description, `CIFAR-10 python, ${dir}/data_batch_{1,2} (2 of the usual 5 files), 24 samples`);
  assert.deepEqual(tr.notes, [`${dir}: data_batch_3, data_batch_4, data_batch_5 missing: training on data_batch_1, data_batch_2 only, 24 samples instead of the usual 50000`]);
  assert.deepEqual([...tr.labels], [...cyclingLabels(12, 1), ...cyclingLabels(12, 2)]);
  assert.equal(tr.classNames[9], 'truck');
  const reader = new SampleReader(tr.spec, null);
  const second = pyImages(cyclingLabels(12, 2), 2);
  // sample 13 = image 1 of data_batch_2, as HWC
  assert.deepEqual(Buffer.from(reader.read(13)), Buffer.from(planesToHwc(second.subarray(3072, 6144), new Uint8Array(3072))));
  reader.close();
  const va = await openSource(join(dir, 'test_batch'), 'val', OPTS);
  assert.equal(va.description, `CIFAR-10 python, ${dir}/test_batch, 5 samples`);
  assert.deepEqual([...va.labels], [0, 1, 2, 3, 4]);
  const lim = await openSource(dir, 'train', { ...OPTS, limit: 15 });
  assert.equal(lim.description, `CIFAR-10 python, ${dir}/data_batch_{1,2} (2 of the usual 5 files), 15 of 24 samples (data.limit)`);
  assert.equal(lim.numSamples, 15);
});

test('cifar-10-python.tar.gz: both splits from one pass, the same samples as the folder; a training pipeline over it', async () => {
  const root = tempDir('mixup-py-');
  const dir = cifarPyDir(root, 1, 20, 6);
  const tgz = join(root, 'cifar-10-python.tar.gz');
  await tarCreate({ gzip: true, file: tgz, cwd: root }, ['cifar-10-batches-py']);
  const before = tarPasses;
  const tr = await openSource(tgz, 'train', OPTS);
  const va = await openSource(tgz, 'val', OPTS);
  assert.equal(tarPasses - before, 1);
  assert.equal(tr.format, 'cifar-python-tar.gz');
  assert.equal(tr.description, `CIFAR-10 python, ${tgz}:data_batch_1 (1 of the usual 5 files), 20 samples`);
  assert.equal(va.description, `CIFAR-10 python, ${tgz}:test_batch, 6 samples`);
  const fromDir = await openSource(dir, 'train', OPTS);
  assert.deepEqual([...tr.labels], [...fromDir.labels]);
  const a = new SampleReader(tr.spec, null);
  const b = new SampleReader(fromDir.spec, null);
  assert.deepEqual(Buffer.from(a.read(19)), Buffer.from(b.read(19)));
  a.close();
  b.close();
  // --data-dir naming the folder that holds the archive and what it unpacks to (as torchvision
  // leaves it): the unpacked folder; with the archive only: the archive. A pipeline's batches.
  const both = configSchema.parse({ data: { dir: root } });
  assert.deepEqual(resolveDataPaths(both.data), { train: dir, val: join(dir, 'test_batch') });
  const only = tempDir('mixup-py-');
  writeFileSync(join(only, 'cifar-10-python.tar.gz'), readFileSync(tgz));
  const cfg = configSchema.parse({ data: { dir: only, workers: 1 }, train: { batchSize: 8, evalBatchSize: 4 } });
  assert.deepEqual(resolveDataPaths(cfg.data), { train: join(only, 'cifar-10-python.tar.gz'), val: join(only, 'cifar-10-python.tar.gz') });
  const p = await openPipeline(cfg, 'val', undefined, { warn: () => undefined });
  try {
    const labels: number[] = [];
    for await (const batch of p.epoch(0)) labels.push(...batch.labels);
    assert.deepEqual(labels, [0, 1, 2, 3, 4, 5]);
  } finally {
    await p.close();
  }
});

test('data inspect of a python folder, file and archive: the format, counts and the missing batches', async () => {
  const root = tempDir('mixup-py-');
  const dir = cifarPyDir(root, 1, 10, 4);
  const reports = await inspectPath(root);
  assert.deepEqual(reports.map((r) => r.path), [join(dir, 'data_batch_1'), join(dir, 'test_batch')]);
  const lines = formatInspect(reports[0]!);
  assert.deepEqual(lines.slice(0, 5), [
    join(dir, 'data_batch_1'),
    '  format:   CIFAR-10 python version (pickled dict: numpy uint8 [N,3072] data + labels)',
    '  records:  10',
    '  images:   32x32 ×10; encoding raw planes (R, G, B) ×10',
    '  labels:   10 distinct',
  ]);
  assert.ok(lines.includes(`  note:     ${dir}: data_batch_2, data_batch_3, data_batch_4, data_batch_5 missing: training on data_batch_1 only, 10 samples instead of the usual 50000`));
  const tgz = join(root, 'cifar-10-python.tar.gz');
  await tarCreate({ gzip: true, file: tgz, cwd: root }, ['cifar-10-batches-py']);
  const t = await inspectPath(tgz);
  assert.deepEqual(t.map((r) => [r.path, r.format, r.records]), [
    [`${tgz}:{data_batch_1}`, 'CIFAR-10 python archive (.tar.gz), train split', 10],
    [`${tgz}:{test_batch}`, 'CIFAR-10 python archive (.tar.gz), val split', 4],
  ]);
  mkdirSync(join(root, 'x'));
  writeFileSync(join(root, 'x', 'data_batch_1'), handBatch(pyImages([3, 7], 1)).subarray(0, 100));
  await rejectsUser(inspectPath(join(root, 'x', 'data_batch_1')), `${join(root, 'x', 'data_batch_1')}: not a readable pickle: truncated: 6144 bytes wanted at byte offset 15, the file ends at 100; ${BATCH}`);
});
