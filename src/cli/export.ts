/** `mixup export`: a checkpoint as safetensors (PyTorch) or ONNX (ONNX Runtime). */
import { Option, type Command } from 'commander';
import { UserError } from '../errors.js';
import { helpWithoutModelOptions, pkg, type Io } from './common.js';

/** Options of `mixup export`, as commander gives them. */
interface ExportFlags {
  epoch?: string;
  format: 'safetensors' | 'onnx';
  out?: string;
  overwrite?: boolean;
  force?: boolean;
}

/** Adds `mixup export` to the program. */
export function addExportCommand(program: Command, io: Io): void {
  // ------------------------------------------------------------------ export
  const cmd = program.command('export');
  // It runs no model: its help leaves out --backend and --gpu.
  cmd.configureHelp(helpWithoutModelOptions(program));
  cmd
    .description("write a checkpoint's network as safetensors (PyTorch names and layouts) or ONNX (opset 13), with the input normalisation in its metadata")
    .argument('<run-dir>', 'run directory (newest checkpoint) or one checkpoint directory')
    .option('--epoch <n>', 'checkpoint of epoch N of the run')
    .addOption(new Option('--format <fmt>', 'safetensors (for scripts/torch/mixup_resnet.py) or onnx').choices(['safetensors', 'onnx']).makeOptionMandatory())
    .option('--out <file>', 'file to write (default: RUN_DIR/exports/<checkpoint>.<format>)')
    .option('--overwrite', 'replace the --out file when it exists')
    .option('--force', 'the same as --overwrite (the name report --plot, test --reliability and data preview use)')
    .addHelpText('after', '\nLoading the files in PyTorch and ONNX Runtime: docs/exporting.md.\n\nExamples:\n  mixup export runs/quick --format onnx\n  mixup export runs/quick --epoch 3 --format safetensors --out quick-e3.safetensors')
    .action(async (runDir: string, opts: ExportFlags) => {
      const epoch = opts.epoch === undefined ? undefined : Number(opts.epoch);
      if (epoch !== undefined && !(Number.isInteger(epoch) && epoch > 0)) throw new UserError(`--epoch: expected a positive integer, got ${opts.epoch}`);
      const { exportCheckpoint, describeInput } = await import('../export/export.js');
      const r = await exportCheckpoint(runDir, { format: opts.format, epoch, out: opts.out, overwrite: opts.overwrite === true || opts.force === true, version: pkg.version, onSkip: (line) => io.err(`export: ${line}`) });
      io.out(`exported ${r.checkpoint} (epoch ${r.epoch}${r.batch > 0 ? ` + ${r.batch} batches` : ''}) as ${opts.format}: ${r.file}, ${r.tensors} tensors, ${r.bytes} bytes`);
      io.out(`input ${describeInput(r.input)}`);
    });
}
