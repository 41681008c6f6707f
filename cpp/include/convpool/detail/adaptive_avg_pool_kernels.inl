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

// Channels last: a block of up to kAdaptiveChannelBlock channels of one image at a time.
inline constexpr int64_t kAdaptiveChannelBlock = 64;

// Calls body(n, first_channel, lanes) for every block of channels of every image, and for every
// `rows` more where given (body(n, row, first_channel, lanes)), in parallel.
template <class Body>
void for_each_adaptive_block(const AdaptiveAvgPool2dParams& p, int64_t rows, Body&& body) {
  const int64_t images = p.planes / p.channels, blocks = ceil_div(p.channels, kAdaptiveChannelBlock);
  parallel_for(images * rows * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t first = item % blocks * kAdaptiveChannelBlock;
      body(item / blocks / rows, item / blocks % rows, first, std::min(kAdaptiveChannelBlock, p.channels - first));
    }
  });
}

// The forward channels last, with the sums of the NCHW forward below: contiguous_sum's 16 running
// sums for windows of whole rows, else column sums over the window's rows, then across its columns.
template <typename T>
void adaptive_avg_pool2d_forward_channels_last(const T* x, T* y, const AdaptiveAvgPool2dParams& p) {
  const int64_t W = p.in_w, C = p.channels;
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(W, p.out_w);
  for_each_adaptive_block(p, p.out_h, [&](int64_t n, int64_t oh, int64_t first, int64_t lanes) {
    const T* image = x + n * p.in_h * W * C + first;
    T* out = y + (n * p.out_h + oh) * p.out_w * C + first;
    if (p.out_w == 1) {
      constexpr int64_t kSums = 16;
      T partial[kSums][kAdaptiveChannelBlock] = {};
      const T* window = image + rows.begin[oh] * W * C;
      const int64_t count = rows.size(oh) * W;
      for (int64_t q = 0; q < count; ++q) {
        T* sums = partial[q % kSums];
        const T* values = window + q * C;
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) sums[c] += values[c];
      }
      T total[kAdaptiveChannelBlock] = {};
      for (int64_t j = 0; j < kSums; ++j)
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) total[c] += partial[j][c];
#pragma omp simd
      for (int64_t c = 0; c < lanes; ++c) out[c] = total[c] / static_cast<T>(count);
      return;
    }
    std::vector<T> column_sums(static_cast<size_t>(W * lanes), T(0));
    for (int64_t h = rows.begin[oh]; h < rows.end[oh]; ++h)
      for (int64_t w = 0; w < W; ++w) {
        T* sums = column_sums.data() + w * lanes;
        const T* values = image + (h * W + w) * C;
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) sums[c] += values[c];
      }
    T sum[kAdaptiveChannelBlock];
    for (int64_t ow = 0; ow < p.out_w; ++ow) {
      std::fill_n(sum, lanes, T(0));
      for (int64_t w = columns.begin[ow]; w < columns.end[ow]; ++w)
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) sum[c] += column_sums[w * lanes + c];
      const T size = static_cast<T>(rows.size(oh) * columns.size(ow));
#pragma omp simd
      for (int64_t c = 0; c < lanes; ++c) out[ow * C + c] = sum[c] / size;
    }
  });
}

// The backward channels last, with the NCHW backward's order: each output row's shares gathered
// per input column (windows in output order), then added to the window rows' inputs.
template <typename T>
void adaptive_avg_pool2d_backward_channels_last(const T* grad_output, T* grad_input, const AdaptiveAvgPool2dParams& p) {
  const int64_t W = p.in_w, C = p.channels;
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(W, p.out_w);
  for_each_adaptive_block(p, 1, [&](int64_t n, int64_t, int64_t first, int64_t lanes) {
    T* gi = grad_input + n * p.in_h * W * C + first;
    const T* go = grad_output + n * p.out_h * p.out_w * C + first;
    for (int64_t i = 0; i < p.in_h * W; ++i) std::fill_n(gi + i * C, lanes, T(0));
    std::vector<T> column_shares(static_cast<size_t>(W * lanes));
    T share[kAdaptiveChannelBlock];
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      std::fill(column_shares.begin(), column_shares.end(), T(0));
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const T size = static_cast<T>(rows.size(oh) * columns.size(ow));
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) share[c] = go[(oh * p.out_w + ow) * C + c] / size;
        for (int64_t w = columns.begin[ow]; w < columns.end[ow]; ++w)
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c) column_shares[w * lanes + c] += share[c];
      }
      for (int64_t h = rows.begin[oh]; h < rows.end[oh]; ++h)
        for (int64_t w = 0; w < W; ++w) {
          T* element = gi + (h * W + w) * C;
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c) element[c] += column_shares[w * lanes + c];
        }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(VectorIsa, const T* x, T* y, const AdaptiveAvgPool2dParams& p) {
  const int64_t W = p.in_w;
  const AdaptiveWindows rows(p.in_h, p.out_h), columns(W, p.out_w);
  if (p.layout == Layout::nhwc) return adaptive_avg_pool2d_forward_channels_last(x, y, p);
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
  if (p.layout == Layout::nhwc) return adaptive_avg_pool2d_backward_channels_last(grad_output, grad_input, p);
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
