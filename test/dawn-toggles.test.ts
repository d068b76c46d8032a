// MIXUP_DAWN_TOGGLES (issue 24 item 6): the Dawn toggles the engine's device opens with, as instance flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dawnToggleFlags } from '../src/engine/dawn-instance.js';

test('MIXUP_DAWN_TOGGLES: unset or empty keeps Dawn\'s defaults; known toggles become one enable-dawn-features flag', () => {
  assert.deepEqual(dawnToggleFlags(undefined), []);
  assert.deepEqual(dawnToggleFlags(' , '), []);
  assert.deepEqual(dawnToggleFlags('disable_robustness'), ['enable-dawn-features=disable_robustness']);
  assert.deepEqual(dawnToggleFlags('disable_robustness, skip_validation,disable_robustness'), ['enable-dawn-features=disable_robustness,skip_validation']);
});

test('MIXUP_DAWN_TOGGLES: an unknown toggle is one line naming it and the known ones', () => {
  assert.throws(() => dawnToggleFlags('disable_robustnes'), /^Error: MIXUP_DAWN_TOGGLES: unknown toggle disable_robustnes \(expected skip_validation, disable_robustness\)$/);
});
