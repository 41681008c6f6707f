#pragma once
// 2-D adaptive average pooling: a fixed output size, whatever the input's, with PyTorch's windows.
// Output i of a dimension of input size `in` and output size `out` averages the inputs
// [floor(i * in / out), ceil((i + 1) * in / out)); where out does not divide in, neighbouring
// windows overlap, and an input's gradient is the sum of its windows' shares. An output of 1 x 1
// is global average pooling.
//
// Order of the sums, fixed by the shapes alone (so results are bitwise identical for any number
// of threads): a window's sum adds, column by column from the left, its columns' sums, each taken
// over the window's rows from the top; with one output column (global pooling) each window is
// whole rows, contiguous, summed in memory order into 16 running sums added in order. In the
// backward, output row oh's shares are first
// gathered per input column (windows in output order), then added to each input row of the
// window row, output rows in order. Channels last, the same sums are taken in the same order for a
// block of up to 64 channels at a time, vectorized over the channels: the results equal the NCHW
// ones bit for bit.

#include <cstdint>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"

namespace convpool {

struct AdaptiveAvgPool2dParams {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  // Channels last (Layout::nhwc), each image holds `channels` of the planes interleaved.
  Layout layout = Layout::nchw;
  int64_t channels = 1;
};

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "adaptive_avg_pool_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// x: planes x in_h x in_w; y: planes x out_h x out_w (in p.layout's order).
template <typename T>
void adaptive_avg_pool2d_forward(const T* x, T* y, const AdaptiveAvgPool2dParams& p) {
  with_vector_isa([&](auto isa) { adaptive_avg_pool2d_forward(isa, x, y, p); });
}

// grad_input (planes x in_h x in_w) is overwritten.
template <typename T>
void adaptive_avg_pool2d_backward(const T* grad_output, T* grad_input, const AdaptiveAvgPool2dParams& p) {
  with_vector_isa([&](auto isa) { adaptive_avg_pool2d_backward(isa, grad_output, grad_input, p); });
}

}  // namespace convpool
