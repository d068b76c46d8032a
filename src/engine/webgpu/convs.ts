/**
 * The convolution kernels the static engine uses: the one place that chooses between the direct
 * stand-in (conv_naive.ts) and the implicit-GEMM kernels (conv.ts). Both have the same API.
 */
export { conv2dBackwardData, conv2dBackwardFilter, conv2dForward, convOutSize, type ConvShape } from './conv.js';
