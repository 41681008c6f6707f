// The kernels of activation.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

template <typename T>
void relu_forward(VectorIsa, const T* x, const T* residual, T* y, int64_t count) {
  parallel_for((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kElementwiseChunk, last = std::min(count, end * kElementwiseChunk);
    if (residual) {
#pragma omp simd
      for (int64_t i = first; i < last; ++i) y[i] = relu_of(x[i] + residual[i]);
    } else {
#pragma omp simd
      for (int64_t i = first; i < last; ++i) y[i] = relu_of(x[i]);
    }
  });
}

template <typename T>
void relu_backward(VectorIsa, const T* grad_output, const T* y, T* grad_input, int64_t count) {
  parallel_for((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kElementwiseChunk, last = std::min(count, end * kElementwiseChunk);
#pragma omp simd
    for (int64_t i = first; i < last; ++i) grad_input[i] = relu_gradient(grad_output[i], y[i]);
  });
}
