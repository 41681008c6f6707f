// The kernels of max_pool.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

template <typename T, bool kIgnoreNan>
inline T max_pool_load(const T* p) {
  const T v = *p;
  if constexpr (kIgnoreNan) return std::isnan(v) ? -std::numeric_limits<T>::infinity() : v;
  return v;
}

// Whether the scan replaces the running maximum `best` by `v` (v comes later in scan order).
template <typename T, bool kLast, bool kIgnoreNan>
inline bool max_pool_takes(T v, T best) {
  const bool wins = kLast ? (v >= best) : (v > best);
  if constexpr (kIgnoreNan) return wins;
  return wins || std::isnan(v);
}

// Outputs are produced in blocks small enough to stay in registers/L1 between taps.
inline constexpr int64_t kMaxPoolBlock = 256;

// One output row. The (kh, kw) loops run in row-major window order, each over a contiguous run
// of outputs so that the innermost loop vectorizes; kStrideW > 0 makes the stride a constant,
// which lets the compiler turn the strided loads into shuffles. The running argmax is kept as
// Index (int32_t whenever the plane allows), the lane width of float, and widened on store.
template <typename T, typename Index, int kStrideW, bool kLast, bool kIgnoreNan, bool kIndices>
void max_pool2d_forward_row(const T* plane, T* out, int64_t* idx, const Pool2dGeometry& g, int64_t oh) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t sw = kStrideW > 0 ? kStrideW : W.stride;
  const int64_t kh_begin = H.first_tap(oh), kh_end = H.end_tap(oh);
  const int64_t kw_first = W.first_used_tap(), kw_end = W.end_used_tap();
  for (int64_t block = 0; block < W.output; block += kMaxPoolBlock) {
    const int64_t block_end = std::min(block + kMaxPoolBlock, W.output);
    T best[kMaxPoolBlock];
    Index arg[kMaxPoolBlock];
    for (int64_t j = 0; j < block_end - block; ++j) {
      best[j] = -std::numeric_limits<T>::infinity();
      arg[j] = -1;
    }
    for (int64_t kh = kh_begin; kh < kh_end; ++kh) {
      const int64_t ih = H.start(oh) + kh * H.dilation;
      const T* row = plane + ih * W.input;
      for (int64_t kw = kw_first; kw < kw_end; ++kw) {
        const int64_t offset = kw * W.dilation - W.padding;
        const int64_t ow_begin = std::max(W.first_output(kw), block);
        const int64_t ow_end = std::min(W.end_output(kw), block_end);
        // Pointers rebased so that the loop index is the block position j.
        const T* taps = row + block * sw + offset;
        T* b = best - block;
        if constexpr (kIndices) {
          Index* a = arg - block;
          const Index base = static_cast<Index>(ih * W.input + block * sw + offset);
#pragma omp simd
          for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
            const int64_t j = ow - block;
            const T v = max_pool_load<T, kIgnoreNan>(taps + j * sw);
            const bool take = max_pool_takes<T, kLast, kIgnoreNan>(v, b[ow]);
            b[ow] = take ? v : b[ow];
            a[ow] = take ? static_cast<Index>(base + static_cast<Index>(j * sw)) : a[ow];
          }
        } else {
#pragma omp simd
          for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
            const T v = max_pool_load<T, kIgnoreNan>(taps + (ow - block) * sw);
            b[ow] = max_pool_takes<T, false, kIgnoreNan>(v, b[ow]) ? v : b[ow];
          }
        }
      }
    }
    for (int64_t ow = block; ow < block_end; ++ow) out[ow] = best[ow - block];
    if constexpr (kIndices) {
      for (int64_t ow = block; ow < block_end; ++ow) idx[ow] = arg[ow - block];
      // With the strict comparison of TieBreak::first, a window whose taps are all -inf (or NaN
      // under NanPolicy::ignore) never replaces the -1 sentinel: its first tap is the answer.
      if (!kLast && kh_begin != kh_end) {
        const int64_t ih = H.start(oh) + kh_begin * H.dilation;
        for (int64_t ow = block; ow < block_end; ++ow)
          if (idx[ow] < 0 && W.first_tap(ow) != W.end_tap(ow))
            idx[ow] = ih * W.input + W.start(ow) + W.first_tap(ow) * W.dilation;
      }
    }
  }
}

// Disjoint 2x2 windows (window.hpp): each output compares its four taps in row-major order,
// starting from the first tap (which the general scan's first comparison would select).
template <typename T, typename Index, bool kLast, bool kIgnoreNan, bool kIndices>
void max_pool2d_forward_row_2x2(const T* plane, T* out, int64_t* idx, const Pool2dGeometry& g, int64_t oh) {
  const int64_t width = g.w.input;
  const T* top = plane + 2 * oh * width;
  const Index first = static_cast<Index>(2 * oh * width);
#pragma omp simd
  for (int64_t ow = 0; ow < g.w.output; ++ow) {
    T best = max_pool_load<T, kIgnoreNan>(top + 2 * ow);
    Index arg = first + static_cast<Index>(2 * ow);
    const Index offsets[3] = {1, static_cast<Index>(width), static_cast<Index>(width + 1)};
    for (int tap = 0; tap < 3; ++tap) {
      const T v = max_pool_load<T, kIgnoreNan>(top + 2 * ow + offsets[tap]);
      const bool take = max_pool_takes<T, kLast, kIgnoreNan>(v, best);
      best = take ? v : best;
      arg = take ? static_cast<Index>(first + 2 * ow + offsets[tap]) : arg;
    }
    out[ow] = best;
    if constexpr (kIndices) idx[ow] = arg;
  }
}

// Whether candidate (v, i) beats the running (best, best_i) under the scan rules, i and best_i
// being flat indices in the plane. Within one window, flat index order is row-major scan order,
// so candidates may be merged in any order: the result is the scan's.
template <typename T, typename Index, bool kLast, bool kIgnoreNan>
inline bool max_pool_beats(T v, Index i, T best, Index best_i) {
  const bool ordered = v > best || (v == best && (kLast ? i > best_i : i < best_i));
  if constexpr (kIgnoreNan) return ordered;
  return std::isnan(v) ? (!std::isnan(best) || i > best_i) : ordered;
}

// Per-thread scratch of the column-first argmax: each input column's best (value, flat index)
// over a window's rows, framed like column_scratch by candidates that never win.
template <typename T, typename Index>
struct ArgmaxColumns {
  std::vector<T> values;
  std::vector<Index> indices;
  std::vector<Index> running;  // the running argmax of one output row, for a kernel width not fixed at compile time

  ArgmaxColumns(const Pool2dGeometry& g, bool last)
      : values(column_scratch(g, -std::numeric_limits<T>::infinity())),
        indices(values.size(), last ? Index(-1) : std::numeric_limits<Index>::max()),
        running(static_cast<size_t>(g.w.output)) {}
};

// One output row with indices for windows without dilation: each column's candidate over the
// window's rows (top to bottom, scan rules), then the candidates merged across the window's
// columns by max_pool_beats. Every load is contiguous except the merge's strided reads.
template <typename T, typename Index, int kStrideW, int kKernelW, bool kLast, bool kIgnoreNan>
void max_pool2d_argmax_row_column_first(const T* plane, T* out, int64_t* idx, ArgmaxColumns<T, Index>& scratch,
                                        const Pool2dGeometry& g, int64_t oh) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const Index IW = static_cast<Index>(W.input);
  const int64_t sw = kStrideW > 0 ? kStrideW : W.stride;
  const int64_t kw_count = kKernelW > 0 ? kKernelW : W.kernel;
  T* values = scratch.values.data() + W.padding;
  Index* indices = scratch.indices.data() + W.padding;
  const int64_t ih_first = H.start(oh) + H.first_tap(oh);
  int64_t rows_left = H.end_tap(oh) - H.first_tap(oh);
  const T* row = plane + ih_first * W.input;
  Index base = static_cast<Index>(ih_first * W.input);
  auto take = [](T v, T& best, Index i, Index& best_i) {
    const bool wins = max_pool_takes<T, kLast, kIgnoreNan>(v, best);
    best = wins ? v : best;
    best_i = wins ? i : best_i;
  };
  if (rows_left >= 3) {
#pragma omp simd
    for (Index iw = 0; iw < IW; ++iw) {
      T best = max_pool_load<T, kIgnoreNan>(row + iw);
      Index best_i = base + iw;
      take(max_pool_load<T, kIgnoreNan>(row + IW + iw), best, base + IW + iw, best_i);
      take(max_pool_load<T, kIgnoreNan>(row + 2 * IW + iw), best, base + 2 * IW + iw, best_i);
      values[iw] = best;
      indices[iw] = best_i;
    }
    rows_left -= 3;
    row += 3 * W.input;
    base += 3 * IW;
  } else {
#pragma omp simd
    for (Index iw = 0; iw < IW; ++iw) {
      values[iw] = max_pool_load<T, kIgnoreNan>(row + iw);
      indices[iw] = base + iw;
    }
    rows_left -= 1;
    row += W.input;
    base += IW;
  }
  for (; rows_left > 0; --rows_left, row += W.input, base += IW) {
#pragma omp simd
    for (Index iw = 0; iw < IW; ++iw) take(max_pool_load<T, kIgnoreNan>(row + iw), values[iw], base + iw, indices[iw]);
  }
  const T* value_frame = scratch.values.data();
  const Index* index_frame = scratch.indices.data();
  auto merge = [](T v, Index i, T& best, Index& best_i) {
    const bool wins = max_pool_beats<T, Index, kLast, kIgnoreNan>(v, i, best, best_i);
    best = wins ? v : best;
    best_i = wins ? i : best_i;
  };
  if constexpr (kKernelW > 0) {
#pragma omp simd
    for (int64_t ow = 0; ow < W.output; ++ow) {
      T best = value_frame[ow * sw];
      Index best_i = index_frame[ow * sw];
      for (int64_t kw = 1; kw < kw_count; ++kw)
        merge(value_frame[ow * sw + kw], index_frame[ow * sw + kw], best, best_i);
      out[ow] = best;
      idx[ow] = best_i;
    }
  } else {
    Index* running = scratch.running.data();
    for (int64_t ow = 0; ow < W.output; ++ow) {
      out[ow] = value_frame[ow * sw];
      running[ow] = index_frame[ow * sw];
    }
    for (int64_t kw = 1; kw < kw_count; ++kw) {
#pragma omp simd
      for (int64_t ow = 0; ow < W.output; ++ow)
        merge(value_frame[ow * sw + kw], index_frame[ow * sw + kw], out[ow], running[ow]);
    }
    for (int64_t ow = 0; ow < W.output; ++ow) idx[ow] = running[ow];
  }
}

template <typename T, typename Index, bool kLast, bool kIgnoreNan, bool kIndices>
void max_pool2d_forward_rows(const T* input, T* output, int64_t* indices, const Pool2dGeometry& g, int64_t row_begin,
                             int64_t row_end) {
  const int64_t OH = g.h.output, OW = g.w.output;
  // Windows without dilation are reduced column-wise first: without indices because the
  // maximum's value does not depend on the scan order, with indices by max_pool_beats.
  const bool by_columns = g.column_first();
  const T lowest = -std::numeric_limits<T>::infinity();
  std::vector<T> column = by_columns && !kIndices ? column_scratch(g, lowest) : std::vector<T>();
  std::optional<ArgmaxColumns<T, Index>> argmax_columns;
  if (by_columns && kIndices) argmax_columns.emplace(g, kLast);
  auto load = [](T v) { return max_pool_load<T, kIgnoreNan>(&v); };
  auto reduce = [](T best, T v) { return max_pool_takes<T, false, kIgnoreNan>(v, best) ? v : best; };
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t plane = r / OH, oh = r % OH;
    const T* in = input + plane * g.input_plane();
    T* out = output + r * OW;
    if (by_columns) {
      if constexpr (kIndices)
        with_column_stride_and_width(g.w, [&](auto stride, auto width) {
          max_pool2d_argmax_row_column_first<T, Index, decltype(stride)::value, decltype(width)::value, kLast,
                                             kIgnoreNan>(in, out, indices + r * OW, *argmax_columns, g, oh);
        });
      else
        column_first_row(in, out, column.data(), g, oh, lowest, load, reduce);
      continue;
    }
    int64_t* idx = kIndices ? indices + r * OW : nullptr;
    with_column_stride(g.w, [&](auto stride) {
      max_pool2d_forward_row<T, Index, decltype(stride)::value, kLast, kIgnoreNan, kIndices>(in, out, idx, g, oh);
    });
  }
}

template <typename T, bool kLast, bool kIgnoreNan>
void max_pool2d_forward_planes(const T* input, T* output, int64_t* indices, const Pool2dGeometry& g) {
  const bool narrow_index = g.input_plane() <= std::numeric_limits<int32_t>::max();
  parallel_for(g.planes * g.h.output, [&](int64_t begin, int64_t end) {
    if (disjoint_2x2(g)) {
      for (int64_t r = begin; r < end; ++r) {
        const T* plane = input + r / g.h.output * g.input_plane();
        if (!indices)
          max_pool2d_forward_row_2x2<T, int32_t, kLast, kIgnoreNan, false>(plane, output + r * g.w.output, nullptr, g,
                                                                           r % g.h.output);
        else if (narrow_index)
          max_pool2d_forward_row_2x2<T, int32_t, kLast, kIgnoreNan, true>(plane, output + r * g.w.output,
                                                                          indices + r * g.w.output, g, r % g.h.output);
        else
          max_pool2d_forward_row_2x2<T, int64_t, kLast, kIgnoreNan, true>(plane, output + r * g.w.output,
                                                                          indices + r * g.w.output, g, r % g.h.output);
      }
      return;
    }
    if (!indices)
      max_pool2d_forward_rows<T, int32_t, kLast, kIgnoreNan, false>(input, output, nullptr, g, begin, end);
    else if (narrow_index)
      max_pool2d_forward_rows<T, int32_t, kLast, kIgnoreNan, true>(input, output, indices, g, begin, end);
    else
      max_pool2d_forward_rows<T, int64_t, kLast, kIgnoreNan, true>(input, output, indices, g, begin, end);
  });
}

// Calls tap(kh, offset, ow_begin, ow_end) for every (kh, kw) of output row oh whose input row lies
// inside the input, the columns (from tap_columns) in the order asked for: tap (kh, kw) reads
// input row H.start(oh) + kh * H.dilation.
template <bool kDescendingColumns, class Tap>
void for_each_tap_row(const Pool2dGeometry& g, const std::vector<TapColumn>& columns, int64_t oh, Tap&& tap) {
  const WindowDim& H = g.h;
  const size_t count = columns.size();
  for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh)
    for (size_t step = 0; step < count; ++step) {
      const TapColumn& column = columns[kDescendingColumns ? count - 1 - step : step];
      tap(kh, column.offset, column.ow_begin, column.ow_end);
    }
}

// TieBreak::split over input rows [row_begin, row_end) of one plane, one output row at a time
// and vectorized across it: the windows' maxima (with the forward rules), the number of tied
// taps of each window (equal values; under NanPolicy::propagate a NaN maximum ties with every
// NaN), then each tied tap receives grad_output / count. Within an output row the kernel columns
// run right to left, so every element receives its windows' shares in row-major output order;
// untied taps add 0, which changes nothing (the sums start at +0 and never become -0).
template <typename T, int kStrideW, bool kIgnoreNan>
void max_pool2d_backward_split_band(const T* grad_output, const T* input, T* grad_input, const Pool2dGeometry& g,
                                    int64_t row_begin, int64_t row_end) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t OW = W.output, sw = kStrideW > 0 ? kStrideW : W.stride;
  std::vector<T> maxima(static_cast<size_t>(OW)), shares(maxima.size());
  T* const maximum = maxima.data();
  T* const share = shares.data();
  const T lowest = -std::numeric_limits<T>::infinity();
  std::vector<T> column = column_scratch(g, lowest);
  const std::vector<TapColumn> columns = tap_columns(W);
  auto load = [](const T* p) { return max_pool_load<T, kIgnoreNan>(p); };
  // Bitwise operators, not a branch: whether a tap ties is data-dependent and unpredictable.
  auto ties = [](T v, T m) { return (v == m) | (std::isnan(v) & std::isnan(m)); };
  for (int64_t i = row_begin * W.input; i < row_end * W.input; ++i) grad_input[i] = T(0);
  const int64_t oh_end = H.end_output_touching(row_end);
  for (int64_t oh = H.first_output_touching(row_begin); oh < oh_end; ++oh) {
    const int64_t ih_first = H.start(oh);
    bool touches_band = false;
    for (int64_t kh = H.first_tap(oh); kh < H.end_tap(oh); ++kh) {
      const int64_t ih = ih_first + kh * H.dilation;
      touches_band = touches_band || (ih >= row_begin && ih < row_end);
    }
    if (!touches_band) continue;
    if (!column.empty()) {
      column_first_row(
          input, maximum, column.data(), g, oh, lowest, [](T v) { return max_pool_load<T, kIgnoreNan>(&v); },
          [](T m, T v) { return max_pool_takes<T, false, kIgnoreNan>(v, m) ? v : m; });
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) maximum[ow] = lowest;
      for_each_tap_row<false>(g, columns, oh, [&](int64_t kh, int64_t offset, int64_t ow_begin, int64_t ow_end) {
        const T* row = input + (ih_first + kh * H.dilation) * W.input + offset;
#pragma omp simd
        for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
          const T v = load(row + ow * sw);
          maximum[ow] = max_pool_takes<T, false, kIgnoreNan>(v, maximum[ow]) ? v : maximum[ow];
        }
      });
    }
    T* const count = share;
    for (int64_t ow = 0; ow < OW; ++ow) count[ow] = T(0);
    for_each_tap_row<false>(g, columns, oh, [&](int64_t kh, int64_t offset, int64_t ow_begin, int64_t ow_end) {
      const T* row = input + (ih_first + kh * H.dilation) * W.input + offset;
#pragma omp simd
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) count[ow] += ties(load(row + ow * sw), maximum[ow]) ? T(1) : T(0);
    });
    const T* go = grad_output + oh * OW;
#pragma omp simd
    for (int64_t ow = 0; ow < OW; ++ow) {
      const T divisor = count[ow] > T(1) ? count[ow] : T(1);  // no tap takes a share when count is 0
      share[ow] = go[ow] / divisor;
    }
    for_each_tap_row<true>(g, columns, oh, [&](int64_t kh, int64_t offset, int64_t ow_begin, int64_t ow_end) {
      const int64_t ih = ih_first + kh * H.dilation;
      if (ih < row_begin || ih >= row_end) return;
      const T* row = input + ih * W.input + offset;
      T* grad_row = grad_input + ih * W.input + offset;
#pragma omp simd
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const T v = load(row + ow * sw), m = maximum[ow], s = share[ow];
        grad_row[ow * sw] += ties(v, m) ? s : T(0);
      }
    });
  }
}

// Channels last: a pixel's channels lie side by side, and each output pixel's window is scanned
// tap by tap in row-major order, a block of up to kPoolChannelBlock channels at a time,
// vectorized over the channels. Each channel meets its taps in the NCHW scan's order with its
// rules (max_pool_takes), starting from the window's first tap (what the scan from -inf with
// index -1 ends up selecting when no tap beats it), so values and indices equal the NCHW ones.
inline constexpr int64_t kPoolChannelBlock = 64;

// Calls body(Constant<kPoolChannelBlock>{}) for a whole block of channels, else body(Constant<0>{})
// (the width read at run time), so that whole blocks vectorize without a remainder.
template <class Body>
void with_channel_block(int64_t lanes, Body&& body) {
  if (lanes == kPoolChannelBlock)
    body(Constant<kPoolChannelBlock>{});
  else
    body(Constant<0>{});
}

// Output pixel (oh, ow) of one image, channels [0, lanes) of `image`, `out` and `idx` (which
// point at the block's first channel); pixels are `channels` apart.
template <typename T, int kLanes, bool kLast, bool kIgnoreNan, bool kIndices>
void max_pool2d_channels_last_window(const T* image, T* out, int64_t* idx, int64_t any_lanes, int64_t channels,
                                     const Pool2dGeometry& g, const TapRanges& rows, const TapRanges& columns,
                                     int64_t oh, int64_t ow) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t lanes = kLanes > 0 ? kLanes : any_lanes;
  const int64_t kh_begin = rows.first[oh], kh_end = rows.end[oh], kw_begin = columns.first[ow],
                kw_end = columns.end[ow];
  if (kh_begin == kh_end || kw_begin == kw_end) {  // no tap inside the input (dilation)
    for (int64_t c = 0; c < lanes; ++c) {
      out[c] = -std::numeric_limits<T>::infinity();
      if constexpr (kIndices) idx[c] = -1;
    }
    return;
  }
  const auto tap_index = [&](int64_t kh, int64_t kw) {
    return (H.start(oh) + kh * H.dilation) * W.input + W.start(ow) + kw * W.dilation;
  };
  T best[kPoolChannelBlock];
  int64_t arg[kPoolChannelBlock];
  const int64_t first = tap_index(kh_begin, kw_begin);
#pragma omp simd
  for (int64_t c = 0; c < lanes; ++c) {
    best[c] = max_pool_load<T, kIgnoreNan>(image + first * channels + c);
    arg[c] = first;
  }
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kh == kh_begin ? kw_begin + 1 : kw_begin; kw < kw_end; ++kw) {
      const int64_t tap = tap_index(kh, kw);
      const T* values = image + tap * channels;
#pragma omp simd
      for (int64_t c = 0; c < lanes; ++c) {
        const T v = max_pool_load<T, kIgnoreNan>(values + c);
        const bool take = max_pool_takes<T, kLast, kIgnoreNan>(v, best[c]);
        best[c] = take ? v : best[c];
        if constexpr (kIndices) arg[c] = take ? tap : arg[c];
      }
    }
  for (int64_t c = 0; c < lanes; ++c) out[c] = best[c];
  if constexpr (kIndices)
    for (int64_t c = 0; c < lanes; ++c) idx[c] = arg[c];
}

template <typename T, bool kLast, bool kIgnoreNan>
void max_pool2d_forward_channels_last(const T* input, T* output, int64_t* indices, const Pool2dGeometry& g) {
  const int64_t C = g.channels, OH = g.h.output, OW = g.w.output;
  const TapRanges rows(g.h), columns(g.w);
  parallel_for(g.images() * OH, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* image = input + r / OH * g.input_plane() * C;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t pixel = (r * OW + ow) * C;
        for (int64_t c0 = 0; c0 < C; c0 += kPoolChannelBlock) {
          const int64_t lanes = std::min(kPoolChannelBlock, C - c0);
          with_channel_block(lanes, [&](auto block) {
            constexpr int kLanes = decltype(block)::value;
            if (indices)
              max_pool2d_channels_last_window<T, kLanes, kLast, kIgnoreNan, true>(
                  image + c0, output + pixel + c0, indices + pixel + c0, lanes, C, g, rows, columns, r % OH, ow);
            else
              max_pool2d_channels_last_window<T, kLanes, kLast, kIgnoreNan, false>(
                  image + c0, output + pixel + c0, nullptr, lanes, C, g, rows, columns, r % OH, ow);
          });
        }
      }
    }
  });
}

// TieBreak::split's backward channels last, over input rows [row_begin, row_end) of one image:
// each output pixel's maxima and tie counts as max_pool2d_backward_split_band takes them, then
// its shares added to its tied taps, output pixels in row-major order, so that every element
// receives the same shares in the same order as there.
template <typename T, bool kIgnoreNan>
void max_pool2d_backward_split_channels_last_band(const T* grad_output, const T* input, T* grad_input,
                                                  const Pool2dGeometry& g, int64_t row_begin, int64_t row_end) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t C = g.channels;
  auto load = [](const T* p) { return max_pool_load<T, kIgnoreNan>(p); };
  auto ties = [](T v, T m) { return (v == m) | (std::isnan(v) & std::isnan(m)); };
  std::fill(grad_input + row_begin * W.input * C, grad_input + row_end * W.input * C, T(0));
  T maximum[kPoolChannelBlock], share[kPoolChannelBlock];
  const TapRanges columns(W);
  const int64_t oh_end = H.end_output_touching(row_end);
  for (int64_t oh = H.first_output_touching(row_begin); oh < oh_end; ++oh) {
    const int64_t kh_begin = H.first_tap(oh), kh_end = H.end_tap(oh);
    bool touches_band = false;
    for (int64_t kh = kh_begin; kh < kh_end; ++kh) {
      const int64_t ih = H.start(oh) + kh * H.dilation;
      touches_band = touches_band || (ih >= row_begin && ih < row_end);
    }
    if (!touches_band) continue;
    for (int64_t ow = 0; ow < W.output; ++ow) {
      const int64_t kw_begin = columns.first[ow], kw_end = columns.end[ow];
      const auto for_each_tap = [&](auto&& tap) {
        for (int64_t kh = kh_begin; kh < kh_end; ++kh) {
          const int64_t ih = H.start(oh) + kh * H.dilation;
          for (int64_t kw = kw_begin; kw < kw_end; ++kw) tap(ih, (ih * W.input + W.start(ow) + kw * W.dilation) * C);
        }
      };
      const T* go = grad_output + (oh * W.output + ow) * C;
      for (int64_t c0 = 0; c0 < C; c0 += kPoolChannelBlock) {
        const int64_t lanes = std::min(kPoolChannelBlock, C - c0);
        std::fill_n(maximum, lanes, -std::numeric_limits<T>::infinity());
        for_each_tap([&](int64_t, int64_t at) {
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c) {
            const T v = load(input + at + c0 + c);
            maximum[c] = max_pool_takes<T, false, kIgnoreNan>(v, maximum[c]) ? v : maximum[c];
          }
        });
        T* const count = share;
        std::fill_n(count, lanes, T(0));
        for_each_tap([&](int64_t, int64_t at) {
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c) count[c] += ties(load(input + at + c0 + c), maximum[c]) ? T(1) : T(0);
        });
#pragma omp simd
        for (int64_t c = 0; c < lanes; ++c) share[c] = go[c0 + c] / (count[c] > T(1) ? count[c] : T(1));
        for_each_tap([&](int64_t ih, int64_t at) {
          if (ih < row_begin || ih >= row_end) return;
#pragma omp simd
          for (int64_t c = 0; c < lanes; ++c)
            grad_input[at + c0 + c] += ties(load(input + at + c0 + c), maximum[c]) ? share[c] : T(0);
        });
      }
    }
  }
}

template <typename T>
void max_pool2d_forward(VectorIsa, const T* input, T* output, int64_t* indices, const MaxPool2dParams& p) {
  with_flag(p.tie_break == TieBreak::last, [&](auto last) {
    with_flag(p.nan == NanPolicy::ignore, [&](auto ignore) {
      if (p.geometry.layout == Layout::nhwc)
        max_pool2d_forward_channels_last<T, decltype(last)::value, decltype(ignore)::value>(input, output, indices,
                                                                                            p.geometry);
      else
        max_pool2d_forward_planes<T, decltype(last)::value, decltype(ignore)::value>(input, output, indices,
                                                                                     p.geometry);
    });
  });
}

// TieBreak::split's backward, band by band, with the common column strides as constants so that
// the loops vectorize.
template <typename T>
void max_pool2d_backward_split(VectorIsa, const T* grad_output, const T* input, T* grad_input,
                               const MaxPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  if (g.layout == Layout::nhwc) {
    const RowBands bands = RowBands::for_planes(g.images(), g.h.input);
    const int64_t image_input = g.input_plane() * g.channels, image_output = g.output_plane() * g.channels;
    parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
      for (int64_t item = item_begin; item < item_end; ++item) {
        const int64_t n = bands.plane(item);
        with_flag(p.nan == NanPolicy::ignore, [&](auto ignore) {
          max_pool2d_backward_split_channels_last_band<T, decltype(ignore)::value>(
              grad_output + n * image_output, input + n * image_input, grad_input + n * image_input, g,
              bands.row_begin(item), bands.row_end(item));
        });
      }
    });
    return;
  }
  const RowBands bands = RowBands::for_planes(g.planes, g.h.input);
  parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
    for (int64_t item = item_begin; item < item_end; ++item) {
      const int64_t plane = bands.plane(item);
      const int64_t r0 = bands.row_begin(item), r1 = bands.row_end(item);
      T* gi = grad_input + plane * g.input_plane();
      const T* go = grad_output + plane * g.output_plane();
      const T* in = input + plane * g.input_plane();
      with_flag(p.nan == NanPolicy::ignore, [&](auto ignore) {
        with_column_stride(g.w, [&](auto stride) {
          max_pool2d_backward_split_band<T, decltype(stride)::value, decltype(ignore)::value>(go, in, gi, g, r0, r1);
        });
      });
    }
  });
}
