// Parity with the independent PyTorch implementation (../shared/golden) on cpu and wasm; the cases,
// bounds and skip rules are in test/fixtures/golden.ts (webgpu: test/webgpu-golden.test.ts).
import { defineGoldenTests } from './fixtures/golden.js';

defineGoldenTests(['cpu', 'wasm']);
