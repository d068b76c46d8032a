/**
 * The disk a run's checkpoints take: how many a run keeps at its end (train.checkpointEvery,
 * keepCheckpoints, keepEpochs and the best epoch's), the bytes of one, and the line `mixup train`
 * prints when it starts.
 */
import { statfsSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { bytesText } from '../format.js';
import type { HostTensor } from '../model/weights.js';
import { checkpointDue } from './epoch.js';

/**
 * Bytes of the JSON files of a checkpoint besides its tensors: state.json, config.json and the two
 * model.json files without their manifest entries (measured: about 2.5 kB; rounded up).
 */
const JSON_BYTES = 4096;
/** Bytes of one manifest entry in a model.json (`{"name": ..., "shape": [...], "dtype": ...}`, indented; names up to ~30 characters). */
const ENTRY_BYTES = 100;

/**
 * Bytes one checkpoint takes on disk: the float32/int32 values of the network's parameters and
 * moving statistics and of the momentum buffers, plus the JSON files (estimated, see JSON_BYTES).
 * @param weights what Engine `readWeights` returns; @param optimizer what `readOptimizerState` returns.
 */
export function checkpointBytes(weights: Map<string, HostTensor>, optimizer: Map<string, HostTensor>): number {
  let n = JSON_BYTES;
  for (const m of [weights, optimizer]) for (const t of m.values()) n += t.values.byteLength + ENTRY_BYTES;
  return n;
}

/**
 * How many end-of-epoch checkpoints a run of `epochs` epochs keeps at its end, at most: those
 * written (every `checkpointEvery`, the `keepEpochs`, the last), less those pruned (all but the
 * newest `keepCheckpoints` of those not in `keepEpochs`, plus the best epoch's when it is older).
 * A partial checkpoint (after Ctrl-C) adds one while it is the newest.
 */
export function keptCheckpoints(train: Pick<Config['train'], 'checkpointEvery' | 'keepCheckpoints' | 'keepEpochs'>, epochs: number): number {
  let kept = 0;
  let others = 0;
  for (let e = 1; e <= epochs; e++) {
    if (!checkpointDue(e, epochs, train, false)) continue;
    if (train.keepEpochs.includes(e)) kept++;
    else others++;
  }
  const keep = train.keepCheckpoints;
  return keep === null || others <= keep ? kept + others : kept + keep + 1;
}

/**
 * The line `mixup train` prints at its start, e.g. `disk: a checkpoint takes 5.9 MiB; this run
 * keeps up to 300 (every epoch's: train.keepCheckpoints is null), about 1.7 GiB in runs/x/checkpoints;
 * 37 GiB free there`, with a warning when the free space is less.
 * @param perCheckpoint bytes of one ({@link checkpointBytes}).
 * @param dir the checkpoints directory (for the free space; left out when it cannot be read).
 */
export function diskUseLine(cfg: Config, perCheckpoint: number, dir: string): string {
  const t = cfg.train;
  const n = keptCheckpoints(t, t.epochs);
  const total = n * perCheckpoint;
  const which =
    t.keepCheckpoints === null
      ? t.checkpointEvery === 1
        ? "every epoch's: train.keepCheckpoints is null"
        : `one every ${t.checkpointEvery} epochs and the last: train.keepCheckpoints is null`
      : `the newest ${t.keepCheckpoints}, the best epoch's${t.keepEpochs.length > 0 ? `, train.keepEpochs ${t.keepEpochs.join(', ')}` : ''}`;
  let line = `disk: a checkpoint takes ${bytesText(perCheckpoint)}; this run keeps up to ${n} (${which}), about ${bytesText(total)} in ${dir}`;
  let free: number | null = null;
  try {
    const s = statfsSync(dir);
    free = s.bavail * s.bsize;
  } catch {
    // no free-space figure (a file system that does not say): the line goes without it
  }
  if (free !== null) {
    line += `; ${bytesText(free)} free there`;
    if (free < total) line += ` — not enough for all of them: keep fewer with --set train.keepCheckpoints=N`;
  }
  return line;
}
