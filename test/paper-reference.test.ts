// The mixup paper's Table 1 figures and the authors' recipe as the report's reference for the paper's
// networks (src/report/reference.ts, recipe.ts): which figure a run compares with, and when it is off-recipe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config/load.js';
const repoRoot = new URL('../../', import.meta.url).pathname;
import { IGNORED_FOR_GROUPING, flatSettings } from '../src/report/runs.js';
import { offRecipeKeys } from '../src/report/recipe.js';
import { publishedAccuracy } from '../src/report/reference.js';

test('published accuracy: Table 1 of the paper (100 − error) for its networks at 200 epochs, the MXNet reference otherwise', () => {
  assert.equal(publishedAccuracy('preact-resnet18', 'erm', 200), 94.4); // 5.6 % error
  assert.equal(publishedAccuracy('preact-resnet18', 'mixup', 200), 95.8); // 4.2 %
  assert.equal(publishedAccuracy('wrn-28-10', 'erm', 200), 96.2); // 3.8 %
  assert.equal(publishedAccuracy('wrn-28-10', 'mixup', 200), 97.3); // 2.7 %
  assert.equal(publishedAccuracy('wrn-28-10', 'mixup', 300), null);
  assert.equal(publishedAccuracy('preact-resnet18', 'mixup-feature', 200), null);
  assert.equal(publishedAccuracy('mxnet-preact', 'mixup', 300), 92.25);
  assert.equal(publishedAccuracy(undefined, 'erm', 90), 87.9);
});

test("off-recipe keys of a paper run are counted against configs/paper/, not the reference's configs", () => {
  const settings = (file: string, overrides: [string, unknown][] = []) =>
    flatSettings(loadConfig(`${repoRoot}configs/paper/${file}`, { overrides }), IGNORED_FOR_GROUPING);
  assert.deepEqual(offRecipeKeys({ experiment: 'mixup', epochs: 200, settings: settings('mixup-preact18.json') }), []);
  assert.deepEqual(offRecipeKeys({ experiment: 'erm', epochs: 200, settings: settings('erm-wrn28-10.json') }), []);
  assert.deepEqual(offRecipeKeys({ experiment: 'mixup', epochs: 200, settings: settings('mixup-preact18.json', [['data.limit', 512], ['model.width', 32]]) }), ['data.limit', 'model.width']);
  assert.deepEqual(offRecipeKeys({ experiment: 'mixup', epochs: 1, settings: settings('mixup-preact18.json') }), ['train.epochs']);
});
