// MXNet sgd (src/engine/tfjs/sgd.ts): momentum, weight-decay masking, optimizer state. cpu backend.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { networkSpec } from '../src/model/spec.js';
import type { ResNet } from '../src/engine/tfjs/resnet.js';
import { SGD, momentumKey, wdMult } from '../src/engine/tfjs/sgd.js';
import { UserError } from '../src/errors.js';

before(async () => {
  tf.enableProdMode();
  assert.ok(await tf.setBackend('cpu'));
});

/** A stand-in network holding named variables (SGD only reads `params`). */
function fakeNet(values: Record<string, number[]>): ResNet {
  const params = new Map<string, tf.Variable>();
  for (const [name, v] of Object.entries(values)) params.set(name, tf.variable(tf.tensor1d(v), true));
  return {
    options: { depth: 8, numClasses: 2, mixAt: null, seed: 0 },
    spec: networkSpec(8, 2),
    params,
    aux: new Map(),
    parameterCount: () => [...params.values()].reduce((n, p) => n + p.size, 0),
    dispose: () => params.forEach((p) => p.dispose()),
  };
}

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-6 * (1 + Math.abs(b)), `${what}: ${a} vs ${b}`);

test('wd multiplier: 1 for *_weight and *_gamma, 0 for *_beta, *_bias and others', () => {
  assert.equal(wdMult('stage1_unit1_conv1_weight'), 1);
  assert.equal(wdMult('fc1_weight'), 1);
  assert.equal(wdMult('bn1_gamma'), 1);
  assert.equal(wdMult('bn_data_beta'), 0);
  assert.equal(wdMult('fc1_bias'), 0);
  assert.equal(wdMult('bn1_moving_var'), 0);
});

test('two steps of mom = m·mom − lr·(g + wd·w); w += mom, wd only on _weight/_gamma', () => {
  const net = fakeNet({ a_weight: [2, -1], b_gamma: [1], c_beta: [3], d_bias: [-4] });
  const opt = new SGD(net, { momentum: 0.9, wd: 0.5 });
  const g1 = new Map<string, tf.Tensor>([
    ['a_weight', tf.tensor1d([0.5, 0])],
    ['b_gamma', tf.tensor1d([0])],
    ['c_beta', tf.tensor1d([1])],
    ['d_bias', tf.tensor1d([0])],
  ]);
  opt.apply(g1, 0.1);
  // a_weight[0]: mom = −0.1·(0.5 + 0.5·2) = −0.15 → w = 1.85; a_weight[1]: mom = −0.1·(0 + 0.5·−1) = 0.05 → −0.95
  // b_gamma: mom = −0.1·0.5·1 = −0.05 → 0.95; c_beta: mom = −0.1·1 = −0.1 → 2.9 (no decay); d_bias: unchanged
  const w = (n: string) => [...net.params.get(n)!.dataSync()];
  const m = (n: string) => [...opt.state().get(momentumKey(n))!.dataSync()];
  [1.85, -0.95].forEach((v, i) => near(w('a_weight')[i]!, v, 'a_weight'));
  near(w('b_gamma')[0]!, 0.95, 'b_gamma');
  near(w('c_beta')[0]!, 2.9, 'c_beta');
  near(w('d_bias')[0]!, -4, 'd_bias (no weight decay)');
  near(m('a_weight')[0]!, -0.15, 'momentum a_weight');
  // second step with zero gradients and lr 0.2: a_weight[0]: mom = 0.9·−0.15 − 0.2·0.5·1.85 = −0.32 → 1.53
  const zeros = new Map<string, tf.Tensor>([...net.params].map(([n, v]) => [n, tf.zerosLike(v)]));
  opt.apply(zeros, 0.2);
  near(w('a_weight')[0]!, 1.53, 'a_weight step 2');
  near(w('c_beta')[0]!, 2.9 - 0.09, 'c_beta step 2 (momentum only)');
  near(w('d_bias')[0]!, -4, 'd_bias step 2');
  tf.dispose([...g1.values(), ...zeros.values()]);
  opt.dispose();
  net.dispose();
});

test('state() / setState() carry the momentum buffers; bad state is a user error', () => {
  const net = fakeNet({ a_weight: [1, 1] });
  const opt = new SGD(net, { momentum: 0.9, wd: 0 });
  assert.deepEqual([...opt.state().keys()], ['a_weight_momentum']);
  opt.setState(new Map([['a_weight_momentum', tf.tensor1d([0.5, -0.5])]]));
  opt.apply(new Map([['a_weight', tf.tensor1d([0, 0])]]), 1);
  assert.deepEqual([...net.params.get('a_weight')!.dataSync()], [1.45, 0.55].map(Math.fround));
  assert.throws(() => opt.setState(new Map()), UserError);
  assert.throws(() => opt.setState(new Map([['a_weight_momentum', tf.tensor1d([1])]])), /shape \[1\], expected \[2\]/);
  const good = tf.tensor1d([0, 0]);
  const extra = (names: string[]) => new Map<string, tf.Tensor>([['a_weight_momentum', good], ...names.map((n): [string, tf.Tensor] => [n, good])]);
  assert.throws(() => opt.setState(extra(['b_weight_momentum'])), {
    name: 'UserError',
    message: 'optimizer state: 1 momentum buffer the network has no parameter for: b_weight_momentum (the checkpoint is not of this network?)',
  });
  assert.throws(() => opt.setState(extra(['b_momentum', 'c_momentum', 'd_momentum', 'e_momentum', 'f_momentum'])), {
    message: 'optimizer state: 5 momentum buffers the network has no parameter for: b_momentum, c_momentum, d_momentum and 2 more (the checkpoint is not of this network?)',
  });
  // a refused state leaves the buffers as they were: 0.9·[0.5, -0.5] − 1·0 after the step above
  assert.deepEqual([...opt.state().get('a_weight_momentum')!.dataSync()], [0.45, -0.45].map(Math.fround));
  good.dispose();
  opt.dispose();
  net.dispose();
});

test("form pytorch: buf = m·buf + g + wd·w; w −= lr·buf, on every parameter (torch.optim.SGD)", () => {
  const net = fakeNet({ a_weight: [2], c_beta: [3], d_bias: [-4] });
  const opt = new SGD(net, { momentum: 0.9, wd: 0.5, form: 'pytorch' });
  assert.equal(wdMult('c_beta', 'pytorch'), 1);
  const g1 = new Map<string, tf.Tensor>([['a_weight', tf.tensor1d([0.5])], ['c_beta', tf.tensor1d([1])], ['d_bias', tf.tensor1d([0])]]);
  opt.apply(g1, 0.1);
  // a_weight: buf = 0.5 + 0.5·2 = 1.5 → w = 2 − 0.15 = 1.85; c_beta: buf = 1 + 1.5 = 2.5 → 2.75; d_bias: buf = −2 → −3.8
  const w = (n: string) => net.params.get(n)!.dataSync()[0]!;
  const m = (n: string) => opt.state().get(momentumKey(n))!.dataSync()[0]!;
  near(w('a_weight'), 1.85, 'a_weight');
  near(m('a_weight'), 1.5, 'buf a_weight (no lr in it)');
  near(w('c_beta'), 2.75, 'c_beta (decayed too)');
  near(w('d_bias'), -3.8, 'd_bias (decayed too)');
  // step 2, zero gradients, lr 0.2: a_weight buf = 0.9·1.5 + 0.5·1.85 = 2.275 → 1.85 − 0.455 = 1.395.
  // MXNet's form would give 1.85 + 0.9·(−0.15) − 0.2·0.5·1.85 = 1.53: the forms differ once lr changes.
  const zeros = new Map<string, tf.Tensor>([...net.params].map(([n, v]) => [n, tf.zerosLike(v)]));
  opt.apply(zeros, 0.2);
  near(w('a_weight'), 1.395, 'a_weight step 2');
  tf.dispose([...g1.values(), ...zeros.values()]);
  opt.dispose();
  net.dispose();
});
