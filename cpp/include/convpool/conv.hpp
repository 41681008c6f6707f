#pragma once
// 2-D convolution (cross-correlation, as every framework defines it): forward, and the gradients
// with respect to the input, the weight and the bias.
//
// Layouts: x (N, C_in, H, W), weight (C_out, C_in / groups, KH, KW), bias (C_out), y (N, C_out,
// OH, OW), all C-contiguous. The arithmetic runs in the register-tiled micro-kernels of
// detail/conv_kernels.hpp, on per-thread buffers sized for the caches (never the whole batch).
// The forward and weight gradient read zero-padded input rows in place ("direct" paths), and so
// does the input gradient at stride 1; at larger strides it is one stride-1 correlation per
// phase of the input. Where those do not apply (huge strides or dilations, short reductions of
// the weight gradient, one or two input channels) panels of the im2col matrix are gathered tile
// by tile. Depthwise convolutions (one input channel per group) run a kernel of their own, since
// they have no reduction over channels to feed a matrix product.
//
// Determinism: every output element is computed by one thread, from contributions added in an
// order fixed by the shapes alone; the weight gradient of a small layer is split over a fixed
// number of image chunks whose partial sums are added in chunk order. Results are therefore
// bitwise identical for any number of threads.

#include <algorithm>
#include <cstdint>

#include "detail/conv_depthwise.hpp"
#include "detail/conv_direct.hpp"
#include "detail/conv_gemm.hpp"
#include "isa.hpp"
#include "shape.hpp"

#define CONVPOOL_VECTOR_KERNELS "conv_bias_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// y = activation(conv2d(x, weight) + bias); bias may be null. The activation is applied to each
// output tile right after it is computed, while it is in the cache.
template <typename T>
void conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p,
                    Activation activation = Activation::none) {
  if (p.batch == 0) return;
  if (detail::depthwise_applies(p))
    detail::conv2d_forward_depthwise(x, weight, bias, y, p, activation);
  else if (detail::direct_applies(p))
    detail::conv2d_forward_direct(x, weight, bias, y, p, activation);
  else
    detail::conv2d_forward_gemm(x, weight, bias, y, p, activation);
}

// The gradients of conv2d_forward; each of grad_input, grad_weight and grad_bias may be null to
// skip it. x is read only for grad_weight and weight only for grad_input.
template <typename T>
void conv2d_backward(const T* grad_output, const T* x, const T* weight, T* grad_input, T* grad_weight, T* grad_bias,
                     const Conv2dParams& p) {
  if (p.batch == 0) {  // the sums over no images; nothing else is read or written
    if (grad_weight) std::fill(grad_weight, grad_weight + p.out_channels * p.weight_row(), T(0));
    if (grad_bias) std::fill(grad_bias, grad_bias + p.out_channels, T(0));
    return;
  }
  if (grad_input) {
    if (detail::depthwise_input_gradient_applies(p))
      detail::conv2d_backward_input_depthwise(grad_output, weight, grad_input, p);
    else if (detail::direct_input_gradient_applies(p))
      detail::conv2d_backward_input_direct(grad_output, weight, grad_input, p);
    else if (detail::phase_input_gradient_applies(p))
      detail::conv2d_backward_input_phases(grad_output, weight, grad_input, p);
    else
      detail::conv2d_backward_input_col2im(grad_output, weight, grad_input, p);
  }
  if (grad_weight) {
    if (detail::depthwise_applies(p))
      detail::conv2d_backward_weight_depthwise(grad_output, x, grad_weight, p);
    else if (detail::direct_weight_gradient_applies(p, x))
      detail::conv2d_backward_weight_direct(grad_output, x, grad_weight, p);
    else
      detail::conv2d_backward_weight_gemm(grad_output, x, grad_weight, p);
  }
  if (grad_bias) with_vector_isa([&](auto isa) { conv2d_backward_bias(isa, grad_output, grad_bias, p); });
}

}  // namespace convpool
