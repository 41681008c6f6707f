// The window reductions of window.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp: a row of window sums (direct or column-first) and its transpose
// for the backward passes.

// out[ow] = sum of f(x) over the taps of (oh, ow) inside the input, added in row-major window
// order so that every element has one fixed summation order.
template <typename T, int kStrideW, class Transform>
void window_sum_row(const T* plane, T* out, const Pool2dGeometry& g, int64_t oh, Transform f) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t sw = kStrideW > 0 ? kStrideW : W.stride;
  const int64_t kw_first = W.first_used_tap(), kw_end = W.end_used_tap();
  for (int64_t ow = 0; ow < W.output; ++ow) out[ow] = T(0);
  for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
    const T* row = plane + (H.start(oh) + kh * H.dilation) * W.input;
    for (int64_t kw = kw_first; kw < kw_end; ++kw) {
      const int64_t offset = kw * W.dilation - W.padding;
      const int64_t ow_end = W.end_output(kw);
#pragma omp simd
      for (int64_t ow = W.first_output(kw); ow < ow_end; ++ow) out[ow] += f(row[ow * sw + offset]);
    }
  }
}

// Reduces output row oh of a geometry without dilation column by column: column[iw] = reduce over
// the window's rows (top to bottom) of f(x), then out[ow] = reduce over the window's columns (left
// to right); both start from `identity`. `column` comes from column_scratch. Up to three rows are
// reduced per pass over the columns, in registers. kStrideW / kKernelW > 0 make the column stride /
// the kernel width constants (0: read them from g).
template <typename T, int kStrideW, int kKernelW, class Transform, class Reduce>
void column_first_row_fixed(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, T identity,
                            Transform f, Reduce reduce) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t IW = W.input, sw = kStrideW > 0 ? kStrideW : W.stride;
  const int64_t kw_count = kKernelW > 0 ? kKernelW : W.kernel;
  T* inside = column + W.padding;
  const T* row = plane + (H.start(oh) + H.first_tap(oh)) * IW;
  int64_t rows_left = H.end_tap(oh) - H.first_tap(oh);
  if (rows_left >= 3) {
#pragma omp simd
    for (int64_t iw = 0; iw < IW; ++iw)
      inside[iw] = reduce(reduce(reduce(identity, f(row[iw])), f(row[IW + iw])), f(row[2 * IW + iw]));
    row += 3 * IW;
    rows_left -= 3;
  } else {
#pragma omp simd
    for (int64_t iw = 0; iw < IW; ++iw) inside[iw] = reduce(identity, f(row[iw]));
    row += IW;
    rows_left -= 1;
  }
  for (; rows_left >= 2; rows_left -= 2, row += 2 * IW) {
#pragma omp simd
    for (int64_t iw = 0; iw < IW; ++iw) inside[iw] = reduce(reduce(inside[iw], f(row[iw])), f(row[IW + iw]));
  }
  if (rows_left == 1) {
#pragma omp simd
    for (int64_t iw = 0; iw < IW; ++iw) inside[iw] = reduce(inside[iw], f(row[iw]));
  }
  if constexpr (kKernelW > 0) {
#pragma omp simd
    for (int64_t ow = 0; ow < W.output; ++ow) {
      T acc = identity;
      for (int64_t kw = 0; kw < kw_count; ++kw) acc = reduce(acc, column[ow * sw + kw]);
      out[ow] = acc;
    }
  } else {
    for (int64_t ow = 0; ow < W.output; ++ow) out[ow] = identity;
    for (int64_t kw = 0; kw < kw_count; ++kw) {
#pragma omp simd
      for (int64_t ow = 0; ow < W.output; ++ow) out[ow] = reduce(out[ow], column[ow * sw + kw]);
    }
  }
}

template <typename T, class Transform, class Reduce>
void column_first_row(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, T identity, Transform f,
                      Reduce reduce) {
  with_column_stride_and_width(g.w, [&](auto stride, auto width) {
    column_first_row_fixed<T, decltype(stride)::value, decltype(width)::value>(plane, out, column, g, oh, identity, f,
                                                                               reduce);
  });
}

// window_sum_row for disjoint_2x2 geometries, with the same summation order (from 0).
template <typename T, class Transform>
void window_sum_row_2x2(const T* plane, T* out, const Pool2dGeometry& g, int64_t oh, Transform f) {
  const int64_t width = g.w.input;
  const T* top = plane + 2 * oh * width;
#pragma omp simd
  for (int64_t ow = 0; ow < g.w.output; ++ow) {
    T sum = T(0);
    sum += f(top[2 * ow]);
    sum += f(top[2 * ow + 1]);
    sum += f(top[width + 2 * ow]);
    sum += f(top[width + 2 * ow + 1]);
    out[ow] = sum;
  }
}

// The summation order of a window: column by column (column_first_row) where g.column_first(),
// else row-major. `column` comes from column_scratch(g, T(0)).
template <typename T, class Transform>
void window_sum_row_dispatch(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, Transform f) {
  if (g.column_first()) return column_first_row(plane, out, column, g, oh, T(0), f, [](T a, T b) { return a + b; });
  if (disjoint_2x2(g)) return window_sum_row_2x2(plane, out, g, oh, f);
  with_column_stride(g.w, [&](auto stride) { window_sum_row<T, decltype(stride)::value>(plane, out, g, oh, f); });
}

// frame (from column_scratch, zeroed) += the transpose of column_first_row's reduction across
// columns: each column (padded ones too) receives the weights of the windows covering it, added
// in kernel-column order.
template <typename T, int kStrideW>
void spread_across_columns(const T* weights, T* frame, const Pool2dGeometry& g) {
  const int64_t sw = kStrideW > 0 ? kStrideW : g.w.stride;
  for (int64_t kw = 0; kw < g.w.kernel; ++kw) {
    T* taps = frame + kw;
#pragma omp simd
    for (int64_t ow = 0; ow < g.w.output; ++ow) taps[ow * sw] += weights[ow];
  }
}

// spread_across_columns for 3-wide windows at stride 2, as a gather with the same order: column
// 2m takes window m (kw = 0), then window m - 1 (kw = 2); column 2m + 1 takes window m (kw = 1).
// `weights` is framed: weights[-1] and weights[OW] are 0. Writes frame[0, 2 * pairs).
template <typename T>
void spread_across_columns_3_by_2(const T* weights, T* frame, int64_t pairs) {
#pragma omp simd
  for (int64_t m = 0; m < pairs; ++m) {
    frame[2 * m] = (T(0) + weights[m]) + weights[m - 1];
    frame[2 * m + 1] = T(0) + weights[m];
  }
}

// The transpose of a window sum, restricted to input rows [row_begin, row_end) of one plane:
// grad_input[tap] = sum over the windows containing tap of weight(window). `fill_weights(oh, w)`
// writes the OW weights of output row oh. Contributions arrive in row-major output order; for
// column_first geometries each row of windows is first spread across its columns, then added to
// each of its input rows (so an element adds one partial sum per row of windows).
template <typename T, class FillWeights>
void window_sum_transpose_band(T* grad_input, const Pool2dGeometry& g, int64_t row_begin, int64_t row_end, T* weights,
                               FillWeights&& fill_weights) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  if (g.column_first()) {
    const bool three_by_two = W.kernel == 3 && W.stride == 2;
    const int64_t pairs = (W.padding + W.input + 1) / 2;
    std::vector<T> frame(column_scratch(g, T(0)).size() + 1, T(0));
    std::vector<T> framed_weights(static_cast<size_t>(W.output + 2), T(0));
    T* row_weights = framed_weights.data() + 1;
    const T* columns = frame.data() + W.padding;
    // Rows below `initialized` hold a value: the first window to reach a row stores its
    // columns (0 + c, as every column sum starts from 0, equals c); rows no window reaches are 0.
    int64_t initialized = row_begin;
    auto zero_rows_until = [&](int64_t ih) {
      for (; initialized < ih; ++initialized)
        std::fill(grad_input + initialized * W.input, grad_input + (initialized + 1) * W.input, T(0));
    };
    const int64_t oh_end = H.end_output_touching(row_end);
    for (int64_t oh = H.first_output_touching(row_begin); oh < oh_end; ++oh) {
      const int64_t ih_begin = std::max(H.start(oh) + H.first_tap(oh), row_begin);
      const int64_t ih_end = std::min(H.start(oh) + H.end_tap(oh), row_end);
      if (ih_begin >= ih_end) continue;
      fill_weights(oh, row_weights);
      if (three_by_two) {
        spread_across_columns_3_by_2(row_weights, frame.data(), pairs);
      } else {
        std::fill(frame.begin(), frame.end(), T(0));
        if (W.stride == 2)
          spread_across_columns<T, 2>(row_weights, frame.data(), g);
        else
          spread_across_columns<T, 0>(row_weights, frame.data(), g);
      }
      zero_rows_until(ih_begin);
      for (int64_t ih = ih_begin; ih < ih_end; ++ih) {
        T* row = grad_input + ih * W.input;
        if (ih < initialized) {
#pragma omp simd
          for (int64_t iw = 0; iw < W.input; ++iw) row[iw] += columns[iw];
        } else {
          std::copy(columns, columns + W.input, row);
        }
      }
      initialized = std::max(initialized, ih_end);
    }
    zero_rows_until(row_end);
    return;
  }
  for (int64_t i = row_begin * W.input; i < row_end * W.input; ++i) grad_input[i] = T(0);
  if (disjoint_2x2(g)) {  // each input row lies in one window row: no bound arithmetic
    for (int64_t ih = row_begin; ih < std::min(row_end, 2 * H.output); ++ih) {
      if (ih == row_begin || ih % 2 == 0) fill_weights(ih / 2, weights);
      T* row = grad_input + ih * W.input;
#pragma omp simd
      for (int64_t ow = 0; ow < W.output; ++ow) {
        row[2 * ow] += weights[ow];
        row[2 * ow + 1] += weights[ow];
      }
    }
    return;
  }
  const std::vector<TapColumn> columns = tap_columns(W);
  const int64_t oh_end = H.end_output_touching(row_end);
  for (int64_t oh = H.first_output_touching(row_begin); oh < oh_end; ++oh) {
    fill_weights(oh, weights);
    for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
      const int64_t ih = H.start(oh) + kh * H.dilation;
      if (ih < row_begin || ih >= row_end) continue;
      T* row = grad_input + ih * W.input;
      for (const TapColumn& column : columns) {
#pragma omp simd
        for (int64_t ow = column.ow_begin; ow < column.ow_end; ++ow) row[ow * W.stride + column.offset] += weights[ow];
      }
    }
  }
}

// The number of indices among `count` that are neither -1 nor inside [0, plane_size): index + 1
// taken unsigned lies in [0, plane_size] exactly for those, one comparison each.
inline int64_t indices_outside(VectorIsa, const int64_t* indices, int64_t count, int64_t plane_size) {
  const uint64_t limit = static_cast<uint64_t>(plane_size);
  int64_t outside = 0;
#pragma omp simd reduction(+ : outside)
  for (int64_t i = 0; i < count; ++i) outside += static_cast<uint64_t>(indices[i]) + 1 > limit;
  return outside;
}
