/** `mixup test`: score a checkpoint (accuracy, loss, calibration), optionally under attack. */
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { findRunConfig } from '../rundir/rundir.js';
import { formatScore, scoreHeaderLines } from '../report/score.js';
import { EvalProgress } from '../train/progress.js';
import { DEFAULT_IFGSM_STEPS } from '../engine/attack.js';
import { parseAttackFlags } from './attack.js';
import { globals, setUpBackend, type Io } from './common.js';
import { checkDataPaths } from '../data/index.js';

/** Options of `mixup test`, as commander gives them. */
interface TestFlags {
  checkpoint?: string;
  epoch?: string;
  data?: string;
  full?: boolean;
  json?: boolean;
  reliability?: string;
  force?: boolean;
  attack?: string;
  eps?: string;
  steps?: string;
  temperature?: boolean;
  fitOn?: string;
}

/** Adds `mixup test` to the program. */
export function addTestCommand(program: Command, io: Io): void {
  // ------------------------------------------------------------------ test
  program
    .command('test')
    .description('score a checkpoint on the validation set: top-1 accuracy, mean loss, calibration (ECE, Brier), per-class accuracy; optionally under attack')
    .argument('[run-dir]', 'run directory (newest checkpoint) or one checkpoint directory')
    .option('--checkpoint <dir>', 'the same as RUN_DIR')
    .option('--epoch <n>', 'checkpoint of epoch N of the run')
    .option('--data <file>', 'validation data (default: the data.val of the run config)')
    .option('--full', "evaluate every validation sample, ignoring the run's data.valLimit")
    .option('--json', 'print the result as JSON')
    .option('--reliability <file>', 'draw the reliability diagram (accuracy and samples per confidence bin, ECE) into FILE (.png or .svg)')
    .option('--force', 'with --reliability: replace an existing file')
    .option('--attack <kind>', 'also attack every image, white-box: fgsm or ifgsm; prints clean and attacked top-1')
    .option('--eps <levels>', 'attack budget ε in pixel levels (0-255) of the image before mean subtraction')
    .option('--steps <n>', `I-FGSM: steps of ε/n (default ${DEFAULT_IFGSM_STEPS})`)
    .option('--temperature', "instead: fit one temperature T by minimising NLL on the run's held-out images (data.holdout) and print NLL, Brier, ECE and equal-mass ECE before and after; never fitted on the test set")
    .option('--fit-on <file>', 'with --temperature: fit T on this data file instead of the holdout (not the validation data)')
    .addHelpText('after', '\nExamples:\n  mixup test runs/quick\n  mixup test runs/holdout-run --temperature\n  mixup test runs/quick --epoch 3 --full\n  mixup test --checkpoint runs/quick/checkpoints/epoch-0010 --json')
    .action(async (runDir: string | undefined, opts: TestFlags, cmd: Command) => {
      if (runDir !== undefined && opts.checkpoint !== undefined && runDir !== opts.checkpoint) {
        throw new UserError(`test: give the run directory once, as RUN_DIR or as --checkpoint (got ${runDir} and --checkpoint ${opts.checkpoint})`);
      }
      const path = runDir ?? opts.checkpoint;
      if (path === undefined) throw new UserError('test: which run? give its directory, e.g. mixup test runs/quick (or --checkpoint DIR)');
      const epoch = opts.epoch === undefined ? undefined : Number(opts.epoch);
      if (epoch !== undefined && !(Number.isInteger(epoch) && epoch > 0)) throw new UserError(`--epoch: expected a positive integer, got ${opts.epoch}`);
      const attack = parseAttackFlags(opts);
      if (opts.force && opts.reliability === undefined) throw new UserError('--force goes with --reliability FILE');
      const reliability = opts.reliability === undefined ? null : await import('../report/reliability.js');
      reliability?.checkReliabilityFile(opts.reliability!, opts.force === true);
      const { cfg } = findRunConfig(path, epoch);
      checkDataPaths(cfg.data, ['val'], opts.data); // before the backend starts
      if (opts.fitOn !== undefined && !opts.temperature) throw new UserError('--fit-on goes with --temperature');
      if (opts.temperature) {
        if (attack || reliability) throw new UserError('--temperature: give it without --attack and --reliability (one report at a time)');
        const { checkTemperatureFit, checkFitContent } = await import('../evaluate/scale.js');
        checkTemperatureFit(cfg, opts.fitOn, opts.data);
        if (opts.fitOn === undefined) checkDataPaths(cfg.data, ['train']);
        else await checkFitContent(cfg, opts.fitOn, { data: opts.data }); // the validation images under another name
      }
      await setUpBackend(globals(cmd).backend ?? cfg.backend, cfg, globals(cmd).gpu, io);
      // the backends (and TensorFlow.js) load only now that the input is known to be good
      const { assertMemoryFits } = await import('../engine/memoryfit.js');
      const { scoreCheckpoint } = await import('../evaluate/score.js');
      assertMemoryFits(cfg, 'test');
      if (opts.temperature) {
        const { scoreTemperature } = await import('../evaluate/scale.js');
        const { temperatureLines } = await import('../report/score.js');
        const sink = { line: io.err, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr };
        const s = await scoreTemperature(path, {
          epoch,
          data: opts.data,
          full: opts.full,
          fitOn: opts.fitOn,
          contentChecked: true,
          onProgress: (verb) => {
            const bar = new EvalProgress(sink, 'test:', verb);
            return (done, total) => (done >= total ? bar.stop() : bar.update(done, total));
          },
        });
        if (opts.json) io.out(JSON.stringify(s, null, 2));
        else for (const l of temperatureLines(s)) io.out(l);
        return;
      }
      if (attack) io.err(`attack: ${attack.kind === 'fgsm' ? 'FGSM' : `I-FGSM (${attack.steps} steps)`}, ε ${attack.eps}/255, after the clean evaluation`);
      // Bars on a terminal (stderr), as training draws them; nothing on anything else.
      const sink = { line: io.err, isTTY: Boolean(process.stderr.isTTY), stream: process.stderr };
      let bar: EvalProgress | null = null;
      const progress = (label: string, verb?: string) => (done: number, total: number) => {
        bar ??= new EvalProgress(sink, label, verb);
        bar.update(done, total);
        if (done >= total) bar = (bar.stop(), null);
      };
      const scoring = scoreCheckpoint(path, {
        epoch,
        data: opts.data,
        full: opts.full,
        attack,
        // the checkpoint and data lines come first, before the minutes of scoring
        onStart: (s) => {
          if (!opts.json) for (const l of scoreHeaderLines(s)) io.out(l);
        },
        onSkip: (line) => io.err(`test: ${line}`),
        onProgress: progress('test:', 'evaluating'),
        onAttackProgress: attack ? progress('test:', `attacking (${attack.kind === 'fgsm' ? 'FGSM' : 'I-FGSM'})`) : undefined,
      });
      const score = await scoring.finally(() => (bar as EvalProgress | null)?.stop());
      if (opts.json) io.out(JSON.stringify(score, null, 2));
      else for (const l of formatScore(score, false)) io.out(l);
      if (reliability) {
        await reliability.writeReliability(opts.reliability!, score.calibration, opts.force === true, { subtitle: `checkpoint ${score.checkpoint} (epoch ${score.epoch})` });
        io.err(`reliability diagram written to ${opts.reliability}`);
      }
    });

}
