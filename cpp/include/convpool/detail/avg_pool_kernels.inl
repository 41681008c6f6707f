// The kernels of avg_pool.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

template <typename T>
void avg_pool2d_forward(VectorIsa, const T* input, T* output, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OH = g.h.output, OW = g.w.output;
  parallel_for(g.planes * OH, [&](int64_t begin, int64_t end) {
    AvgPoolRowDivisors<T> divisors(p);
    std::vector<T> column = column_scratch(g, T(0));
    for (int64_t r = begin; r < end; ++r) {
      const int64_t oh = r % OH;
      T* out = output + r * OW;
      window_sum_row_dispatch(input + (r / OH) * g.input_plane(), out, column.data(), g, oh, [](T v) { return v; });
      const T* divisor = divisors.row(oh);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) out[ow] /= divisor[ow];
    }
  });
}

template <typename T>
void avg_pool2d_backward(VectorIsa, const T* grad_output, T* grad_input, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OW = g.w.output;
  for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T* weights) {
    AvgPoolRowDivisors<T> divisors(p);
    const T* go = grad_output + plane * g.output_plane();
    window_sum_transpose_band(grad_input + plane * g.input_plane(), g, r0, r1, weights, [&](int64_t oh, T* w) {
      const T* divisor = divisors.row(oh);
#pragma omp simd
      for (int64_t ow = 0; ow < OW; ++ow) w[ow] = go[oh * OW + ow] / divisor[ow];
    });
  });
}
