import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CALIBRATION_BINS, CalibrationAccumulator } from '../src/evaluate/calibration.js';

const close = (a: number, b: number, what: string, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

// Five hand-made predictions over K = 3 classes (top-1 confidence → 15-bin index = ⌈15·p̂⌉ − 1):
//   [0.90 0.06 0.04] y 0  p̂ .90 bin 13 right  Σ(p−y)² = .01 + .0036 + .0016 = .0152
//   [0.10 0.88 0.02] y 0  p̂ .88 bin 13 wrong           .81 + .7744 + .0004 = 1.5848
//   [0.50 0.30 0.20] y 0  p̂ .50 bin  7 right           .25 + .09 + .04     = .38
//   [0.20 0.45 0.35] y 2  p̂ .45 bin  6 wrong           .04 + .2025 + .4225 = .665
//   [0.34 0.33 0.33] y 1  p̂ .34 bin  5 wrong           .1156 + .4489 + .1089 = .6734
// bins: 13: n 2, conf .89, acc .5, gap .39; 7: conf .5, acc 1, gap .5; 6: .45/0, gap .45; 5: .34/0, gap .34
// ECE = (2·.39 + .5 + .45 + .34)/5 = .414, MCE = .5, mean conf = 3.07/5 = .614, acc = .4,
// Brier = 3.3184/5 = .66368.
const PROBS = [0.9, 0.06, 0.04, 0.1, 0.88, 0.02, 0.5, 0.3, 0.2, 0.2, 0.45, 0.35, 0.34, 0.33, 0.33];
const LABELS = [0, 0, 0, 2, 1];

test('calibration: ECE, MCE, mean confidence, accuracy and Brier of a hand-made set', () => {
  const acc = new CalibrationAccumulator();
  acc.add(Float32Array.from(PROBS), Int32Array.from(LABELS), 3);
  const r = acc.result();
  assert.equal(r.samples, 5);
  close(r.ece, 0.414, 'ECE');
  close(r.mce, 0.5, 'MCE');
  close(r.meanConfidence, 0.614, 'mean confidence');
  close(r.accuracy, 0.4, 'accuracy');
  close(r.brier, 0.66368, 'Brier');
});

test('calibration: the reliability bins (edges, counts, mean confidence, accuracy)', () => {
  const acc = new CalibrationAccumulator();
  acc.add(Float32Array.from(PROBS), Int32Array.from(LABELS), 3);
  const { bins } = acc.result();
  assert.equal(bins.length, CALIBRATION_BINS);
  assert.equal(CALIBRATION_BINS, 15);
  bins.forEach((b, m) => {
    close(b.lower, m / 15, `lower ${m}`, 1e-12);
    close(b.upper, (m + 1) / 15, `upper ${m}`, 1e-12);
  });
  assert.deepEqual(
    bins.map((b) => b.count),
    [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 2, 0],
  );
  const filled = [5, 6, 7, 13].map((m) => [bins[m]!.meanConfidence, bins[m]!.accuracy]);
  const want = [[0.34, 0], [0.45, 0], [0.5, 1], [0.89, 0.5]];
  filled.forEach(([c, a], i) => {
    close(c!, want[i]![0]!, `conf of bin ${[5, 6, 7, 13][i]}`);
    close(a!, want[i]![1]!, `acc of bin ${[5, 6, 7, 13][i]}`);
  });
  assert.ok(Number.isNaN(bins[0]!.meanConfidence) && Number.isNaN(bins[0]!.accuracy), 'an empty bin has NaN figures');
});

test('calibration: the result does not depend on how the samples are split into batches', () => {
  const whole = new CalibrationAccumulator();
  whole.add(PROBS, LABELS, 3);
  const split = new CalibrationAccumulator();
  split.add(PROBS.slice(0, 6), LABELS.slice(0, 2), 3);
  split.add(PROBS.slice(6), LABELS.slice(2), 3);
  assert.deepEqual(split.result(), whole.result());
});

test('calibration: a calibrated bin has ECE 0; a tie predicts the first class', () => {
  // four predictions at confidence .75 (bin 11), three of them right: acc = conf = .75
  const acc = new CalibrationAccumulator();
  acc.add([0.75, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25], [0, 0, 0, 1], 2);
  const r = acc.result();
  assert.equal(r.ece, 0);
  assert.equal(r.mce, 0);
  assert.equal(r.bins[11]!.count, 4);
  close(r.brier, (3 * 0.125 + 1.125) / 4, 'Brier'); // right: 2·.25² = .125, wrong: 2·.75² = 1.125
  // [0.5, 0.5] with label 1: predicted 0, wrong; confidence .5 → bin 7
  const tie = new CalibrationAccumulator();
  tie.add([0.5, 0.5], [1], 2);
  assert.equal(tie.result().accuracy, 0);
  assert.equal(tie.result().bins[7]!.count, 1);
  close(tie.result().ece, 0.5, 'tie ECE');
});

test('calibration: with 2 bins the gaps are weighted by bin size', () => {
  // bin 0 (≤ .5): [.5 .5] y 0 right → acc 1, conf .5; bin 1: .9 right, .7 wrong → acc .5, conf .8
  const acc = new CalibrationAccumulator(2);
  acc.add([0.5, 0.5, 0.9, 0.1, 0.3, 0.7], [0, 0, 0], 2);
  const r = acc.result();
  assert.deepEqual(r.bins.map((b) => b.count), [1, 2]);
  close(r.ece, (1 * 0.5 + 2 * 0.3) / 3, 'ECE');
  close(r.mce, 0.5, 'MCE');
});

test('calibration: a non-finite probability makes the figures NaN; bad input throws', () => {
  const acc = new CalibrationAccumulator();
  acc.add([NaN, NaN, 0.9, 0.1], [0, 0], 2);
  const r = acc.result();
  assert.equal(r.samples, 2);
  for (const k of ['ece', 'mce', 'meanConfidence', 'accuracy', 'brier'] as const) assert.ok(Number.isNaN(r[k]), k);
  assert.ok(Number.isNaN(new CalibrationAccumulator().result().ece), 'nothing added');
  assert.throws(() => acc.add([0.5, 0.5], [2], 2), /label 2 of sample 0 outside \[0, 2\)/);
  assert.throws(() => acc.add([0.5, 0.5, 1], [0], 2), /3 probabilities for 1 labels × 2 classes/);
  assert.throws(() => new CalibrationAccumulator(0), RangeError);
});
