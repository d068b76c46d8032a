/**
 * The experiment config: every key, its type, range, default and a one-line description.
 *
 * Key names follow the MXNet reference (`train_cifar10.py` arguments: `mix_rate`, `lr_factor`,
 * `lr_step_epochs`, `pad_size`, `rgb_mean`, `max_random_h`, ...) in camelCase. The schema is the
 * single source of truth: validation, defaults, `mixup train --help-config` and the unknown-key
 * suggestions are all derived from it. Later features add keys here, nowhere else.
 */
import { z } from 'zod';

const int = () => z.number().int();
const posInt = () => z.number().int().positive();

/** Names of the backends `--backend` accepts; see src/engine/tfjs/backend.ts. */
export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Experiments of the reference's results table. */
export const EXPERIMENTS = ['erm', 'mixup', 'mixup-feature'] as const;
export type Experiment = (typeof EXPERIMENTS)[number];

/** Where the MixUp layer can sit in the network. */
export const MIXUP_PLACEMENTS = ['input', 'head', 'stage1', 'stage2', 'stage3'] as const;
export type MixupPlacement = (typeof MIXUP_PLACEMENTS)[number];

/** `model.depth` when not set: the reference's ResNet-50 (the other archs accept only this value, which they ignore). */
export const DEFAULT_DEPTH = 50;

/** Network architectures (model/spec.ts networkSpec). */
export const MODEL_ARCHS = ['mxnet-preact', 'preact-resnet18', 'wrn-28-10'] as const;
export type ModelArch = (typeof MODEL_ARCHS)[number];

const mixupSchema = z
  .strictObject({
    alpha: z
      .number()
      .positive()
      .default(0.2)
      .describe('α of the Beta(α, α) distribution the mixing weights λ are drawn from (> 0)'),
    mixRate: z
      .number()
      .min(0)
      .max(1)
      .default(0.7)
      .describe('share of each batch that is mixed (reference: mix_rate); the rest passes unmixed'),
    at: z
      .enum(MIXUP_PLACEMENTS)
      .nullable()
      .default(null)
      .describe(
        'placement override: input | head (after conv0) | stage1-3 (after that stage); null = from experiment',
      ),
    scheme: z
      .enum(['pairs', 'permutation'])
      .default('pairs')
      .describe(
        "pairs: the reference's layer (two λ per pair of the first mix_rate·B samples); permutation: the paper's (one λ, shuffled batch)",
      ),
    kind: z
      .enum(['mixup', 'cutmix'])
      .default('mixup')
      .describe(
        'mixup: blend whole images (λ·x + (1−λ)·x′); cutmix (Yun et al. 2019): paste a random box of area share 1−λ from the partner, labels mixed by the pasted area (input placement only)',
      ),
    backward: z
      .enum(['exact', 'reference', 'zero'])
      .default('exact')
      .describe(
        "gradient into the layers before the mix: exact (autodiff); reference (the reference MixUp op's backward, symbols/mixup.py: dx = s·dy per row, s = λ1+λ2 / 2−λ1−λ2 on a pair's rows, 1 unmixed); zero (none)",
      ),
  })
  .prefault({})
  .describe('the MixUp layer');

const modelSchema = z
  .strictObject({
    arch: z
      .enum(MODEL_ARCHS)
      .default('mxnet-preact')
      .describe(
        "mxnet-preact: the reference's CIFAR ResNet (model.depth); preact-resnet18: the paper's (facebookresearch/mixup-cifar10 ResNet18); wrn-28-10: Wide ResNet 28-10 (the paper's Table 1)",
      ),
    depth: posInt()
      .default(DEFAULT_DEPTH)
      .describe('ResNet depth of mxnet-preact: 6n+2 (basic units), or 9n+2 from 164 up (bottleneck units); the other archs fix their own (18, 28) and refuse another value here'),
    width: posInt()
      .nullable()
      .default(null)
      .describe("output channels of stage 1 (later stages 2x, 4x[, 8x]); null = the arch's own (16 or 64 for mxnet-preact, 64 preact-resnet18, 160 wrn-28-10)"),
    numClasses: posInt().default(10).describe('number of classes of the fully-connected output'),
    init: z
      .enum(['he-normal', 'pytorch'])
      .default('he-normal')
      .describe(
        "weight initialisation: he-normal (the reference: N(0, 2/fan_in)); pytorch (torch.nn defaults, the paper's code: U(±1/√fan_in) for conv and fc weights and the fc bias)",
      ),
  })
  .prefault({})
  .describe('the network (model/spec.ts; reference: symbols/resnet.py)');

/** `data.rgbMean` when not set: the reference's rgb_mean. */
const REFERENCE_RGB_MEAN = [123.68, 116.779, 103.939] as const;

/** The keys of the reference's augmentation that the `paper` preset does not use (augment/index.ts augmentSpec). */
const REFERENCE_ONLY_AUGMENT = ['fillValue', 'maxRandomH', 'maxRandomS', 'maxRandomL'] as const;

const augmentSchema = z
  .strictObject({
    preset: z
      .enum(['reference', 'paper', 'none'])
      .default('reference')
      .describe(
        "reference: MXNet ImageRecordIter as the reference ran it; paper: facebookresearch/mixup-cifar10 (32x32, needs data.imageShape [3,32,32]; CIFAR mean/std); none: center crop only",
      ),
    mirror: z.boolean().default(true).describe('random horizontal mirror (reference: rand_mirror)'),
    fillValue: int().min(0).max(255).default(127).describe('pixel value of the padding (reference: fill_value)'),
    maxRandomH: z.number().min(0).max(180).default(36).describe('max hue jitter, OpenCV 0-180 scale (reference: max_random_h)'),
    maxRandomS: z.number().min(0).max(255).default(50).describe('max saturation jitter, 0-255 (reference: max_random_s)'),
    maxRandomL: z.number().min(0).max(255).default(50).describe('max lightness jitter, 0-255 (reference: max_random_l)'),
  })
  .prefault({})
  .describe('training-time augmentation');

const dataSchema = z
  .strictObject({
    dir: z
      .string()
      .nullable()
      .default(null)
      .describe('directory holding cifar10_train.rec/cifar10_val.rec, data_batch_*.bin/test_batch.bin or cifar-10-binary.tar.gz'),
    train: z.string().nullable().default(null).describe('training data file (.rec, .bin, directory or .tar.gz); overrides dir'),
    val: z.string().nullable().default(null).describe('validation data file (.rec, .bin, directory or .tar.gz); overrides dir'),
    imageShape: z
      .tuple([z.literal(3), posInt(), posInt()])
      .default([3, 28, 28])
      .describe('network input as channels,height,width (reference: image_shape 3,28,28)'),
    padSize: int().min(0).default(4).describe('pixels of padding on each side before the random crop (reference: pad_size)'),
    rgbMean: z
      .tuple([z.number(), z.number(), z.number()])
      .default([...REFERENCE_RGB_MEAN])
      .describe('per-channel mean subtracted from 0-255 pixels (reference: rgb_mean); not with data.augment.preset paper (CIFAR mean/std)'),
    limit: posInt().nullable().default(null).describe('use only the first N training samples (null = all)'),
    valLimit: posInt().nullable().default(null).describe('use only the first N validation samples (null = all)'),
    labelNoise: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe(
        'share p of training samples (round(p·N), chosen by train.seed) whose label is replaced by one drawn uniformly from all classes (paper §3.4); validation untouched',
      ),
    holdout: int()
      .min(0)
      .default(0)
      .describe(
        'training images (chosen by train.seed, the same on resume) set aside and never trained on; evaluated every epoch (holdout_* columns) for model selection and temperature scaling; 0 = none, as the reference',
      ),
    labelIndex: int().min(0).default(0).describe('which label to use when a RecordIO record carries several'),
    labelField: z.enum(['fine', 'coarse']).default('fine').describe('CIFAR-100 binary files: which of the two label bytes to use'),
    cache: z.boolean().default(true).describe('keep decoded images in memory as uint8 after the first pass'),
    workers: int().min(0).default(1).describe('worker threads for decoding and augmentation (0 = on the main thread)'),
    skipUndecodable: z
      .boolean()
      .default(false)
      .describe('training split: skip records whose image cannot be decoded (another sample of the batch takes the place), counted in the epoch line and train.log; false = such a record stops the run, resumably'),
    augment: augmentSchema,
  })
  .prefault({})
  .describe('CIFAR-10 input');

const trainSchema = z
  .strictObject({
    epochs: posInt().default(300).describe('number of training epochs (reference: num_epochs)'),
    batchSize: posInt().default(128).describe('samples per SGD step (reference: batch_size)'),
    lr: z.number().positive().default(0.05).describe('initial learning rate (reference: lr)'),
    lrSchedule: z
      .enum(['step', 'step-after', 'cosine'])
      .default('step')
      .describe(
        "step: multiply by lrFactor from each lrStepEpochs epoch on (MXNet); step-after: from the epoch after it (mixup-cifar10's adjust_learning_rate after each epoch); cosine: anneal to 0",
      ),
    lrFactor: z.number().positive().max(1).default(0.1).describe('learning-rate step factor (reference: lr_factor)'),
    lrStepEpochs: z
      .array(posInt())
      .default([200, 250])
      .describe('epochs after which the learning rate is multiplied by lrFactor (reference: lr_step_epochs)'),
    shards: posInt()
      .default(1)
      .describe(
        "split each batch into this many equal shards, each with its own BatchNorm statistics and MixUp pairs (the reference's GPUs: train.sh ran 2); batchSize must be a multiple",
      ),
    momentum: z.number().min(0).max(1).default(0.9).describe('SGD momentum (reference: mom)'),
    sgd: z
      .enum(['mxnet', 'pytorch'])
      .default('mxnet')
      .describe(
        "SGD form: mxnet (mom = μ·mom − lr·(g + wd·w); w += mom; wd on *_weight and *_gamma only); pytorch (torch.optim.SGD: buf = μ·buf + g + wd·w; w −= lr·buf; wd on every parameter)",
      ),
    wd: z.number().min(0).default(1e-4).describe('weight decay (reference: wd); on which parameters: see train.sgd'),
    gradScale: z
      .number()
      .positive()
      .default(1)
      .describe("factor on the batch-mean loss gradient before SGD, weight decay untouched (reference mixup runs: 1/64)"),
    labelSmoothing: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('ε: training targets become (1−ε)·y + ε/K (after mixing), for ERM and mixup alike; 0 = off'),
    seed: int().min(0).default(0).describe('seed of every random generator (shuffle, augmentation, λ, weights)'),
    checkpointEvery: posInt().default(1).describe('write a checkpoint every N epochs (and at the end)'),
    keepCheckpoints: posInt().nullable().default(null).describe('keep only the newest N checkpoints (null = keep all)'),
    keepEpochs: z
      .array(posInt())
      .default([])
      .describe('epochs whose checkpoints are always written and kept, whatever checkpointEvery and keepCheckpoints say (table configs: 90, 200, 300)'),
    nanPolicy: z.enum(['stop', 'skip-batch']).default('stop').describe('on a NaN/infinite loss: stop (exit 3) or skip the batch'),
    logEvery: posInt().default(50).describe('batches between progress lines when stdout is not a terminal (reference: disp_batches)'),
    readEvery: posInt()
      .nullable()
      .default(null)
      .describe('training steps queued between two reads of their loss and accuracy from the device (null = 1 on CPU backends, 8 on GPU backends, so a GPU runs ahead of JavaScript)'),
    evalBatchSize: posInt().default(500).describe('samples per evaluation batch'),
    cleanTrainEval: int()
      .min(0)
      .default(0)
      .describe('training images (chosen by train.seed) evaluated unmixed, in inference mode, each epoch: the train_clean_acc column; 0 = off'),
    tensorboard: z
      .boolean()
      .default(true)
      .describe('write TensorBoard event files to <out>/tb/ (loss and lr every logEvery batches, every curves.csv figure every epoch)'),
  })
  .prefault({})
  .describe('the training recipe');

/** The whole experiment config. `extends` is resolved before validation (see load.ts). */
export const configSchema = z
  .strictObject({
    experiment: z
      .enum(EXPERIMENTS)
      .default('mixup')
      .describe('erm: no mixing; mixup: mix the input; mixup-feature: mix the feature maps after conv0'),
    backend: z.enum(BACKEND_NAMES).default('auto').describe('auto | tensorflow-gpu | webgpu | tensorflow | wasm | cpu'),
    gpu: z
      .number()
      .int()
      .min(0)
      .nullable()
      .default(null)
      .describe('which GPU (0-based): the Nth hardware adapter for webgpu, CUDA_VISIBLE_DEVICES for tensorflow-gpu; null = the default one; env MIXUP_GPU and --gpu override'),
    wasmThreads: posInt()
      .max(8)
      .default(1)
      .describe('XNNPACK threads of the wasm backend (1-8; more pays off only on idle cores); env MIXUP_WASM_THREADS overrides'),
    out: z.string().nullable().default(null).describe('run directory (null = runs/<config file name>)'),
    loss: z
      .enum(['soft-ce', 'mixture-nll'])
      .default('soft-ce')
      .describe("soft-ce: -Σ y·log softmax(z); mixture-nll: -log Σ y·softmax(z) (the reference's custom loss op)"),
    mixup: mixupSchema,
    model: modelSchema,
    data: dataSchema,
    train: trainSchema,
  })
  .superRefine((c, ctx) => {
    if (c.experiment === 'erm' && c.mixup.at !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['mixup', 'at'],
        message: `is "${c.mixup.at}" but experiment is "erm", which does not mix; remove mixup.at or choose experiment mixup`,
      });
    }
    if (c.mixup.kind === 'cutmix') {
      const at = mixupPlacement(c);
      if (at !== 'input') {
        ctx.addIssue({
          code: 'custom',
          path: ['mixup', 'kind'],
          message:
            at === null
              ? 'is "cutmix" but experiment is "erm", which does not mix; choose experiment mixup'
              : `is "cutmix", which pastes boxes of input images, but the mix is placed at "${at}"; cutmix needs input placement (experiment mixup, mixup.at input or null)`,
        });
      }
    }
    const d = c.model.depth;
    if (c.model.arch !== 'mxnet-preact' && d !== DEFAULT_DEPTH) {
      // model/spec.ts builds these at their own depth whatever model.depth says: a silent no-op that
      // would also split a report's rows of one network by a key that changed nothing
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'depth'],
        message: `${d} does nothing for model.arch "${c.model.arch}", which fixes its own depth (model.depth sets mxnet-preact's only); remove it, or set model.width for a smaller network`,
      });
    }
    if (c.model.arch === 'mxnet-preact' && !isValidDepth(d)) {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'depth'],
        message: `${d} is not a valid ResNet depth: expected 6n+2 below 164 (8, 14, 20, ..., 50, ...) or 9n+2 from 164 up (164, 173, ...)`,
      });
    }
    if (c.train.batchSize % c.train.shards !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'shards'],
        message: `${c.train.shards} does not divide train.batchSize ${c.train.batchSize} into equal shards`,
      });
    } else if (c.train.shards > 1 && c.train.batchSize / c.train.shards < 2) {
      ctx.addIssue({
        code: 'custom',
        path: ['train', 'shards'],
        message: `${c.train.shards} makes shards of one sample of train.batchSize ${c.train.batchSize}: no pair to mix and BatchNorm statistics of a single image; use at most ${Math.floor(c.train.batchSize / 2)}`,
      });
    }
    const steps = c.train.lrStepEpochs;
    for (let i = 1; i < steps.length; i++) {
      if (steps[i]! <= steps[i - 1]!) {
        ctx.addIssue({
          code: 'custom',
          path: ['train', 'lrStepEpochs'],
          message: `${JSON.stringify(steps)} must be strictly increasing`,
        });
        break;
      }
    }
    if (c.data.limit !== null && c.data.holdout > 0 && c.data.holdout >= c.data.limit) {
      ctx.addIssue({ code: 'custom', path: ['data', 'holdout'], message: `${c.data.holdout} held-out images of the ${c.data.limit} training images data.limit takes; expected fewer than ${c.data.limit}` });
    }
    const [, h, w] = c.data.imageShape;
    const side = 32 + 2 * c.data.padSize;
    if (h > side || w > side) {
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'imageShape'],
        message: `${JSON.stringify(c.data.imageShape)} is larger than a 32x32 image padded by ${c.data.padSize} (${side}x${side})`,
      });
    }
    if (c.data.augment.preset === 'paper') {
      // the paper's transform pads with 0, has no HSL jitter and normalises by the CIFAR-10 mean and
      // std: these keys would change nothing (and split a report's rows of one recipe); their defaults pass
      const defaults = augmentSchema.parse({});
      const unused: [PropertyKey[], unknown][] = [
        ...(c.data.rgbMean.some((v, i) => v !== REFERENCE_RGB_MEAN[i]) ? [[['data', 'rgbMean'], c.data.rgbMean] as [PropertyKey[], unknown]] : []),
        ...REFERENCE_ONLY_AUGMENT.filter((k) => c.data.augment[k] !== defaults[k]).map((k): [PropertyKey[], unknown] => [['data', 'augment', k], c.data.augment[k]]),
      ];
      for (const [path, value] of unused) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `${JSON.stringify(value)} does nothing with data.augment.preset "paper" (it pads with 0, has no HSL jitter and normalises by the CIFAR-10 mean and std); remove it, or choose preset reference`,
        });
      }
    }
    if (c.data.augment.preset === 'paper' && (h !== 32 || w !== 32)) {
      // The paper preset (facebookresearch/mixup-cifar10) crops 32x32; the network is built from imageShape.
      ctx.addIssue({
        code: 'custom',
        path: ['data', 'imageShape'],
        message: `${JSON.stringify(c.data.imageShape)} but data.augment.preset "paper" trains on 32x32 images; set data.imageShape [3,32,32]`,
      });
    }
  });

/** A validated config, every key present. */
export type Config = z.output<typeof configSchema>;
/** A config as written in a file: every key optional. */
export type ConfigInput = z.input<typeof configSchema>;

/**
 * Whether `depth` is a ResNet depth the reference's CIFAR symbol accepts: 6n+2 with basic units
 * below 164, 9n+2 with bottleneck units from 164 up (symbols/resnet.py, get_symbol).
 */
export function isValidDepth(depth: number): boolean {
  if (!Number.isInteger(depth) || depth < 8) return false;
  return depth >= 164 ? (depth - 2) % 9 === 0 : (depth - 2) % 6 === 0;
}

/**
 * Where the MixUp layer sits for a config: `null` for ERM, else `mixup.at` when set, else
 * `input` for experiment `mixup` and `head` (after conv0) for `mixup-feature`.
 */
export function mixupPlacement(c: Pick<Config, 'experiment' | 'mixup'>): MixupPlacement | null {
  if (c.experiment === 'erm') return null;
  return c.mixup.at ?? (c.experiment === 'mixup' ? 'input' : 'head');
}
