// The kernels of adaptive_avg_pool.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

// The sum of values[0, count) with value q going to running sum q % 16, the 16 added in order.
template <typename T>
T contiguous_sum(const T* values, int64_t count) {
  constexpr int64_t kSums = 16;
  T partial[kSums] = {};
  const int64_t whole = count / kSums * kSums;
  for (int64_t q = 0; q < whole; q += kSums)
#pragma omp simd
    for (int64_t j = 0; j < kSums; ++j) partial[j] += values[q + j];
  for (int64_t q = whole; q < count; ++q) partial[q - whole] += values[q];
  T total = T(0);
  for (T value : partial) total += value;
  return total;
}

template <typename T>
void adaptive_avg_pool2d_forward(VectorIsa, const T* x, T* y, const AdaptiveAvgPool2dParams& p) {
  const int64_t W = p.in_w;
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(W, p.out_w);
  if (p.out_w == 1) {  // each window is whole rows, contiguous in memory (global pooling)
    parallel_for(p.planes * p.out_h, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t oh = r % p.out_h, count = rows.size(oh) * W;
        y[r] = contiguous_sum(x + (r / p.out_h * p.in_h + rows.begin[oh]) * W, count) / static_cast<T>(count);
      }
    });
    return;
  }
  parallel_for(p.planes * p.out_h, [&](int64_t begin, int64_t end) {
    std::vector<T> column_sums(static_cast<size_t>(W));
    T* sums = column_sums.data();
    for (int64_t r = begin; r < end; ++r) {
      const int64_t oh = r % p.out_h;
      const T* plane = x + r / p.out_h * p.in_h * W;
#pragma omp simd
      for (int64_t w = 0; w < W; ++w) sums[w] = T(0);
      for (int64_t h = rows.begin[oh]; h < rows.end[oh]; ++h) {
        const T* row = plane + h * W;
#pragma omp simd
        for (int64_t w = 0; w < W; ++w) sums[w] += row[w];
      }
      T* out = y + r * p.out_w;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        T sum = T(0);
        for (int64_t w = columns.begin[ow]; w < columns.end[ow]; ++w) sum += sums[w];
        out[ow] = sum / static_cast<T>(rows.size(oh) * columns.size(ow));
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(VectorIsa, const T* grad_output, T* grad_input, const AdaptiveAvgPool2dParams& p) {
  const int64_t W = p.in_w;
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(W, p.out_w);
  parallel_for(p.planes, [&](int64_t begin, int64_t end) {
    std::vector<T> column_shares(static_cast<size_t>(W));
    T* shares = column_shares.data();
    for (int64_t plane = begin; plane < end; ++plane) {
      T* gi = grad_input + plane * p.in_h * W;
      const T* go = grad_output + plane * p.out_h * p.out_w;
      for (int64_t i = 0; i < p.in_h * W; ++i) gi[i] = T(0);
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
#pragma omp simd
        for (int64_t w = 0; w < W; ++w) shares[w] = T(0);
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          const T share = go[oh * p.out_w + ow] / static_cast<T>(rows.size(oh) * columns.size(ow));
          for (int64_t w = columns.begin[ow]; w < columns.end[ow]; ++w) shares[w] += share;
        }
        for (int64_t h = rows.begin[oh]; h < rows.end[oh]; ++h) {
          T* row = gi + h * W;
#pragma omp simd
          for (int64_t w = 0; w < W; ++w) row[w] += shares[w];
        }
      }
    }
  });
}
