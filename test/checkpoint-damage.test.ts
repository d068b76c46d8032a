/**
 * Damaged checkpoints never end a run (issue 22 items 1 and 2): a run trained for 3 epochs (wasm,
 * depth 8, 8×8 crops) is copied, its newest checkpoint damaged on disk (truncated weights.bin,
 * state.json that is not JSON, no model.json, bytes overwritten, NaN in a BatchNorm statistic or a
 * momentum buffer), and `--resume` / `mixup test` go on from epoch 2 with one line naming what was
 * skipped and why; the damaged checkpoint is set aside, byte for byte as it was, never deleted.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { selectBackend } from '../src/engine/tfjs/backend.js';
import { loadConfig } from '../src/config/load.js';
import { prepareResume, runTraining, type TrainIo } from '../src/train/run.js';
import { scoreCheckpoint } from '../src/evaluate/score.js';
import { readCurves } from '../src/rundir/curves.js';
import { listCheckpoints } from '../src/rundir/rundir.js';
import { UserError } from '../src/errors.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { runMixupAsync } from './fixtures/cli.js';
import { tempDir } from './fixtures/tmp.js';

let base: string;

/** SHA-256 as lower-case hex, computed here (node:crypto) rather than by the code under test. */
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function quietIo(): TrainIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, line: (l) => lines.push(l), info: (l) => lines.push(l), isTTY: false };
}

before(async () => {
  await selectBackend('wasm');
  const dir = tempDir('mixup-damage-');
  const cfg = {
    experiment: 'mixup',
    loss: 'mixture-nll',
    backend: 'wasm',
    out: join(dir, 'run'),
    model: { depth: 8, numClasses: 10 },
    data: { dir: cifarBinDir(32, 16), imageShape: [3, 8, 8], padSize: 2, workers: 0 },
    train: { epochs: 3, batchSize: 16, lr: 0.1, evalBatchSize: 16, seed: 4 },
  };
  writeFileSync(join(dir, 'exp.json'), JSON.stringify(cfg));
  assert.equal(await runTraining({ cfg: loadConfig(join(dir, 'exp.json')), source: null, resume: false, overwrite: false, handleSignals: false }, quietIo()), 0);
  base = cfg.out;
});

/** A copy of the 3-epoch run; returns its directory and its newest checkpoint's. */
function copyRun(): { out: string; ck: string } {
  const out = join(tempDir('mixup-damage-'), 'run');
  cpSync(base, out, { recursive: true });
  return { out, ck: join(out, 'checkpoints', 'epoch-0003') };
}

/** Every file under `dir` with its bytes, to show a set-aside checkpoint is untouched. */
function snapshot(dir: string): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) m.set(join(e.parentPath, e.name).slice(dir.length), readFileSync(join(e.parentPath, e.name)));
  }
  return m;
}

/**
 * Resumes `out` to 4 epochs; checks it went on from epoch 2, said `skipped epoch-0003 (<reason>)`
 * once, and set the damaged checkpoint aside unchanged.
 * @returns the reason given.
 */
async function resumeSkipping(out: string, ck: string): Promise<string> {
  const damaged = snapshot(ck);
  const io = quietIo();
  assert.equal(await runTraining({ cfg: prepareResume(out, 4, false), source: null, resume: true, overwrite: false, handleSignals: false }, io), 0);
  const skips = io.lines.filter((l) => l.startsWith('resume: skipped'));
  assert.equal(skips.length, 1, io.lines.join('\n'));
  const m = /^resume: skipped epoch-0003 \((.*)\); set aside as (.*), not deleted$/.exec(skips[0]!);
  assert.ok(m, skips[0]);
  assert.equal(m[2], `${ck}.damaged`);
  assert.ok(io.lines.includes(`resume: from ${join(out, 'checkpoints', 'epoch-0002')} (end of epoch 2)`), io.lines.join('\n'));
  assert.deepEqual(snapshot(`${ck}.damaged`), damaged);
  assert.deepEqual(readCurves(join(out, 'curves.csv')).map((r) => r.epoch), [1, 2, 3, 4]);
  assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001', 'epoch-0002', 'epoch-0003', 'epoch-0004']);
  assert.ok(!m[1]!.includes('\n'));
  return m[1]!;
}

/** Manifest entries of a weights directory. */
function manifest(dir: string): { name: string; shape: number[] }[] {
  return (JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[] }[] }[] }).weightsManifest[0]!.weights;
}

/** Writes NaN into tensor `name` of the weights in `dir` at element `at`, and records the new SHA-256 (a checkpoint saved with NaN). */
function poisonTensor(dir: string, name: string, at: number): void {
  const bin = readFileSync(join(dir, 'weights.bin'));
  let offset = 0;
  for (const w of manifest(dir)) {
    if (w.name === name) break;
    offset += w.shape.reduce((a, b) => a * b, 1) * 4;
  }
  bin.writeFloatLE(NaN, offset + at * 4);
  writeFileSync(join(dir, 'weights.bin'), bin);
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { sha256: Record<string, string> };
  json.sha256['weights.bin'] = sha256Hex(bin);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
}

test('every weights file carries its SHA-256 in model.json', () => {
  const ck = join(base, 'checkpoints', 'epoch-0003');
  for (const dir of [ck, join(ck, 'optimizer')]) {
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { sha256: Record<string, string> };
    assert.deepEqual(json.sha256, { 'weights.bin': sha256Hex(readFileSync(join(dir, 'weights.bin'))) });
  }
});

test('resume past a truncated weights.bin', async () => {
  const { out, ck } = copyRun();
  truncateSync(join(ck, 'weights.bin'), 1000);
  const reason = await resumeSkipping(out, ck);
  assert.match(reason, new RegExp(`^${join(ck, 'model.json')}: weight "[^"]+" with shape \\[[\\d,]+\\] float32 needs \\d+ bytes from offset \\d+, but weights.bin holds 1000; the checkpoint is truncated or corrupt$`));
});

test('resume past a state.json that is not JSON', async () => {
  const { out, ck } = copyRun();
  writeFileSync(join(ck, 'state.json'), '{"epoch": 3, "batch"');
  assert.equal(await resumeSkipping(out, ck), `${join(ck, 'state.json')}: not valid JSON (a damaged run directory?)`);
});

test('resume past a missing model.json: no raw ENOENT text', async () => {
  const { out, ck } = copyRun();
  rmSync(join(ck, 'model.json'));
  assert.equal(await resumeSkipping(out, ck), `${join(ck, 'model.json')}: cannot read the weights manifest (no such file)`);
});

test('resume past bytes overwritten in weights.bin (400 bytes of 0xFF): the SHA-256 differs', async () => {
  const { out, ck } = copyRun();
  const bin = readFileSync(join(ck, 'weights.bin'));
  bin.fill(0xff, 2000, 2400);
  writeFileSync(join(ck, 'weights.bin'), bin);
  const reason = await resumeSkipping(out, ck);
  assert.equal(reason, `${join(ck, 'weights.bin')}: SHA-256 ${sha256Hex(bin).slice(0, 12)}… differs from the ${sha256Hex(readFileSync(join(base, 'checkpoints', 'epoch-0003', 'weights.bin'))).slice(0, 12)}… saved with it in model.json; the file was damaged or changed after it was written`);
});

test('resume past NaN in a BatchNorm moving variance and in a momentum buffer (checksums matching): the tensor is named', async () => {
  const a = copyRun();
  const bn = manifest(a.ck).find((w) => /moving_var/.test(w.name))!.name;
  poisonTensor(a.ck, bn, 2);
  const size = manifest(a.ck).find((w) => w.name === bn)!.shape.reduce((x, y) => x * y, 1);
  assert.equal(await resumeSkipping(a.out, a.ck), `${join(a.ck, 'weights.bin')}: parameter or BatchNorm statistic "${bn}" holds NaN at index 2 (1 of ${size} values not finite); the checkpoint is damaged`);

  const b = copyRun();
  const opt = join(b.ck, 'optimizer');
  const first = manifest(opt)[0]!;
  poisonTensor(opt, first.name, 0);
  const n = first.shape.reduce((x, y) => x * y, 1);
  assert.equal(await resumeSkipping(b.out, b.ck), `${join(opt, 'weights.bin')}: momentum buffer "${first.name}" holds NaN at index 0 (1 of ${n} values not finite); the checkpoint is damaged`);
});

test('a checkpoint written before checksums (no "sha256" in model.json) still loads, silently', async () => {
  const { out, ck } = copyRun();
  for (const dir of [ck, join(ck, 'optimizer')]) {
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as Record<string, unknown>;
    delete json['sha256'];
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  }
  const io = quietIo();
  assert.equal(await runTraining({ cfg: prepareResume(out, 4, false), source: null, resume: true, overwrite: false, handleSignals: false }, io), 0);
  assert.ok(io.lines.includes(`resume: from ${ck} (end of epoch 3)`), io.lines.join('\n'));
  assert.ok(!io.lines.some((l) => l.includes('skipped')));
});

test('mixup test of a run whose newest checkpoint is damaged scores the newest good one, with the line; --epoch and a named checkpoint are not replaced', async () => {
  const { out, ck } = copyRun();
  truncateSync(join(ck, 'weights.bin'), 1000);
  const skipped: string[] = [];
  const s = await scoreCheckpoint(out, { onSkip: (l) => skipped.push(l) });
  assert.equal(s.checkpoint, join(out, 'checkpoints', 'epoch-0002'));
  assert.equal(s.epoch, 2);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0]!, /^skipped epoch-0003 \(.*weights\.bin holds 1000; the checkpoint is truncated or corrupt\)$/);
  // the same accuracy and loss as the intact epoch 2, and nothing moved or deleted (test only reads)
  const intact = await scoreCheckpoint(base, { epoch: 2 });
  assert.equal(s.accuracy, intact.accuracy);
  assert.equal(s.loss, intact.loss);
  assert.ok(existsSync(join(ck, 'weights.bin')));
  await assert.rejects(scoreCheckpoint(out, { epoch: 3 }), (e: unknown) => e instanceof UserError && /holds 1000; the checkpoint is truncated/.test(e.message));
  await assert.rejects(scoreCheckpoint(ck, {}), (e: unknown) => e instanceof UserError && /holds 1000; the checkpoint is truncated/.test(e.message));

  // none loads: one line each, then the refusal
  for (const c of ['epoch-0001', 'epoch-0002']) writeFileSync(join(out, 'checkpoints', c, 'state.json'), 'x');
  skipped.length = 0;
  await assert.rejects(scoreCheckpoint(out, { onSkip: (l) => skipped.push(l) }), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.message, `${out}: none of its 3 checkpoints loads (named above with the reason); no checkpoint was moved or deleted`);
    return true;
  });
  assert.deepEqual(skipped.map((l) => l.split(' ')[1]), ['epoch-0003', 'epoch-0002', 'epoch-0001']);
});

test('mixup test RUN (CLI) with the newest checkpoint lacking model.json, then also its config.json damaged: the line, then the score of epoch 2', async () => {
  const { out, ck } = copyRun();
  rmSync(join(ck, 'model.json'));
  const r = await runMixupAsync(['--backend', 'wasm', 'test', out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`^test: skipped epoch-0003 \\(${join(ck, 'model.json')}: cannot read the weights manifest \\(no such file\\)\\)$`, 'm'));
  assert.ok(!/ENOENT/.test(r.err + r.out));
  assert.match(r.out, new RegExp(`${join(out, 'checkpoints', 'epoch-0002')}`));
  // its config.json damaged too: the backend is chosen from epoch 2's config
  writeFileSync(join(ck, 'config.json'), '{');
  const again = await runMixupAsync(['--backend', 'wasm', 'test', out]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, new RegExp(`^test: skipped epoch-0003 \\(${join(ck, 'config.json')}: not valid JSON \\(a damaged run directory\\?\\)\\)$`, 'm'));
  assert.equal(again.out, r.out);
});

test('resume of a run none of whose checkpoints loads: one line each, refused, nothing set aside, and the same again next time', async () => {
  const { out, ck } = copyRun();
  for (const c of ['epoch-0001', 'epoch-0002', 'epoch-0003']) truncateSync(join(out, 'checkpoints', c, 'weights.bin'), 1000);
  const before = snapshot(out);
  for (let k = 0; k < 2; k++) {
    const io = quietIo();
    await assert.rejects(runTraining({ cfg: prepareResume(out, 4, false), source: null, resume: true, overwrite: false, handleSignals: false }, io), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.message, `${out}: none of its 3 checkpoints loads (named above with the reason); no checkpoint was moved or deleted`);
      return true;
    });
    assert.deepEqual(
      io.lines.filter((l) => l.startsWith('resume: ')).map((l) => l.replace(/ \(.*$/, '')),
      ['resume: epoch-0003 does not load', 'resume: epoch-0002 does not load', 'resume: epoch-0001 does not load'],
    );
    assert.deepEqual(listCheckpoints(out).map((c) => c.name), ['epoch-0001', 'epoch-0002', 'epoch-0003']);
    assert.ok(existsSync(ck));
  }
  // the checkpoints and curves.csv are as they were (status.json and config.json record the attempts)
  const after = snapshot(out);
  for (const [f, b] of before) if (f.startsWith('/checkpoints/') || f === '/curves.csv') assert.deepEqual(after.get(f), b, f);
});
