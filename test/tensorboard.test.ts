/**
 * TensorBoard event files, read back by a reader written here independently of src/rundir/tfevents.ts:
 * its own CRC32C (a table over the reflected Castagnoli polynomial 0x82F63B78), its own mask, its own
 * varint and field decoding against the official field numbers (tensorflow/core/util/event.proto:
 * Event.wall_time = 1 double, step = 2 int64, file_version = 3 string, summary = 5;
 * tensorflow/core/framework/summary.proto: Summary.value = 1, Value.tag = 1, simple_value = 2 float).
 * A quick run's events must carry exactly curves.csv's figures; after kill -9 and --resume the steps
 * go on without repeats; `mixup report --tensorboard` writes them for a run from before.
 *
 * Needs `npx tsc -p .` first: the kill -9 test runs the compiled CLI (bin/mixup).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { readCurves, type CurveRow } from '../src/rundir/curves.js';
import { main } from '../src/cli.js';
import { scalarSteps, trimEventFiles, EventFileWriter } from '../src/rundir/tfevents.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { tempDir } from './fixtures/tmp.js';
import { MIXUP_BIN } from './fixtures/cli.js';
import { tinyRunConfig } from './fixtures/tiny-run.js';

// ------------------------------------------------------------------ the independent reader

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32cRef(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function maskRef(crc: number): number {
  const rot = Number(((BigInt(crc) >> 15n) | (BigInt(crc) << 17n)) & 0xffffffffn);
  return Number((BigInt(rot) + 0xa282ead8n) % 2n ** 32n);
}

interface Field {
  no: number;
  wire: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

/** Decodes one protobuf message's fields (wire types 0, 1, 2, 5). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[p++]!;
      v |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if (!(b & 0x80)) return v;
    }
  };
  while (p < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: varint() });
    else if (wire === 1) out.push({ no, wire, bytes: buf.slice(p, (p += 8)) });
    else if (wire === 5) out.push({ no, wire, bytes: buf.slice(p, (p += 4)) });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, bytes: buf.slice(p, (p += n)) });
    } else throw new Error(`wire type ${wire} not expected`);
  }
  return out;
}

interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Map<string, number>;
}

/** Reads every record of an event file, asserting both CRCs of each and that no byte is left over. */
function readEventFile(file: string): ReadEvent[] {
  const buf = new Uint8Array(readFileSync(file));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const events: ReadEvent[] = [];
  let p = 0;
  while (p < buf.length) {
    assert.ok(p + 12 <= buf.length, `${file}: record header cut at byte ${p}`);
    const n = Number(dv.getBigUint64(p, true));
    assert.equal(dv.getUint32(p + 8, true), maskRef(crc32cRef(buf.subarray(p, p + 8))), `${file}: length CRC at byte ${p}`);
    const data = buf.subarray(p + 12, p + 12 + n);
    assert.equal(data.length, n, `${file}: record data cut at byte ${p}`);
    assert.equal(dv.getUint32(p + 12 + n, true), maskRef(crc32cRef(data)), `${file}: data CRC at byte ${p}`);
    p += 16 + n;
    const e: ReadEvent = { wallTime: NaN, step: 0, scalars: new Map() };
    for (const f of fields(data)) {
      if (f.no === 1 && f.wire === 1) e.wallTime = new DataView(f.bytes!.buffer).getFloat64(0, true);
      else if (f.no === 2 && f.wire === 0) e.step = Number(BigInt.asIntN(64, f.varint!));
      else if (f.no === 3 && f.wire === 2) e.fileVersion = new TextDecoder().decode(f.bytes);
      else if (f.no === 5 && f.wire === 2) {
        for (const v of fields(f.bytes!)) {
          assert.equal(v.no, 1, 'Summary holds only values (field 1)');
          let tag = '';
          let value = NaN;
          for (const g of fields(v.bytes!)) {
            if (g.no === 1 && g.wire === 2) tag = new TextDecoder().decode(g.bytes);
            else if (g.no === 2 && g.wire === 5) value = new DataView(g.bytes!.buffer).getFloat32(0, true);
          }
          e.scalars.set(tag, value);
        }
      } else assert.fail(`unexpected Event field ${f.no} (wire ${f.wire})`);
    }
    events.push(e);
  }
  return events;
}

/** Every event of a run's tb/ files, file by file (sorted by name, as TensorBoard reads them). */
function readRunEvents(out: string): { files: string[]; events: ReadEvent[] } {
  const dir = join(out, 'tb');
  const files = readdirSync(dir).filter((n) => n.startsWith('events.out.tfevents.')).sort();
  const events: ReadEvent[] = [];
  for (const f of files) {
    const evs = readEventFile(join(dir, f));
    assert.equal(evs[0]?.fileVersion, 'brain.Event:2', `${f}: first event carries file_version`);
    assert.ok(evs.slice(1).every((e) => e.fileVersion === undefined));
    events.push(...evs);
  }
  return { files, events };
}

/** tag → [step, value] in file order. */
function series(events: ReadEvent[]): Map<string, [number, number][]> {
  const m = new Map<string, [number, number][]>();
  for (const e of events) for (const [tag, v] of e.scalars) m.set(tag, [...(m.get(tag) ?? []), [e.step, v]]);
  return m;
}

/** Asserts every `epoch/<column>` series equals curves.csv exactly (as float32), at step epoch·batchesPerEpoch. */
function assertMatchesCurves(s: Map<string, [number, number][]>, rows: CurveRow[], batchesPerEpoch: number): void {
  const cols = Object.keys(rows[0]!).filter((c) => c !== 'epoch');
  assert.ok(cols.includes('val_acc') && cols.includes('val_ece') && cols.includes('samples_per_sec'));
  for (const c of cols) {
    const want = rows.map((r) => [r.epoch * batchesPerEpoch, Math.fround((r as unknown as Record<string, number>)[c]!)]);
    assert.deepEqual(s.get(`epoch/${c}`), want, `epoch/${c}`);
  }
}

// ------------------------------------------------------------------ tests

let dataDir: string;
before(() => {
  dataDir = cifarBinDir(96, 40); // 6 batches of 16 per epoch
});

function configFile(train: Record<string, unknown> = {}): { file: string; out: string } {
  return tinyRunConfig('mixup-tb-run-', dataDir, { train: { seed: 4, logEvery: 2, ...train } });
}

test('the reader\'s CRC32C and mask: known answers', () => {
  // CRC-32C check value (RFC 3720 appendix B.4 / the CRC catalogue): "123456789" → 0xE3069283
  assert.equal(crc32cRef(new TextEncoder().encode('123456789')), 0xe3069283);
  // 32 zero bytes → 0x8A9136AA (RFC 3720 B.4)
  assert.equal(crc32cRef(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(maskRef(0), 0xa282ead8);
  assert.equal(maskRef(0xffffffff), (0xffffffff + 0xa282ead8) % 2 ** 32);
});

test('a quick run writes event files: valid CRCs, scalars equal to curves.csv, batch points every logEvery', async () => {
  const { file, out } = configFile();
  const err: string[] = [];
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: (l) => err.push(l) }), 0, err.join('\n'));
  const rows = readCurves(join(out, 'curves.csv'));
  const { files, events } = readRunEvents(out);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^events\.out\.tfevents\.\d+\.[^/]+$/);
  assert.ok(events.every((e) => Math.abs(e.wallTime - Date.now() / 1000) < 600));
  const s = series(events);
  assertMatchesCurves(s, rows, 6);
  // logEvery 2 over 6 batches per epoch: steps 2, 4, 6 of epoch 1, 8, 10, 12 of epoch 2; lr 0.2 then 0.02
  assert.deepEqual(s.get('batch/lr'), [2, 4, 6, 8, 10, 12].map((k) => [k, Math.fround(k <= 6 ? 0.2 : 0.02)]));
  const losses = s.get('batch/train_loss')!;
  assert.deepEqual(losses.map(([k]) => k), [2, 4, 6, 8, 10, 12]);
  // the mean of the three points of an epoch (2 batches each) is the epoch's train_loss
  for (const r of rows) {
    const pts = losses.slice((r.epoch - 1) * 3, r.epoch * 3).map(([, v]) => v);
    assert.ok(Math.abs(pts.reduce((a, b) => a + b, 0) / 3 - r.train_loss) < 1e-5, `epoch ${r.epoch}: ${pts} vs ${r.train_loss}`);
  }
});

test('train.tensorboard false writes no tb/', async () => {
  const { file, out } = configFile({ tensorboard: false, epochs: 1 });
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: () => undefined }), 0);
  assert.deepEqual(readdirSync(out).filter((n) => n === 'tb'), []);
});

test('kill -9 in epoch 2 (and a torn record), then --resume: every step once, values equal to curves.csv', async () => {
  const { file, out } = configFile({ logEvery: 1 });
  const child = spawn(process.execPath, [MIXUP_BIN, 'train', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const killed = new Promise<string | null>((res) => child.on('close', (_c, sig) => res(sig)));
  await new Promise<void>((res, rej) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (/^Epoch\[2\] Batch \[3\]/.test(l)) {
        child.kill('SIGKILL');
        res();
      }
    });
    child.on('close', () => rej(new Error('the child ended before epoch 2 batch 3')));
  });
  assert.equal(await killed, 'SIGKILL');
  const before = series(readRunEvents(out).events);
  assert.ok(before.get('batch/train_loss')!.some(([k]) => k > 6), 'steps of epoch 2 were written before the kill');
  // a record cut short, as a kill during a write leaves it
  const tb = join(out, 'tb');
  const first = readdirSync(tb)[0]!;
  appendFileSync(join(tb, first), Buffer.from([40, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
  await new Promise((r) => setTimeout(r, 1100)); // the resumed run's file gets a later second in its name
  const err: string[] = [];
  assert.equal(await main(['train', '--resume', out], { out: () => undefined, err: (l) => err.push(l) }), 0);
  // 2 scalars (loss, lr) per batch of epoch 2 written before the kill
  const removed = before.get('batch/train_loss')!.filter(([k]) => k > 6).length * 2;
  assert.ok(err.includes(`resume: ${removed} TensorBoard points logged after the checkpoint removed from ${join(out, 'tb')}, and a torn record (10 bytes) cut off the end of ${first}`), err.join('\n'));
  const { files, events } = readRunEvents(out);
  assert.equal(files.length, 2);
  const s = series(events);
  assertMatchesCurves(s, readCurves(join(out, 'curves.csv')), 6);
  for (const tag of ['batch/train_loss', 'batch/lr']) assert.deepEqual(s.get(tag)!.map(([k]) => k), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], tag);
});

test('a finished run\'s event file cut short (truncate -s -7), then --resume --epochs 3: the torn epoch-2 points are said and written again from curves.csv', async () => {
  const { file, out } = configFile();
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: () => undefined }), 0);
  const tb = join(out, 'tb');
  const first = readdirSync(tb)[0]!;
  const size = statSync(join(tb, first)).size;
  truncateSync(join(tb, first), size - 7);
  assert.deepEqual([...scalarSteps(tb, 'epoch/')], [6], 'the torn record held the epoch-2 points');
  await new Promise((r) => setTimeout(r, 1100)); // the resumed run's file gets a later second in its name
  const err: string[] = [];
  assert.equal(await main(['train', '--resume', out, '--epochs', '3'], { out: () => undefined, err: (l) => err.push(l) }), 0, err.join('\n'));
  // nothing logged after the checkpoint (the run had finished): the file keeps its whole records, the torn tail goes
  const torn = statSync(join(tb, first)).size;
  assert.ok(err.includes(`resume: 0 TensorBoard points logged after the checkpoint removed from ${tb}, and a torn record (${size - 7 - torn} bytes) cut off the end of ${first}`), err.join('\n'));
  assert.ok(err.includes('resume: the TensorBoard points of 1 epoch (2) were missing and are written again from curves.csv'), err.join('\n'));
  const rows = readCurves(join(out, 'curves.csv'));
  assert.equal(rows.length, 3);
  assertMatchesCurves(series(readRunEvents(out).events), rows, 6);
});

test('trimEventFiles drops a torn tail and the events past a position; EventFileWriter never reuses a name', () => {
  const dir = tempDir('mixup-tb-trim-');
  const w1 = new EventFileWriter(dir, () => 1000);
  w1.scalars(1, [{ tag: 'batch/lr', value: 0.1 }]);
  w1.scalars(6, [{ tag: 'epoch/val_acc', value: 0.5 }, { tag: 'batch/lr', value: 0.1 }]);
  w1.close();
  const w2 = new EventFileWriter(dir, () => 1000.5);
  assert.notEqual(w2.file, w1.file);
  w2.close();
  appendFileSync(w1.file, Buffer.from([1, 2, 3]));
  assert.equal(trimEventFiles(dir, (tag, step) => tag === 'epoch/val_acc' || step <= 1), 1);
  const evs = readEventFile(w1.file); // asserts no byte is left over
  assert.deepEqual(evs.map((e) => [e.step, [...e.scalars]]), [[0, []], [1, [['batch/lr', Math.fround(0.1)]]], [6, [['epoch/val_acc', 0.5]]]]);
  assert.equal(evs[0]!.wallTime, 1000);
  rmSync(dir, { recursive: true });
});

test('mixup report --tensorboard writes the events of a run from before; a run that has them is left alone', async () => {
  const { file, out } = configFile({ tensorboard: false });
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: () => undefined }), 0);
  const err: string[] = [];
  const outLines: string[] = [];
  assert.equal(await main(['report', '--tensorboard', out], { out: (l) => outLines.push(l), err: (l) => err.push(l) }), 0, err.join('\n'));
  const s = series(readRunEvents(out).events);
  assertMatchesCurves(s, readCurves(join(out, 'curves.csv')), 6);
  assert.equal(s.get('batch/lr'), undefined);
  assert.match(outLines.join('\n'), /wrote 2 epochs/);
  err.length = 0;
  assert.equal(await main(['report', '--tensorboard', out], { out: () => undefined, err: (l) => err.push(l) }), 0);
  assert.match(err.join('\n'), /already has event files; left alone/);
  assert.equal(readdirSync(join(out, 'tb')).length, 1);
});

test('report --tensorboard: the table\'s options are refused in one line; a directory that does not exist exits 2, as plain report does', async () => {
  const { file, out } = configFile({ tensorboard: false, epochs: 1 });
  assert.equal(await main(['train', '--config', file], { out: () => undefined, err: () => undefined }), 0);
  const run = (args: string[]) => {
    const err: string[] = [];
    return main(['report', ...args], { out: () => undefined, err: (l) => err.push(l) }).then((code) => ({ code, err }));
  };
  for (const [extra, names] of [
    [['--plot', join(out, 'p.svg')], '--plot'],
    [['--format', 'csv'], '--format'],
    [['--format', 'md'], '--format'],
    [['--compare-reference', '--table', 'noise'], '--table, --compare-reference'],
  ] as const) {
    const r = await run(['--tensorboard', out, ...extra]);
    assert.equal(r.code, 2, extra.join(' '));
    assert.deepEqual(r.err, [`mixup: error: report --tensorboard writes event files, no table: give it without ${names}`]);
  }
  assert.deepEqual(readdirSync(out).filter((n) => n === 'tb' || n === 'p.svg'), [], 'nothing written');
  const missing = join(out, 'nope');
  const plain = await run([missing]);
  const tb = await run(['--tensorboard', missing]);
  assert.equal(plain.code, 2);
  assert.equal(tb.code, 2);
  assert.deepEqual(tb.err, [`mixup: note: ${missing}: no such directory; skipped`, `mixup: error: report --tensorboard: ${missing} holds no run with a finished epoch (see the note above)`]);
  assert.equal(plain.err[0], tb.err[0], 'the same note');
  // one run among missing ones: written, exit 0
  const mixed = await run(['--tensorboard', missing, out]);
  assert.equal(mixed.code, 0, mixed.err.join('\n'));
});
