/**
 * The one-line summary `mixup train` prints at the start of a run: what is mixed, where, with which
 * gradient through the mix, and how the batch is sharded (train.shards), so a log says which recipe ran.
 */
import { mixupPlacement, type Config } from '../config/schema.js';
import { mixLength } from '../mixup/plan.js';

const PLACES: Record<string, string> = {
  input: 'the input images',
  head: 'the feature maps after conv0',
  stage1: 'the feature maps after stage1',
  stage2: 'the feature maps after stage2',
  stage3: 'the feature maps after stage3',
};

const GRADIENTS: Record<Config['mixup']['backward'], string> = {
  exact: 'the exact gradient',
  reference: "the reference op's gradient",
  zero: 'no gradient',
};

/**
 * E.g. `mixup-feature: mixes the feature maps after conv0 with the reference op's gradient (α 0.2,
 * mix_rate 0.7, pairs) in 2 shards of 64 (44 mixed per shard), each shard with its own BatchNorm
 * statistics`; `erm: no mixing; batch of 128 in 1 shard`. The gradient is named only for a mix
 * after a layer; at the input a mixup.backward other than exact is said to change nothing (nothing
 * trainable lies before the input).
 */
export function describeExperiment(cfg: Pick<Config, 'experiment' | 'mixup' | 'train'>): string {
  const { batchSize, shards } = cfg.train;
  const shard = batchSize / shards;
  const sharding = shards > 1 ? `${shards} shards of ${shard}` : `one batch of ${batchSize}`;
  const bnNote = shards > 1 ? ', each shard with its own BatchNorm statistics' : '';
  const at = mixupPlacement(cfg);
  if (at === null) return `${cfg.experiment}: no mixing; ${sharding}${bnNote}`;
  const m = cfg.mixup;
  const mixed = m.scheme === 'permutation' ? shard : mixLength(shard, m.mixRate);
  const count = shards > 1 ? `${mixed} mixed per shard` : `${mixed} of ${batchSize} mixed`;
  const gradient = at !== 'input' ? ` with ${GRADIENTS[m.backward]}` : m.backward !== 'exact' ? ` (mixup.backward ${m.backward} changes nothing here: no trainable layer lies before the input)` : '';
  const how = m.kind === 'cutmix' ? `pastes CutMix boxes into ${PLACES[at]}` : `mixes ${PLACES[at]}${gradient}`;
  return `${cfg.experiment}: ${how} (α ${m.alpha}, mix_rate ${m.mixRate}, ${m.scheme}) in ${sharding} (${count})${bnNote}`;
}
