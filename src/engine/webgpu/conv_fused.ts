/**
 * Both gradients of a convolution in one dispatch (issue 24): backward-data (conv_data.ts, dX = dY ⋆ Wᵀ,
 * stride 2 by phases) and backward-filter (conv_filter.ts, dW in split-K partials, its input through a
 * fused BatchNorm(+ReLU) prologue) both read dY and are independent, so they run as one grouped GEMM
 * (gemm_group.ts): the first workgroups compute dX's tiles, the rest dW's, and dY is bound once.
 *
 * Workgroup size: the backward-filter keeps its tiles and split (so its partials and the SGD update's
 * sum of them are unchanged), and backward-data takes tiles of the same invocation count (32 or 64,
 * more and smaller tiles than on its own: its grid stays above two waves on 132 SMs). The fused
 * workgroup memory is the larger of the two kernels' (their arrays are aliased).
 */
import type { Kernel } from './kernel.js';
import { convOutSize, gatherSide, shapeLabel, type ConvShape } from './conv.js';
import { conv2dBackwardData } from './conv_data.js';
import type { FilterGradient } from './conv_filter.js';
import { gemmWorkgroupSize, groupKernels } from './gemm_group.js';

/** A convolution's fused backward and how to bind it. */
export interface ConvBackward {
  /** Bindings: dy read, w read, dx read_write, then backward-filter's after its dy (x, [state, [gamma,] beta,] dw). */
  kernel: Kernel;
  /**
   * The fused kernel's bindings from those of backward-data (`[dy, w, dx]`) and of backward-filter
   * (`[dy, x, …, dw]`, conv2dBackwardFilter's order); the filter's dy is the data's.
   */
  bind<T>(data: readonly T[], filter: readonly T[]): T[];
}

/**
 * The input and filter gradients of a convolution as one dispatch: dx as conv2dBackwardData computes
 * it (overwritten, or added to with `accumulate`) and `f`'s dW (or its partials) as `f.kernel` does.
 * @param f the convolution's backward-filter (conv2dBackwardFilter of `s`).
 * @returns null where backward-data's tiles cannot have the filter's workgroup size (two dispatches then).
 */
export function conv2dBackward(s: ConvShape, f: FilterGradient, o: { accumulate?: boolean } = {}): ConvBackward | null {
  const data = conv2dBackwardData(s, { accumulate: o.accumulate, invocations: f.invocations });
  if (gemmWorkgroupSize(data) !== gemmWorkgroupSize(f.kernel)) return null;
  const { outH, outW } = convOutSize(s);
  // dy read by both: backward-data's distinct floats of it (all of dy but a stride-2 border it never reads).
  const dyFloats = s.batch * s.outC * gatherSide(s.inH, outH, s.k, s.stride, 'dy').distinct * gatherSide(s.inW, outW, s.k, s.stride, 'dy').distinct;
  const head = (k: Kernel) => k.label.split(' ')[0];
  const g = groupKernels(data, f.kernel, {
    label: `conv2d_bwd ${shapeLabel(s)}: ${head(data)} + ${head(f.kernel)}${f.chunks > 1 ? ` partial ${f.chunks}` : ''}`,
    class: 'conv_bwd',
    shared: [[0, 0]],
    sharedReadBytes: 4 * dyFloats,
  });
  return g;
}
