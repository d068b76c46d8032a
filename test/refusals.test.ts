/**
 * What `mixup train` refuses about its run directory is said before any backend loads (issue 22 items
 * 11 and 12): a --out that holds a run, or other files; a run another live process trains; --resume of
 * a finished run. The child reports at exit whether TensorFlow.js was imported (tfjs-core puts its
 * engine on globalThis._tfengine), so "no backend loaded" is checked, not timed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { runMixup } from './fixtures/cli.js';
import { tempDir } from './fixtures/tmp.js';

const HOOK = "process.on('exit',()=>process.stderr.write(['[no-tfjs]','[tfjs-loaded]'][Number(!!globalThis._tfengine)]))";
const ENV = { NODE_OPTIONS: `--import=data:text/javascript,${HOOK}` };

function train(args: string[]) {
  return runMixup(['train', ...args], { env: ENV, timeout: 60_000 });
}

/** A run directory as `mixup train` leaves it (config.json from --print-config, status.json). */
function fakeRun(dir: string, status: Record<string, unknown>): string {
  const out = join(dir, 'run');
  const printed = runMixup(['train', '--config', 'configs/quick.json', '--out', out, '--epochs', '3', '--print-config']);
  assert.equal(printed.code, 0, printed.err);
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  writeFileSync(join(out, 'config.json'), printed.out);
  writeFileSync(join(out, 'status.json'), JSON.stringify({ updated: new Date().toISOString(), ...status }));
  return out;
}

test('--out holding files that are not a run is refused unless --overwrite, which keeps them; no backend loaded', () => {
  const dir = tempDir('mixup-refuse-');
  const notes = join(dir, 'notes');
  mkdirSync(notes);
  writeFileSync(join(notes, 'paper.txt'), 'my notes');
  const r = train(['--config', 'configs/quick.json', '--out', notes, '--data-dir', join(dir, 'none')]);
  assert.deepEqual([r.code, r.out, r.err], [2, '', `mixup: error: --out ${notes}: holds files that are not a run (paper.txt); choose another --out, or pass --overwrite to write the run beside them (they are kept)\n[no-tfjs]`]);
  // with --overwrite the run directory is accepted (the next check, the data, stops it here)
  const o = train(['--config', 'configs/quick.json', '--out', notes, '--data-dir', join(dir, 'none'), '--overwrite']);
  assert.equal(o.code, 2);
  assert.match(o.err, /^mixup: error: data\.dir .*: no such directory/);
  assert.deepEqual(readdirSync(notes), ['paper.txt']);
  assert.equal(readFileSync(join(notes, 'paper.txt'), 'utf8'), 'my notes');
  // an empty folder is fine
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  assert.match(train(['--config', 'configs/quick.json', '--out', empty, '--data-dir', join(dir, 'none')]).err, /^mixup: error: data\.dir/);
});

test('a run in --out, a run another process trains, --resume of a finished run: refused before any backend loads', () => {
  const dir = tempDir('mixup-refuse-');
  const out = fakeRun(dir, { status: 'interrupted', epoch: 1, epochs: 3 });
  const again = train(['--config', 'configs/quick.json', '--out', out, '--data-dir', join(dir, 'none')]);
  assert.deepEqual([again.code, again.err], [2, `mixup: error: ${out} already holds an interrupted run (epoch 1/3); continue it with --resume ${out}, choose another --out, or pass --overwrite to replace it\n[no-tfjs]`]);
  // a live trainer: this test process, on this host
  writeFileSync(join(out, 'status.json'), JSON.stringify({ status: 'running', epoch: 1, epochs: 3, pid: process.pid, host: hostname(), updated: new Date().toISOString() }));
  for (const args of [['--resume', out], ['--config', 'configs/quick.json', '--out', out, '--overwrite']]) {
    const live = train(args);
    assert.equal(live.code, 2, live.err);
    assert.match(live.err, new RegExp(`^mixup: error: .*another process \\(pid ${process.pid}\\)[^\\n]*\\n\\[no-tfjs\\]$`));
  }
  // finished: nothing to do, said at once
  writeFileSync(join(out, 'status.json'), JSON.stringify({ status: 'finished', epoch: 3, epochs: 3, updated: new Date().toISOString() }));
  const done = train(['--resume', out]);
  assert.deepEqual([done.code, done.out, done.err], [0, '', `${out}: already trained 3 of 3 epochs; nothing to do (raise the total with --epochs N)\n[no-tfjs]`]);
  assert.equal(existsSync(join(out, 'train.log')), false);
  // a flag that does not go with --resume is named as the user typed it
  const flag = train(['--resume', out, '--check-run']);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /; got --check-run\n\[no-tfjs\]$/);
});
