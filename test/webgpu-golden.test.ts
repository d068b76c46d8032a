// Parity with the independent PyTorch implementation (../shared/golden) on webgpu (lavapipe on a
// machine without a GPU), in its own process so that Dawn stays out of the other tests. The cases and
// bounds are those of the cpu and wasm runs (test/fixtures/golden.ts).
import { after } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { releaseBackends } from '../src/engine/tfjs/backend.js';
import { defineGoldenTests } from './fixtures/golden.js';
import { webgpuSkipReason } from './fixtures/webgpu.js';

tf.enableProdMode();
defineGoldenTests(['webgpu'], await webgpuSkipReason());
after(() => releaseBackends());
