import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../src/config/load.js';
import { join } from 'node:path';
import { tempDir } from './fixtures/tmp.js';
import { REPO_ROOT } from './fixtures/cli.js';

const root = REPO_ROOT;
const MIXUP = `node ${join(root, 'bin', 'mixup')}`;
const EXPERIMENTS = ['erm-90', 'erm-200', 'erm-300', 'mixup-90', 'mixup-200', 'mixup-300', 'mixup-feature-90', 'mixup-feature-200', 'mixup-feature-300'];
/** What reproduce-table.sh trains: one 300-epoch run per experiment (the 90/200 rows are its checkpoints). */
const TABLE = ['erm-300', 'mixup-300', 'mixup-feature-300'];

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(root, 'scripts', script), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = () => tempDir('mixup-scripts-');

/** The training command reproduce-table.sh builds for a new run. */
const newRun = (runs: string, name: string, seed: number, extra = '') =>
  `${MIXUP} train --config ${root}/configs/${name}.json --out ${runs}/${name}-s${seed} --seed ${seed}${extra}`;

test('the nine experiment configs exist', () => {
  for (const e of EXPERIMENTS) assert.ok(existsSync(join(root, 'configs', `${e}.json`)), e);
});

test('reproduce-table.sh --dry-run: one 300-epoch run per experiment, then the report; --only takes the 90/200 configs too', () => {
  const runs = tmp();
  const r = run('reproduce-table.sh', ['--dry-run', '--runs', runs]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 3), TABLE.map((e) => newRun(runs, e, 0)));
  assert.equal(
    lines[3],
    `${MIXUP} report ${TABLE.map((e) => `${runs}/${e}-s0`).join(' ')} --compare-reference --plot ${runs}/curves.svg --force | tee ${runs}/table.md`,
  );
  assert.equal(lines.length, 4);
  // the 300-epoch table configs keep the checkpoints the 90/200-epoch rows come from
  for (const e of TABLE) assert.deepEqual(loadConfig(join(root, 'configs', `${e}.json`)).train.keepEpochs, [90, 200, 300], e);
  const o = run('reproduce-table.sh', ['--dry-run', '--runs', runs, '--only', 'mixup-300,erm-90', '--no-report']);
  assert.equal(o.code, 0, o.err);
  assert.deepEqual(o.out.trimEnd().split('\n'), [newRun(runs, 'erm-90', 0), newRun(runs, 'mixup-300', 0)]);
});

test('--gpus 0,1: CUDA_VISIBLE_DEVICES and --gpu alternate; --seeds 2: six runs, seed-major', () => {
  const runs = tmp();
  const g = run('reproduce-table.sh', ['--dry-run', '--runs', runs, '--gpus', '0,1', '--no-report']);
  assert.equal(g.code, 0, g.err);
  assert.deepEqual(
    g.out.trimEnd().split('\n'),
    TABLE.map((e, i) => `CUDA_VISIBLE_DEVICES=${i % 2} ${newRun(runs, e, 0)} --gpu ${i % 2}`),
  );
  const s = run('reproduce-table.sh', ['--dry-run', '--runs', runs, '--seeds', '2', '--gpus=3,5,7', '--no-report']);
  assert.equal(s.code, 0, s.err);
  const expected = [0, 1].flatMap((seed) => TABLE.map((e) => newRun(runs, e, seed)));
  assert.deepEqual(
    s.out.trimEnd().split('\n'),
    expected.map((c, i) => `CUDA_VISIBLE_DEVICES=${[3, 5, 7][i % 3]} ${c} --gpu ${[3, 5, 7][i % 3]}`),
  );
  const one = run('reproduce-table.sh', ['--dry-run', '--runs', runs, '--gpu', '2', '--only', 'erm-90', '--no-report']);
  assert.deepEqual([one.code, one.out], [0, `${newRun(runs, 'erm-90', 0)} --gpu 2\n`]);
});

/** What `mixup train ARGS` would write as config.json (the real CLI's --print-config). */
function printedConfig(args: string[]): string {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'mixup'), 'train', ...args, '--print-config'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('--set passes through to new runs; finished runs are skipped, started ones resumed', () => {
  const runs = tmp();
  const sets = ' --data-dir /data/c10 --set train.epochs=1 --set data.limit=2000';
  // the runs were started by this same command line: their config.json is what it resolves
  for (const [name, status] of [['erm-300', { status: 'finished', epoch: 1, epochs: 1 }], ['mixup-300', { status: 'interrupted', epoch: 0, epochs: 1 }]] as const) {
    const dir = join(runs, `${name}-s0`);
    mkdirSync(dir);
    const args = `--config ${root}/configs/${name}.json --out ${dir} --seed 0${sets}`.split(' ');
    writeFileSync(join(dir, 'config.json'), printedConfig(args));
    writeFileSync(join(dir, 'status.json'), JSON.stringify(status, null, 2));
  }
  const r = run('reproduce-table.sh', [
    '--dry-run', '--runs', runs, '--gpus', '0,1', '--set', 'train.epochs=1', '--set=data.limit=2000', '--data-dir', '/data/c10',
  ]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    `# skip ${runs}/erm-300-s0: finished`,
    `CUDA_VISIBLE_DEVICES=0 ${MIXUP} train --resume ${runs}/mixup-300-s0 --gpu 0`,
    `CUDA_VISIBLE_DEVICES=1 ${newRun(runs, 'mixup-feature-300', 0, sets)} --gpu 1`,
  ]);
  assert.match(lines[3]!, / report .*erm-300-s0 .*mixup-feature-300-s0 --compare-reference/);
});

test('bad options: one line, exit 2', () => {
  const cases: [string[], string][] = [
    [['--seeds', '0'], 'reproduce-table.sh: error: --seeds 0: expected a whole number >= 1\n'],
    [['--only', 'erm-91'], `reproduce-table.sh: error: --only erm-91: expected some of ${EXPERIMENTS.join(' ')}\n`],
    [['--set', 'train.epochs'], 'reproduce-table.sh: error: --set train.epochs: expected key.path=value, e.g. --set train.epochs=10\n'],
    [['--bogus'], "reproduce-table.sh: error: unknown option '--bogus' (see --help)\n"],
    [['--task', '3'], 'reproduce-table.sh: error: --task 3: expected 0..2 (3 experiments x 1 seeds)\n'],
    [['--gpu', 'a'], 'reproduce-table.sh: error: --gpu a: expected a GPU index (0, 1, ...)\n'],
    [['--gpu', '1', '--gpus', '0,1'], 'reproduce-table.sh: error: --gpu and --gpus/--jobs exclude each other\n'],
  ];
  for (const [args, err] of cases) {
    const r = run('reproduce-table.sh', ['--dry-run', ...args]);
    assert.deepEqual([r.code, r.err, r.out], [2, err, ''], args.join(' '));
  }
});

test('slurm/reproduce-table.sbatch: array task I trains experiment I mod 3 with seed I div 3', () => {
  const runs = tmp();
  const env = { SLURM_SUBMIT_DIR: root, SLURM_ARRAY_TASK_ID: '1', CUDA_VISIBLE_DEVICES: '' };
  const r = run('slurm/reproduce-table.sbatch', ['--dry-run', '--runs', runs, '--set', 'train.epochs=2'], env);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `${newRun(runs, 'mixup-300', 0, ' --set train.epochs=2')}\n`);
  const s = run('slurm/reproduce-table.sbatch', ['--dry-run', '--runs', runs], { ...env, SLURM_ARRAY_TASK_ID: '5', SEEDS: '2' });
  assert.equal(s.out, `${newRun(runs, 'mixup-feature-300', 1)}\n`);
  assert.match(readFileSync(join(root, 'scripts', 'slurm', 'reproduce-table.sbatch'), 'utf8'), /^#SBATCH --array=0-2$/m);
  // Slurm's GPU for the task goes to mixup as --gpu too (webgpu does not read CUDA_VISIBLE_DEVICES).
  const g = run('slurm/reproduce-table.sbatch', ['--dry-run', '--runs', runs], { ...env, CUDA_VISIBLE_DEVICES: '2' });
  assert.equal(g.out, `${newRun(runs, 'mixup-300', 0)} --gpu 2\n`);
  const none = run('slurm/reproduce-table.sbatch', ['--dry-run'], { SLURM_SUBMIT_DIR: root, SLURM_ARRAY_TASK_ID: '' });
  assert.equal(none.code, 2);
  assert.match(none.err, /^reproduce-table\.sbatch: error: SLURM_ARRAY_TASK_ID is not set/);
});

/**
 * A stand-in for `mixup` that logs what it is asked and finishes a run by writing status.json (with
 * FAKE_CONFIG set, also the config.json the real `mixup train` would write); `--check-run` is the
 * real mixup's.
 */
function fakeMixup(dir: string): { cmd: string; log: string } {
  const log = join(dir, 'calls.log');
  const file = join(dir, 'fake-mixup');
  writeFileSync(
    file,
    `#!/usr/bin/env bash
set -euo pipefail
if [[ " $* " == *" --check-run "* ]]; then exec node ${join(root, 'bin', 'mixup')} "$@"; fi
echo "ARGS $*"
if [[ $1 == train ]]; then
  if [[ $2 == --resume ]]; then out=$3; else out=$(sed -E 's/.* --out ([^ ]+).*/\\1/' <<<"$*"); fi
  echo "start \${CUDA_VISIBLE_DEVICES:-none} $out" >>"${log}"
  sleep 0.4
  if [[ -n \${FAKE_FAIL:-} && $out == *"$FAKE_FAIL"* ]]; then echo "end \${CUDA_VISIBLE_DEVICES:-none} $out failed" >>"${log}"; exit 3; fi
  mkdir -p "$out"
  if [[ -n \${FAKE_CONFIG:-} && $2 != --resume ]]; then node ${join(root, 'bin', 'mixup')} "$@" --print-config >"$out/config.json"; fi
  echo '{"status": "finished", "epoch": 1, "epochs": 1}' >"$out/status.json"
  echo "end \${CUDA_VISIBLE_DEVICES:-none} $out" >>"${log}"
fi
`,
  );
  return { cmd: `bash ${file}`, log };
}

test('reproduce-table.sh with two GPUs: one run per GPU at a time, the rest queued; a second call skips them all', () => {
  const dir = tmp();
  const runs = join(dir, 'runs');
  const fake = fakeMixup(dir);
  const env = { MIXUP_CMD: fake.cmd, MIXUP_POLL_SECONDS: '0.1' };
  const only = 'erm-90,mixup-90,mixup-feature-90,erm-200,mixup-200';
  const r = run('reproduce-table.sh', ['--gpus', '0,1', '--runs', runs, '--only', only], env);
  assert.equal(r.code, 0, r.err);
  const events = readFileSync(fake.log, 'utf8').trim().split('\n').map((l) => l.split(' '));
  assert.equal(events.length, 10);
  const busy = new Map<string, string>();
  let maxParallel = 0;
  for (const [kind, gpu, out] of events) {
    if (kind === 'start') {
      assert.ok(!busy.has(gpu!), `GPU ${gpu} given ${out} while running ${busy.get(gpu!)}`);
      busy.set(gpu!, out!);
      maxParallel = Math.max(maxParallel, busy.size);
    } else {
      assert.equal(busy.get(gpu!), out);
      busy.delete(gpu!);
    }
  }
  assert.equal(maxParallel, 2);
  const started = events.filter((e) => e[0] === 'start');
  assert.deepEqual(new Set(started.map((e) => e[1])), new Set(['0', '1']));
  assert.deepEqual(started.map((e) => e[2]).sort(), ['erm-200', 'erm-90', 'mixup-200', 'mixup-90', 'mixup-feature-90'].map((n) => `${runs}/${n}-s0`).sort());
  for (const n of ['erm-90', 'erm-200']) assert.ok(existsSync(join(runs, 'logs', `${n}-s0.log`)));
  // the table at the end, over the five runs
  assert.match(r.out, new RegExp(`^ARGS report ${runs}/erm-90-s0 ${runs}/erm-200-s0 ${runs}/mixup-90-s0 ${runs}/mixup-200-s0 ${runs}/mixup-feature-90-s0 --compare-reference --plot ${runs}/curves.svg --force$`, 'm'));
  assert.match(readFileSync(join(runs, 'table.md'), 'utf8'), /^ARGS report /);

  const again = run('reproduce-table.sh', ['--gpus', '0,1', '--runs', runs, '--only', only], env);
  assert.equal(again.code, 0, again.err);
  assert.equal(readFileSync(fake.log, 'utf8').trim().split('\n').length, 10); // nothing trained again
  assert.equal((again.out.match(/: finished, skipped$/gm) ?? []).length, 5);
});

test('reproduce-table.sh --jobs 2: two runs side by side, no CUDA_VISIBLE_DEVICES', () => {
  const dir = tmp();
  const runs = join(dir, 'runs');
  const fake = fakeMixup(dir);
  const r = run('reproduce-table.sh', ['--jobs', '2', '--runs', runs, '--only', 'erm-90,erm-200,erm-300', '--no-report'], {
    MIXUP_CMD: fake.cmd,
    MIXUP_POLL_SECONDS: '0.1',
  });
  assert.equal(r.code, 0, r.err);
  const events = readFileSync(fake.log, 'utf8').trim().split('\n').map((l) => l.split(' '));
  let running = 0;
  let maxParallel = 0;
  for (const [kind, cuda] of events) {
    assert.equal(cuda, 'none');
    running += kind === 'start' ? 1 : -1;
    maxParallel = Math.max(maxParallel, running);
  }
  assert.equal(events.length, 6);
  assert.equal(maxParallel, 2);
});

test('reproduce-table.sh without --gpus runs one after the other; a failed run is named and exits 1', () => {
  const dir = tmp();
  const runs = join(dir, 'runs');
  const fake = fakeMixup(dir);
  const r = run('reproduce-table.sh', ['--runs', runs, '--only', 'erm-90,erm-200,erm-300', '--no-report'], {
    MIXUP_CMD: fake.cmd,
    FAKE_FAIL: 'erm-200',
  });
  assert.equal(r.code, 1);
  assert.deepEqual(
    readFileSync(fake.log, 'utf8').trim().split('\n'),
    [
      `start none ${runs}/erm-90-s0`,
      `end none ${runs}/erm-90-s0`,
      `start none ${runs}/erm-200-s0`,
      `end none ${runs}/erm-200-s0 failed`,
      `start none ${runs}/erm-300-s0`,
      `end none ${runs}/erm-300-s0`,
    ],
  );
  assert.match(r.err, /^reproduce-table\.sh: 1 run\(s\) failed: erm-200-s0 \(exit 3\); see their output .* run the same command again to resume$/m);
});

test('reproduce-table.sh: the runs of a short trial are not taken for the real table; one line per run names the keys, --force trains them again', () => {
  const dir = tmp();
  const runs = join(dir, 'runs');
  const fake = fakeMixup(dir);
  const env = { MIXUP_CMD: fake.cmd, FAKE_CONFIG: '1' };
  const trialSets = ['--set', 'train.epochs=1', '--set', 'model.depth=8', '--set', 'data.limit=500'];
  const trial = run('reproduce-table.sh', ['--runs', runs, ...trialSets, '--no-report'], env);
  assert.equal(trial.code, 0, trial.err);
  const trained = () => readFileSync(fake.log, 'utf8').trim().split('\n').filter((l) => l.startsWith('start'));
  assert.equal(trained().length, 3);
  // one of them stopped part-way: a started run is checked as well as the finished ones
  writeFileSync(join(runs, 'mixup-300-s0', 'status.json'), JSON.stringify({ status: 'interrupted', epoch: 0, epochs: 1 }));

  // the real command into the same directory: refused before anything is trained
  const real = run('reproduce-table.sh', ['--runs', runs, '--no-report'], env);
  const differs = (e: string) =>
    `reproduce-table.sh: ${runs}/${e}-s0: config.json differs from this command: data.limit 500 (this command: null), model.depth 8 (this command: 50), train.epochs 1 (this command: 300)`;
  assert.deepEqual([real.code, real.out, real.err.trimEnd().split('\n')], [
    2,
    '',
    [
      ...TABLE.map(differs),
      `reproduce-table.sh: error: 3 run(s) in ${runs} were trained with another config than this call would train; train them again from scratch with --force (replaces them), or use another --runs directory`,
    ],
  ]);
  assert.equal(trained().length, 3);

  // --force: each of them trained again from scratch (--overwrite), said on one line each
  const forced = run('reproduce-table.sh', ['--runs', runs, '--no-report', '--force'], env);
  assert.equal(forced.code, 0, forced.err);
  assert.deepEqual(forced.err.trimEnd().split('\n'), TABLE.map((e) => `${differs(e)}; --force: training it again from scratch`));
  assert.deepEqual(
    forced.out.split('\n').filter((l) => l.startsWith('ARGS')),
    TABLE.map((e) => `ARGS train --config ${root}/configs/${e}.json --out ${runs}/${e}-s0 --seed 0 --overwrite`),
  );
  assert.equal(trained().length, 6);
  // now they are this call's runs: skipped, nothing trained
  const again = run('reproduce-table.sh', ['--runs', runs, '--no-report'], env);
  assert.equal(again.code, 0, again.err);
  assert.equal((again.out.match(/: finished, skipped$/gm) ?? []).length, 3);
  assert.equal(trained().length, 6);
});

test('train.sh and test.sh: the reference entry points', () => {
  const dir = tmp();
  const fake = fakeMixup(dir);
  const env = { MIXUP_CMD: fake.cmd };
  const t = spawnSync('bash', [join(root, 'scripts', 'test.sh'), 'runs/x', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(t.stdout, 'ARGS test runs/x --json\n');
  const d = spawnSync('bash', [join(root, 'scripts', 'test.sh'), '--epoch', '3'], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(d.stdout, 'ARGS test runs/mixup --epoch 3\n');
  const out = join(dir, 'r');
  const tr = spawnSync('bash', [join(root, 'scripts', 'train.sh'), '--data-dir', 'data/c', '--out', out], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(tr.status, 0, tr.stderr);
  assert.equal(tr.stdout, `ARGS train --config ${root}/configs/mixup.json --out ${out} --data-dir data/c\n`);
  // a started run of the same config (what --print-config gives) is resumed; one of another config is refused
  const mine = spawnSync(process.execPath, [join(root, 'bin', 'mixup'), 'train', '--config', join(root, 'configs', 'mixup.json'), '--out', out, '--print-config'], { cwd: dir, encoding: 'utf8' });
  assert.equal(mine.status, 0, mine.stderr);
  writeFileSync(join(out, 'config.json'), mine.stdout);
  const trainSh = (args: string[]) => spawnSync('bash', [join(root, 'scripts', 'train.sh'), ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } });
  const again = trainSh(['--out', out]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout, `ARGS train --resume ${out}\n`);
  assert.equal(again.stderr, `train.sh: ${out} holds a started run of this config: resuming it (another run: --out DIR)\n`);
  const other = trainSh(['--out', out, '--seed', '3']);
  assert.equal(other.status, 2, other.stderr);
  assert.equal(other.stdout, '');
  assert.equal(
    other.stderr,
    `train.sh: ${out}: config.json differs from this command: train.seed 0 (this command: 3)\n` +
      `train.sh: error: ${out} holds a run of another config; resume that run with: mixup train --resume ${out}; or train this one into another --out DIR (or replace it: --overwrite)\n`,
  );
  const replace = trainSh(['--out', out, '--seed', '3', '--overwrite']);
  assert.equal(replace.stdout, `ARGS train --config ${root}/configs/mixup.json --out ${out} --seed 3 --overwrite\n`);
});

const NOISE = [20, 50, 80].flatMap((p) => ['erm', 'mixup-a1', 'mixup-a8', 'mixup-a32'].map((m) => `${m}-${p}`));

test('reproduce-noise.sh --dry-run: the twelve label-noise runs from configs/noise, then the report, through the shared code', (t) => {
  const runs = tmp();
  t.after(() => rmSync(runs, { recursive: true, force: true }));
  const r = run('reproduce-noise.sh', ['--dry-run', '--runs', runs, '--jobs', '2', '--set', 'data.limit=2000']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.deepEqual(
    lines.slice(0, 12),
    NOISE.map((e) => `${MIXUP} train --config ${root}/configs/noise/${e}.json --out ${runs}/${e}-s0 --seed 0 --set data.limit=2000`),
  );
  assert.equal(lines[12], `${MIXUP} report ${NOISE.map((e) => `${runs}/${e}-s0`).join(' ')} --plot ${runs}/curves.svg --force | tee ${runs}/table.md`);
  assert.equal(lines.length, 13);
  const s = run('reproduce-noise.sh', ['--dry-run', '--runs', runs, '--seeds', '2', '--gpus', '0,1', '--only', 'mixup-a32-80,erm-80', '--no-report']);
  assert.equal(s.code, 0, s.err);
  assert.deepEqual(s.out.trimEnd().split('\n'), [
    `CUDA_VISIBLE_DEVICES=0 ${MIXUP} train --config ${root}/configs/noise/erm-80.json --out ${runs}/erm-80-s0 --seed 0 --gpu 0`,
    `CUDA_VISIBLE_DEVICES=1 ${MIXUP} train --config ${root}/configs/noise/mixup-a32-80.json --out ${runs}/mixup-a32-80-s0 --seed 0 --gpu 1`,
    `CUDA_VISIBLE_DEVICES=0 ${MIXUP} train --config ${root}/configs/noise/erm-80.json --out ${runs}/erm-80-s1 --seed 1 --gpu 0`,
    `CUDA_VISIBLE_DEVICES=1 ${MIXUP} train --config ${root}/configs/noise/mixup-a32-80.json --out ${runs}/mixup-a32-80-s1 --seed 1 --gpu 1`,
  ]);
  const bad = run('reproduce-noise.sh', ['--only', 'erm-90']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^reproduce-noise\.sh: error: --only erm-90: expected some of erm-20 mixup-a1-20 /);
  const help = run('reproduce-noise.sh', ['--help']);
  assert.match(help.out, /^Reproduce the label-noise experiment of the mixup paper/);
});

test('the noise configs: ERM and mixup α 1/8/32 at 20/50/80 % label noise, one recipe, 200 epochs', () => {
  for (const e of NOISE) {
    const c = loadConfig(join(root, 'configs', 'noise', `${e}.json`));
    const [method, p] = [e.replace(/-\d+$/, ''), Number(e.split('-').pop()) / 100];
    assert.equal(c.data.labelNoise, p, e);
    assert.equal(c.experiment, method === 'erm' ? 'erm' : 'mixup', e);
    if (method !== 'erm') assert.equal(c.mixup.alpha, Number(method.slice('mixup-a'.length)), e);
    assert.deepEqual(
      [c.train.epochs, c.train.lr, c.train.lrStepEpochs, c.train.gradScale, c.loss, c.mixup.scheme, c.data.augment.preset, c.model.depth],
      [200, 0.1, [100, 150], 1, 'soft-ce', 'permutation', 'paper', 50],
      e,
    );
  }
});

test('gpu-check.sh: --help describes it; a bad option or data dir is one line, exit 2, before any work', () => {
  assert.match(run('gpu-check.sh', ['--help']).out, /^The prepared check for a machine with a GPU and no network/);
  const missing = run('gpu-check.sh', ['--quick', '--data-dir', '/nonexistent/cifar']);
  assert.deepEqual([missing.code, missing.err, missing.out], [2, 'gpu-check.sh: --data-dir /nonexistent/cifar: no such directory\n', '']);
  const bad = run('gpu-check.sh', ['--fast']);
  assert.deepEqual([bad.code, bad.err], [2, 'gpu-check.sh: unknown option --fast (see --help)\n']);
});

test('gpu-check.sh where Dawn finds no adapter (no Vulkan driver): one line saying what is missing and how to get it, exit 2, no stack trace (issue 22 item 13)', () => {
  // A driver list naming nothing usable hides the project's lavapipe too (vulkan.ts adds it only when no driver variable is set).
  const r = run('gpu-check.sh', ['--quick'], { VK_ICD_FILENAMES: '/nonexistent/icd.json' });
  assert.equal(r.code, 2, r.err);
  assert.match(r.out, /^== adapters\n/);
  const ours = r.err.split('\n').filter((l) => l.startsWith('bench:engine: '));
  assert.equal(ours.length, 1, r.err);
  assert.match(ours[0]!, /^bench:engine: Dawn found no adapter: (no libvulkan\.so\.1, .*apt-get install libvulkan1|the Vulkan drivers \/nonexistent\/icd\.json give none; .*VK_DRIVER_FILES)/);
  assert.doesNotMatch(r.err, /^\s+at .*\.(js|ts):\d+/m); // no JavaScript stack trace
  assert.doesNotMatch(r.out, /== host time alone/); // it stopped there
});

test("gpu-check.sh's epoch section shows mixup's stdout and stderr lines in the order mixup wrote them (issue 22 item 20)", () => {
  // Stand-ins: a `mixup` that writes the epoch line (stdout) before `finished` (stderr), as train does,
  // and a `node` that answers the bench sections at once (the real node runs everything else).
  const dir = tmp();
  const fake = join(dir, 'mixup');
  writeFileSync(fake, '#!/bin/sh\nif [ "$1" = backends ]; then echo "backend  loads"; exit 0; fi\necho "backend: webgpu (fake)" >&2\nsleep 0.2\necho "Epoch[1/1] lr=0.7 val_acc=10.00%"\necho "finished 1 epoch; curves in x" >&2\n');
  chmodSync(fake, 0o755);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'node'), `#!/bin/sh\nif [ "$1" = dist/bench/engine.js ]; then echo bench; exit 0; fi\nexec ${process.execPath} "$@"\n`);
  chmodSync(join(bin, 'node'), 0o755);
  const data = join(dir, 'data');
  mkdirSync(data);
  const r = run('gpu-check.sh', ['--quick', '--data-dir', data], { MIXUP_CMD: fake, PATH: `${bin}:${process.env['PATH']}` });
  assert.equal(r.code, 0, r.err);
  const section = r.out.slice(r.out.indexOf('== one real-data epoch')).split('\n').slice(1, 4);
  assert.deepEqual(section, ['backend: webgpu (fake)', 'Epoch[1/1] lr=0.7 val_acc=10.00%', 'finished 1 epoch; curves in x']);
  assert.equal(r.err, '');
});

test("reproduce-paper-table.sh --dry-run: ERM and mixup of both paper networks from configs/paper/, then the report against the paper's Table 1", () => {
  const runs = tmp();
  const paper = ['erm-preact18', 'mixup-preact18', 'erm-wrn28-10', 'mixup-wrn28-10'];
  const r = run('reproduce-paper-table.sh', ['--dry-run', '--runs', runs, '--seeds', '2']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  const train = (name: string, seed: number) => `${MIXUP} train --config ${root}/configs/paper/${name}.json --out ${runs}/${name}-s${seed} --seed ${seed}`;
  assert.deepEqual(lines.slice(0, 8), [0, 1].flatMap((s) => paper.map((e) => train(e, s))));
  assert.match(lines[8]!, /report .* --compare-reference --plot /);
  assert.equal(lines.length, 9);
  for (const e of paper) {
    const c = loadConfig(join(root, 'configs', 'paper', `${e}.json`));
    assert.equal(c.train.epochs, 200, e);
    assert.equal(c.train.sgd, 'pytorch', e);
    assert.deepEqual(c.train.keepEpochs, [100, 150, 200], e);
  }
  const bad = run('reproduce-paper-table.sh', ['--dry-run', '--runs', runs, '--only', 'mixup-300']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^reproduce-paper-table\.sh: error: --only mixup-300: expected some of erm-preact18 mixup-preact18 erm-wrn28-10 mixup-wrn28-10\n$/);
});
