#pragma once
// The zero-padded row tiles that the direct, Winograd and depthwise paths of conv.hpp read, and
// their geometry. A tile of output rows reads a zero-padded copy of its input rows, padded to the
// output's width plus the kernel's span, so that output position q = oh * padded_w + ow reads
// input q + offset(c, kh, kw) for every tap. At stride (sh, sw) the copy is split into sh * sw
// phase planes, phase (a, b) holding the input rows a, a + sh, ... and columns b, b + sw, ..., so
// that every tap again reads whole rows of one phase at unit stride. A strided input gradient is
// split by phase too (PhaseTaps), each phase a stride-1 correlation.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "../shape.hpp"

namespace convpool::detail {

// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols. Convolution rows are
// often too short (a CIFAR row is 128 bytes) to repay a library call per row.
template <typename T>
void copy_rows(const T* src, int64_t src_stride, T* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  if (src_stride == cols && dst_stride == cols) {  // one contiguous block
    cols *= rows;
    rows = 1;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* in = src + r * src_stride;
    T* out = dst + r * dst_stride;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out[c] = in[c];
  }
}

// The sh * sw phase planes of src zero-padded: phase (a, b), at dst + (a * sw + b) * phase_stride,
// holds dst_rows x dst_cols elements [r][c] = src (rows x cols)[r * sh + a - top][c * sw + b - left]
// where that is inside src, zero elsewhere (top and left may be negative). With unit steps, one
// plane: src shifted down by `top` and right by `left`. Rows go in source order, so that src is
// read once, sequentially, however many phases it is split into. Phases for which read(a, b) is
// false are left as they are.
template <typename T, class PhaseRead>
void pad_phases(const T* src, int64_t rows, int64_t cols, int64_t top, int64_t left, T* dst, int64_t dst_rows,
                int64_t dst_cols, int64_t sh, int64_t sw, int64_t phase_stride, PhaseRead&& read) {
  for (int64_t r = 0; r < dst_rows; ++r)
    for (int64_t a = 0; a < sh; ++a) {
      const int64_t source_row = r * sh + a - top;
      for (int64_t b = 0; b < sw; ++b) {
        if (!read(a, b)) continue;
        T* out = dst + (a * sw + b) * phase_stride + r * dst_cols;
        if (source_row < 0 || source_row >= rows) {
          std::fill(out, out + dst_cols, T(0));
          continue;
        }
        const int64_t shift = left - b;
        const int64_t c0 = std::clamp<int64_t>(ceil_div(shift, sw), 0, dst_cols);
        const int64_t c1 = std::clamp<int64_t>(ceil_div(shift + cols, sw), c0, dst_cols);
        const T* in = src + source_row * cols - shift;
        std::fill(out, out + c0, T(0));
        if (sw == 1)
          copy_rows(in + c0, cols, out + c0, dst_cols, 1, c1 - c0);
        else if (sw == 2)  // a constant step lets the compiler vectorize with shuffles
#pragma omp simd
          for (int64_t c = c0; c < c1; ++c) out[c] = in[c * 2];
        else
          for (int64_t c = c0; c < c1; ++c) out[c] = in[c * sw];
        std::fill(out + c1, out + dst_cols, T(0));
      }
    }
}

// What pad_phases rewrites from plane to plane at unit steps: src, shifted down by `top` and right by `left`
// (either may be negative) and cropped, is copied into dst, whose other elements keep the zeros
// they were given once.
template <typename T>
void copy_into_zeroed(const T* src, int64_t rows, int64_t cols, int64_t top, int64_t left, T* dst, int64_t dst_rows,
                      int64_t dst_cols) {
  const int64_t r0 = std::max<int64_t>(top, 0), r1 = std::min(dst_rows, top + rows);
  const int64_t c0 = std::max<int64_t>(left, 0), c1 = std::min(dst_cols, left + cols);
  if (r0 < r1 && c0 < c1)
    copy_rows(src + (r0 - top) * cols + (c0 - left), cols, dst + r0 * dst_cols + c0, dst_cols, r1 - r0, c1 - c0);
}

inline bool unit_stride(const Conv2dParams& p) { return p.h.stride == 1 && p.w.stride == 1; }

// A correlation: output (oh, ow) reads source (oh * sh - top + kh * dh, ow * sw - left + kw * dw),
// zero outside the source; a tile covers about tile_positions output positions.
struct DirectGeometry {
  int64_t in_h, in_w, out_h, out_w, kernel_h, kernel_w, sh, sw, dh, dw, top, left, tile_positions;

  // The zero-padded copy of a whole source plane, all sh * sw phases of it, stays within a small
  // multiple of the source and output planes unless a stride, a dilation or the padding reaches
  // far past the source (a 1x1 output at stride 10000 would copy 10^8 phases of one element).
  // Computed in floating point, which absurd strides cannot overflow.
  bool copy_bounded() const {
    const double copy = static_cast<double>(sh) * static_cast<double>(sw) * static_cast<double>(phase_rows(out_h)) *
                        static_cast<double>(padded_w());
    return copy <= 4.0 * (static_cast<double>(in_h) * in_w + static_cast<double>(out_h) * out_w) + 4096.0;
  }
  int64_t padded_w() const { return out_w + (kernel_w - 1) * dw / sw; }
  int64_t tile_rows() const { return std::clamp<int64_t>(tile_positions / padded_w(), 1, out_h); }
  // Rows of a phase plane that the output rows [oh0, oh0 + rows) read.
  int64_t phase_rows(int64_t rows) const { return rows + (kernel_h - 1) * dh / sh; }
  int64_t phase_plane() const { return phase_rows(tile_rows()) * padded_w(); }
  int64_t padded_plane() const { return sh * sw * phase_plane(); }
  // Whether some tap reads phase (a, b): a 1x1 kernel at stride 2 reads one phase of four.
  bool reads_phase(int64_t a, int64_t b) const {
    bool row = false, column = false;
    for (int64_t kh = 0; kh < kernel_h && !row; ++kh) row = kh * dh % sh == a;
    for (int64_t kw = 0; kw < kernel_w && !column; ++kw) column = kw * dw % sw == b;
    return row && column;
  }
  int64_t tap_offset(int64_t kh, int64_t kw) const {
    const int64_t phase = kh * dh % sh * sw + kw * dw % sw;
    return phase * phase_plane() + kh * dh / sh * padded_w() + kw * dw / sw;
  }
};

// The correlation of the forward pass and of the weight gradient: x read through the layer's
// geometry, in tiles set by forward_geometry.
inline DirectGeometry forward_correlation(const Conv2dParams& p) {
  return {p.h.input,  p.w.input,    p.h.output,   p.w.output,  p.h.kernel,  p.w.kernel, p.h.stride,
          p.w.stride, p.h.dilation, p.w.dilation, p.h.padding, p.w.padding, 0};
}

// At stride 1 the input gradient is the correlation of the output gradient with the flipped,
// transposed kernel.
inline DirectGeometry input_gradient_correlation(const Conv2dParams& p) {
  const int64_t kh_last = p.h.kernel - 1, kw_last = p.w.kernel - 1;
  return {p.h.output,
          p.w.output,
          p.h.input,
          p.w.input,
          p.h.kernel,
          p.w.kernel,
          1,
          1,
          p.h.dilation,
          p.w.dilation,
          kh_last * p.h.dilation - p.h.padding,
          kw_last * p.w.dilation - p.w.padding,
          0};
}

// Output positions per tile of `channels` source planes: up to 4096 (a whole 56x56 image), fewer
// as the channels grow, so that a tile's padded input rows stay near 1 MB, the L2 cache of one
// core of the x86 server CPUs this targets. Within that bound more positions are better: each
// weight vector loaded serves every position of the tile.
template <typename T>
int64_t direct_tile_positions(int64_t channels) {
  constexpr int64_t kTileBytes = 1 << 20;
  return std::clamp<int64_t>(kTileBytes / (channels * static_cast<int64_t>(sizeof(T))), 256, 4096);
}

// Per-thread zero-padded input rows of one tile of `images` images: each image holds `channels`
// planes of padded_plane(), plus slack for the over-reads of the dropped columns and of a
// kernel reading `over_read` elements past the last row (the last vector, or register tile).
template <typename T>
struct DirectTile {
  int64_t image_stride;
  std::vector<T> padded;
  std::vector<int64_t> offsets;

  DirectTile(const DirectGeometry& gm, int64_t channels, int64_t over_read, int64_t images = 1)
      : image_stride(channels * gm.padded_plane() + gm.padded_w() + over_read),
        padded(images * image_stride),
        offsets(channels * gm.kernel_h * gm.kernel_w) {
    int64_t* offset = offsets.data();
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t kh = 0; kh < gm.kernel_h; ++kh)
        for (int64_t kw = 0; kw < gm.kernel_w; ++kw) *offset++ = c * gm.padded_plane() + gm.tap_offset(kh, kw);
  }

  // Rows [oh0, oh0 + rows) of the output need source rows from oh0 * sh - top on. A tile holding
  // whole images at unit stride is filled with whole images every time, so its zero border,
  // written by the allocation, never changes: only the source is copied.
  void fill(const T* source, int64_t channels, const DirectGeometry& gm, int64_t oh0, int64_t rows, int64_t image = 0) {
    const bool whole_image = gm.sh == 1 && gm.sw == 1 && oh0 == 0 && rows == gm.out_h;
    for (int64_t c = 0; c < channels; ++c) {
      T* plane = padded.data() + image * image_stride + c * gm.padded_plane();
      if (whole_image)
        copy_into_zeroed(source + c * gm.in_h * gm.in_w, gm.in_h, gm.in_w, gm.top, gm.left, plane, gm.phase_rows(rows),
                         gm.padded_w());
      else
        pad_phases(source + c * gm.in_h * gm.in_w, gm.in_h, gm.in_w, gm.top - oh0 * gm.sh, gm.left, plane,
                   gm.phase_rows(rows), gm.padded_w(), gm.sh, gm.sw, gm.phase_plane(),
                   [&](int64_t a, int64_t b) { return gm.reads_phase(a, b); });
    }
  }
};

template <typename T>
DirectGeometry forward_geometry(const Conv2dParams& p) {
  DirectGeometry gm = forward_correlation(p);
  gm.tile_positions = direct_tile_positions<T>(p.in_per_group() * p.h.stride * p.w.stride);
  return gm;
}

// One dimension of a strided input gradient split by phase. The input positions
// i = r - padding + j * stride (phase r < stride) are reached only by the taps k with
// k * dilation = r (mod stride), k = first_tap + q * step for q < count, from output j - shift(q)
// with shift(q) = (first_tap * dilation - r) / stride + q * dilation': a stride-1 correlation of
// the output gradient with `count` taps at dilation', for j from `first` on, `size` of them.
struct PhaseTaps {
  int64_t first_tap = 0, step = 1, count = 0, dilation = 1, top = 0, first = 0, size = 0;
};

inline PhaseTaps phase_taps(const WindowDim& dim, int64_t r) {
  PhaseTaps t;
  const int64_t common = std::gcd(dim.stride, dim.dilation);
  t.step = dim.stride / common;
  t.dilation = dim.dilation / common;
  t.first = ceil_div(dim.padding - r, dim.stride);
  t.size = std::max<int64_t>(0, floor_div(dim.input - 1 - r + dim.padding, dim.stride) - t.first + 1);
  for (int64_t k = 0; k < std::min(t.step, dim.kernel); ++k)
    if (k * dim.dilation % dim.stride == r) {
      t.first_tap = k;
      t.count = ceil_div(dim.kernel - k, t.step);
      // The correlation runs over the taps in reverse, q = count - 1 - u, so that u reads upward.
      t.top = (k * dim.dilation - r) / dim.stride + (t.count - 1) * t.dilation - t.first;
      break;
    }
  return t;
}

// Whether a phase has positions and taps that reach them, and the stride-1 correlation of the
// output gradient that computes it.
inline bool phase_computed(const PhaseTaps& th, const PhaseTaps& tw) {
  return th.count > 0 && tw.count > 0 && th.size > 0 && tw.size > 0;
}

inline DirectGeometry phase_correlation(const Conv2dParams& p, const PhaseTaps& th, const PhaseTaps& tw) {
  return {p.h.output, p.w.output,  th.size,     tw.size, th.count, tw.count, 1,
          1,          th.dilation, tw.dilation, th.top,  tw.top,   0};
}

}  // namespace convpool::detail
