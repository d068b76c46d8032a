import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auxNames, forwardMacs, networkSpec, parameterCount } from '../src/model/spec.js';
import { UserError } from '../src/errors.js';
import { initialParam } from '../src/model/init.js';
import { createResNet } from '../src/engine/tfjs/resnet.js';

test('networkSpec: ResNet-50 (basic units) has the reference layout and parameter count', () => {
  const s = networkSpec(50, 10);
  assert.equal(s.stages.length, 3);
  assert.deepEqual(s.stages.map((st) => st.length), [8, 8, 8]);
  // conv0 3·3·3·16, bn_data β 3; per basic unit 2 BN (γ,β) + 2 convs; shortcuts 1×1 in the first units; bn1 and fc1.
  const conv = (k: number, i: number, o: number) => k * k * i * o;
  let n = 3 + conv(3, 3, 16);
  const filters = [16, 16, 32, 64];
  for (let st = 0; st < 3; st++) {
    for (let u = 0; u < 8; u++) {
      const inC = u === 0 ? filters[st]! : filters[st + 1]!;
      const outC = filters[st + 1]!;
      n += 2 * inC + conv(3, inC, outC) + 2 * outC + conv(3, outC, outC) + (u === 0 ? conv(1, inC, outC) : 0);
    }
  }
  n += 2 * 64 + 64 * 10 + 10;
  assert.equal(parameterCount(s), n);
  assert.deepEqual(s.stages[1]![0]!.convs.map((c) => c.stride), [2, 1]);
  assert.equal(s.stages[1]![0]!.sc?.stride, 2);
  assert.equal(s.stages[0]![1]!.sc, null);
  assert.equal(s.bns.length, 1 + 24 * 2 + 1);
  assert.equal(auxNames(s)[0], 'bn_data_moving_mean');
});

test('networkSpec: bottleneck units put the stride on conv2', () => {
  const u = networkSpec(164, 10).stages[2]![0]!;
  assert.deepEqual(u.convs.map((c) => [c.k, c.stride, c.inC, c.outC]), [[1, 1, 128, 64], [3, 2, 64, 64], [1, 1, 64, 256]]);
});

test('networkSpec: the tfjs network holds exactly the spec\'s parameters, in order', () => {
  for (const depth of [8, 20]) {
    const s = networkSpec(depth, 10);
    const net = createResNet({ depth, numClasses: 10, mixAt: null, seed: 1 });
    try {
      assert.deepEqual([...net.params.keys()], s.params.map((p) => p.name));
      assert.deepEqual([...net.params.values()].map((v) => v.shape), s.params.map((p) => p.shape));
      assert.deepEqual([...net.aux.keys()], auxNames(s));
      assert.equal(net.parameterCount(), parameterCount(s));
    } finally {
      net.dispose();
    }
  }
});

test('networkSpec: invalid depth and class count are one-line errors', () => {
  assert.throws(() => networkSpec(51, 10), /model\.depth: 51 is not a valid ResNet depth/);
  assert.throws(() => networkSpec(8, 0), /model\.numClasses: 0/);
});

test('networkSpec: preact-resnet18 is mixup-cifar10 ResNet18(): 11,171,274 parameters, 0.56 G multiply-adds on 32×32', () => {
  const s = networkSpec(50, 10, 'preact-resnet18');
  assert.equal(s.depth, 18);
  assert.equal(s.label, 'PreAct ResNet-18');
  assert.equal(parameterCount(s), 11_171_274); // the published count of ResNet(PreActBlock, [2,2,2,2])
  assert.equal(Math.round(forwardMacs(s, 32, 32) / 1e7) / 100, 0.56); // 555,422,720 multiply-adds
  assert.equal(s.bnData, null);
  assert.equal(s.stemBn?.name, 'bn0');
  assert.equal(s.bn1, null);
  assert.equal(s.bnEps, 1e-5);
  assert.deepEqual(s.layout.filters, [64, 64, 128, 256, 512]);
  // 1×1 projections only where the shape changes (layer2-4 unit 1); identities add ReLU(bn1(x)).
  assert.deepEqual(s.stages.map((st) => st.map((u) => u.sc !== null)), [[false, false], [true, false], [true, false], [true, false]]);
  assert.ok(s.stages.flat().every((u) => u.identityFrom === 'act1'));
  assert.deepEqual(s.stages.map((st) => st[0]!.stride), [1, 2, 2, 2]);
  // Width 8: every channel count scales, the stem too.
  assert.deepEqual(networkSpec(50, 10, 'preact-resnet18', 8).layout.filters, [8, 8, 16, 32, 64]);
});

test('networkSpec: wrn-28-10 is Wide ResNet 28-10: 36,479,194 parameters, 16-160-320-640', () => {
  const s = networkSpec(50, 10, 'wrn-28-10');
  assert.equal(s.depth, 28);
  assert.equal(parameterCount(s), 36_479_194); // 36.5 M (Zagoruyko & Komodakis 2016, Table 1)
  assert.deepEqual(s.layout.filters, [16, 160, 320, 640]);
  assert.deepEqual(s.stages.map((st) => st.length), [4, 4, 4]);
  assert.deepEqual(s.stages.map((st) => st.map((u) => u.sc !== null)), [[true, false, false, false], [true, false, false, false], [true, false, false, false]]);
  assert.ok(s.stages.flat().every((u) => u.identityFrom === 'x'));
  assert.equal(s.bnData, null);
  assert.equal(s.stemBn, null);
  assert.equal(s.bn1?.channels, 640);
  assert.equal(Math.round(forwardMacs(s, 32, 32) / 1e7) / 100, 5.24);
});

test('networkSpec: model.width scales mxnet-preact\'s stages; a bad width is one UserError naming the key', () => {
  assert.deepEqual(networkSpec(8, 10, 'mxnet-preact', 32).layout.filters, [16, 32, 64, 128]);
  assert.deepEqual(networkSpec(8, 10).layout.filters, [16, 16, 32, 64]);
  assert.throws(() => networkSpec(8, 10, 'wrn-28-10', 0), (e: Error) => e instanceof UserError && /^model\.width: 0 /.test(e.message));
  assert.throws(() => networkSpec(164, 10, 'mxnet-preact', 30), (e: Error) => e instanceof UserError && /divisible by 4/.test(e.message));
});

test('initialParam: pytorch draws conv/fc weights and the fc bias from U(±1/√fan_in), BatchNorm γ 1 β 0; he-normal keeps the reference', () => {
  const s = networkSpec(18, 10, 'preact-resnet18', 8);
  const byName = new Map(s.params.map((p) => [p.name, p]));
  const conv = initialParam(byName.get('stage2_unit1_conv1_weight')!, 3, 'pytorch', s.fcIn); // fan_in 3·3·8 = 72
  const bound = 1 / Math.sqrt(72);
  assert.ok(conv.every((v) => Math.abs(v) <= bound));
  const mean = conv.reduce((a, v) => a + v, 0) / conv.length;
  const sd = Math.sqrt(conv.reduce((a, v) => a + (v - mean) ** 2, 0) / conv.length);
  assert.ok(Math.abs(sd - bound / Math.sqrt(3)) < 0.05 * bound, `sd ${sd} vs ${bound / Math.sqrt(3)}`); // uniform: bound/√3
  const bias = initialParam(byName.get('fc1_bias')!, 3, 'pytorch', s.fcIn); // fan_in 64
  assert.ok(bias.every((v) => Math.abs(v) <= 1 / 8) && bias.some((v) => v !== 0));
  assert.deepEqual([...initialParam(byName.get('bn0_gamma')!, 3, 'pytorch', s.fcIn)], new Array(8).fill(1));
  assert.deepEqual([...initialParam(byName.get('bn0_beta')!, 3, 'pytorch', s.fcIn)], new Array(8).fill(0));
  assert.deepEqual([...initialParam(byName.get('fc1_bias')!, 3, 'he-normal', s.fcIn)], new Array(10).fill(0));
  // he-normal: σ = √(2/72)
  const he = initialParam(byName.get('stage2_unit1_conv1_weight')!, 3, 'he-normal', s.fcIn);
  const heSd = Math.sqrt(he.reduce((a, v) => a + v * v, 0) / he.length);
  assert.ok(Math.abs(heSd - Math.sqrt(2 / 72)) < 0.08 * Math.sqrt(2 / 72), `he sd ${heSd}`);
});
