// The kernels of activation.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

template <typename T>
void relu_forward(VectorIsa, const T* x, T* y, int64_t count) {
  parallel_for((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * kElementwiseChunk, last = std::min(count, end * kElementwiseChunk);
#pragma omp simd
    for (int64_t i = first; i < last; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
  });
}

template <typename T>
void relu_backward(VectorIsa, const T* grad_output, const T* y, T* grad_input, int64_t count) {
  parallel_for((count + kElementwiseChunk - 1) / kElementwiseChunk, [&](int64_t begin, int64_t end) {
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
