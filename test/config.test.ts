import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  loadConfig,
  mergeConfig,
  nearestConfigFile,
  parseOverrideValue,
  parseSetArgs,
  readConfigFile,
  validateConfig,
} from '../src/config/load.js';
import { configKeyDocs, suggestKey } from '../src/config/keys.js';
import { isValidDepth, mixupPlacement } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { tempDir } from './fixtures/tmp.js';

function tmp(files: Record<string, unknown>): string {
  const dir = tempDir('mixup-config-');
  for (const [name, body] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
  }
  return dir;
}

function userErrors(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected UserError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    return e.message.split('\n');
  }
  assert.fail('expected a UserError');
}

/** The message of a UserError that reports one problem, in one line. */
function userError(fn: () => unknown): string {
  const lines = userErrors(fn);
  assert.equal(lines.length, 1, `message must be one line: ${lines.join('\n')}`);
  return lines[0]!;
}

test('defaults fill every key', () => {
  const c = validateConfig({}, 'x');
  assert.equal(c.experiment, 'mixup');
  assert.equal(c.mixup.alpha, 0.2);
  assert.equal(c.mixup.mixRate, 0.7);
  assert.deepEqual(c.data.imageShape, [3, 28, 28]);
  assert.deepEqual(c.data.rgbMean, [123.68, 116.779, 103.939]);
  assert.equal(c.data.augment.maxRandomH, 36);
  assert.equal(c.train.batchSize, 128);
  assert.equal(c.train.gradScale, 1);
});

test('every key has a one-line description and a default', () => {
  const docs = configKeyDocs();
  const keys = docs.map((d) => d.key);
  for (const k of ['experiment', 'mixup.alpha', 'mixup.mixRate', 'mixup.at', 'model.depth', 'model.numClasses', 'data.train',
    'data.val', 'data.dir', 'data.imageShape', 'data.padSize', 'data.rgbMean', 'data.augment.maxRandomH', 'train.epochs',
    'train.batchSize', 'train.lr', 'train.lrFactor', 'train.lrStepEpochs', 'train.momentum', 'train.wd', 'train.seed', 'out']) {
    assert.ok(keys.includes(k), `missing key ${k}`);
  }
  for (const d of docs) {
    assert.ok(d.description.length > 5 && !d.description.includes('\n'), `bad description for ${d.key}`);
    assert.notEqual(d.default, undefined, `no default for ${d.key}`);
  }
  assert.equal(docs.find((d) => d.key === 'model.depth')!.type, 'integer');
  assert.equal(docs.find((d) => d.key === 'experiment')!.type, '"erm" | "mixup" | "mixup-feature"');
});

test('extends: relative path, child overrides parent, arrays replaced, objects merged', () => {
  const dir = tmp({
    'base.json': { model: { depth: 20, numClasses: 10 }, train: { lrStepEpochs: [1, 2, 3], lr: 0.5 } },
  });
  writeFileSync(join(dir, 'sub.json'), '{}');
  const sub = tmp({});
  writeFileSync(join(sub, 'child.json'), JSON.stringify({ extends: join('..', dir.split('/').pop()!, 'base.json'), train: { lrStepEpochs: [5] } }));
  const raw = readConfigFile(join(sub, 'child.json'));
  assert.deepEqual(raw, { model: { depth: 20, numClasses: 10 }, train: { lrStepEpochs: [5], lr: 0.5 } });
});

test('extends cycle and missing parent are one-line errors', () => {
  const dir = tmp({ 'a.json': { extends: 'b.json' }, 'b.json': { extends: 'a.json' }, 'c.json': { extends: 'nope.json' } });
  assert.match(userError(() => readConfigFile(join(dir, 'a.json'))), /"extends" cycle/);
  assert.match(userError(() => readConfigFile(join(dir, 'c.json'))), /nope\.json \(extended by .*c\.json\): no such file/);
});

test('misspelt key names the key and suggests the valid one', () => {
  const dir = tmp({ 'bad.json': { mixup: { mixrate: 0.5 } } });
  const msg = userError(() => loadConfig(join(dir, 'bad.json')));
  assert.equal(msg, `config ${join(dir, 'bad.json')}: mixup.mixrate: unknown key; did you mean mixup.mixRate?`);
});

test('several unknown keys are all listed, each with its suggestion; one set by a parent file or a flag says where', () => {
  const dir = tmp({
    'base.json': { train: { epoch: 3 } },
    'bad.json': { extends: 'base.json', mixup: { mixrate: 0.5, alfa: 1 }, colour: 'red', model: { depth: 20 } },
  });
  const bad = join(dir, 'bad.json');
  assert.equal(
    userError(() => loadConfig(bad)),
    `config ${bad}: 4 unknown keys: mixup.mixrate (did you mean mixup.mixRate?), mixup.alfa (did you mean mixup.alpha?), ` +
      `train.epoch (in config ${join(dir, 'base.json')}; did you mean train.epochs?), colour (no similar key)`,
  );
  // with another kind of problem too, which gets a line of its own
  assert.deepEqual(userErrors(() => validateConfig({ train: { lr: -1, batchsize: 8 }, mixup: { mixrate: 1 } }, 'f.json')), [
    'config f.json: 2 unknown keys: mixup.mixrate (did you mean mixup.mixRate?), train.batchsize (did you mean train.batchSize?)',
    'config f.json: train.lr: got -1; too small: expected number to be >0',
  ]);
  // unknown keys from flags name their flags
  const good = tmp({ 'c.json': { train: { lr: 0.1 } } });
  assert.equal(
    userError(() => loadConfig(join(good, 'c.json'), { overrides: [['train.epoch', 2], ['mixup.mixrate', 1]], overrideOrigins: ['--set train.epoch=2', '--set mixup.mixrate=1'] })),
    '--set mixup.mixrate=1: 2 unknown keys: mixup.mixrate (did you mean mixup.mixRate?), train.epoch (in --set train.epoch=2; did you mean train.epochs?)',
  );
});

test('suggestions across levels and no suggestion when nothing is close', () => {
  assert.equal(suggestKey('mixup.mixrate'), 'mixup.mixRate');
  assert.equal(suggestKey('train.batch_size'), 'train.batchSize');
  assert.equal(suggestKey('mixRate'), 'mixup.mixRate');
  assert.equal(suggestKey('data.augment.maxRandomHue'), 'data.augment.maxRandomH');
  assert.equal(suggestKey('zzzzzzzzzz'), null);
});

test('wrong type and out-of-range values name key, value and what is allowed', () => {
  assert.match(userError(() => validateConfig({ mixup: { alpha: 'big' } }, 'f.json')), /^config f\.json: mixup\.alpha: got "big"; expected number/);
  assert.match(userError(() => validateConfig({ mixup: { mixRate: 1.5 } }, 'f.json')), /^config f\.json: mixup\.mixRate: got 1\.5; too big: expected number to be <=1/);
  assert.match(userError(() => validateConfig({ mixup: { alpha: 0 } }, 'f.json')), /mixup\.alpha: got 0; too small: expected number to be >0/);
  assert.equal(
    userError(() => validateConfig({ experiment: 'cutmix' }, 'f.json')),
    'config f.json: experiment: "cutmix" is not allowed; expected one of "erm", "mixup", "mixup-feature"',
  );
  assert.match(userError(() => validateConfig({ train: { batchSize: 12.5 } }, 'f.json')), /train\.batchSize: got 12\.5; expected int/);
});

test('cross-field rules: mixup.at with erm, depth, lr steps, image larger than padded input', () => {
  assert.match(userError(() => validateConfig({ experiment: 'erm', mixup: { at: 'head' } }, 'f')), /mixup\.at: is "head" but experiment is "erm"/);
  assert.match(userError(() => validateConfig({ model: { depth: 51 } }, 'f')), /model\.depth: 51 is not a valid ResNet depth/);
  assert.match(userError(() => validateConfig({ train: { lrStepEpochs: [100, 10] } }, 'f')), /train\.lrStepEpochs: \[100,10\] must be strictly increasing/);
  assert.match(userError(() => validateConfig({ data: { imageShape: [3, 40, 40], padSize: 0 } }, 'f')), /data\.imageShape: .* larger than/);
  assert.match(userError(() => validateConfig({ data: { imageShape: [1, 28, 28] } }, 'f')), /data\.imageShape\[0\]/);
  assert.match(userError(() => validateConfig({ train: { batchSize: 100, shards: 3 } }, 'f')), /train\.shards: 3 does not divide train\.batchSize 100 into equal shards/);
  assert.equal(validateConfig({ train: { batchSize: 96, shards: 3 } }, 'f').train.shards, 3);
  assert.match(
    userError(() => validateConfig({ train: { batchSize: 128, shards: 128 } }, 'f')),
    /train\.shards: 128 makes shards of one sample of train\.batchSize 128: no pair to mix and BatchNorm statistics of a single image; use at most 64/,
  );
  assert.equal(validateConfig({ train: { batchSize: 128, shards: 64 } }, 'f').train.shards, 64);
  assert.equal(validateConfig({ train: { batchSize: 1 } }, 'f').train.batchSize, 1, 'a batch of one in one shard stays allowed');
});

test('the paper augmentation preset needs data.imageShape [3,32,32]: one line naming both keys', () => {
  assert.equal(
    userError(() => validateConfig({ data: { augment: { preset: 'paper' } } }, 'f.json')),
    'config f.json: data.imageShape: [3,28,28] but data.augment.preset "paper" trains on 32x32 images; set data.imageShape [3,32,32]',
  );
  assert.equal(
    userError(() => validateConfig({ data: { imageShape: [3, 32, 30], augment: { preset: 'paper' } } }, 'f.json')),
    'config f.json: data.imageShape: [3,32,30] but data.augment.preset "paper" trains on 32x32 images; set data.imageShape [3,32,32]',
  );
  const ok = validateConfig({ data: { imageShape: [3, 32, 32], augment: { preset: 'paper' } } }, 'f.json');
  assert.deepEqual(ok.data.imageShape, [3, 32, 32]);
  assert.equal(ok.data.augment.preset, 'paper');
  // The other presets keep the reference's 28x28 default.
  assert.deepEqual(validateConfig({ data: { augment: { preset: 'none' } } }, 'f.json').data.imageShape, [3, 28, 28]);
});

test('model.depth with an architecture of fixed depth (preact-resnet18, wrn-28-10) is refused in one line; its default passes', () => {
  assert.equal(
    userError(() => validateConfig({ model: { arch: 'preact-resnet18', depth: 20 } }, 'f.json')),
    'config f.json: model.depth: 20 does nothing for model.arch "preact-resnet18", which fixes its own depth (model.depth sets mxnet-preact\'s only); remove it, or set model.width for a smaller network',
  );
  // the fixed depth itself too: it is not what the key means, and would split a report's rows of one network
  assert.match(userError(() => validateConfig({ model: { arch: 'wrn-28-10', depth: 28 } }, 'f.json')), /^config f\.json: model\.depth: 28 does nothing for model\.arch "wrn-28-10"/);
  assert.equal(validateConfig({ model: { arch: 'wrn-28-10', depth: 50 } }, 'f.json').model.depth, 50);
  assert.equal(validateConfig({ model: { arch: 'preact-resnet18', width: 8 } }, 'f.json').model.width, 8);
  // the flag that set it is named: the paper's config with --set model.depth=20
  const paper = new URL('../../configs/paper/mixup-preact18.json', import.meta.url).pathname;
  assert.match(userError(() => loadConfig(paper, { overrides: [['model.depth', 20]] })), /^--set model\.depth=20: model\.depth: 20 does nothing/);
});

test('the paper preset refuses the reference-only augmentation keys and data.rgbMean when set away from their defaults (they would do nothing)', () => {
  const paper = { imageShape: [3, 32, 32], augment: { preset: 'paper' } };
  const why = 'does nothing with data.augment.preset "paper" (it pads with 0, has no HSL jitter and normalises by the CIFAR-10 mean and std); remove it, or choose preset reference';
  assert.deepEqual(userErrors(() => validateConfig({ data: { ...paper, rgbMean: [125, 123, 114], augment: { preset: 'paper', fillValue: 0, maxRandomL: 0 } } }, 'f.json')), [
    `config f.json: data.rgbMean: [125,123,114] ${why}`,
    `config f.json: data.augment.fillValue: 0 ${why}`,
    `config f.json: data.augment.maxRandomL: 0 ${why}`,
  ]);
  // their defaults (what configs/base.json spells out, and noise/base.json inherits) pass; so do the keys the preset uses
  const ok = validateConfig({ data: { ...paper, rgbMean: [123.68, 116.779, 103.939], padSize: 2, augment: { preset: 'paper', mirror: false, fillValue: 127, maxRandomH: 36 } } }, 'f.json');
  assert.deepEqual([ok.data.padSize, ok.data.augment.mirror], [2, false]);
  // the same keys with the reference preset are its own
  assert.equal(validateConfig({ data: { augment: { fillValue: 0 } } }, 'f.json').data.augment.fillValue, 0);
  // the flag that set one is named
  const file = new URL('../../configs/paper/mixup-preact18.json', import.meta.url).pathname;
  assert.equal(userError(() => loadConfig(file, { overrides: [['data.augment.fillValue', 0]] })), `--set data.augment.fillValue=0: data.augment.fillValue: 0 ${why}`);
});

test('depth rule 6n+2 / 9n+2', () => {
  assert.deepEqual([8, 14, 20, 50, 110, 164, 1001].map(isValidDepth), [true, true, true, true, true, true, true]);
  assert.deepEqual([0, 2, 9, 21, 51, 170].map(isValidDepth), [false, false, false, false, false, false]);
});

test('placement follows experiment unless mixup.at is given', () => {
  const c = validateConfig({}, 'x');
  assert.equal(mixupPlacement({ ...c, experiment: 'erm' }), null);
  assert.equal(mixupPlacement({ ...c, experiment: 'mixup' }), 'input');
  assert.equal(mixupPlacement({ ...c, experiment: 'mixup-feature' }), 'head');
  assert.equal(mixupPlacement({ ...c, experiment: 'mixup', mixup: { ...c.mixup, at: 'stage2' } }), 'stage2');
});

test('overrides: values parse as JSON, fractions, or strings; later wins over file', () => {
  assert.equal(parseOverrideValue('10'), 10);
  assert.equal(parseOverrideValue('1/64'), 0.015625);
  assert.equal(parseOverrideValue('true'), true);
  assert.equal(parseOverrideValue('null'), null);
  assert.deepEqual(parseOverrideValue('[10,20]'), [10, 20]);
  assert.equal(parseOverrideValue('head'), 'head');
  assert.deepEqual(parseSetArgs(['train.epochs=3', 'data.dir=a=b']), [['train.epochs', 3], ['data.dir', 'a=b']]);
  assert.match(userError(() => parseSetArgs(['train.epochs'])), /expected key\.path=value/);

  const dir = tmp({ 'c.json': { experiment: 'erm', train: { epochs: 9, lr: 0.1 } } });
  const c = loadConfig(join(dir, 'c.json'), { overrides: [['train.epochs', 2], ['mixup.alpha', 0.4]] });
  assert.equal(c.train.epochs, 2);
  assert.equal(c.train.lr, 0.1);
  assert.equal(c.mixup.alpha, 0.4);
  assert.equal(c.out, 'runs/c');
  assert.match(userError(() => loadConfig(join(dir, 'c.json'), { overrides: [['train.epoch', 2]] })), /train\.epoch: unknown key; did you mean train\.epochs\?/);
});

test('a bad value names where it came from: the file of the extends chain that set it, or the flag; a bad file value is an error even when a flag overrides it', () => {
  const dir = tmp({
    'base.json': { model: { depth: 21 }, train: { lr: 0.1 } },
    'child.json': { extends: 'base.json', train: { lr: -1 } },
    'good.json': { train: { lr: 0.1 } },
  });
  const child = join(dir, 'child.json');
  // train.lr is set by child.json itself (the depth rule runs only once every value has its type and range).
  assert.deepEqual(userErrors(() => loadConfig(child, { overrides: [['train.lr', 0.2], ['model.depth', 20]], overrideOrigins: ['--lr 0.2', '--set model.depth=20'] })), [
    `config ${child}: train.lr: got -1; too small: expected number to be >0`,
    `config ${join(dir, 'base.json')}: model.depth: 21 is not a valid ResNet depth: expected 6n+2 below 164 (8, 14, 20, ..., 50, ...) or 9n+2 from 164 up (164, 173, ...)`,
  ]);
  const only = tmp({ 'base.json': { model: { depth: 21 } }, 'child.json': { extends: 'base.json', train: { lr: 0.2 } } });
  assert.equal(
    userError(() => loadConfig(join(only, 'child.json'), { overrides: [['model.depth', 20]] })),
    `config ${join(only, 'base.json')}: model.depth: 21 is not a valid ResNet depth: expected 6n+2 below 164 (8, 14, 20, ..., 50, ...) or 9n+2 from 164 up (164, 173, ...)`,
  );
  const good = join(dir, 'good.json');
  assert.equal(userError(() => loadConfig(good, { overrides: [['train.epochs', 0]], overrideOrigins: ['--epochs 0'] })), '--epochs 0: train.epochs: got 0; too small: expected number to be >0');
  assert.equal(userError(() => loadConfig(good, { overrides: [['mixup.at', 'foo']] })), '--set mixup.at="foo": mixup.at: "foo" is not allowed; expected one of "input", "head", "stage1", "stage2", "stage3"');
});

test('bad files: missing, not JSON (with line and column), not an object', () => {
  const dir = tmp({ 'broken.json': '{\n  "a": 1,\n}', 'arr.json': '[1]' });
  assert.match(userError(() => loadConfig(join(dir, 'none.json'))), /none\.json: no such file$/);
  assert.match(userError(() => loadConfig(join(dir, 'broken.json'))), /broken\.json: not valid JSON at line 3, column 1/);
  assert.match(userError(() => loadConfig(join(dir, 'arr.json'))), /arr\.json: expected an object \(key: value pairs\) at the top level, got a list$/);
});

test('a config file that is not there: the nearest config file beside it is suggested (a typo, a missing extension), none when nothing is close', () => {
  const dir = tmp({ 'erm-preact18.json': {}, 'mixup-wrn28-10.json': {}, 'quick.yaml': 'train: {}' });
  assert.equal(userError(() => loadConfig(join(dir, 'erm-preact.json'))), `config ${join(dir, 'erm-preact.json')}: no such file; did you mean ${join(dir, 'erm-preact18.json')}?`);
  assert.equal(userError(() => loadConfig(join(dir, 'mixup-wrn28.json'))), `config ${join(dir, 'mixup-wrn28.json')}: no such file; did you mean ${join(dir, 'mixup-wrn28-10.json')}?`);
  assert.equal(userError(() => loadConfig(join(dir, 'quick'))), `config ${join(dir, 'quick')}: no such file; did you mean ${join(dir, 'quick.yaml')}?`);
  assert.equal(userError(() => loadConfig(join(dir, 'label-noise.json'))), `config ${join(dir, 'label-noise.json')}: no such file`);
  assert.equal(userError(() => loadConfig(join(dir, 'no', 'erm-preact18.json'))), `config ${join(dir, 'no', 'erm-preact18.json')}: no such file`);
  // the shipped paper configs: configs/paper/erm-preact.json → configs/paper/erm-preact18.json
  const paper = new URL('../../configs/paper/', import.meta.url).pathname;
  assert.equal(nearestConfigFile(join(paper, 'erm-preact.json')), join(paper, 'erm-preact18.json'));
});

test('every problem of a config is listed, one line each (issue 22 item 8)', () => {
  assert.deepEqual(userErrors(() => validateConfig({ train: { epochs: 'ten' }, mixup: { alpha: -1 } }, 'f.json')), [
    'config f.json: mixup.alpha: got -1; too small: expected number to be >0',
    'config f.json: train.epochs: got "ten"; expected number, received string',
  ]);
});

test('JSON syntax errors: one line with line and column, never the quoted file (Node 20 names no position)', () => {
  const dir = tmp({ 'a.json': '{\n  "train": {"epochs": ten}\n}', 'b.json': '{\n  "a": 1', 'c.json': 'train:\n  epochs: 5\n' });
  assert.equal(userError(() => loadConfig(join(dir, 'a.json'))), `${join(dir, 'a.json')}: not valid JSON at line 2, column 23: unexpected "t"`);
  assert.equal(userError(() => loadConfig(join(dir, 'b.json'))), `${join(dir, 'b.json')}: not valid JSON at line 2, column 9: the text ends too early`);
  assert.equal(userError(() => loadConfig(join(dir, 'c.json'))), `${join(dir, 'c.json')}: not valid JSON at line 1, column 1: unexpected "t" (it reads as YAML: name the file .yaml or .yml)`);
});

test('YAML configs (.yaml, .yml): the same schema, extends across formats, errors with line numbers (issue 22 item 9)', () => {
  const dir = tmp({
    'base.json': { model: { depth: 20 }, train: { lr: 0.5, lrStepEpochs: [1, 2] } },
    'exp.yaml': '# a YAML experiment\nextends: base.json\nexperiment: erm\ntrain:\n  epochs: 3\n  lrStepEpochs: [2]\n',
    'child.yml': 'extends: exp.yaml\nmixup:\n  alpha: 0.4\n',
    'bad.yaml': 'train:\n  epochs: 3\n   lr: 0.1\n',
    'dup.yaml': 'train:\n  epochs: 3\n  epochs: 4\n',
    'wrong.yaml': 'train:\n  epochs: ten\nmixup:\n  alpha: -1\n',
    'list.yaml': '- 1\n- 2\n',
    'exp.conf': 'train:\n  epochs: 7\n',
  });
  const c = loadConfig(join(dir, 'child.yml'));
  assert.deepEqual([c.experiment, c.model.depth, c.train.lr, c.train.epochs, c.train.lrStepEpochs, c.mixup.alpha, c.out], ['erm', 20, 0.5, 3, [2], 0.4, 'runs/child']);
  assert.equal(loadConfig(join(dir, 'exp.conf')).train.epochs, 7); // another extension: JSON, else YAML
  assert.match(userError(() => loadConfig(join(dir, 'bad.yaml'))), new RegExp(`^${join(dir, 'bad.yaml')}: not valid YAML at line 2, column 11: Nested mappings are not allowed in compact mappings$`));
  assert.match(userError(() => loadConfig(join(dir, 'dup.yaml'))), new RegExp(`^${join(dir, 'dup.yaml')}: not valid YAML at line 3, column 3: Map keys must be unique`));
  assert.deepEqual(userErrors(() => loadConfig(join(dir, 'wrong.yaml'))), [
    `config ${join(dir, 'wrong.yaml')}: mixup.alpha: got -1; too small: expected number to be >0`,
    `config ${join(dir, 'wrong.yaml')}: train.epochs: got "ten"; expected number, received string`,
  ]);
  assert.match(userError(() => loadConfig(join(dir, 'list.yaml'))), /list\.yaml: expected an object \(key: value pairs\) at the top level, got a list$/);
});

test("another framework's name for a key suggests this schema's key", () => {
  assert.equal(suggestKey('train.learningRate'), 'train.lr');
  assert.equal(suggestKey('lr_schedule'), 'train.lrStepEpochs');
  assert.equal(suggestKey('weight_decay'), 'train.wd');
  assert.equal(suggestKey('train.weight_decay'), 'train.wd');
  assert.equal(suggestKey('batch_size'), 'train.batchSize');
  assert.equal(suggestKey('num_epochs'), 'train.epochs');
  assert.equal(userError(() => validateConfig({ train: { learningRate: 0.1 } }, 'f.json')), 'config f.json: train.learningRate: unknown key; did you mean train.lr?');
  // misspelt other-framework names, too; a short one is not guessed at
  assert.equal(userError(() => validateConfig({ train: { lerningRate: 0.1 } }, 'f.json')), 'config f.json: train.lerningRate: unknown key; did you mean train.lr?');
  assert.equal(suggestKey('train.lerning_rate'), 'train.lr');
  assert.equal(suggestKey('train.wieght_decay'), 'train.wd');
  assert.equal(suggestKey('data.decoy'), null);
});

test('JSON configs with a key twice are refused as YAML ones are, naming line, column and key (JSON.parse keeps the last silently)', () => {
  const dir = tmp({ 'dup.json': '{\n  "train": {\n    "lr": 0.1,\n    "epochs": 3,\n    "lr": 0.2\n  }\n}\n', 'ok.json': '{"train": {"lr": 0.2}, "mixup": {"alpha": 0.4}, "data": {"limit": 100}}' });
  assert.equal(userError(() => loadConfig(join(dir, 'dup.json'))), `${join(dir, 'dup.json')}: not valid JSON at line 5, column 5: duplicate key "lr" (a key may appear once per object)`);
  assert.equal(loadConfig(join(dir, 'ok.json')).train.lr, 0.2, 'the same key in different objects is fine');
});

test('data.holdout at or past data.limit is refused from the config (before anything loads)', () => {
  assert.equal(userError(() => validateConfig({ data: { limit: 100, holdout: 100 } }, 'f.json')), 'config f.json: data.holdout: 100 held-out images of the 100 training images data.limit takes; expected fewer than 100');
  assert.match(userError(() => validateConfig({ data: { limit: 100, holdout: 500 } }, 'f.json')), /data\.holdout: 500 held-out images of the 100 training images/);
  assert.equal(validateConfig({ data: { limit: 100, holdout: 99 } }, 'f.json').data.holdout, 99);
  assert.equal(validateConfig({ data: { holdout: 5000 } }, 'f.json').data.holdout, 5000, 'without data.limit the file decides (when it opens)');
});

test('mergeConfig does not modify its arguments', () => {
  const a = { x: { y: 1 } };
  const b = { x: { z: 2 } };
  assert.deepEqual(mergeConfig(a, b), { x: { y: 1, z: 2 } });
  assert.deepEqual(a, { x: { y: 1 } });
});

test('the shipped configs reproduce the reference table settings', () => {
  const configs = new URL('../../configs/', import.meta.url).pathname;
  for (const dir of [configs, join(configs, 'noise')]) for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) loadConfig(join(dir, f));
  for (const n of [90, 200, 300]) {
    const erm = loadConfig(join(configs, `erm-${n}.json`));
    assert.deepEqual([erm.experiment, erm.train.epochs, erm.train.lr, erm.train.lrStepEpochs, erm.train.gradScale], ['erm', n, 0.05, [200, 250], 1]);
    // the reference's 2 GPUs: 2 shards of 64; checkpoints of epochs 90, 200, 300 kept
    assert.deepEqual([erm.train.shards, erm.train.keepEpochs], [2, [90, 200, 300]]);
    for (const e of ['mixup', 'mixup-feature'] as const) {
      const m = loadConfig(join(configs, `${e}-${n}.json`));
      assert.deepEqual(
        [m.experiment, m.train.epochs, m.train.lr, m.train.lrStepEpochs, m.train.gradScale, m.loss, m.mixup.alpha, m.mixup.mixRate],
        [e, n, 0.7, [10, 100, 200], 1 / 64, 'mixture-nll', 0.2, 0.7],
      );
      assert.deepEqual([m.model.depth, m.train.batchSize, m.train.momentum, m.train.wd, m.data.padSize], [50, 128, 0.9, 1e-4, 4]);
      assert.deepEqual(m.data.imageShape, [3, 28, 28]);
      assert.deepEqual([m.train.shards, m.train.keepEpochs], [2, [90, 200, 300]]);
      assert.equal(m.mixup.backward, e === 'mixup-feature' ? 'reference' : 'exact');
    }
  }
  const quick = loadConfig(join(configs, 'quick.json'));
  assert.deepEqual([quick.train.shards, quick.mixup.backward], [1, 'exact']);
  assert.equal(validateConfig({}, 'f').train.shards, 1);
});

/** The names a `{a,b}-{c,d}.json` pattern stands for (each brace group expanded in turn). */
function expandBraces(pattern: string): string[] {
  const m = /\{([^{}]*)\}/.exec(pattern);
  if (!m) return [pattern];
  return m[1]!.split(',').flatMap((alt) => expandBraces(pattern.slice(0, m.index) + alt + pattern.slice(m.index + m[0].length)));
}

test('docs/configs.md names every shipped config, configs/paper/ and configs/noise/ included', () => {
  const root = new URL('../../', import.meta.url).pathname;
  const doc = readFileSync(join(root, 'docs', 'configs.md'), 'utf8');
  // the table's first column: `name.json` or `dir/{a,b}-{c,d}.json`, relative to configs/
  const named = new Set([...doc.matchAll(/^\| `([^`]+\.json)`(?:, `([^`]+\.json)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter((x) => x !== undefined).flatMap(expandBraces)));
  assert.ok(named.has('paper/mixup-wrn28-10.json') && named.has('noise/erm-20.json') && named.has('erm-300.json'), [...named].join(' '));
  const shipped = ['', 'noise/', 'paper/'].flatMap((d) => readdirSync(join(root, 'configs', d)).filter((f) => f.endsWith('.json')).map((f) => d + f));
  assert.deepEqual(shipped.filter((f) => !named.has(f)), []);
});

test('data paths become absolute against the directory the command ran in; absolute ones stay', async () => {
  const { absoluteDataPaths } = await import('../src/config/load.js');
  const c = validateConfig({ data: { dir: '../data/cifar10', train: '/abs/train.rec', val: null } }, 'x');
  const a = absoluteDataPaths(c, '/home/me/mixup');
  assert.deepEqual([a.data.dir, a.data.train, a.data.val], ['/home/me/data/cifar10', '/abs/train.rec', null]);
  assert.equal(c.data.dir, '../data/cifar10', 'the input config is not modified');
});

test('a non-finite override is named as such', () => {
  assert.match(userError(() => validateConfig({ train: { gradScale: parseOverrideValue('1/0') } }, 'f.json')), /^config f\.json: train\.gradScale: got Infinity; /);
});
