/**
 * `mixup export`: a checkpoint's network as a file other tools load — safetensors (PyTorch's
 * names and layouts, for scripts/torch/mixup_resnet.py) or ONNX (opset 13, for ONNX Runtime and
 * the like). Both carry the same metadata: the run's config, the epoch, the input the network
 * expects (from the evaluation transform, augment/index.ts `augmentSpec(cfg, false)`) and the
 * mixup version. docs/exporting.md shows how to load them.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { UserError } from '../errors.js';
import { ensureDirectory } from '../fsutil.js';
import { augmentSpec, type AugmentSpec } from '../augment/index.js';
import type { Config } from '../config/schema.js';
import { BN_EPS, networkSpecOf, type NetworkSpec } from '../model/spec.js';
import { checkpointName, findCheckpoint } from '../rundir/rundir.js';
import { IMAGE_SIDE } from '../data/reader.js';
import { exportGraph, torchTensors, INPUT_NAME, OUTPUT_NAME } from './graph.js';
import { encodeSafetensors } from './safetensors.js';
import { encodeOnnx, ONNX_OPSET } from './onnx.js';

/** The export formats and their file extensions. */
export const EXPORT_FORMATS = { safetensors: 'safetensors', onnx: 'onnx' } as const;
export type ExportFormat = keyof typeof EXPORT_FORMATS;

/**
 * The input an exported network expects, as stored in the files' metadata (key `input`): value =
 * (pixel · scale − mean[c]) / std[c], pixel 0–255 (AugmentSpec's normalisation; JSON keeps the field order below).
 */
export interface InputSpec extends Pick<AugmentSpec, 'scale' | 'mean' | 'std'> {
  layout: 'NCHW';
  channels: 'RGB';
  height: number;
  width: number;
  /** How the `height`×`width` input is cut from a 32×32 CIFAR image: centre crop at (top, left), or the whole image. */
  crop: string;
}

/** The evaluation transform of a config as an {@link InputSpec} (what `mixup test` feeds the network). */
export function inputSpec(cfg: Config): InputSpec {
  const a: AugmentSpec = augmentSpec(cfg, false);
  const top = Math.floor((IMAGE_SIDE - a.outH) / 2);
  const left = Math.floor((IMAGE_SIDE - a.outW) / 2);
  const crop = a.outH === IMAGE_SIDE && a.outW === IMAGE_SIDE ? 'none (the whole 32x32 image)' : `centre ${a.outH}x${a.outW} of the 32x32 image, rows ${top}..${top + a.outH - 1}, columns ${left}..${left + a.outW - 1}`;
  return { layout: 'NCHW', channels: 'RGB', height: a.outH, width: a.outW, crop, scale: a.scale, mean: a.mean, std: a.std };
}

/** One paragraph on the input, for the ONNX doc string and the CLI's summary. */
export function describeInput(i: InputSpec): string {
  const norm = i.scale === 1 && i.std.every((s) => s === 1) ? `RGB pixel values 0-255 minus the mean [${i.mean.join(', ')}]` : `(RGB pixel · ${i.scale} − mean [${i.mean.join(', ')}]) / std [${i.std.join(', ')}]`;
  return `\`${INPUT_NAME}\`: [N, 3, ${i.height}, ${i.width}] float32, ${i.layout}, ${norm}; crop: ${i.crop}. Output \`${OUTPUT_NAME}\`: [N, classes] logits before softmax.`;
}

/** The spec's architecture (`model.arch`); the reference network's specs do not name one. */
function archOf(spec: NetworkSpec): string {
  return (spec as { arch?: string }).arch ?? 'mxnet-preact';
}

/** The spec's BatchNorm eps; the reference network's is {@link BN_EPS}. */
function epsOf(spec: NetworkSpec): number {
  return (spec as { bnEps?: number }).bnEps ?? BN_EPS;
}

/** What {@link exportCheckpoint} wrote. */
export interface ExportResult {
  file: string;
  bytes: number;
  checkpoint: string;
  epoch: number;
  batch: number;
  /** Tensors written (safetensors) or initializers (ONNX). */
  tensors: number;
  input: InputSpec;
}

/**
 * Where an export goes by default: `<run>/exports/<checkpoint>.<ext>` (the checkpoint's run
 * directory, or beside a checkpoint directory that is not inside one).
 */
export function defaultExportPath(checkpointDir: string, format: ExportFormat): string {
  const parent = dirname(checkpointDir);
  const run = basename(parent) === 'checkpoints' ? dirname(parent) : parent;
  return join(run, 'exports', `${basename(checkpointDir)}.${EXPORT_FORMATS[format]}`);
}

/**
 * Refuses an `--out` whose name does not end in the format's extension (`x.txt`, `-`, an ONNX
 * name for safetensors): a file that the loading tools (and the user, later) would take for another.
 * @throws UserError, one line.
 */
export function checkExportOut(out: string, format: ExportFormat): void {
  const ext = `.${EXPORT_FORMATS[format]}`;
  if (out.toLowerCase().endsWith(ext) && basename(out).length > ext.length) return;
  const why = out === '-' ? 'standard output is not supported (the file is binary)' : `expected a file name ending in ${ext}`;
  throw new UserError(`--out ${out}: ${why} for --format ${format}`);
}

/**
 * Exports a checkpoint.
 * @param path a run directory (its newest checkpoint, or that of `epoch`) or a checkpoint directory.
 * @param o.out the file to write (default {@link defaultExportPath}); an existing one only with `overwrite`.
 * @param o.version the mixup version written into the metadata.
 * @param o.onSkip told (one line) of each newest checkpoint of a run that does not load and is passed over.
 * @throws UserError for an --out not ending in the format's extension, a missing run or epoch, an existing file without `overwrite`, a checkpoint
 *   whose tensors do not fit its config, or a block kind the exporter does not know.
 */
export async function exportCheckpoint(
  path: string,
  o: { format: ExportFormat; epoch?: number; out?: string; overwrite?: boolean; version: string; onSkip?: (line: string) => void },
): Promise<ExportResult> {
  if (o.out !== undefined) checkExportOut(o.out, o.format);
  const named = findCheckpoint(path, o.epoch);
  const fileFor = (dir: string) => o.out ?? defaultExportPath(dir, o.format);
  const refuseExisting = (file: string) => {
    if (existsSync(file) && !o.overwrite) throw new UserError(`${file} exists; give --overwrite to replace it, or another --out`);
  };
  refuseExisting(fileFor(named.dir));
  // TensorFlow.js (which the weights format imports) loads only now that the input is known to be good
  const { loadCheckpoint, loadNewestCheckpoint } = await import('../rundir/checkpoint.js');
  // As mixup test: a run's newest checkpoint that does not load gives way to the next older one
  // (o.onSkip says why); a checkpoint asked for by name or --epoch is loaded or refused as it is.
  const { ck, value } =
    named.dir === path || o.epoch !== undefined
      ? { ck: named, value: await loadCheckpoint(named.dir) }
      : await loadNewestCheckpoint(path, loadCheckpoint, (bad, reason) => o.onSkip?.(`skipped ${bad.name} (${reason})`));
  const file = fileFor(ck.dir);
  if (ck.dir !== named.dir) refuseExisting(file);
  const { cfg, state, weights } = value;
  // the run's own network: its architecture and width too (a PreAct ResNet-18, a WRN-28-10, a narrowed ResNet)
  const spec = networkSpecOf(cfg.model);
  const graph = exportGraph(spec);
  const tensors = torchTensors(graph, weights);
  const input = inputSpec(cfg);
  const name = checkpointName(ck.pos);
  const metadata: Record<string, string> = {
    format: 'mixup-resnet',
    mixup_version: o.version,
    checkpoint: name,
    epoch: String(state.epoch),
    batch: String(state.batch),
    model: JSON.stringify({ arch: archOf(spec), depth: spec.depth, width: spec.width, numClasses: spec.numClasses, bnEps: epsOf(spec), torchModule: 'scripts/torch/mixup_resnet.py MixupResNet' }),
    input: JSON.stringify(input),
    config: JSON.stringify(cfg),
  };
  let bytes: Uint8Array;
  if (o.format === 'safetensors') {
    bytes = encodeSafetensors(tensors, metadata);
  } else {
    const docString = [
      `mixup ${archOf(spec)} pre-activation ResNet, depth ${spec.depth} (${spec.numClasses} classes), ${name} of a run of mixup ${o.version}; BatchNorm in inference (moving statistics, eps ${epsOf(spec)}).`,
      `Input ${describeInput(input)}`,
      'The run\'s config, the epoch and the input as JSON are in metadata_props (config, epoch, input).',
    ].join('\n\n');
    bytes = encodeOnnx(graph, tensors, { producer: 'mixup', producerVersion: o.version, docString, metadata: { ...metadata, opset: String(ONNX_OPSET) }, height: input.height, width: input.width, numClasses: cfg.model.numClasses });
  }
  ensureDirectory(dirname(file), 'export directory');
  await writeFileAtomic(file, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const count = o.format === 'onnx' ? [...tensors.keys()].filter((k) => !k.endsWith('.num_batches_tracked')).length : tensors.size;
  return { file, bytes: bytes.length, checkpoint: ck.dir, epoch: state.epoch, batch: state.batch, tensors: count, input };
}
