// Learning-rate schedules (src/train/schedule.ts), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learningRate } from '../src/train/schedule.js';

const base = { lr: 0.7, lrSchedule: 'step' as const, lrFactor: 0.1, lrStepEpochs: [10, 100, 200], epochs: 300 };
const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('step: lr·factor^(number of step epochs ≤ epoch), epochs 0-based', () => {
  near(learningRate(0, base), 0.7);
  near(learningRate(9, base), 0.7);
  near(learningRate(10, base), 0.07);
  near(learningRate(99, base), 0.07);
  near(learningRate(100, base), 0.007);
  near(learningRate(199, base), 0.007);
  near(learningRate(200, base), 0.0007);
  near(learningRate(299, base), 0.0007);
  const erm = { ...base, lr: 0.05, lrStepEpochs: [200, 250] };
  near(learningRate(199, erm), 0.05);
  near(learningRate(200, erm), 0.005);
  near(learningRate(250, erm), 0.0005);
  near(learningRate(5, { ...base, lrStepEpochs: [] }), 0.7);
});

test('cosine: lr at epoch 0, lr/2 halfway, towards 0 at the end', () => {
  const c = { ...base, lrSchedule: 'cosine' as const, lr: 0.1, epochs: 10 };
  near(learningRate(0, c), 0.1);
  near(learningRate(5, c), 0.05);
  near(learningRate(9, c), (0.1 * (1 + Math.cos((Math.PI * 9) / 10))) / 2);
  assert.ok(learningRate(9, c) < 0.003);
  assert.throws(() => learningRate(-1, c), RangeError);
});

test('step-after: mixup-cifar10 lowers lr after epoch s has trained (adjust_learning_rate after each epoch)', () => {
  const paper = { lr: 0.1, lrSchedule: 'step-after' as const, lrFactor: 0.1, lrStepEpochs: [100, 150], epochs: 200 };
  near(learningRate(0, paper), 0.1);
  near(learningRate(100, paper), 0.1); // epoch 100 still at 0.1: the rate drops after it
  near(learningRate(101, paper), 0.01);
  near(learningRate(150, paper), 0.01);
  near(learningRate(151, paper), 0.001);
  near(learningRate(199, paper), 0.001);
});
