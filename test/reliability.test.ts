// The reliability diagram of `mixup test --reliability` (src/report/reliability.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { CalibrationAccumulator } from '../src/evaluate/calibration.js';
import { buildReliabilitySpec, checkReliabilityFile, reliabilityPoints, reliabilityTitle, writeReliability } from '../src/report/reliability.js';
import { renderSvg } from '../src/report/plot.js';
import { tempDir } from './fixtures/tmp.js';

const dir = tempDir('mixup-reliability-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Three samples: confidence .9 right, .9 wrong (bin 13), .5 right (bin 7). ECE = (2·|.5 − .9| + |1 − .5|)/3 = 1.3/3. */
function calibration() {
  const acc = new CalibrationAccumulator();
  acc.add([0.9, 0.1, 0.1, 0.9, 0.5, 0.5], [0, 0, 0], 2);
  return acc.result();
}

test('reliability: the non-empty bins, the ECE in the title, count labels in the SVG', async () => {
  const c = calibration();
  const pts = reliabilityPoints(c);
  assert.deepEqual(pts.map((p) => [p.count, p.accuracy]), [[1, 1], [2, 0.5]]);
  assert.ok(Math.abs(pts[1]!.meanConfidence - 0.9) < 1e-7 && Math.abs(pts[1]!.mid - 13.5 / 15) < 1e-12);
  assert.equal(reliabilityTitle(c), `Reliability diagram, ECE ${((100 * 1.3) / 3).toFixed(2)} %`);
  assert.equal(reliabilityTitle(c), 'Reliability diagram, ECE 43.33 %');
  const svg = await renderSvg(buildReliabilitySpec(c, { subtitle: 'checkpoint x (epoch 3)' }));
  for (const text of ['Reliability diagram, ECE 43.33 %', 'top-1 66.67 %, mean confidence 76.67 %, MCE 50.00 %', '3 images, 15 equal-width bins of top-1 confidence', 'checkpoint x (epoch 3)', 'mean confidence', 'perfect calibration', 'top-1 confidence', 'samples']) {
    assert.ok(new RegExp(`>${text.replace(/[().%]/g, (ch) => `\\${ch}`)}</(text|tspan)>`).test(svg), text);
  }
  assert.ok(svg.includes('>2</text>') && svg.includes('>1</text>'), 'the counts over the bars');
  const r = new Resvg(svg);
  assert.ok(r.width > 400 && r.height > 500, `${r.width}x${r.height}`);
});

test('reliability: PNG or SVG by the extension; an existing file only with force; other extensions refused', async () => {
  const png = join(dir, 'r.png');
  await writeReliability(png, calibration(), false);
  assert.deepEqual([...readFileSync(png).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  await assert.rejects(writeReliability(png, calibration(), false), { name: 'UserError', message: `--reliability ${png}: already exists; use --force to replace it` });
  await writeReliability(png, calibration(), true);
  const svg = join(dir, 'R.SVG');
  await writeReliability(svg, calibration(), false);
  assert.ok(readFileSync(svg, 'utf8').startsWith('<svg'));
  assert.throws(() => checkReliabilityFile(join(dir, 'r.pdf'), true), { message: `--reliability ${join(dir, 'r.pdf')}: expected a file name ending in .svg or .png` });
  writeFileSync(join(dir, 'keep.png'), 'mine');
  assert.throws(() => checkReliabilityFile(join(dir, 'keep.png'), false), /already exists; use --force/);
  assert.equal(readFileSync(join(dir, 'keep.png'), 'utf8'), 'mine');
  await assert.rejects(writeReliability(join(dir, 'none.png'), new CalibrationAccumulator().result(), false), /no evaluated sample with a finite confidence to draw/);
});
