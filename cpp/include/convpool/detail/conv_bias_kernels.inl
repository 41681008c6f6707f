// The bias gradient of conv.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

// grad_bias[co] = the sum of grad_output's channel co over the images. Each channel keeps
// kPartials running sums, element q of every plane going to sum q % kPartials, added in order
// at the end: independent additions that pipeline (a single running sum waits on every
// addition, which made the bias gradient of the first layers' large planes several times
// slower), in an order fixed by the shapes alone and, with only additions, the same at every
// vector width.
template <typename T>
void conv2d_backward_bias(VectorIsa, const T* grad_output, T* grad_bias, const Conv2dParams& p) {
  constexpr int64_t kPartials = 32;
  const int64_t plane = p.output_plane(), whole = plane / kPartials * kPartials;
  parallel_for(p.out_channels, [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      T partial[kPartials] = {};
      for (int64_t n = 0; n < p.batch; ++n) {
        const T* g = grad_output + (n * p.out_channels + co) * plane;
        for (int64_t q = 0; q < whole; q += kPartials)
#pragma omp simd
          for (int64_t j = 0; j < kPartials; ++j) partial[j] += g[q + j];
        for (int64_t q = whole; q < plane; ++q) partial[q - whole] += g[q];
      }
      T total = 0;
      for (int64_t j = 0; j < kPartials; ++j) total += partial[j];
      grad_bias[co] = total;
    }
  });
}

// The same for channels-last grad_output (N, OH, OW, C_out): each chunk of kChunk pixels sums its
// rows in order, vectorized over the channels, and the chunks' sums are added in chunk order.
template <typename T>
void conv2d_backward_bias_channels_last(VectorIsa, const T* grad_output, T* grad_bias, const Conv2dParams& p) {
  constexpr int64_t kChunk = 1024;
  const int64_t channels = p.out_channels, pixels = p.batch * p.output_plane(), chunks = ceil_div(pixels, kChunk);
  std::vector<T> sums(chunks * channels);
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      T* sum = sums.data() + chunk * channels;
      const int64_t q_end = std::min(pixels, (chunk + 1) * kChunk);
      for (int64_t q = chunk * kChunk; q < q_end; ++q) {
        const T* row = grad_output + q * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) sum[c] += row[c];
      }
    }
  });
  std::fill(grad_bias, grad_bias + channels, T(0));
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < channels; ++c) grad_bias[c] += sums[chunk * channels + c];
}
