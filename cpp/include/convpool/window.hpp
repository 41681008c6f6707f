#pragma once
// What the pooling families share: the dispatch helpers that make run-time choices compile-time
// ones, the window reductions (detail/window_kernels.inl: a row of window sums, direct or
// column-first, and its transpose for the backward passes), the per-(plane, band) driver of those
// passes, and the index scatter of max and stochastic pooling's backward.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "isa.hpp"
#include "parallel.hpp"
#include "shape.hpp"

namespace convpool::detail {

// Run-time choices made compile-time ones, each in one place (like Lp pooling's with_lp_norm).

// Calls body(std::true_type{}) or body(std::false_type{}).
template <class Body>
decltype(auto) with_flag(bool flag, Body&& body) {
  if (flag) return body(std::true_type{});
  return body(std::false_type{});
}

template <int kValue>
using Constant = std::integral_constant<int, kValue>;

// Calls body(Constant<s>{}) with the column stride s as a compile-time constant where it is 1 or
// 2 (the strides of real networks, whose strided loads the compiler then turns into shuffles),
// else s = 0: read the stride from the geometry.
template <class Body>
decltype(auto) with_column_stride(const WindowDim& w, Body&& body) {
  switch (w.stride) {
    case 1:
      return body(Constant<1>{});
    case 2:
      return body(Constant<2>{});
    default:
      return body(Constant<0>{});
  }
}

// Calls body(Constant<s>{}, Constant<k>{}): the column stride as with_column_stride, and the
// kernel width k = 3 as a constant where the stride is one (0 otherwise: read from the geometry).
template <class Body>
decltype(auto) with_column_stride_and_width(const WindowDim& w, Body&& body) {
  return with_column_stride(w, [&](auto stride) -> decltype(auto) {
    if constexpr (decltype(stride)::value != 0) {
      if (w.kernel == 3) return body(stride, Constant<3>{});
    }
    return body(stride, Constant<0>{});
  });
}

// A kernel column kw that some output reads inside the input: its taps read column
// ow * stride + offset, inside the input for the outputs ow in [ow_begin, ow_end).
struct TapColumn {
  int64_t offset, ow_begin, ow_end;
};

// The used kernel columns in kernel order, computed once per band: their bounds cost divisions,
// which rows as short as LeNet's would otherwise repeat for every row.
inline std::vector<TapColumn> tap_columns(const WindowDim& W) {
  std::vector<TapColumn> columns;
  for (int64_t kw = W.first_used_tap(); kw < W.end_used_tap(); ++kw)
    columns.push_back({kw * W.dilation - W.padding, W.first_output(kw), W.end_output(kw)});
  return columns;
}

// Scratch for column_first_row: one reduced value per input column, framed by `identity` on the
// left (the padding) and on the right (padding and ceil_mode overhang), so that every window's
// columns can be read without bound checks. Empty where the geometry is not column_first.
template <typename T>
std::vector<T> column_scratch(const Pool2dGeometry& g, T identity) {
  return std::vector<T>(g.column_first() ? static_cast<size_t>(g.column_scratch_width()) : 0, identity);
}

// The most common pooling, 2x2 windows at stride 2 with every window inside the input, needs
// none of the general row's bound arithmetic.
inline bool disjoint_2x2(const Pool2dGeometry& g) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  return H.kernel == 2 && W.kernel == 2 && H.stride == 2 && W.stride == 2 && H.dilation == 1 && W.dilation == 1 &&
         H.padding == 0 && W.padding == 0 && 2 * H.output <= H.input && 2 * W.output <= W.input;
}

// Runs `band_body(plane, row_begin, row_end, weights)` for every (plane, band) work item, giving
// each thread a scratch row of OW weights.
template <typename T, class BandBody>
void for_each_input_band(const Pool2dGeometry& g, BandBody&& band_body) {
  const RowBands bands = RowBands::for_planes(g.planes, g.h.input);
  parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
    std::vector<T> weights(static_cast<size_t>(g.w.output));
    for (int64_t item = item_begin; item < item_end; ++item)
      band_body(bands.plane(item), bands.row_begin(item), bands.row_end(item), weights.data());
  });
}

}  // namespace convpool::detail

#define CONVPOOL_VECTOR_KERNELS "window_kernels.inl"
#include "detail/for_each_vector_isa.hpp"

namespace convpool {

// The number of indices among `count` that are neither -1 nor inside [0, plane_size): what the
// index-routing kernels below skip and count as they go. Bindings call it first when the results
// go into a caller's arrays, which a refused call must leave unchanged. Below a few hundred
// kilobytes one thread counts: waking the others would cost more than the count.
inline int64_t count_indices_outside(const int64_t* indices, int64_t count, int64_t plane_size) {
  const auto count_range = [&](int64_t begin, int64_t end) {
    return with_vector_isa([&](auto isa) { return indices_outside(isa, indices + begin, end - begin, plane_size); });
  };
  constexpr int64_t kSerialCount = int64_t{1} << 16;
  if (count <= kSerialCount) return count_range(0, count);
  std::atomic<int64_t> outside{0};
  parallel_for(count, [&](int64_t begin, int64_t end) { outside += count_range(begin, end); });
  return outside.load();
}

// Scatters each of `planes` planes of `source_plane` values to the positions their indices name in
// a destination of planes x rows x cols, zeroed first: element i becomes place(element i, value),
// in row-major source order, so that repeated indices meet in a fixed order. Each (plane, band of
// destination rows) has one writer. Index -1 places nothing. Returns the number of other indices
// outside the plane; those are skipped.
template <typename T, class Place>
int64_t scatter_by_indices(const T* source, const int64_t* indices, int64_t source_plane, T* destination,
                           int64_t planes, int64_t rows, int64_t cols, Place&& place) {
  const int64_t plane_size = rows * cols;
  const RowBands bands = RowBands::for_planes(planes, rows);
  std::atomic<int64_t> bad_indices{0};
  parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
    for (int64_t item = item_begin; item < item_end; ++item) {
      const int64_t plane = bands.plane(item);
      const int64_t lo = bands.row_begin(item) * cols, hi = bands.row_end(item) * cols;
      T* out = destination + plane * plane_size;
      const T* in = source + plane * source_plane;
      const int64_t* idx = indices + plane * source_plane;
      for (int64_t i = lo; i < hi; ++i) out[i] = T(0);
      int64_t bad = 0;
      for (int64_t s = 0; s < source_plane; ++s) {
        const int64_t i = idx[s];
        if (i >= lo && i < hi)
          place(out[i], in[s]);
        else if (lo == 0 && i != -1 && (i < 0 || i >= plane_size))
          ++bad;
      }
      if (bad) bad_indices += bad;
    }
  });
  return bad_indices.load();
}

// scatter_by_indices for channels-last arrays: `images` images of `source_pixels` source pixels
// and rows x cols destination pixels, `channels` values per pixel, each channel's index naming
// a destination pixel. Element (pixel, channel) is placed in row-major source order, as
// scatter_by_indices places the channel's plane, so that the results equal its NCHW ones.
template <typename T, class Place>
int64_t scatter_by_indices_channels_last(const T* source, const int64_t* indices, int64_t source_pixels, T* destination,
                                         int64_t images, int64_t rows, int64_t cols, int64_t channels, Place&& place) {
  const int64_t plane_size = rows * cols;
  const RowBands bands = RowBands::for_planes(images, rows);
  std::atomic<int64_t> bad_indices{0};
  parallel_for(bands.items(), [&](int64_t item_begin, int64_t item_end) {
    for (int64_t item = item_begin; item < item_end; ++item) {
      const int64_t image = bands.plane(item);
      const int64_t lo = bands.row_begin(item) * cols, hi = bands.row_end(item) * cols;
      T* out = destination + image * plane_size * channels;
      const T* in = source + image * source_pixels * channels;
      const int64_t* idx = indices + image * source_pixels * channels;
      std::fill(out + lo * channels, out + hi * channels, T(0));
      int64_t bad = 0;
      for (int64_t s = 0; s < source_pixels * channels; s += channels)
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t i = idx[s + c];
          if (i >= lo && i < hi)
            place(out[i * channels + c], in[s + c]);
          else if (lo == 0 && i != -1 && (i < 0 || i >= plane_size))
            ++bad;
        }
      if (bad) bad_indices += bad;
    }
  });
  return bad_indices.load();
}

// Routes each output's gradient to the input element its index names (grad_input, planes x IH x
// IW in g.layout's order, is overwritten); index -1 passes nothing. Contributions to one element are summed in
// row-major output order. Returns the number of indices that are neither -1 nor inside the
// plane; those are skipped.
template <typename T>
int64_t pool2d_backward_by_indices(const T* grad_output, const int64_t* indices, T* grad_input,
                                   const Pool2dGeometry& g) {
  if (g.layout == Layout::nhwc)
    return scatter_by_indices_channels_last(grad_output, indices, g.output_plane(), grad_input, g.images(), g.h.input,
                                            g.w.input, g.channels, [](T& element, T value) { element += value; });
  return scatter_by_indices(grad_output, indices, g.output_plane(), grad_input, g.planes, g.h.input, g.w.input,
                            [](T& element, T value) { element += value; });
}

}  // namespace convpool