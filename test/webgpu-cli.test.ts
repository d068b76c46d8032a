// The CLI on webgpu: `mixup backends`, `mixup train --backend webgpu` and `mixup test` end by
// themselves (Dawn would keep a process alive), `mixup test` prints the accuracy the run logged,
// `auto` never picks a software adapter, no Dawn notice (`Warning: maxDynamic…`) reaches stderr,
// and commands that need no GPU do not load Dawn. Skipped with a one-line reason where webgpu does
// not load (never in CI). Tiny run: lavapipe is a CPU.
//
// The CLI's stderr is a file opened for appending: Dawn's notices are written to descriptor 2 by
// native code, and Node's "pipe" is a socket, which the capture (src/native-stderr.ts) cannot reopen;
// a terminal, a shell pipe and `>>` can (test/native-stderr.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releaseBackends, selectBackend } from '../src/engine/tfjs/backend.js';
import { readCurves } from '../src/rundir/curves.js';
import { hardwareGpuPossible } from '../src/engine/gpu-devices.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { webgpuSkipReason } from './fixtures/webgpu.js';
import { tempDir } from './fixtures/tmp.js';
import { REPO_ROOT } from './fixtures/cli.js';

const root = REPO_ROOT;
const skip = (await webgpuSkipReason()) ?? false;
const tmp: string[] = [];
after(() => {
  releaseBackends();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

const logs = tempDir('mixup-webgpu-cli-logs-');
let runs = 0;

/**
 * A preload (`node --require`) that records every shared library Node loads (process.dlopen: Dawn's
 * dawn.node, and libvulkan.so.1 that src/engine/dawn.ts preloads) into the file $MIXUP_TEST_DLOPEN_LOG.
 */
const dlopenHook = join(logs, 'dlopen-hook.cjs');
writeFileSync(
  dlopenHook,
  `const fs = require('node:fs');
const original = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  fs.appendFileSync(process.env.MIXUP_TEST_DLOPEN_LOG, filename + '\\n');
  return original.call(this, module, filename, ...rest);
};
`,
);

/**
 * Runs mixup (stderr a file opened for appending, see above); a command that does not exit by
 * itself within the limit fails (status null). `loaded`: the shared libraries it opened.
 */
function mixup(args: string[], timeout = 300_000) {
  const n = runs++;
  const errFile = join(logs, `stderr-${n}.log`);
  const dlopenLog = join(logs, `dlopen-${n}.log`);
  writeFileSync(dlopenLog, '');
  const fd = openSync(errFile, 'a');
  let r;
  try {
    r = spawnSync(process.execPath, ['--require', dlopenHook, join(root, 'bin', 'mixup'), ...args], {
      cwd: root,
      encoding: 'utf8',
      timeout,
      stdio: ['ignore', 'pipe', fd],
      env: { ...process.env, CI: '', MIXUP_TEST_DLOPEN_LOG: dlopenLog },
    });
  } finally {
    closeSync(fd);
  }
  const loaded = readFileSync(dlopenLog, 'utf8').split('\n').filter((l) => l !== '');
  return { code: r.status, out: r.stdout, err: readFileSync(errFile, 'utf8'), signal: r.signal, loaded };
}

/** Lines Dawn (or any native library) printed as warnings. */
const WARNING = /^Warning:/m;
const DAWN = /dawn\.node$|libvulkan\.so/;

test('mixup backends lists webgpu as loading, names the adapter, marks a software one, and exits', { skip }, () => {
  const r = mixup(['backends'], 120_000);
  assert.equal(r.signal, null, 'exited by itself');
  assert.equal(r.code, 0, r.err);
  const row = r.out.split('\n').find((l) => l.startsWith('webgpu '))!;
  assert.match(row, /^webgpu\s+yes\s+\S/);
  assert.equal(/software rasteriser/.test(row), /llvmpipe|lavapipe|SwiftShader/i.test(row), row);
  assert.ok(r.loaded.some((l) => /dawn\.node$/.test(l)), 'backends starts Dawn');
  assert.doesNotMatch(r.err, WARNING);
});

test('mixup --gpu 0 backends: without a hardware adapter it says so, not "npm install"', { skip }, () => {
  const r = mixup(['--gpu', '0', 'backends'], 120_000);
  assert.equal(r.code, 0, r.err);
  const row = r.out.split('\n').find((l) => l.startsWith('webgpu '))!;
  if (/^webgpu\s+yes/.test(row)) {
    assert.match(row, /^webgpu\s+yes\s+GPU 0: /, 'a GPU machine: GPU 0 is named');
  } else {
    assert.match(row, /^webgpu\s+no\s+--gpu 0: no hardware adapter found \(Dawn lists only the software adapter '(llvmpipe|SwiftShader)[^']*', on the CPU\); install the GPU’s Vulkan driver/);
    assert.doesNotMatch(row, /npm install|to get it/);
  }
  assert.doesNotMatch(r.err, WARNING);
});

test('commands that need no GPU do not load Dawn: data inspect, and an error under auto where no GPU device exists', { skip }, () => {
  const data = cifarBinDir(4, 4);
  tmp.push(data);
  const inspect = mixup(['data', 'inspect', data], 60_000);
  assert.equal(inspect.code, 0, inspect.err);
  assert.match(inspect.out, /data_batch_1\.bin/);
  assert.deepEqual(inspect.loaded.filter((l) => DAWN.test(l)), []);
  assert.equal(inspect.err, '');

  const dir = mkdtempSync(join(tmpdir(), 'mixup-webgpu-cli-'));
  tmp.push(dir);
  const missing = join(dir, 'no-such-data');
  writeFileSync(join(dir, 'exp.json'), JSON.stringify({ experiment: 'erm', model: { depth: 8 }, data: { dir: missing }, train: { epochs: 1 } }));
  const bad = mixup(['train', '--config', join(dir, 'exp.json'), '--out', join(dir, 'run')], 120_000);
  assert.equal(bad.code, 2, bad.err);
  assert.ok(bad.err.split('\n').includes(`mixup: error: data.dir ${missing}: no such directory (get CIFAR-10 with: mixup data download cifar10 --dir ${missing})`), bad.err);
  assert.doesNotMatch(bad.err, WARNING);
  if (!hardwareGpuPossible()) {
    assert.deepEqual(bad.loaded.filter((l) => DAWN.test(l)), [], 'auto does not start Dawn without a GPU device');
  }
});

test('auto passes over a software adapter and says so', { skip }, async () => {
  const sel = await selectBackend('auto');
  if (!hardwareGpuPossible()) {
    assert.notEqual(sel.name, 'webgpu');
    assert.match(sel.why!, /webgpu \(no GPU device \(\/dev\/dri\/renderD\*, \/dev\/nvidia\*\), so only a software adapter; run it with --backend webgpu\)/);
  } else if (/llvmpipe|SwiftShader/.test(mixup(['backends'], 120_000).out)) {
    assert.notEqual(sel.name, 'webgpu');
    assert.match(sel.why!, /webgpu \(only a software adapter, (llvmpipe|SwiftShader)[^;]*; run it with --backend webgpu\)/);
  } else {
    assert.ok(['tensorflow-gpu', 'webgpu'].includes(sel.name), `a GPU machine: auto picked ${sel.name}`);
  }
  releaseBackends();
});

test('mixup train --backend webgpu and mixup test end by themselves and agree on the accuracy', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mixup-webgpu-cli-'));
  tmp.push(dir);
  const data = cifarBinDir(32, 41);
  tmp.push(data);
  const cfg = {
    experiment: 'mixup',
    model: { depth: 8, numClasses: 10 },
    data: { dir: data, imageShape: [3, 8, 8], padSize: 2, workers: 0, augment: { maxRandomH: 0, maxRandomS: 0, maxRandomL: 0 } },
    train: { epochs: 1, batchSize: 16, lr: 0.2, evalBatchSize: 16, seed: 3 },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  const out = join(dir, 'run');
  const t = mixup(['train', '--config', join(dir, 'exp.json'), '--backend', 'webgpu', '--out', out]);
  assert.equal(t.signal, null, 'train exited by itself');
  assert.equal(t.code, 0, t.err);
  assert.match(t.err, /^backend: webgpu \(/m);
  assert.doesNotMatch(t.err, WARNING, 'no native warning (Dawn) on stderr');
  const s = mixup(['test', '--checkpoint', out]);
  assert.equal(s.signal, null, 'test exited by itself');
  assert.equal(s.code, 0, s.err);
  assert.match(s.err, /^backend: webgpu \(/m, 'the run config says webgpu');
  assert.doesNotMatch(s.err, WARNING, 'no native warning (Dawn) on stderr');
  const logged = readCurves(join(out, 'curves.csv'))[0]!.val_acc;
  assert.match(s.out, new RegExp(`^top-1 accuracy: ${(100 * logged).toFixed(2)}% `, 'm'));
});
