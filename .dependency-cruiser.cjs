/**
 * The import layers of mixup (issue 16; docs/architecture.md draws them). `npm test` runs
 * `depcruise src bench test --config .dependency-cruiser.cjs` before the suite and fails on any
 * violation. Type-only imports count too: a layer that names another's types depends on it.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycle anywhere: every module can be read after the ones it imports.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'pure-no-tfjs',
      severity: 'error',
      comment:
        'The network description, the mixing plans and targets, the config and the Engine seam are plain data and arithmetic: ' +
        'any executor (tfjs or static WebGPU) builds from them, so they import no tfjs.',
      from: { path: '^src/(model/spec\\.ts|mixup/|config/|engine/engine\\.ts|engine/attack\\.ts|random\\.ts|format\\.ts)' },
      to: { path: '@tensorflow' },
    },
    {
      name: 'engine-below-loops',
      severity: 'error',
      comment: 'Executors know nothing of the run loop, evaluation, the CLI or reports: those call the Engine, not the reverse.',
      from: { path: '^src/engine/' },
      to: { path: '^src/(train|evaluate|cli|report)/' },
    },
    {
      name: 'one-executor-per-folder',
      severity: 'error',
      comment: 'The tfjs executor and the static WebGPU executor do not import each other (both may use engine/dawn.ts).',
      from: { path: '^src/engine/(tfjs|webgpu)/' },
      to: { path: '^src/engine/(tfjs|webgpu)/', pathNot: '^src/engine/$1/' },
    },
    {
      name: 'seam-users-see-only-the-seam',
      severity: 'error',
      comment: 'The run loop, evaluation, run directory and reports reach an executor only through engine/engine.ts and engine/index.ts.',
      from: { path: '^src/(train|evaluate|rundir|report)/' },
      to: { path: '^src/engine/(tfjs|webgpu)/' },
    },
    {
      name: 'evaluation-below-training',
      severity: 'error',
      comment: 'Evaluation (after an epoch, and `mixup test`) does not depend on the training loop.',
      from: { path: '^src/evaluate/' },
      to: { path: '^src/train/' },
    },
    {
      name: 'rundir-no-engine',
      severity: 'error',
      comment: 'The run directory is a file format: it stores host tensors and JSON, whichever executor wrote them.',
      from: { path: '^src/rundir/' },
      to: { path: '^src/engine/|@tensorflow' },
    },
    {
      name: 'export-no-engine',
      severity: 'error',
      comment: 'The exporter reads checkpoints as host tensors and the network from networkSpec(): no executor, run loop or evaluation.',
      from: { path: '^src/export/' },
      to: { path: '^src/(engine|train|evaluate)/' },
    },
    {
      name: 'src-not-from-tests-or-bench',
      severity: 'error',
      comment: 'The product never imports its tests or benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-cli-below',
      severity: 'error',
      comment: 'Only src/cli.ts and src/cli/ parse flags and print; the layers below are called by it.',
      from: { path: '^src/', pathNot: '^src/(cli\\.ts|cli/)' },
      to: { path: '^src/(cli\\.ts|cli/)' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'An import that does not resolve is a typo or a missing package. The static WebGPU engine\'s ' +
        '`/// <reference types="@webgpu/types" />` is type-only: tsc resolves it to the copy that ' +
        '@tensorflow/tfjs-core depends on (pinned by package-lock.json); nothing of it exists at run time.',
      from: {},
      to: { couldNotResolve: true, pathNot: '^@webgpu/types$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
  },
};
