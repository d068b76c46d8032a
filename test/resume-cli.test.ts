/**
 * `mixup train --resume` as a user runs it (the compiled CLI as a child process, in a fresh working
 * directory): a run started without `--data-dir` (data in the default `data/cifar10`) resumes, and a
 * config file that really changed is still refused.
 *
 * Needs `npx tsc -p .` first (`npm test` does it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCurves } from '../src/rundir/curves.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { runMixupAsync } from './fixtures/cli.js';
import { tempDir } from './fixtures/tmp.js';

test('a run that used the default data directory resumes (--epochs 2 after 1); a changed config file is still refused', async () => {
  const cwd = tempDir('mixup-resume-');
  cpSync(cifarBinDir(32, 20), join(cwd, 'data', 'cifar10'), { recursive: true });
  const cfg = {
    experiment: 'mixup',
    loss: 'mixture-nll',
    backend: 'wasm',
    model: { depth: 8, numClasses: 10 },
    data: { imageShape: [3, 8, 8], padSize: 2, workers: 0 },
    train: { epochs: 1, batchSize: 16, lr: 0.1, evalBatchSize: 20, seed: 5 },
  };
  writeFileSync(join(cwd, 'quick.json'), JSON.stringify(cfg));
  const first = await runMixupAsync(['train', '--config', 'quick.json', '--epochs', '1', '--set', 'data.limit=32', '--out', 'runs/nodd'], { cwd });
  assert.equal(first.code, 0, first.err);
  assert.match(first.err, /^data: no data\.dir given \(--data-dir\); using data\/cifar10, where `mixup data download` puts it$/m);
  const saved = JSON.parse(readFileSync(join(cwd, 'runs', 'nodd', 'config.json'), 'utf8')) as { data: { dir: string } };
  assert.equal(saved.data.dir, join(cwd, 'data', 'cifar10'));

  const resumed = await runMixupAsync(['train', '--resume', 'runs/nodd', '--epochs', '2'], { cwd });
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.err, /^resume: from runs\/nodd\/checkpoints\/epoch-0001 \(end of epoch 1\)$/m);
  assert.match(resumed.out, /^Epoch\[2\/2\] /m);
  assert.deepEqual(readCurves(join(cwd, 'runs', 'nodd', 'curves.csv')).map((r) => r.epoch), [1, 2]);

  // The comparison still sees a real change of the file.
  writeFileSync(join(cwd, 'quick.json'), JSON.stringify({ ...cfg, train: { ...cfg.train, lr: 0.2 } }));
  const changed = await runMixupAsync(['train', '--resume', 'runs/nodd', '--epochs', '3'], { cwd });
  assert.equal(changed.code, 2, changed.err);
  assert.equal(
    changed.err,
    `mixup: error: --resume runs/nodd: ${join(cwd, 'quick.json')} (or a file it extends) changed since the run started; resume anyway with --force (the run keeps its own config.json)\n`,
  );
});
