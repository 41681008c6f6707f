// The kernels of avg_pool.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

// Channels last: the channels of a pixel lie side by side, and each window's sum is taken for a
// block of up to kAvgPoolChannelBlock channels at a time, vectorized over the channels, in the
// order window_sum_row_dispatch adds the NCHW plane's: column by column (each column top to
// bottom, then the columns left to right) where g.column_first(), else row-major. Columns and
// rows outside the input, which the NCHW paths add as zeros, are left out: adding +0 to a sum
// that started at +0 changes nothing. The results equal the NCHW ones bit for bit.
inline constexpr int64_t kAvgPoolChannelBlock = 64;

template <typename T>
void avg_pool2d_forward_channels_last(const T* input, T* output, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t C = g.channels, OH = H.output, OW = W.output;
  const bool by_columns = g.column_first();
  parallel_for(g.images() * OH, [&](int64_t begin, int64_t end) {
    AvgPoolRowDivisors<T> divisors(p);
    T sum[kAvgPoolChannelBlock], column[kAvgPoolChannelBlock];
    for (int64_t r = begin; r < end; ++r) {
      const int64_t oh = r % OH;
      const T* image = input + r / OH * g.input_plane() * C;
      const T* divisor = divisors.row(oh);
      const int64_t ih_begin = H.start(oh) + H.first_tap(oh), ih_end = H.start(oh) + H.end_tap(oh);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t iw_begin = W.start(ow) + W.first_tap(ow), iw_end = W.start(ow) + W.end_tap(ow);
        T* out = output + (r * OW + ow) * C;
        for (int64_t c0 = 0; c0 < C; c0 += kAvgPoolChannelBlock) {
          const int64_t lanes = std::min(kAvgPoolChannelBlock, C - c0);
          std::fill_n(sum, lanes, T(0));
          const auto add = [&](T* to, int64_t ih, int64_t iw) {
            const T* values = image + (ih * W.input + iw) * C + c0;
#pragma omp simd
            for (int64_t c = 0; c < lanes; ++c) to[c] += values[c];
          };
          if (by_columns) {
            for (int64_t iw = iw_begin; iw < iw_end; ++iw) {
              std::fill_n(column, lanes, T(0));
              for (int64_t ih = ih_begin; ih < ih_end; ++ih) add(column, ih, iw);
#pragma omp simd
              for (int64_t c = 0; c < lanes; ++c) sum[c] += column[c];
            }
          } else {
            for (int64_t ih = ih_begin; ih < ih_end; ++ih)
              for (int64_t iw = iw_begin; iw < iw_end; ++iw) add(sum, ih, iw);
          }
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c) out[c0 + c] = sum[c] / divisor[ow];
        }
      }
    }
  });
}

// The backward channels last, over input rows [row_begin, row_end) of one image: each input
// element gathers the weights (grad_output / divisor) of the windows covering it in the order
// avg_pool2d_backward's window_sum_transpose_band adds them there: windows in row-major order,
// and where g.column_first() each row of windows summed first (its columns left to right) and
// then added. The results equal the NCHW ones bit for bit.
template <typename T>
void avg_pool2d_backward_channels_last_band(const T* grad_output, T* grad_input, const AvgPool2dParams& p,
                                            int64_t row_begin, int64_t row_end) {
  const Pool2dGeometry& g = p.geometry;
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t C = g.channels, OW = W.output;
  const bool by_columns = g.column_first();
  // The weights of the output rows that reach the band, each computed once.
  const int64_t oh_begin = H.first_output_touching(row_begin), oh_end = H.end_output_touching(row_end);
  std::vector<T> weights(static_cast<size_t>(std::max<int64_t>(oh_end - oh_begin, 0) * OW * C));
  AvgPoolRowDivisors<T> divisors(p);
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    const T* divisor = divisors.row(oh);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const T* go = grad_output + (oh * OW + ow) * C;
      T* w = weights.data() + ((oh - oh_begin) * OW + ow) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) w[c] = go[c] / divisor[ow];
    }
  }
  T sum[kAvgPoolChannelBlock], row_sum[kAvgPoolChannelBlock];
  for (int64_t ih = row_begin; ih < row_end; ++ih) {
    // The windows covering row ih: oh with 0 <= ih + padding - oh * stride < kernel.
    const int64_t first_oh = std::max(oh_begin, ceil_div(ih + H.padding - H.kernel + 1, H.stride));
    const int64_t last_oh = std::min(oh_end - 1, floor_div(ih + H.padding, H.stride));
    for (int64_t iw = 0; iw < W.input; ++iw) {
      const int64_t first_ow = std::max<int64_t>(0, ceil_div(iw + W.padding - W.kernel + 1, W.stride));
      const int64_t last_ow = std::min(OW - 1, floor_div(iw + W.padding, W.stride));
      T* out = grad_input + (ih * W.input + iw) * C;
      for (int64_t c0 = 0; c0 < C; c0 += kAvgPoolChannelBlock) {
        const int64_t lanes = std::min(kAvgPoolChannelBlock, C - c0);
        std::fill_n(sum, lanes, T(0));
        for (int64_t oh = first_oh; oh <= last_oh; ++oh) {
          T* to = by_columns ? row_sum : sum;
          if (by_columns) std::fill_n(row_sum, lanes, T(0));
          // Kernel columns in ascending order: the windows right to left.
          for (int64_t ow = last_ow; ow >= first_ow; --ow) {
            const T* w = weights.data() + ((oh - oh_begin) * OW + ow) * C + c0;
#pragma omp simd
            for (int64_t c = 0; c < lanes; ++c) to[c] += w[c];
          }
          if (by_columns) {
#pragma omp simd
            for (int64_t c = 0; c < lanes; ++c) sum[c] += row_sum[c];
          }
        }
        std::copy_n(sum, lanes, out + c0);
      }
    }
  }
}

template <typename T>
void avg_pool2d_forward(VectorIsa, const T* input, T* output, const AvgPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  if (g.layout == Layout::nhwc) return avg_pool2d_forward_channels_last(input, output, p);
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
  if (g.layout == Layout::nhwc) {
    const RowBands bands = RowBands::for_planes(g.images(), g.h.input);
    const int64_t image_input = g.input_plane() * g.channels, image_output = g.output_plane() * g.channels;
    parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
      for (int64_t item = item_begin; item < item_end; ++item) {
        const int64_t n = bands.plane(item);
        avg_pool2d_backward_channels_last_band(grad_output + n * image_output, grad_input + n * image_input, p,
                                               bands.row_begin(item), bands.row_end(item));
      }
    });
    return;
  }
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
