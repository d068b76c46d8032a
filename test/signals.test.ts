/**
 * `mixup train` as a real child process (the compiled CLI, bin/mixup): Ctrl-C (SIGINT), SIGTERM, a
 * second Ctrl-C (sent while the child waits at the MIXUP_TEST_PAUSE_AT hook, so that it lands during the
 * first one's checkpoint), kill -9 at several moments (among them, through the MIXUP_TEST_CRASH_AT hook,
 * between writing a checkpoint and renaming it into place), and a second trainer on a live run. After every
 * interruption the run directory must be readable and `--resume` must end with the curves.csv of an
 * uninterrupted run (wall-clock columns aside; bit-exact on wasm).
 *
 * Needs `npx tsc -p .` first (`npm test` does it): the children run dist/.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { readCurves, CURVE_COLUMNS, type CurveRow } from '../src/rundir/curves.js';
import { listCheckpoints, readStatus } from '../src/rundir/rundir.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { MIXUP_BIN } from './fixtures/cli.js';
import { tinyRunConfig } from './fixtures/tiny-run.js';

const BIN = MIXUP_BIN;

/** Training samples of the fixture: 20 batches of 16 per epoch, 2 epochs (about 30 ms a batch on wasm). */
const N_TRAIN = 320;
const BATCHES = N_TRAIN / 16;
let dataDir: string;
let reference: Omit<CurveRow, 'epoch_seconds' | 'samples_per_sec'>[];

/** A config file (ResNet-8 on 8×8 crops, wasm, a progress line per batch) in a fresh directory. */
function configFile(data: Record<string, unknown> = {}, trainOver: Record<string, unknown> = {}, model: Record<string, unknown> = {}): { file: string; out: string } {
  return tinyRunConfig('mixup-signals-', dataDir, { data, train: trainOver, model });
}

interface Child {
  proc: ChildProcess;
  stdout: string[];
  stderr: string;
  /** Resolves with the exit code, or the signal name when killed by one. */
  exit: Promise<number | string>;
  /** Resolves on the first stdout line (or stderr text, with `stream` 'stderr') matching `re`; rejects when the child ends first. */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr'): Promise<void>;
}

/** Children still running; killed when this test process exits, so that a failed test leaves none behind. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/**
 * Starts `node bin/mixup train <args>`; output is collected, never shown. With `ownGroup` the child
 * leads a process group of its own (as under `timeout`), so that `process.kill(-pid)` reaches it.
 */
function train(args: string[], env: Record<string, string> = {}, ownGroup = false): Child {
  const proc = spawn(process.execPath, [BIN, 'train', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: ownGroup });
  let closed = false;
  live.add(proc);
  proc.on('close', () => live.delete(proc));
  const child: Child = {
    proc,
    stdout: [],
    stderr: '',
    exit: new Promise((res) =>
      proc.on('close', (code, sig) => {
        closed = true;
        res(code ?? sig ?? -1);
      }),
    ),
    async waitFor(re, stream = 'stdout') {
      const seen = () => (stream === 'stdout' ? child.stdout.some((l) => re.test(l)) : re.test(child.stderr));
      while (!seen()) {
        if (closed) throw new Error(`child exited before ${stream} matched ${re}\n${child.stderr}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    },
  };
  createInterface({ input: proc.stdout! }).on('line', (l) => child.stdout.push(l));
  proc.stderr!.on('data', (d: Buffer) => (child.stderr += d.toString()));
  return child;
}

/** Runs `mixup train <args>` to its end. */
async function trainToEnd(args: string[], env: Record<string, string> = {}): Promise<{ code: number | string; stderr: string; stdout: string[] }> {
  const c = train(args, env);
  const code = await c.exit;
  return { code, stderr: c.stderr, stdout: c.stdout };
}

function curveValues(rows: CurveRow[]) {
  return rows.map(({ epoch_seconds: _s, samples_per_sec: _p, ...rest }) => rest);
}

/**
 * Asserts that everything in a run directory can be read: every .json file parses, curves.csv has the
 * header, numeric rows and strictly increasing epochs, and every complete checkpoint has a model.json
 * whose weights files hold exactly the bytes its manifest lists.
 * @returns the epochs in curves.csv.
 */
function assertReadable(out: string): number[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .filter((n) => !n.startsWith('.tmp-')) // a checkpoint being written when the crash came: ignored, removed on resume
      .flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  for (const f of walk(out).filter((f) => f.endsWith('.json'))) {
    assert.doesNotThrow(() => JSON.parse(readFileSync(f, 'utf8')), `${f} is not JSON`);
  }
  let epochs: number[] = [];
  const csv = join(out, 'curves.csv');
  if (existsSync(csv)) {
    const [header, ...rows] = readFileSync(csv, 'utf8').split('\n').filter((l) => l !== '');
    assert.equal(header, CURVE_COLUMNS.join(','));
    // every cell a number; the label-noise, holdout and clean-training columns are empty in these runs, all others filled
    for (const r of rows) {
      const cells = r.split(',');
      const empty = (i: number) => /^(corrupt_|holdout_)|^(temperature|val_ece_scaled|train_clean_acc)$/.test(CURVE_COLUMNS[i]!);
      assert.ok(cells.length === CURVE_COLUMNS.length && cells.every((v, i) => Number.isFinite(Number(v)) && (v !== '') === !empty(i)), `bad row ${r}`);
    }
    epochs = rows.map((r) => Number(r.split(',')[0]));
    epochs.forEach((e, i) => assert.equal(e, i + 1, `curves.csv epochs ${epochs.join(',')}`));
  }
  for (const ck of listCheckpoints(out)) {
    const model = JSON.parse(readFileSync(join(ck.dir, 'model.json'), 'utf8')) as {
      weightsManifest: { paths: string[]; weights: { shape: number[] }[] }[];
    };
    for (const group of model.weightsManifest) {
      const want = group.weights.reduce((s, w) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
      const have = group.paths.reduce((s, p) => s + statSync(join(ck.dir, p)).size, 0);
      assert.equal(have, want, `${ck.dir}: weights bytes`);
    }
  }
  return epochs;
}

/** Resumes `out` to the end and checks the curves against the uninterrupted run. */
async function resumeAndCompare(out: string, resumeFrom: RegExp): Promise<void> {
  const r = await trainToEnd(['--resume', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, resumeFrom);
  assert.deepEqual(curveValues(readCurves(join(out, 'curves.csv'))), reference);
  assert.deepEqual(assertReadable(out), [1, 2]);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['epoch-0001', 'epoch-0002']);
  assert.equal(readStatus(out)!.status, 'finished');
}

before(async () => {
  dataDir = cifarBinDir(N_TRAIN, 40);
  const { file, out } = configFile();
  const r = await trainToEnd(['--config', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.filter((l) => l.startsWith('Epoch[1] Batch [')).length, BATCHES);
  reference = curveValues(readCurves(join(out, 'curves.csv')));
  assert.deepEqual(reference.map((r) => [r.epoch, r.lr]), [[1, 0.2], [2, 0.02]]);
});

test('SIGINT after the first batch: partial-epoch checkpoint, exit 130, how to resume; --resume ends as an uninterrupted run', async (t) => {
  const { file, out } = configFile();
  const c = train(['--config', file]);
  await c.waitFor(/^Epoch\[1\] Batch \[1\]\t/);
  c.proc.kill('SIGINT');
  assert.equal(await c.exit, 130, c.stderr);
  const m = /interrupted: checkpoint of the partial epoch 1 \((\d+) batch(?:es)? done\) in (\S+)/.exec(c.stderr);
  assert.ok(m, c.stderr);
  const done = Number(m[1]);
  t.diagnostic(`stopped after batch ${done} of ${BATCHES}`);
  assert.ok(done >= 1 && done < BATCHES, c.stderr);
  assert.equal(m[2], join(out, 'checkpoints', `epoch-0000+batch-${String(done).padStart(6, '0')}`));
  assert.match(c.stderr, new RegExp(`resume with: ${BIN} train --resume ${out}\\n`));
  // No progress bar on this line (stderr is a pipe): the message starts a line of its own, not after a blank one.
  assert.match(c.stderr, /(^|[^\n]\n)SIGINT: finishing the current batch and writing a checkpoint \(the same signal again exits at once, without one\)\n/);
  // The batch in progress was finished, none after it was started.
  assert.equal(c.stdout.filter((l) => l.startsWith('Epoch[1] Batch [')).length, done);
  const st = readStatus(out)!;
  assert.deepEqual([st.status, st.epoch, st.message], ['interrupted', 0, `SIGINT at partial epoch 1 (${done} ${done === 1 ? 'batch' : 'batches'} done)`]);
  assert.deepEqual(assertReadable(out), []);
  // train.log holds every line printed, stdout and stderr, each with its time.
  const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /;
  const logged = () => readFileSync(join(out, 'train.log'), 'utf8').trimEnd().split('\n');
  const first = logged();
  assert.ok(first.every((l) => stamp.test(l)), first.join('\n'));
  const printed = [...c.stderr.split('\n'), ...c.stdout].filter((l) => l.trim() !== '');
  assert.deepEqual(new Set(first.map((l) => l.replace(stamp, ''))), new Set(printed));
  assert.match(first[0]!, /Z backend: wasm/);
  assert.match(first[first.length - 1]!, new RegExp(`Z resume with: ${BIN} train --resume ${out}$`));
  await resumeAndCompare(out, new RegExp(`resume: from \\S+epoch-0000\\+batch-0+${done} \\(epoch 1, after batch ${done}\\)`));
  // The resumed run appends to it.
  const both = logged();
  assert.deepEqual(both.slice(0, first.length), first);
  assert.ok(both.slice(first.length).some((l) => /Z resume: from /.test(l)), both.join('\n'));
  assert.match(both[both.length - 1]!, /Z finished 2 epochs; /);
});

test('SIGTERM (with a data worker thread): exit 143, checkpoint, status interrupted', async () => {
  const { file, out } = configFile({ workers: 1 });
  const c = train(['--config', file]);
  await c.waitFor(/^Epoch\[1\] Batch \[2\]\t/);
  c.proc.kill('SIGTERM');
  assert.equal(await c.exit, 143, c.stderr);
  assert.match(c.stderr, /SIGTERM: finishing the current batch/);
  assert.match(c.stderr, /interrupted: checkpoint of the (partial epoch 1 \(\d+ batch(?:es)? done\)|end of epoch 1) in /);
  assert.equal(readStatus(out)!.status, 'interrupted');
  assert.match(readStatus(out)!.message!, /^SIGTERM at /);
  assert.equal(listCheckpoints(out).length, 1);
  assertReadable(out);
});

test('ResNet-50, one SIGINT during the first batch delivered as `timeout` does (to the pid, then to its process group): a checkpoint, not "second SIGINT"', async () => {
  // GNU timeout sends the signal to its child and then to its own process group, which holds the
  // child: one interrupt, two deliveries microseconds apart. Under strace, a depth-50 run took them
  // on two threads, so the kernel did not merge them; the child takes them in the same turn of its
  // event loop (or within SAME_INTERRUPT_MS), which makes them one interrupt.
  const { file, out } = configFile({ imageShape: [3, 8, 8] }, { batchSize: 8, epochs: 1 }, { depth: 50 });
  const c = train(['--config', file], {}, true);
  await c.waitFor(/^run directory: /m, 'stderr'); // the next thing the child does is the first batch
  process.kill(c.proc.pid!, 'SIGINT');
  process.kill(-c.proc.pid!, 'SIGINT');
  assert.equal(await c.exit, 130, c.stderr);
  assert.doesNotMatch(c.stderr, /second SIGINT/);
  assert.equal(c.stderr.match(/SIGINT: finishing the current batch/g)?.length, 1, c.stderr);
  assert.match(c.stderr, /interrupted: checkpoint of the partial epoch 1 \(1 batch done\) in \S+epoch-0000\+batch-000001\n/);
  assert.match(c.stderr, new RegExp(`resume with: ${BIN} train --resume ${out}\\n`));
  assert.deepEqual(listCheckpoints(out).map((k) => k.name), ['epoch-0000+batch-000001']);
});

test('a repeat of SIGINT 0 s after the first (sent back to back) is the same interrupt: one checkpoint, exit 130', async () => {
  const { file, out } = configFile();
  const c = train(['--config', file]);
  await c.waitFor(/^Epoch\[1\] Batch \[1\]\t/);
  c.proc.kill('SIGINT');
  c.proc.kill('SIGINT');
  assert.equal(await c.exit, 130, c.stderr);
  assert.doesNotMatch(c.stderr, /second SIGINT/);
  assert.equal(c.stderr.match(/SIGINT: finishing the current batch/g)?.length, 1, c.stderr);
  assert.match(c.stderr, /interrupted: checkpoint of the partial epoch 1 \(\d+ batch(?:es)? done\)/);
  assert.equal(listCheckpoints(out).length, 1);
});

test('a second SIGINT a second after the first, while the first one\'s checkpoint is being written: exit 130 at once, without a checkpoint', async () => {
  // The first SIGINT is acted on after its batch; the child then stops at the MIXUP_TEST_PAUSE_AT hook
  // (the checkpoint's temporary directory made, nothing written into it) with its event loop turning,
  // and stays there until the pause file is removed. The second SIGINT is sent a second after the
  // child got there: handled in a later turn than the first (and long past SAME_INTERRUPT_MS), it is a
  // second Ctrl-C, and the checkpoint is never finished.
  const { file, out } = configFile();
  const pause = join(dirname(out), 'paused');
  const c = train(['--config', file], { MIXUP_TEST_PAUSE_AT: 'checkpoint-before-write', MIXUP_TEST_PAUSE_FILE: pause });
  await c.waitFor(/^Epoch\[1\] Batch \[1\]\t/);
  c.proc.kill('SIGINT');
  await c.waitFor(/SIGINT: finishing the current batch/, 'stderr');
  while (!existsSync(pause)) {
    assert.equal(c.proc.exitCode, null, `child exited before the pause point\n${c.stderr}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.doesNotMatch(c.stderr, /interrupted: checkpoint/); // paused before the checkpoint was written
  await new Promise((r) => setTimeout(r, 1000));
  c.proc.kill('SIGINT');
  // A child that ignored the second SIGINT is released after 15 s: it then writes its checkpoint, and the asserts below say so.
  const release = setTimeout(() => rmSync(pause, { force: true }), 15_000);
  const code = await c.exit;
  clearTimeout(release);
  assert.equal(code, 130, c.stderr);
  assert.match(c.stderr, /\nsecond SIGINT: exiting now without a checkpoint\n$/);
  assert.doesNotMatch(c.stderr, /interrupted: checkpoint/);
  assert.equal(listCheckpoints(out).length, 0);
  // Only the temporary directory of the checkpoint it was about to write remains (--resume removes it).
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).map((n) => n.replace(/^\.tmp-epoch-0000\+batch-\d{6}-\d+$/, '.tmp-epoch-0000+batch-B-PID')), ['.tmp-epoch-0000+batch-B-PID']);
  assert.deepEqual(readdirSync(join(out, 'checkpoints', readdirSync(join(out, 'checkpoints'))[0]!)), []);
  const st = readStatus(out)!;
  assert.deepEqual([st.status, st.message], ['interrupted', 'second SIGINT: stopped without a checkpoint of the epoch in progress']);
  assert.deepEqual(assertReadable(out), []);
});

test('SIGINT during the evaluation: stopped within an evaluation batch, checkpoint of the trained epoch, exit 130 (a second SIGINT a second later finds it gone); --resume evaluates that epoch and ends as an uninterrupted run', async () => {
  // 4000 validation images in batches of 10: 400 evaluation batches, the evaluation lasts well over
  // the time from the epoch's last batch line to the signal.
  const data = { dir: cifarBinDir(N_TRAIN, 4000) };
  const straight = configFile(data, { evalBatchSize: 10 });
  const r = await trainToEnd(['--config', straight.file]);
  assert.equal(r.code, 0, r.stderr);
  const want = curveValues(readCurves(join(straight.out, 'curves.csv')));

  const { file, out } = configFile(data, { evalBatchSize: 10 });
  const c = train(['--config', file]);
  await c.waitFor(new RegExp(`^Epoch\\[1\\] Batch \\[${BATCHES}\\]\\t`)); // the last training batch: the evaluation follows
  c.proc.kill('SIGINT');
  let exitedBeforeSecond = true;
  const second = setTimeout(() => {
    exitedBeforeSecond = false;
    c.proc.kill('SIGINT');
  }, 1000);
  const code = await c.exit;
  clearTimeout(second);
  assert.equal(code, 130, c.stderr);
  assert.ok(exitedBeforeSecond, `still running a second after SIGINT:\n${c.stderr}`);
  assert.ok(!c.stdout.some((l) => l.startsWith('Epoch[1/2]')), 'the evaluation of epoch 1 ran to its end before the signal was seen');
  const ck = join(out, 'checkpoints', `epoch-0000+batch-${String(BATCHES).padStart(6, '0')}`);
  assert.match(c.stderr, new RegExp(`\\ninterrupted: checkpoint of epoch 1 as trained \\(its evaluation was cut short; --resume redoes it\\) in ${ck.replace(/[+]/g, '\\+')}\\n`));
  assert.deepEqual(listCheckpoints(out).map((k) => k.dir), [ck]);
  assert.deepEqual([readStatus(out)!.status, readStatus(out)!.message], ['interrupted', 'SIGINT during the evaluation of epoch 1']);
  assert.deepEqual(assertReadable(out), []);

  const resumed = await trainToEnd(['--resume', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resume: from \\S+epoch-0000\\+batch-0+${BATCHES} \\(epoch 1 trained, not evaluated: evaluating it first\\)\\n`));
  assert.deepEqual(curveValues(readCurves(join(out, 'curves.csv'))), want);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['epoch-0001', 'epoch-0002']);
});

test('kill -9 at several moments, and a second trainer while one is alive: each --resume goes on from the last complete checkpoint', async () => {
  const { file, out } = configFile();
  // 1. Killed in batch 3 of epoch 1, before any checkpoint. While it runs, a second trainer is refused.
  const first = train(['--config', file]);
  await first.waitFor(/^Epoch\[1\] Batch \[3\]\t/);
  first.proc.kill('SIGSTOP'); // alive but frozen, so that it is still training while the others try
  const pid = first.proc.pid!;
  for (const args of [['--resume', out], ['--config', file, '--overwrite']]) {
    const other = await trainToEnd(args);
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, new RegExp(`^mixup: error: ${out}: another process \\(pid ${pid}\\) is training this run`, 'm'));
  }
  first.proc.kill('SIGKILL');
  assert.equal(await first.exit, 'SIGKILL');
  assert.deepEqual([readStatus(out)!.status, readStatus(out)!.pid], ['running', pid]);
  assert.deepEqual(assertReadable(out), []);
  assert.equal(listCheckpoints(out).length, 0);

  // 2. Resumed (a dead pid in status.json is fine), killed right after the epoch-1 summary line:
  //    somewhere around writing the epoch-1 checkpoint.
  const second = train(['--resume', out]);
  await second.waitFor(/^Epoch\[1\/2\] /);
  second.proc.kill('SIGKILL');
  assert.equal(await second.exit, 'SIGKILL');
  assert.match(second.stderr, new RegExp(`resume: status.json says pid ${pid} was training, but that process is gone`));
  assert.match(second.stderr, /resume: \S+ has no checkpoint yet; starting from epoch 1/);
  assert.deepEqual(assertReadable(out), [1]);

  // 3. Resumed again, killed in batch 2 of epoch 2: epoch-0001 exists by then.
  const third = train(['--resume', out]);
  await third.waitFor(/^Epoch\[2\] Batch \[2\]\t/);
  third.proc.kill('SIGKILL');
  assert.equal(await third.exit, 'SIGKILL');
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001']);
  assert.deepEqual(assertReadable(out), [1]);

  await resumeAndCompare(out, /resume: from \S+epoch-0001 \(end of epoch 1\)/);
});

test('kill -9 between writing a checkpoint and renaming it (MIXUP_TEST_CRASH_AT): no half checkpoint, stale curves row dropped', async () => {
  const { file, out } = configFile();
  const hook = (name: string) => ({ MIXUP_TEST_CRASH_AT: `checkpoint-before-rename:${name}` });
  // The first checkpoint never lands: a temporary directory and a curves row of epoch 1 remain.
  const a = await trainToEnd(['--config', file], hook('epoch-0001'));
  assert.equal(a.code, 'SIGKILL', a.stderr);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort().map((n) => n.replace(/^(\.tmp-.*)-\d+$/, '$1-PID')), ['.tmp-epoch-0001-PID']);
  assert.deepEqual(assertReadable(out), [1]);
  // Resumed from scratch (the row of epoch 1 is dropped), killed again before renaming epoch-0002.
  const b = await trainToEnd(['--resume', out], hook('epoch-0002'));
  assert.equal(b.code, 'SIGKILL', b.stderr);
  assert.match(b.stderr, /resume: \S+ has no checkpoint yet; starting from epoch 1/);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')).sort().map((n) => n.replace(/^(\.tmp-.*)-\d+$/, '$1-PID')), ['.tmp-epoch-0002-PID', 'epoch-0001']);
  assert.deepEqual(assertReadable(out), [1, 2]);
  // Resumed from epoch-0001: the row of epoch 2 written before the crash is replaced, not duplicated.
  await resumeAndCompare(out, /resume: from \S+epoch-0001 \(end of epoch 1\)/);
});
