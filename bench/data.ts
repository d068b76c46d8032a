/**
 * `npm run bench:data`: images per second of the data pipeline over full passes of a `.rec` and a
 * `.bin`, first pass (read + decode + augment) and cached pass (augment from the decoded cache),
 * with the reference's training augmentation (pad, random crop, HSL jitter, mirror, mean).
 *
 *   npm run bench:data -- [--rec FILE] [--bin FILE] [--workers N[,N...]] [--limit N]   (--help: each option)
 *
 * Defaults: data/cifar10/cifar10_train.rec and data/cifar10/cifar-10-binary.tar.gz (where
 * `mixup data download cifar10 [--format bin]` puts them), workers 2. A benchmark, not a test: it
 * needs real data and takes seconds.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { configSchema } from '../src/config/schema.js';
import { openPipeline } from '../src/data/index.js';
import { DEFAULT_DATA_DIR } from '../src/data/paths.js';
import { intOption, listDefault } from './common.js';

const opts = new Command('bench:data')
  .description('images per second of the data pipeline (read + decode + augment, then cached) over a .rec and a .bin')
  .option('--rec <file>', 'RecordIO file to read', join(DEFAULT_DATA_DIR, 'cifar10_train.rec'))
  .option('--bin <file>', 'CIFAR-10 binary data to read: a data_batch_N.bin, or the .tar.gz (its training split)', join(DEFAULT_DATA_DIR, 'cifar-10-binary.tar.gz'))
  .addOption(listDefault(new Option('--workers <n,...>', 'comma-separated worker-thread counts to run each file with (data.workers)').argParser((v) => v.split(',').map(intOption(0))), [2]))
  .option('--limit <n>', 'use only the first N samples of each file (data.limit; 0 = all)', intOption(0), 0)
  .parse()
  .opts<{ rec: string; bin: string; workers: number[]; limit: number }>();
const { rec, bin } = opts;
const workerCounts = opts.workers;
const limit = opts.limit || null;

async function pass(path: string, workers: number): Promise<void> {
  const cfg = configSchema.parse({ data: { train: path, workers, limit }, train: { batchSize: 128, seed: 1 } });
  const t0 = performance.now();
  const p = await openPipeline(cfg, 'train');
  const open = performance.now() - t0;
  const rates: string[] = [];
  for (const label of ['first pass', 'cached pass']) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    let n = 0;
    for await (const b of p.epoch(label === 'first pass' ? 0 : 1)) n += b.size;
    const s = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    // CPU seconds of all threads: img per CPU-second shows the cost even on a busy machine.
    rates.push(`${label} ${Math.round(n / s)} img/s (${n} in ${s.toFixed(2)} s, ${Math.round(n / cpuS)} img per CPU-s)`);
  }
  await p.close();
  console.log(`${path.split('/').pop()}  workers ${workers}  open ${open.toFixed(0)} ms  ${rates.join('  ')}`);
}

console.log(`load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
for (const path of [rec, bin]) {
  if (!existsSync(path)) {
    console.log(`${path}: not found, skipped`);
    continue;
  }
  for (const w of workerCounts) await pass(path, w);
}
