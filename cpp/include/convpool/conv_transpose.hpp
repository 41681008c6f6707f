#pragma once
// 2-D transposed convolution ("deconvolution", as PyTorch's conv_transpose2d): the gradient of a
// convolution with respect to its input, used as a layer that upsamples.
//
// Layouts: x (N, C_in, H, W), weight (C_in, C_out / groups, KH, KW), bias (C_out), y (N, C_out,
// OH, OW) with OH = (H - 1) * stride - 2 * padding + dilation * (KH - 1) + output_padding + 1.
//
// Every pass is one of conv.hpp's, on the convolution that this one transposes: the conv2d from
// y's shape to x's shape with the same weight (whose layout is already that convolution's
// (C_out', C_in' / groups, KH, KW) with C_out' = C_in), stride, padding, dilation and groups.
// `p` below describes that convolution: p.in_channels = C_out, p.out_channels = C_in,
// p.h = {OH, H, KH, stride, padding, dilation}. Then y is its input gradient for grad_output x,
// grad_input is its forward of grad_output, and grad_weight its weight gradient with x as the
// output gradient and grad_output as the input. So the transposed convolution runs on the same
// paths and at the same speed, and inherits their bitwise thread independence.

#include <cstdint>

#include "conv.hpp"

namespace convpool {

namespace detail {
// The bias of a transposed convolution is added to the planes of the convolution's input.
inline Conv2dParams transposed_output(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.out_channels = p.in_channels;
  q.h.output = p.h.input;
  q.w.output = p.w.input;
  return q;
}
}  // namespace detail

// y = conv_transpose2d(x, weight) + bias (bias may be null).
template <typename T>
void conv_transpose2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p) {
  if (p.batch == 0) return;
  conv2d_backward<T>(x, nullptr, weight, y, nullptr, nullptr, p);
  if (!bias) return;
  const int64_t plane = p.input_plane();
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      T* out = y + item * plane;
      const T b = bias[item % p.in_channels];
#pragma omp simd
      for (int64_t q = 0; q < plane; ++q) out[q] += b;
    }
  });
}

// The gradients of conv_transpose2d_forward; each of grad_input, grad_weight and grad_bias may
// be null to skip it. x is read only for grad_weight and weight only for grad_input.
template <typename T>
void conv_transpose2d_backward(const T* grad_output, const T* x, const T* weight, T* grad_input, T* grad_weight,
                               T* grad_bias, const Conv2dParams& p) {
  if (grad_input && p.batch > 0) conv2d_forward<T>(grad_output, weight, nullptr, grad_input, p);
  if (grad_weight) conv2d_backward<T>(x, grad_output, nullptr, nullptr, grad_weight, nullptr, p);
  if (grad_bias) {
    const Conv2dParams q = detail::transposed_output(p);
    if (p.batch == 0)
      std::fill(grad_bias, grad_bias + q.out_channels, T(0));
    else
      with_vector_isa([&](auto isa) { conv2d_backward_bias(isa, grad_output, grad_bias, q); });
  }
}

}  // namespace convpool
