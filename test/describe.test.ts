// The start line of `mixup train` (src/train/describe.ts): what is mixed, where, which gradient, which shards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../src/config/load.js';
import { describeExperiment } from '../src/train/describe.js';

test('describeExperiment: placement, gradient (only after a layer), shards and mixed rows per shard', () => {
  const d = (c: object) => describeExperiment(validateConfig(c, 'test'));
  assert.equal(
    d({ experiment: 'mixup-feature', mixup: { backward: 'reference' }, train: { shards: 2 } }),
    "mixup-feature: mixes the feature maps after conv0 with the reference op's gradient (α 0.2, mix_rate 0.7, pairs) in 2 shards of 64 (44 mixed per shard), each shard with its own BatchNorm statistics",
  );
  // one batch of 128: floor(89.6) = 89 → 90 mixed; at the input no gradient is named
  assert.equal(d({ experiment: 'mixup' }), 'mixup: mixes the input images (α 0.2, mix_rate 0.7, pairs) in one batch of 128 (90 of 128 mixed)');
  assert.equal(
    d({ experiment: 'mixup', mixup: { backward: 'reference' } }),
    'mixup: mixes the input images (mixup.backward reference changes nothing here: no trainable layer lies before the input) (α 0.2, mix_rate 0.7, pairs) in one batch of 128 (90 of 128 mixed)',
  );
  assert.equal(d({ experiment: 'erm', train: { shards: 2 } }), 'erm: no mixing; 2 shards of 64, each shard with its own BatchNorm statistics');
  assert.equal(
    d({ experiment: 'mixup', mixup: { scheme: 'permutation', alpha: 1, at: 'stage2' }, train: { batchSize: 96, shards: 3 } }),
    'mixup: mixes the feature maps after stage2 with the exact gradient (α 1, mix_rate 0.7, permutation) in 3 shards of 32 (32 mixed per shard), each shard with its own BatchNorm statistics',
  );
});
