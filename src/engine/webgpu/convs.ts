/**
 * The convolution kernels the static engine uses (the implicit-GEMM kernels of conv.ts,
 * conv_data.ts and conv_filter.ts, and the two gradients as one dispatch, conv_fused.ts): the one import the network compiler goes through, so that another convolution
 * implementation with the same API is a one-line change.
 */
export { conv2dForward, convOutSize, forwardStatsFit, forwardTiles, type ConvShape } from './conv.js';
export { conv2dBackwardData } from './conv_data.js';
export { conv2dBackwardFilter, type FilterGradient } from './conv_filter.js';
export { conv2dBackward, type ConvBackward } from './conv_fused.js';
