import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fixtures/tmp.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { REPO_ROOT, runMixup } from './fixtures/cli.js';

const root = REPO_ROOT;

function mixup(...args: string[]) {
  return mixupIn(root, ...args);
}

function mixupIn(cwd: string, ...args: string[]) {
  return runMixup(args, { cwd });
}

test('--help lists the commands', () => {
  const r = mixup('--help');
  assert.equal(r.code, 0);
  for (const c of ['train', 'test', 'data', 'report', 'backends']) assert.match(r.out, new RegExp(`^  ${c}\\b`, 'm'));
});

test('--version prints the package version', () => {
  const r = mixup('--version');
  assert.equal(r.code, 0);
  assert.equal(r.out.trim(), '0.1.0');
});

test('backends: wasm and cpu load here, the tensorflow ones do not, each with a reason', () => {
  const r = mixup('backends');
  assert.equal(r.code, 0);
  const rows = Object.fromEntries(r.out.trim().split('\n').slice(1).map((l) => [l.split(/\s+/)[0], l]));
  assert.match(rows['wasm']!, /^wasm\s+yes/);
  assert.match(rows['cpu']!, /^cpu\s+yes/);
  assert.match(rows['tensorflow-gpu']!, /^tensorflow-gpu\s+no\s+.*not installed.*CUDA 11\.2/);
  assert.match(rows['tensorflow']!, /^tensorflow\s+no\s+.*not installed/);
});

test('misspelt config key: exit 2, one line naming it and suggesting mixup.mixRate', () => {
  const dir = tempDir('mixup-cli-');
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ extends: join(root, 'configs', 'mixup.json'), mixup: { mixrate: 0.5 } }));
  const r = mixup('train', '--config', file);
  assert.equal(r.code, 2);
  assert.equal(r.err, `mixup: error: config ${file}: mixup.mixrate: unknown key; did you mean mixup.mixRate?\n`);
  assert.equal(r.out, '');
});

test('user errors are one line with exit 2; --verbose adds the stack', () => {
  const unknownFlag = mixup('train', '--config', 'configs/mixup.json', '--epoch', '3');
  assert.equal(unknownFlag.code, 2);
  assert.equal(unknownFlag.err, "mixup: error: unknown option '--epoch' (Did you mean --epochs?)\n");
  const missing = mixup('train', '--config', 'configs/nope.json');
  assert.deepEqual([missing.code, missing.err], [2, 'mixup: error: config configs/nope.json: no such file\n']);
  const verbose = mixup('--verbose', 'train', '--config', 'configs/nope.json');
  assert.equal(verbose.code, 2);
  assert.match(verbose.err, /^mixup: error: config configs\/nope\.json: no such file\nUserError: .*\n\s+at /);
});

test('an unavailable explicit backend exits 2 with why and how', () => {
  // with data that is there: the data paths are checked first (issue 18 item 13)
  const data = cifarBinDir(2, 1);
  const r = mixup('--backend', 'tensorflow-gpu', 'train', '--config', 'configs/mixup.json', '--data-dir', data, '--out', join(data, 'run'));
  assert.equal(r.code, 2);
  assert.match(r.err, /^mixup: error: backend tensorflow-gpu is not available: .*npm install @tensorflow\/tfjs-node-gpu.*\n$/);
});

test('train --help-config lists keys with defaults', () => {
  const r = mixup('train', '--help-config');
  assert.equal(r.code, 0);
  assert.match(r.out, /^  mixup\.mixRate\s+number, default 0\.7$/m);
  assert.match(r.out, /^  train\.lrStepEpochs\s+integer\[\], default \[200,250\]$/m);
});

test('file-system errors a user can fix are one line with exit 2', async () => {
  const { fileSystemErrorLine } = await import('../src/cli.js');
  const dir = tempDir('mixup-cli-');
  writeFileSync(join(dir, 'file'), 'x');
  const r = mixup('data', 'preview', join(dir, 'missing.bin'), '--out', join(dir, 'file', 'grid.png'));
  assert.equal(r.code, 2);
  assert.equal(r.err.split('\n').length, 2, r.err);
  const e = Object.assign(new Error('ENOTDIR: not a directory, mkdir'), { code: 'ENOTDIR', syscall: 'mkdir', path: '/x/file/sub' });
  assert.equal(fileSystemErrorLine(e), 'cannot create directory /x/file/sub: a part of the path is not a directory (ENOTDIR)');
  assert.equal(fileSystemErrorLine(new Error('plain')), null);
});

test('train --print-config: the resolved config (file, flags, --set) as JSON on stdout, exit 0, nothing trained or written', () => {
  const dir = tempDir('mixup-cli-');
  const out = join(dir, 'run');
  const r = mixup('train', '--config', 'configs/quick.json', '--epochs', '3', '--set', 'model.depth=20', '--data-dir', dir, '--out', out, '--print-config');
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, '');
  const cfg = JSON.parse(r.out);
  assert.deepEqual([cfg.experiment, cfg.train.epochs, cfg.model.depth, cfg.data.dir, cfg.out, cfg.data.limit], ['mixup', 3, 20, dir, out, 10000]);
  assert.equal(existsSync(out), false);
  // A bad value is still an error.
  const bad = mixup('train', '--config', 'configs/quick.json', '--set', 'model.depth=21', '--print-config');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^mixup: error: .*model\.depth: 21 is not a valid ResNet depth/);
});

test('train --help names the defaults of --out and --data-dir; without a data directory train uses data/cifar10 and says so', () => {
  const help = mixup('train', '--help').out.replace(/\s+/g, ' '); // commander wraps lines
  assert.match(help, /--out <dir> run directory \(default: runs\/<config file name>, e\.g\. runs\/mixup\)/);
  assert.match(help, /--data-dir <dir> directory with the CIFAR-10 files \(default: data\/cifar10, where `mixup data download` puts them\)/);
  const dir = tempDir('mixup-cli-');
  writeFileSync(join(dir, 'exp.json'), JSON.stringify({ extends: join(root, 'configs', 'quick.json') }));
  mkdirSync(join(dir, 'data', 'cifar10'), { recursive: true });
  const r = mixupIn(dir, 'train', '--config', 'exp.json', '--print-config');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).data.dir, join(dir, 'data', 'cifar10'));
  assert.equal(r.err, 'data: no data.dir given (--data-dir); using data/cifar10, where `mixup data download` puts it\n');
  assert.equal(JSON.parse(r.out).out, 'runs/exp');
});

test('train without a data directory says where it looked (data/cifar10 of the directory it ran in), one line, exit 2, nothing written', () => {
  const dir = tempDir('mixup-cli-');
  const r = mixupIn(dir, 'train', '--config', join(root, 'configs', 'quick.json'), '--out', join(dir, 'run'));
  assert.deepEqual([r.code, r.out, r.err], [2, '', `mixup: error: no data: no --data-dir (data.dir) given, and no data/cifar10 in ${dir} (where mixup train looks then); give --data-dir DIR, or get the data with: mixup data download cifar10 --dir data/cifar10\n`]);
  assert.equal(existsSync(join(dir, 'run')), false);
});

test('train with a positional argument: the config file is pointed to --config; anything else is named', () => {
  const cfg = mixup('train', 'configs/mixup.json');
  assert.deepEqual([cfg.code, cfg.out, cfg.err], [2, '', 'mixup: error: train: the config file goes after --config: mixup train --config configs/mixup.json\n']);
  const other = mixup('train', '--config', 'configs/mixup.json', 'extra');
  assert.deepEqual([other.code, other.err], [2, 'mixup: error: train: unexpected argument extra (train takes only options; see mixup train --help)\n']);
});
