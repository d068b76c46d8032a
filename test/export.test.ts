// `mixup export` (src/export/): safetensors files whose header is valid per the format (checked by
// the project's reader, decodeSafetensors, itself tested on broken headers), with PyTorch's names and
// layouts checked element by element against the checkpoint; ONNX files whose ONNX Runtime logits
// equal the project's inference (`mixup test`'s engine, wasm) to 1e-4 — depth 8 from a run trained
// here, depth 8 and 50 from the golden weights (skipped with one line when absent); the CLI's
// one-line refusals. The webgpu engine's checkpoints: export-webgpu.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends, tryBackend } from '../src/engine/tfjs/backend.js';
import { exportCheckpoint } from '../src/export/export.js';
import { exportGraph, torchTensors } from '../src/export/graph.js';
import { decodeSafetensors, encodeSafetensors } from '../src/export/safetensors.js';
import { networkSpec, type NetworkSpec } from '../src/model/spec.js';
import { loadHostTensors } from '../src/model/weights.js';
import { pkg } from '../src/cli/common.js';
import { cifarBinDir } from './fixtures/cifar.js';
import { runMixup } from './fixtures/cli.js';
import { engineLogits, goldenEval, goldenRun, initialisedRun, lcgImages, maxAbsDiff, onnxLogits, trainTinyRun, valImages, GOLDEN } from './fixtures/export.js';
import { tempDir } from './fixtures/tmp.js';
import { loadCheckpoint } from '../src/rundir/checkpoint.js';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

tf.enableProdMode();
let run = '';
let dataDir = '';
const ck = () => join(run, 'checkpoints', 'epoch-0001');

before(async () => {
  assert.equal((await tryBackend('wasm')).loads, true);
  dataDir = cifarBinDir(48, 40);
  run = await trainTinyRun(dataDir, 'wasm');
});
after(() => releaseBackends());

/** A safetensors file of `header` (a string: taken as is) and `data` bytes. */
function file(header: object | string, data = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

test('safetensors: encode → decode round trip; the header is 8-aligned, space-padded, offsets tile the data', () => {
  const t = new Map([
    ['a.weight', { shape: [2, 3], dtype: 'float32' as const, values: Float32Array.of(1, 2, 3, 4, 5, 6) }],
    ['a.num_batches_tracked', { shape: [], dtype: 'int64' as const, values: BigInt64Array.of(7n) }],
  ]);
  const bytes = encodeSafetensors(t, { epoch: '3' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  assert.equal(bytes.length, 8 + n + 24 + 8);
  const d = decodeSafetensors(bytes);
  assert.deepEqual(d.metadata, { epoch: '3' });
  assert.deepEqual([...d.tensors.keys()], ['a.weight', 'a.num_batches_tracked']);
  assert.deepEqual(d.tensors.get('a.weight')!.dataOffsets, [0, 24]);
  assert.deepEqual([d.tensors.get('a.num_batches_tracked')!.dtype, d.tensors.get('a.num_batches_tracked')!.dataOffsets], ['I64', [24, 32]]);
  assert.deepEqual([...new Float32Array(d.tensors.get('a.weight')!.bytes.slice().buffer)], [1, 2, 3, 4, 5, 6]);
  assert.equal(new BigInt64Array(d.tensors.get('a.num_batches_tracked')!.bytes.slice().buffer)[0], 7n);
});

test('safetensors reader: every rule of the format refuses a broken file with one line', () => {
  const ok = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  assert.doesNotThrow(() => decodeSafetensors(file(ok, new Uint8Array(8))));
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /too short/],
    [(() => { const f = file(ok, new Uint8Array(8)); new DataView(f.buffer).setBigUint64(0, 1000n, true); return f; })(), /header length 1000 exceeds/],
    [file(' ' + JSON.stringify(ok), new Uint8Array(8)), /does not start with "\{"/],
    [file(JSON.stringify(ok) + '\n', new Uint8Array(8)), /padded with something other than spaces/],
    [file('[1]'), /does not start/],
    [file({ __metadata__: { epoch: 3 } }), /__metadata__\.epoch is not a string/],
    [file({ x: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /dtype "F33" is not one of/],
    [file({ x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)), /shape \[-2\]/],
    [file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)), /hold 4 bytes, shape \[2\] F32 needs 8/],
    [file({ x: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /begin at 4, expected 0/],
    [file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /y: data_offsets begin at 4, expected 8/],
    [file(ok, new Uint8Array(12)), /end at byte 8 of the data, which holds 12/],
    [file({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: 1 } }, new Uint8Array(8)), /unknown field extra/],
  ];
  for (const [bytes, why] of cases) assert.throws(() => decodeSafetensors(bytes, 'f.safetensors'), (e: Error) => /^f\.safetensors: /.test(e.message) && why.test(e.message) && !e.message.includes('\n'), String(why));
});

/** Expected PyTorch names of a basic-unit network, written out by hand for depth 8 (one unit per stage). */
function depth8Names(): string[] {
  const bn = (m: string) => ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `${m}.${s}`);
  const unit = (s: number) => [...bn(`stage${s}.unit1.bn1`), `stage${s}.unit1.conv1.weight`, ...bn(`stage${s}.unit1.bn2`), `stage${s}.unit1.conv2.weight`, `stage${s}.unit1.sc.weight`];
  return [...bn('bn_data'), 'conv0.weight', ...unit(1), ...unit(2), ...unit(3), ...bn('bn1'), 'fc1.weight', 'fc1.bias'];
}

test('safetensors export of a depth-8 checkpoint: valid header, PyTorch names, layouts and values, metadata', async () => {
  const out = join(tempDir('mixup-export-st-'), 'm.safetensors');
  const r = await exportCheckpoint(run, { format: 'safetensors', out, version: pkg.version });
  assert.equal(r.tensors, 52);
  const d = decodeSafetensors(readFileSync(out), out);
  assert.deepEqual([...d.tensors.keys()], depth8Names());
  const { weights, cfg } = await loadCheckpoint(ck());
  const f32 = (name: string) => new Float32Array(new Uint8Array(d.tensors.get(name)!.bytes).buffer);
  // conv [out, in, kh, kw] from [kh, kw, in, out]: conv0 16×3×3×3, stage2's first conv 32×16×3×3
  for (const [torch, ref, k, inC, outC] of [['conv0.weight', 'conv0_weight', 3, 3, 16], ['stage2.unit1.conv1.weight', 'stage2_unit1_conv1_weight', 3, 16, 32], ['stage3.unit1.sc.weight', 'stage3_unit1_sc_weight', 1, 32, 64]] as const) {
    assert.deepEqual(d.tensors.get(torch)!.shape, [outC, inC, k, k]);
    const got = f32(torch);
    const src = weights.get(ref)!.values;
    for (let o = 0; o < outC; o++) for (let i = 0; i < inC; i++) for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) {
      assert.equal(got[((o * inC + i) * k + y) * k + x], src[((y * k + x) * inC + i) * outC + o]);
    }
  }
  // linear [out, in] from [in, out]
  assert.deepEqual(d.tensors.get('fc1.weight')!.shape, [10, 64]);
  const fc = f32('fc1.weight');
  const fcSrc = weights.get('fc1_weight')!.values;
  for (let o = 0; o < 10; o++) for (let i = 0; i < 64; i++) assert.equal(fc[o * 64 + i], fcSrc[i * 10 + o]);
  // BatchNorm: γ, β and the moving statistics as stored; bn_data's fixed γ is ones
  assert.deepEqual([...f32('stage1.unit1.bn2.weight')], [...weights.get('stage1_unit1_bn2_gamma')!.values]);
  assert.deepEqual([...f32('bn1.running_var')], [...weights.get('bn1_moving_var')!.values]);
  assert.deepEqual([...f32('bn_data.weight')], [1, 1, 1]);
  assert.deepEqual([...f32('bn_data.bias')], [...weights.get('bn_data_beta')!.values]);
  assert.deepEqual([d.tensors.get('bn1.num_batches_tracked')!.dtype, d.tensors.get('bn1.num_batches_tracked')!.shape], ['I64', []]);
  // metadata: strings only (the reader checked), config, epoch, input, version
  const m = d.metadata;
  assert.deepEqual([m['format'], m['epoch'], m['batch'], m['checkpoint'], m['mixup_version']], ['mixup-resnet', '1', '0', 'epoch-0001', pkg.version]);
  assert.deepEqual(JSON.parse(m['config']!), JSON.parse(JSON.stringify(cfg)));
  assert.deepEqual(JSON.parse(m['model']!), { arch: 'mxnet-preact', depth: 8, width: 16, numClasses: 10, bnEps: 2e-5, torchModule: 'scripts/torch/mixup_resnet.py MixupResNet' });
  assert.deepEqual(JSON.parse(m['input']!), {
    layout: 'NCHW', channels: 'RGB', height: 8, width: 8, crop: 'centre 8x8 of the 32x32 image, rows 12..19, columns 12..19',
    scale: 1, mean: [123.68, 116.779, 103.939], std: [1, 1, 1],
  });
});

test('the exporter walks the spec by block kind: bottleneck units export, an unknown kind is refused with one line', async () => {
  const g = exportGraph(networkSpec(164, 10));
  const names = g.ops.filter((o) => o.op === 'conv').map((o) => (o as { module: string }).module);
  assert.deepEqual(names.slice(0, 5), ['conv0', 'stage1.unit1.conv1', 'stage1.unit1.conv2', 'stage1.unit1.conv3', 'stage1.unit1.sc']);
  assert.equal(names.length, 1 + 3 * 18 * 3 + 3);
  const spec: NetworkSpec = networkSpec(8, 10);
  (spec.stages[1]![0] as { kind: string }).kind = 'wide-dropout';
  assert.throws(() => exportGraph(spec), (e: Error) => e.message === 'export: unit stage2_unit1 is of block kind "wide-dropout", which the exporter does not know (known: basic, bottleneck)');
});

test('the walk follows the optional parts of other architectures\' specs: no bn_data, a stem BatchNorm, identity from act1, no bn1, their eps', () => {
  const spec = networkSpec(8, 10) as unknown as Record<string, unknown> & NetworkSpec;
  const bn0 = { name: 'bn0', channels: 16, fixGamma: false };
  Object.assign(spec, { bnData: null, stemBn: bn0, bn1: null, bnEps: 1e-5 });
  spec.stages[0]![0]!.sc = null; // a unit with an identity shortcut that adds the pre-activated input
  (spec.stages[0]![0] as unknown as { identityFrom: string }).identityFrom = 'act1';
  const ops = exportGraph(spec).ops;
  const line = (o: (typeof ops)[number]) => [o.op, 'module' in o ? o.module : '', 'a' in o ? `${o.a}+${o.b}` : o.x].filter((p) => p !== '').join(' ');
  assert.deepEqual(ops.slice(0, 10).map(line), [
    'conv conv0 input', 'bn bn0 conv0', 'relu bn0',
    'bn stage1.unit1.bn1 bn0.relu', 'relu stage1.unit1.bn1', 'conv stage1.unit1.conv1 stage1.unit1.bn1.relu',
    'bn stage1.unit1.bn2 stage1.unit1.conv1', 'relu stage1.unit1.bn2', 'conv stage1.unit1.conv2 stage1.unit1.bn2.relu',
    'add stage1.unit1.conv2+stage1.unit1.bn1.relu',
  ]);
  assert.deepEqual(ops.slice(-3).map(line), ['add stage3.unit1.conv2+stage3.unit1.sc', 'gap stage3.unit1', 'linear fc1 pool']);
  assert.ok(ops.every((o) => o.op !== 'bn' || o.eps === 1e-5));
  // the reference network: bn_data first, eps 2e-5, bn1-ReLU before the pool, identity from x
  const ref = exportGraph(networkSpec(14, 10)).ops;
  assert.deepEqual(ref.slice(0, 2).map(line), ['bn bn_data input', 'conv conv0 bn_data']);
  assert.ok(ref.every((o) => o.op !== 'bn' || o.eps === 2e-5));
  assert.deepEqual(ref.filter((o) => o.op === 'add').map(line).slice(0, 2), ['add stage1.unit1.conv2+stage1.unit1.sc', 'add stage1.unit2.conv2+stage1.unit1']);
  assert.deepEqual(ref.slice(-4).map(line), ['bn bn1 stage3.unit2', 'relu bn1', 'gap bn1.relu', 'linear fc1 pool']);
});

test('ONNX export of a depth-8 wasm checkpoint: ONNX Runtime logits equal mixup test\'s to 1e-4 on validation images', async () => {
  const out = join(tempDir('mixup-export-onnx-'), 'm.onnx');
  await exportCheckpoint(run, { format: 'onnx', out, version: pkg.version });
  const { cfg } = await loadCheckpoint(ck());
  const im = await valImages(cfg, 8);
  assert.equal(im.n, 8);
  const ours = await engineLogits(ck(), im, 'TfjsEngine');
  const theirs = await onnxLogits(out, im);
  assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}`);
  assert.ok(Math.max(...ours.map(Math.abs)) > 1e-3, 'logits are not all ~0');
});

for (const name of ['eval-logits-d8', 'eval-logits-d50']) {
  const c = goldenEval(name);
  test(`ONNX export of the golden ${name} weights: ONNX Runtime = mixup's wasm inference to 1e-4 (and the PyTorch golden logits)`, { skip: c ? false : `no golden data at ${GOLDEN}` }, async () => {
    const goldRun = goldenRun(name, c!.depth, c!.images.n);
    const out = join(tempDir('mixup-export-golden-onnx-'), 'm.onnx');
    await exportCheckpoint(goldRun, { format: 'onnx', out, version: pkg.version });
    const ours = await engineLogits(join(goldRun, 'checkpoints', 'epoch-0001'), c!.images, 'TfjsEngine');
    const theirs = await onnxLogits(out, c!.images);
    assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}`);
    assert.ok(maxAbsDiff(theirs, c!.logits) < 1e-4, `vs golden: max |Δ| ${maxAbsDiff(theirs, c!.logits)}`);
  });
}

test('ONNX export of bottleneck units (depth 164, initialised, BatchNorms perturbed): ONNX Runtime = mixup\'s wasm inference to 1e-4', async () => {
  const r = await initialisedRun(164, 8, 16);
  const out = join(tempDir('mixup-export-d164-'), 'm.onnx');
  await exportCheckpoint(r, { format: 'onnx', out, version: pkg.version });
  const im = lcgImages(2, 8, 7);
  const ours = await engineLogits(join(r, 'checkpoints', 'epoch-0001'), im, 'TfjsEngine');
  const theirs = await onnxLogits(out, im);
  assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}, logits up to ${Math.max(...ours.map(Math.abs))}`);
  const big = Math.max(...ours.map(Math.abs));
  assert.ok(big > 1e-2 && big < 100, `logits up to ${big}`);
});

for (const [arch, width, depth] of [['preact-resnet18', 4, 18], ['wrn-28-10', 2, 28]] as const) {
  test(`ONNX export of a ${arch} checkpoint (width ${width}, BatchNorms perturbed): ONNX Runtime = mixup's wasm inference to 1e-4; metadata names the arch and width`, async () => {
    // model.depth is the reference network's; these architectures fix their own (18, 28)
    const r = await initialisedRun(50, 8, 1, { arch, width });
    const out = join(tempDir('mixup-export-arch-'), 'm.safetensors');
    await exportCheckpoint(r, { format: 'safetensors', out, version: pkg.version });
    assert.deepEqual(JSON.parse(decodeSafetensors(readFileSync(out)).metadata['model']!), { arch, depth, width, numClasses: 10, bnEps: 1e-5, torchModule: 'scripts/torch/mixup_resnet.py MixupResNet' });
    const onnx = out.replace(/safetensors$/, 'onnx');
    await exportCheckpoint(r, { format: 'onnx', out: onnx, version: pkg.version });
    // inputs of the paper preset's scale ((pixel/255 − mean)/std: about ±2), not mean-subtracted pixels
    const px = lcgImages(2, 8, 11);
    const im = { ...px, nhwc: px.nhwc.map((v) => v / 64) };
    const ours = await engineLogits(join(r, 'checkpoints', 'epoch-0001'), im, 'TfjsEngine');
    const theirs = await onnxLogits(onnx, im);
    assert.ok(maxAbsDiff(ours, theirs) < 1e-4, `max |Δ| ${maxAbsDiff(ours, theirs)}, logits up to ${Math.max(...ours.map(Math.abs))}`);
    const big = Math.max(...ours.map(Math.abs));
    assert.ok(big > 1e-2 && big < 100, `logits up to ${big}`);
  });
}

/** The fields of one protobuf message, decoded by wire type alone: [field number, varint | bytes]. */
function fields(bytes: Uint8Array): [number, bigint | Uint8Array][] {
  const r = new BinaryReader(bytes);
  const out: [number, bigint | Uint8Array][] = [];
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (wt === WireType.Varint) out.push([no, BigInt(r.uint64())]);
    else if (wt === WireType.LengthDelimited) out.push([no, r.bytes()]);
    else throw new Error(`field ${no}: unexpected wire type ${wt}`);
  }
  return out;
}
const text = (b: bigint | Uint8Array) => new TextDecoder().decode(b as Uint8Array);
const all = (f: [number, bigint | Uint8Array][], no: number) => f.filter(([n]) => n === no).map(([, v]) => v);

test('ONNX file decoded by field number (onnx.proto): IR 7, opset 13, producer, doc string, metadata, the depth-8 graph\'s operators', async () => {
  const out = join(tempDir('mixup-export-proto-'), 'm.onnx');
  await exportCheckpoint(run, { format: 'onnx', out, version: pkg.version });
  const model = fields(readFileSync(out));
  assert.deepEqual(all(model, 1), [7n]); // ir_version
  assert.deepEqual([text(all(model, 2)[0]!), text(all(model, 3)[0]!)], ['mixup', pkg.version]);
  assert.match(text(all(model, 6)[0]!), /RGB pixel values 0-255 minus the mean \[123\.68, 116\.779, 103\.939\]; crop: centre 8x8/);
  const opset = fields(all(model, 8)[0] as Uint8Array);
  assert.deepEqual([text(all(opset, 1)[0] ?? new Uint8Array()), all(opset, 2)[0]], ['', 13n]);
  const meta = Object.fromEntries(all(model, 14).map((e) => fields(e as Uint8Array)).map((kv) => [text(all(kv, 1)[0]!), text(all(kv, 2)[0]!)]));
  assert.deepEqual(Object.keys(meta), ['format', 'mixup_version', 'checkpoint', 'epoch', 'batch', 'model', 'input', 'config', 'opset']);
  assert.equal(JSON.parse(meta['input']!).height, 8);
  const graph = fields(all(model, 7)[0] as Uint8Array);
  const ops = all(graph, 1).map((n) => text(all(fields(n as Uint8Array), 4)[0]!));
  const count = (op: string) => ops.filter((o) => o === op).length;
  // depth 8: 8 BatchNorms (bn_data, 2 per unit, bn1), 10 convolutions (conv0, 3 per unit with the shortcut),
  // a ReLU after every BatchNorm but bn_data, one Add per unit, then the head
  assert.deepEqual(
    ['BatchNormalization', 'Conv', 'Relu', 'Add', 'GlobalAveragePool', 'Flatten', 'Gemm'].map(count),
    [8, 10, 7, 3, 1, 1, 1],
  );
  assert.equal(ops.length, 31);
  assert.equal(all(graph, 5).length, 44); // initializers
  const input = fields(all(graph, 11)[0] as Uint8Array);
  assert.equal(text(all(input, 1)[0]!), 'input');
  const shape = fields(all(fields(all(fields(all(input, 2)[0] as Uint8Array), 1)[0] as Uint8Array), 2)[0] as Uint8Array);
  assert.deepEqual(all(shape, 1).map((d) => { const f = fields(d as Uint8Array)[0]!; return f[0] === 2 ? text(f[1]) : f[1]; }), ['N', 3n, 8n, 8n]);
});

test('mixup export: writes the default file and refuses bad input with one line and exit 2', async () => {
  const r = runMixup(['export', run, '--format', 'onnx']);
  assert.equal(r.code, 0, r.err);
  const def = join(run, 'exports', 'epoch-0001.onnx');
  assert.ok(existsSync(def));
  assert.match(r.out, new RegExp(`^exported .*epoch-0001 \\(epoch 1\\) as onnx: ${def.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 44 tensors, \\d+ bytes\\ninput \`input\`: \\[N, 3, 8, 8\\] float32, NCHW, RGB pixel values 0-255 minus the mean \\[123.68, 116.779, 103.939\\]`));
  const before = readFileSync(def);
  const oneLine = (args: string[], msg: RegExp) => {
    const e = runMixup(args);
    assert.equal(e.code, 2, `${args.join(' ')}: ${e.err}`);
    assert.match(e.err, msg);
    assert.equal(e.err.trim().split('\n').length, 1, e.err);
  };
  oneLine(['export', run, '--format', 'onnx'], new RegExp(`^mixup: error: ${def.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} exists; give --overwrite to replace it, or another --out`));
  assert.deepEqual(readFileSync(def), before);
  oneLine(['export', run, '--format', 'tflite'], /error: option '--format <fmt>' argument 'tflite' is invalid. Allowed choices are safetensors, onnx/);
  oneLine(['export', run], /error: required option '--format <fmt>' not specified/);
  oneLine(['export', join(run, 'nope'), '--format', 'onnx'], /nope: no such run or checkpoint directory/);
  oneLine(['export', run, '--epoch', '7', '--format', 'onnx'], /no checkpoint of epoch 7; epochs with a checkpoint: 1/);
  oneLine(['export', run, '--epoch', 'x', '--format', 'onnx'], /--epoch: expected a positive integer, got x/);
  const txt = join(tempDir('mixup-export-out-'), 'x.txt');
  oneLine(['export', run, '--format', 'onnx', '--out', txt], new RegExp(`^mixup: error: --out ${txt.replace(/[.]/g, '\\.')}: expected a file name ending in \\.onnx for --format onnx\n$`));
  oneLine(['export', run, '--format', 'safetensors', '--out', txt.replace(/txt$/, 'onnx')], /: expected a file name ending in \.safetensors for --format safetensors\n$/);
  oneLine(['export', run, '--format', 'onnx', '--out', '-'], /^mixup: error: --out -: standard output is not supported \(the file is binary\) for --format onnx\n$/);
  assert.equal(existsSync(txt), false);
  // these are answered before TensorFlow.js loads (tfjs-core puts its engine on globalThis._tfengine)
  const hook = "process.on('exit',()=>process.stderr.write(['[no-tfjs]','[tfjs-loaded]'][Number(!!globalThis._tfengine)]))";
  const env = { NODE_OPTIONS: `--import=data:text/javascript,${hook}` };
  assert.match(runMixup(['export', join(run, 'nope'), '--format', 'onnx'], { env }).err, /no such run or checkpoint directory\n\[no-tfjs\]$/);
  assert.match(runMixup(['export', run, '--format', 'onnx'], { env }).err, /exists; give --overwrite to replace it, or another --out\n\[no-tfjs\]$/);
  assert.doesNotMatch(runMixup(['export', '--help']).out, /--backend|--gpu/, 'export runs no model: its help lists no --backend/--gpu');
  const again = runMixup(['export', run, '--format', 'onnx', '--overwrite', '--epoch', '1']);
  assert.equal(again.code, 0, again.err);
  writeFileSync(def, 'not a model');
  assert.equal(runMixup(['export', run, '--format', 'onnx', '--overwrite']).code, 0);
  assert.deepEqual(readFileSync(def), before, 'the same checkpoint exports to the same bytes');
  // --force, the name the other commands that write a file use, replaces it as --overwrite does
  writeFileSync(def, 'not a model');
  assert.equal(runMixup(['export', run, '--format', 'onnx', '--force']).code, 0);
  assert.deepEqual(readFileSync(def), before);
});

test('mixup export RUN passes over a damaged newest checkpoint (as mixup test does), with the line; --epoch of it and a *.damaged folder are refused with one line', async () => {
  const copy = join(tempDir('mixup-export-damaged-'), 'run');
  cpSync(run, copy, { recursive: true });
  rmSync(join(copy, 'exports'), { recursive: true, force: true });
  const bad = join(copy, 'checkpoints', 'epoch-0002');
  cpSync(join(copy, 'checkpoints', 'epoch-0001'), bad, { recursive: true });
  const weights = join(bad, 'weights.bin');
  truncateSync(weights, 1000); // really damaged: cut short
  const r = runMixup(['export', copy, '--format', 'safetensors']);
  assert.equal(r.code, 0, r.err);
  const skip = r.err.split('\n').filter((l) => l.startsWith('export: skipped epoch-0002 ('));
  assert.equal(skip.length, 1, r.err);
  assert.match(skip[0]!, /weights\.bin/);
  assert.match(r.out, /^exported .*epoch-0001 \(epoch 1\) as safetensors: .*epoch-0001\.safetensors/);
  assert.ok(existsSync(join(copy, 'exports', 'epoch-0001.safetensors')));
  assert.equal(existsSync(join(copy, 'exports', 'epoch-0002.safetensors')), false);
  assert.ok(existsSync(weights), 'the damaged checkpoint is left where it is');
  const e2 = runMixup(['export', copy, '--epoch', '2', '--format', 'onnx']);
  assert.equal(e2.code, 2);
  assert.equal(e2.err.trim().split('\n').length, 1, e2.err);
  // set aside as --resume does: named for what it is
  renameSync(bad, `${bad}.damaged`);
  const e3 = runMixup(['export', `${bad}.damaged`, '--format', 'onnx']);
  assert.equal(e3.code, 2);
  assert.deepEqual(e3.err.trim().split('\n'), [`mixup: error: ${bad}.damaged: a checkpoint that did not load, set aside by --resume (kept, never used again); give the run directory ${copy}, or --epoch N of it`]);
  rmSync(dirname(copy), { recursive: true, force: true });
});

test('torchTensors refuses a checkpoint whose tensors do not fit the spec (missing or extra) with one line', async () => {
  const { tensors } = await loadHostTensors(ck());
  const g = exportGraph(networkSpec(14, 10));
  assert.throws(() => torchTensors(g, tensors), (e: Error) => e.message === 'export: the checkpoint has no tensor stage1_unit2_bn1_gamma');
  const d8 = exportGraph(networkSpec(8, 10));
  tensors.set('bn_data_gamma', { shape: [3], values: Float32Array.of(1, 1, 1) }); // as MXNet stores it: allowed
  assert.equal(torchTensors(d8, tensors).size, 52);
  tensors.set('stage4_unit1_conv1_weight', { shape: [1], values: Float32Array.of(0) });
  assert.throws(() => torchTensors(d8, tensors), (e: Error) => e.message === 'export: the checkpoint holds 1 tensor the network does not have: stage4_unit1_conv1_weight (not the network of its config?)');
});
