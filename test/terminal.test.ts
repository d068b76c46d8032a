/**
 * `mixup train` on a real pseudo-terminal (`script` from util-linux), 80 and 120 columns wide, with
 * Ctrl-C (SIGINT) in the middle of an epoch: once the run has ended, the screen must show exactly
 * the lines of train.log, each whole (wrapped where longer than the terminal), with nothing a
 * progress bar drew left on any row. The screen is replayed from the bytes the run wrote
 * (test/fixtures/screen.ts).
 *
 * Needs `npx tsc -p .` first (`npm test` does it): the child runs dist/. Skipped with one line
 * where `script` is not installed (Debian: util-linux).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cifarBinDir } from './fixtures/cifar.js';
import { tinyRunConfig } from './fixtures/tiny-run.js';
import { MIXUP_BIN } from './fixtures/cli.js';
import { haveScript, renderScreen, shQuote, wrapRows } from './fixtures/screen.js';

const SCRIPT = haveScript();
const ROWS = 60;

/**
 * Runs `mixup train --config FILE` in a pseudo-terminal `cols` wide; with `interrupt`, SIGINT once
 * epoch 1 is in curves.csv and epoch 2 has trained a little, else to its end.
 */
async function trainInTerminal(cols: number, interrupt = true): Promise<{ code: number | null; raw: string; out: string }> {
  const { file, out } = tinyRunConfig('mixup-terminal-', cifarBinDir(640, 40), { train: { epochs: 3, lrStepEpochs: [2] } });
  const cmd = `stty cols ${cols} rows ${ROWS}; exec ${shQuote(process.execPath)} ${shQuote(MIXUP_BIN)} train --config ${shQuote(file)}`;
  const proc = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let raw = '';
  proc.stdout.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  const exit = new Promise<number | null>((res) => proc.on('close', (code) => res(code)));
  const killer = setTimeout(() => proc.kill('SIGKILL'), 120_000);
  try {
    // The trainer's pid is in status.json; interrupt it 20 batches into epoch 2 (the bar is drawn then).
    if (!interrupt) return { code: await exit, raw, out };
    const csv = join(out, 'curves.csv');
    while (!(existsSync(csv) && readFileSync(csv, 'utf8').trim().split('\n').length >= 2)) {
      if (proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const status = JSON.parse(readFileSync(join(out, 'status.json'), 'utf8')) as { pid: number };
    await new Promise((r) => setTimeout(r, 300));
    process.kill(status.pid, 'SIGINT');
    return { code: await exit, raw, out };
  } finally {
    clearTimeout(killer);
  }
}

for (const cols of [80, 120]) {
  test(`a ${cols}-column terminal shows every message whole, with no progress-bar leftovers, after Ctrl-C`, { skip: SCRIPT ? false : 'script (util-linux) is not installed: the pseudo-terminal test is skipped' }, async () => {
    const { code, raw, out } = await trainInTerminal(cols);
    assert.equal(code, 130, raw);
    // The bar was drawn (the test would prove nothing otherwise) and never wider than the terminal.
    assert.match(raw, /epoch 2\/3 .*batches/);
    const logged = readFileSync(join(out, 'train.log'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => l.replace(/^\S+ /, ''));
    assert.ok(logged.some((l) => l.startsWith('SIGINT: finishing the current batch')), logged.join('\n'));
    assert.ok(logged.some((l) => l.startsWith('interrupted: checkpoint of the partial epoch 2')), logged.join('\n'));
    const screen = renderScreen(raw, cols, ROWS);
    assert.deepEqual(screen, logged.flatMap((l) => wrapRows(l, cols)));
  });
}

test('an 80-column terminal after a run that ends by itself: the epoch lines and the closing line whole, no bar left', { skip: SCRIPT ? false : 'script (util-linux) is not installed: the pseudo-terminal test is skipped' }, async () => {
  const { code, raw, out } = await trainInTerminal(80, false);
  assert.equal(code, 0, raw);
  const logged = readFileSync(join(out, 'train.log'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/^\S+ /, ''));
  assert.match(logged[logged.length - 1]!, /^finished 3 epochs; curves in /);
  assert.deepEqual(renderScreen(raw, 80, ROWS), logged.flatMap((l) => wrapRows(l, 80)));
});
