#pragma once
// ReLU forward and backward over flat arrays: the elementwise step between a convolution and a
// pooling layer, threaded and vectorized like the kernels around it.
//
// Semantics follow PyTorch: relu(x) = 0 where x < 0, else x (so -0 and NaN are kept); the
// gradient is 0 where the output is <= 0 and passes elsewhere, NaN outputs included, as in
// PyTorch's threshold_backward.

#include <algorithm>
#include <cstdint>

#include "isa.hpp"
#include "parallel.hpp"

namespace convpool {

// What a kernel applies to its output (conv2d_forward, batch_norm2d_forward): nothing, or the
// ReLU below.
enum class Activation { none, relu };

// relu(x) = 0 where x < 0, else x: -0 and NaN are kept.
template <typename T>
inline T relu_of(T x) {
  return x < T(0) ? T(0) : x;
}

// The gradient through a ReLU whose output is y: none where y <= 0, grad elsewhere (NaN
// included). Both values are taken unconditionally: a load under the condition compiles to a
// branch per element, which mispredicts on a convolution's random signs (20x slower).
template <typename T>
inline T relu_gradient(T grad, T y) {
  return y <= T(0) ? T(0) : grad;
}

// Elements per work item: large enough that a thread's share is worth waking it for.
inline constexpr int64_t kElementwiseChunk = 16384;

}  // namespace convpool

#define CONVPOOL_VECTOR_KERNELS "activation_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// y = relu(x), or relu(x + residual) where residual is not null: a residual block's sum and the
// ReLU after it in one pass (its gradient is relu_backward's, passed to both summands).
template <typename T>
void relu_forward(const T* x, const T* residual, T* y, int64_t count) {
  with_vector_isa([&](auto isa) { relu_forward(isa, x, residual, y, count); });
}

template <typename T>
void relu_forward(const T* x, T* y, int64_t count) {
  relu_forward(x, static_cast<const T*>(nullptr), y, count);
}

template <typename T>
void relu_backward(const T* grad_output, const T* y, T* grad_input, int64_t count) {
  with_vector_isa([&](auto isa) { relu_backward(isa, grad_output, y, grad_input, count); });
}

}  // namespace convpool
