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

// Elements per work item: large enough that a thread's share is worth waking it for.
inline constexpr int64_t kElementwiseChunk = 16384;

template <typename T>
void relu_forward(const T* x, T* y, int64_t count) {
  parallel_for_vectorized((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kElementwiseChunk, last = std::min(count, end * kElementwiseChunk);
#pragma omp simd
    for (int64_t i = first; i < last; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
  });
}

template <typename T>
void relu_backward(const T* grad_output, const T* y, T* grad_input, int64_t count) {
  parallel_for_vectorized((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kElementwiseChunk, last = std::min(count, end * kElementwiseChunk);
    // Both loads unconditional: a load under the condition compiles to a branch per element,
    // which mispredicts on a convolution's random signs (20x slower).
#pragma omp simd
    for (int64_t i = first; i < last; ++i) {
      const T grad = grad_output[i];
      grad_input[i] = y[i] <= T(0) ? T(0) : grad;
    }
  });
}

}  // namespace convpool
