import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { main, type Io } from '../src/cli.js';
import { encodePng, hwcToPlanes, syntheticImage, writeBinFile, writeRecFile } from './fixtures/data.js';
import { tempDir } from './fixtures/tmp.js';
import { runMixup } from './fixtures/cli.js';

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await main(args, io);
  return { code, out, err };
}

test('data inspect: counts, encoding, histogram, ids; odd labels give exit 2 after the report', async () => {
  const dir = tempDir('mixup-cli-');
  const rec = join(dir, 'a.rec');
  writeRecFile(rec, [0, 1, 1, 9].map((label, i) => ({ label, image: encodePng(syntheticImage(i)), id: 100 + i })), true);
  const r = await run(['data', 'inspect', rec]);
  assert.equal(r.code, 0, r.err.join('\n'));
  const text = r.out.join('\n');
  assert.match(text, /format: {3}MXNet RecordIO image records, index a\.idx/);
  assert.match(text, /records: {2}4\n/);
  assert.match(text, /images: {3}32x32 ×4; encoding png ×4/);
  assert.match(text, /\n +1 automobile +2\n/);
  assert.match(text, /ids: {6}100\.\.103/);
  assert.match(text, /odd: {6}nothing/);
  const bad = join(dir, 'b.rec');
  writeRecFile(bad, [{ label: 0.5, image: hwcToPlanes(syntheticImage(0)) }, { label: [1, 2], image: Buffer.from([1, 2, 3]) }]);
  const rb = await run(['data', 'inspect', bad]);
  assert.equal(rb.code, 2);
  const tb = rb.out.join('\n');
  assert.match(tb, /labels per record: 1 ×1, 2 ×1/);
  assert.match(tb, /record 0 at byte offset 0: label 0\.5 is not an integer/);
  assert.match(tb, /record 1 at byte offset 3104: undecodable image: 3 bytes/);
  assert.match(rb.err.join('\n'), /^mixup: error: .*b\.rec: 2 problem\(s\), first: record 0 at byte offset 0: label 0\.5 is not an integer$/);
  const bin = join(dir, 'data_batch_1.bin');
  writeBinFile(bin, [syntheticImage(0), syntheticImage(1), syntheticImage(2)], [4, 4, 2]);
  const rbin = await run(['data', 'inspect', bin]);
  assert.equal(rbin.code, 0);
  assert.match(rbin.out.join('\n'), /CIFAR-10 binary \(3073-byte records\)[\s\S]*records: {2}3\n[\s\S]* +4 deer +2\n/);
  writeFileSync(join(dir, 'x.bin'), Buffer.alloc(10));
  const rx = await run(['data', 'inspect', join(dir, 'x.bin')]);
  assert.equal(rx.code, 2);
  assert.match(rx.err[0]!, /x\.bin: size 10 bytes is not a multiple of the CIFAR-10 record size 3073/);
  const rm = await run(['data', 'inspect', join(dir, 'nope.rec')]);
  assert.deepEqual([rm.code, rm.err], [2, [`mixup: error: ${join(dir, 'nope.rec')}: no such file or directory`]]);
});

test('data preview writes a PNG grid whose first cell is the first image, upscaled', async () => {
  const dir = tempDir('mixup-cli-');
  const bin = join(dir, 'test_batch.bin');
  writeBinFile(bin, [syntheticImage(0), syntheticImage(1), syntheticImage(2)], [3, 5, 8]);
  const out = join(dir, 'grid.png');
  const r = await run(['data', 'preview', bin, '--out', out, '--columns', '2']);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.match(r.out[0]!, /wrote .*grid\.png: 3 images \(32x32\)/);
  const png = PNG.sync.read(readFileSync(out));
  // layout: gap 6, title 22, cells of 32·3 = 96 px + gap; 2 columns, 2 rows
  assert.equal(png.width, 2 * (96 + 6) + 6);
  assert.equal(png.height, 22 + 2 * (96 + 16 + 6) + 6);
  const src = syntheticImage(0);
  const at = (x: number, y: number) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
  assert.deepEqual(at(6 + 3 * 5 + 1, 22 + 3 * 7 + 2), [...src.subarray((7 * 32 + 5) * 3, (7 * 32 + 5) * 3 + 3)]);
  const ra = await run(['data', 'preview', bin, '--out', out, '--augment', '--count', '2', '--force']);
  assert.match(ra.out[0]!, /2 images \(28x28, augmented\)/);
});

test("data preview never replaces a user's file: a wrong extension, an existing file without --force, --count above 1,024", async () => {
  const dir = tempDir('mixup-cli-');
  const bin = join(dir, 'test_batch.bin');
  writeBinFile(bin, [syntheticImage(0)], [3]);
  const notes = join(dir, 'notes.txt');
  writeFileSync(notes, 'my notes');
  const grid = join(dir, 'grid.png');
  writeFileSync(grid, 'an older grid');
  const cases: [string[], string][] = [
    [['--out', notes], `mixup: error: --out ${notes}: expected a file name ending in .png`],
    [['--out', notes, '--force'], `mixup: error: --out ${notes}: expected a file name ending in .png`],
    [['--out', grid], `mixup: error: --out ${grid}: already exists; use --force to replace it`],
    [['--out', join(dir, 'new.png'), '--count', '1025'], 'mixup: error: --count 1025: at most 1024 images fit a contact sheet'],
  ];
  for (const [args, message] of cases) {
    const r = await run(['data', 'preview', bin, ...args]);
    assert.deepEqual([r.code, r.out, r.err], [2, [], [message]], args.join(' '));
  }
  assert.equal(readFileSync(notes, 'utf8'), 'my notes');
  assert.equal(readFileSync(grid, 'utf8'), 'an older grid');
  assert.equal(existsSync(join(dir, 'new.png')), false);
  const forced = await run(['data', 'preview', bin, '--out', grid, '--force']);
  assert.equal(forced.code, 0, forced.err.join('\n'));
  assert.ok(PNG.sync.read(readFileSync(grid)).width > 0);
});

test('train checks the data paths before the backend starts: one line naming mixup data download', async () => {
  const dir = tempDir('mixup-cli-');
  const missing = join(dir, 'cifar10');
  const r = await run(['train', '--config', 'configs/quick.json', '--data-dir', missing, '--out', join(dir, 'run')]);
  // no `backend:` line before it: the backend was never set up
  assert.deepEqual([r.code, r.out, r.err], [2, [], [`mixup: error: data.dir ${missing}: no such directory (get CIFAR-10 with: mixup data download cifar10 --dir ${missing})`]]);
  writeBinFile(join(dir, 'data_batch_1.bin'), [syntheticImage(0)], [1]);
  const val = join(dir, 'val.rec');
  const r2 = await run(['train', '--config', 'configs/quick.json', '--set', `data.train=${dir}`, '--set', `data.val=${val}`, '--out', join(dir, 'run')]);
  assert.deepEqual([r2.code, r2.out, r2.err], [2, [], [`mixup: error: data.val ${val}: no such file or directory (get CIFAR-10 with: mixup data download cifar10 --dir data/cifar10)`]]);
  assert.equal(existsSync(join(dir, 'run')), false);
});

test('a missing data directory is reported without loading TensorFlow.js (the CLI loads it only after the data check)', () => {
  const dir = tempDir('mixup-cli-');
  // tfjs-core puts its engine on globalThis._tfengine when it is imported: the child says at exit whether it
  // exists (no space, `?` or `#` in the module's URL: NODE_OPTIONS splits at spaces, a URL at `?` and `#`).
  const hook = "process.on('exit',()=>process.stderr.write(['[no-tfjs]','[tfjs-loaded]'][Number(!!globalThis._tfengine)]))";
  const env = { NODE_OPTIONS: `--import=data:text/javascript,${hook}` };
  const missing = join(dir, 'cifar10');
  const r = runMixup(['train', '--config', 'configs/quick.json', '--data-dir', missing], { env, timeout: 60_000 });
  assert.deepEqual([r.code, r.out, r.err], [2, '', `mixup: error: data.dir ${missing}: no such directory (get CIFAR-10 with: mixup data download cifar10 --dir ${missing})\n[no-tfjs]`]);
  const t = runMixup(['test', join(dir, 'no-run')], { env, timeout: 60_000 });
  assert.deepEqual([t.code, t.err], [2, `mixup: error: ${join(dir, 'no-run')}: no such run or checkpoint directory\n[no-tfjs]`]);
  // the hook does see tfjs where a command loads it
  const b = runMixup(['backends'], { env, timeout: 120_000 });
  assert.match(b.err, /\[tfjs-loaded\]$/);
});

test('data help and exit codes: `mixup data` alone is a usage error; the data commands and report list no --backend/--gpu', async () => {
  const alone = await run(['data']);
  assert.equal(alone.code, 2);
  assert.deepEqual(alone.out, []);
  assert.match(alone.err.join('\n'), /^Usage: mixup data \[options\] \[command\]\n[\s\S]*\n {2}inspect \[options\] <path>/);
  assert.equal((await run(['data', '--help'])).code, 0);
  for (const sub of ['download', 'inspect', 'preview']) {
    const h = await run(['data', sub, '--help']);
    const text = h.out.join('\n');
    assert.equal(h.code, 0);
    assert.match(text, /Global Options:\n {2}-V, --version +print the version\n {2}--verbose +print stack traces with errors/, sub);
    assert.doesNotMatch(text, /--backend|--gpu/, sub);
  }
  // nor does report, which reads run directories (issue 22 item 16)
  const report = (await run(['report', '--help'])).out.join('\n');
  assert.match(report, /Global Options:\n {2}-V, --version +print the version\n {2}--verbose +print stack traces with errors/);
  assert.doesNotMatch(report, /--backend|--gpu/);
  // the commands that run a model still list them
  assert.match((await run(['train', '--help'])).out.join('\n'), /--backend <name>[\s\S]*--gpu <n>/);
});

test('data inspect of a binary folder holding only data_batch_1.bin says what training would lack', async () => {
  const dir = tempDir('mixup-cli-');
  writeBinFile(join(dir, 'data_batch_1.bin'), [syntheticImage(0), syntheticImage(1)], [4, 2]);
  const r = await run(['data', 'inspect', dir]);
  assert.equal(r.code, 0, r.err.join('\n'));
  assert.deepEqual(r.out.slice(-3), [
    `  note:     ${dir}: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin missing: training on data_batch_1.bin only, 2 samples instead of the usual 50000`,
    `  note:     ${dir}: no test_batch.bin: no validation split here (training needs one)`,
    '  odd:      nothing',
  ]);
  writeBinFile(join(dir, 'test_batch.bin'), [syntheticImage(2)], [7]);
  const both = await run(['data', 'inspect', dir]);
  assert.deepEqual(both.out.filter((l) => l.startsWith('  note:')), [
    `  note:     ${dir}: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin missing: training on data_batch_1.bin only, 2 samples instead of the usual 50000`,
  ]);
});

test('preview --augment names the epoch as training counts them (from 1)', async () => {
  const { writePreview } = await import('../src/data/preview.js');
  const { configSchema } = await import('../src/config/schema.js');
  const dir = tempDir('mixup-cli-');
  const bin = join(dir, 'test_batch.bin');
  writeBinFile(bin, [syntheticImage(0)], [3]);
  const r = await writePreview(configSchema.parse({}), bin, join(dir, 'g.png'), { count: 1, augment: true, split: 'val' });
  assert.equal(r.title, `${bin} — first 1, training augmentation (epoch 1)`);
});

test('.gitignore keeps the default data directory (data/cifar10) out of git, and not src/data/', (t) => {
  const ignored = (p: string) => spawnSync('git', ['check-ignore', '-q', p]).status;
  if (ignored('.') === null || spawnSync('git', ['rev-parse']).status !== 0) return t.skip('not in a git checkout');
  assert.equal(ignored('data/cifar10/cifar10_train.rec'), 0);
  assert.equal(ignored('src/data/source.ts'), 1);
});
