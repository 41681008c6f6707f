#pragma once
// 2-D batch normalization (Ioffe & Szegedy, 2015) over x (N, C, H, W), forward and backward, with
// PyTorch's semantics, optionally fused with the ReLU that follows it.
//
// Training: channel c is normalized with the mean and the biased variance of its N * H * W values,
// y = (x - mean) * invstd * weight + bias with invstd = 1 / sqrt(var + eps); running_mean and
// running_var, where given, become (1 - momentum) * running + momentum * batch statistic, the
// variance taken unbiased (times M / (M - 1), M = N * H * W). Evaluation: the running statistics
// take the batch's place. Either way the statistics used are saved (mean, invstd) for the
// backward pass. weight and bias may be absent (1 and 0).
//
// Each plane (n, c) is reduced by one thread, element q going to running sum q % 32 in T, the 32
// folded into a double total every 2048 elements (detail/batch_norm_kernels.inl, ordered_sums);
// the planes' results are then combined in image order per channel.
// The order is fixed by the shapes alone, so results are bitwise identical for any number of
// threads. Channels last (Layout::nhwc), a block of 16 channels of one image is reduced at a time,
// vectorized over the channels, each channel's values in the same order as its NCHW plane's: the
// statistics, and so every output, equal the NCHW ones bit for bit. Training reads x twice (the planes' moments, two
// passes over each plane while it is in the cache, then the normalization) and the backward reads grad_output and x
// twice (the planes' sums, then grad_input), each pass streaming through memory in order: walking one channel at a time
// instead, whose planes lie far apart, measured slower than the extra pass.

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <vector>

#include "activation.hpp"
#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"

namespace convpool {

struct BatchNorm2dParams {
  int64_t batch = 1, channels = 1, plane = 1;  // x is (batch, channels, plane = H * W) in layout's order
  Layout layout = Layout::nchw;
  double eps = 1e-5;
  double momentum = 0.1;  // the running statistics' update in training
  bool training = true;
  Activation activation = Activation::none;  // relu: y = relu(batch_norm(x)), its gradient through it

  int64_t per_channel() const { return batch * plane; }
};

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "batch_norm_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// x, y: (batch, channels, plane) in p.layout's order; weight, bias, running_mean, running_var, save_mean,
// save_invstd: (channels). weight and bias may be null; running_mean and running_var may be null
// in training (no running statistics) and are read in evaluation. save_mean and save_invstd
// receive the statistics the normalization used.
template <typename T>
void batch_norm2d_forward(const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, T* y,
                          T* save_mean, T* save_invstd, const BatchNorm2dParams& p) {
  assert(p.training ? p.per_channel() > 1 : running_mean && running_var);
  with_vector_isa([&](auto isa) {
    batch_norm2d_forward(isa, x, weight, bias, running_mean, running_var, y, save_mean, save_invstd, p);
  });
}

// The gradients of batch_norm2d_forward from its saved statistics; grad_input, grad_weight and
// grad_bias may each be null to skip it. With Activation::relu, y (the forward's output) masks grad_output
// as the ReLU's backward does: no gradient where y <= 0.
template <typename T>
void batch_norm2d_backward(const T* grad_output, const T* x, const T* y, const T* weight, const T* save_mean,
                           const T* save_invstd, T* grad_input, T* grad_weight, T* grad_bias,
                           const BatchNorm2dParams& p) {
  assert(p.activation == Activation::none || y);
  with_vector_isa([&](auto isa) {
    batch_norm2d_backward(isa, grad_output, x, y, weight, save_mean, save_invstd, grad_input, grad_weight, grad_bias,
                          p);
  });
}

}  // namespace convpool
