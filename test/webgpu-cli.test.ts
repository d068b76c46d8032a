// The CLI on webgpu: `mixup backends`, `mixup train --backend webgpu` and `mixup test` end by
// themselves (Dawn would keep a process alive), `mixup test` prints the accuracy the run logged,
// and `auto` never picks a software adapter. Skipped with a one-line reason where webgpu does not
// load (never in CI). Tiny run: lavapipe is a CPU.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { releaseBackends, selectBackend } from '../src/engine/tfjs/backend.js';
import { readCurves } from '../src/rundir/curves.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { webgpuSkipReason } from './fixtures/webgpu.js';
import { REPO_ROOT, runMixup } from './fixtures/cli.js';

const root = REPO_ROOT;
const skip = (await webgpuSkipReason()) ?? false;
const tmp: string[] = [];
after(() => {
  releaseBackends();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** Runs mixup; a command that does not exit by itself within the limit fails (status null). */
function mixup(args: string[], timeout = 300_000) {
  return runMixup(args, { cwd: root, timeout, env: { CI: '' } });
}

test('mixup backends lists webgpu as loading, names the adapter, marks a software one, and exits', { skip }, () => {
  const r = mixup(['backends'], 120_000);
  assert.equal(r.signal, null, 'exited by itself');
  assert.equal(r.code, 0, r.err);
  const row = r.out.split('\n').find((l) => l.startsWith('webgpu '))!;
  assert.match(row, /^webgpu\s+yes\s+\S/);
  assert.equal(/software rasteriser/.test(row), /llvmpipe|lavapipe|SwiftShader/i.test(row), row);
});

test('auto passes over a software adapter and says so', { skip }, async () => {
  const sel = await selectBackend('auto');
  if (/llvmpipe|SwiftShader/.test(mixup(['backends'], 120_000).out)) {
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
  const s = mixup(['test', '--checkpoint', out]);
  assert.equal(s.signal, null, 'test exited by itself');
  assert.equal(s.code, 0, s.err);
  assert.match(s.err, /^backend: webgpu \(/m, 'the run config says webgpu');
  const logged = readCurves(join(out, 'curves.csv'))[0]!.val_acc;
  assert.match(s.out, new RegExp(`^top-1 accuracy: ${(100 * logged).toFixed(2)}% `, 'm'));
});
