// `mixup train --check-run` (src/cli/check-run.ts) and the config comparison under it (src/config/diff.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDifferences, showValue } from '../src/config/diff.js';
import { tempDir } from './fixtures/tmp.js';

/** The repository root (this file runs from test/ under tsx, from dist/test/ compiled). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const root = repoRoot();

/** Runs the compiled CLI (bin/mixup) in `cwd`. */
function mixup(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'mixup'), ...args], { encoding: 'utf8', cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('configDifferences: the differing leaves, sorted, with both values; arrays are leaves; ignored keys and prefixes left out', () => {
  const a = { out: 'runs/a', model: { depth: 8 }, data: { limit: 500, dir: '/d', imageShape: [3, 28, 28] }, train: { epochs: 1, lrStepEpochs: [10, 100, 200] } };
  const b = { out: 'runs/b', model: { depth: 50 }, data: { limit: null, dir: '/e', imageShape: [3, 28, 28] }, train: { epochs: 300, lrStepEpochs: [10, 100] }, extra: true };
  assert.deepEqual(configDifferences(a, b, ['out']), [
    { key: 'data.dir', a: '/d', b: '/e' },
    { key: 'data.limit', a: 500, b: null },
    { key: 'extra', a: undefined, b: true },
    { key: 'model.depth', a: 8, b: 50 },
    { key: 'train.epochs', a: 1, b: 300 },
    { key: 'train.lrStepEpochs', a: [10, 100, 200], b: [10, 100] },
  ]);
  assert.deepEqual(configDifferences(a, b, ['out', 'data', 'train', 'extra']).map((d) => d.key), ['model.depth']);
  assert.deepEqual(configDifferences(a, structuredClone(a)), []);
  assert.deepEqual([showValue(null), showValue(500), showValue('mixup'), showValue([3, 28, 28]), showValue(undefined)], ['null', '500', '"mixup"', '[3,28,28]', '(none)']);
});

test('mixup train --check-run: exit 0 without a run or with the same config, 4 and one line naming the keys when it differs, 2 for a damaged config.json; trains nothing', () => {
  const cwd = tempDir('mixup-check-run-');
  const out = join(cwd, 'runs', 'erm-300-s0');
  const base = ['train', '--config', join(root, 'configs', 'erm-300.json'), '--out', out, '--seed', '0'];
  const trial = ['--set', 'train.epochs=1', '--set', 'model.depth=8', '--set', 'data.limit=500'];
  // no run there yet: nothing to compare, nothing written
  assert.deepEqual(mixup([...base, ...trial, '--check-run'], cwd), { code: 0, out: '', err: '' });
  assert.equal(existsSync(out), false);
  // the run of the short trial, as `mixup train` writes its config.json (the resolved config)
  const printed = mixup([...base, ...trial, '--print-config'], cwd);
  assert.equal(printed.code, 0, printed.err);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'config.json'), printed.out);
  assert.deepEqual(mixup([...base, ...trial, '--check-run'], cwd), { code: 0, out: '', err: '' });
  // written another way (relative --out, --epochs for --set train.epochs): the same config
  assert.deepEqual(mixup([...base.slice(0, 3), '--out', 'runs/erm-300-s0', '--seed', '0', '--epochs', '1', ...trial.slice(2), '--check-run'], cwd), { code: 0, out: '', err: '' });
  // the real command: the three keys, the run's value first
  assert.deepEqual(mixup([...base, '--check-run'], cwd), {
    code: 4,
    out: `${out}: config.json differs from this command: data.limit 500 (this command: null), model.depth 8 (this command: 50), train.epochs 1 (this command: 300)\n`,
    err: '',
  });
  // another seed and data directory are differences too (the data directory is resolved to an absolute path)
  assert.deepEqual(mixup([...base.slice(0, -1), '1', ...trial, '--data-dir', 'data/c10', '--check-run'], cwd), {
    code: 4,
    out: `${out}: config.json differs from this command: data.dir null (this command: ${JSON.stringify(join(cwd, 'data', 'c10'))}), train.seed 0 (this command: 1)\n`,
    err: '',
  });
  // a config.json that is not a config: one line naming the file and key, exit 2
  writeFileSync(join(out, 'config.json'), JSON.stringify({ model: { depth: 'eight' } }));
  const bad = mixup([...base, '--check-run'], cwd);
  assert.equal(bad.code, 2);
  assert.match(bad.err, new RegExp(`^mixup: error: config ${join(out, 'config.json').replace(/[/.]/g, '\\$&')}: model\\.depth: got "eight"; expected number`));
  writeFileSync(join(out, 'config.json'), '{"model": ');
  const broken = mixup([...base, '--check-run'], cwd);
  assert.equal(broken.code, 2);
  assert.match(broken.err, /^mixup: error: .*config\.json: not valid JSON/);
  assert.equal(existsSync(join(out, 'status.json')), false);
});

test('contradicting flags are refused in either order with one line; --check-run ignores the backend; --check-run with --print-config is refused (issue 22 item 10)', () => {
  const cwd = tempDir('mixup-flags-');
  const cfg = ['train', '--config', join(root, 'configs', 'quick.json'), '--out', join(cwd, 'run')];
  const refused = (args: string[], line: string) => assert.deepEqual(mixup([...cfg, ...args], cwd), { code: 2, out: '', err: `mixup: error: ${line}\n` });
  refused(['--epochs', '3', '--set', 'train.epochs=5', '--print-config'], '--epochs 3 and --set train.epochs=5 both set train.epochs: give it once');
  refused(['--set', 'train.epochs=5', '--epochs', '3', '--print-config'], '--epochs 3 and --set train.epochs=5 both set train.epochs: give it once');
  assert.deepEqual(mixup(['--backend', 'cpu', ...cfg, '--set', 'backend=wasm', '--print-config'], cwd), {
    code: 2,
    out: '',
    err: 'mixup: error: --backend cpu and --set backend=wasm both set backend: give it once\n',
  });
  refused(['--set', 'train.epochs=5', '--set', 'train={"epochs":6}', '--print-config'], '--set train.epochs=5 and --set train={"epochs":6} both set train: give it once');
  refused(['--check-run', '--print-config'], 'train: --check-run and --print-config do not go together (one compares the run in --out with this command, the other prints the config); give one');
  // the same value twice is no contradiction
  const same = mixup([...cfg, '--epochs', '3', '--set', 'train.epochs=3', '--print-config'], cwd);
  assert.equal(same.code, 0, same.err);
  assert.equal((JSON.parse(same.out) as { train: { epochs: number } }).train.epochs, 3);
  // a run trained on wasm is the same run for a command that says auto (or webgpu, or another GPU)
  const printed = mixup([...cfg, '--set', 'backend=wasm', '--set', 'wasmThreads=2', '--print-config'], cwd);
  assert.equal(printed.code, 0, printed.err);
  mkdirSync(join(cwd, 'run'));
  writeFileSync(join(cwd, 'run', 'config.json'), printed.out);
  assert.deepEqual(mixup([...cfg, '--check-run'], cwd), { code: 0, out: '', err: '' });
  assert.deepEqual(mixup(['--backend', 'webgpu', '--gpu', '1', ...cfg, '--check-run'], cwd), { code: 0, out: '', err: '' });
  assert.equal(mixup([...cfg, '--seed', '9', '--check-run'], cwd).code, 4);
});
