#pragma once
// 2-D convolution (cross-correlation, as every framework defines it): forward, and the gradients
// with respect to the input, the weight and the bias.
//
// Layouts: x (N, C_in, H, W), weight (C_out, C_in / groups, KH, KW), bias (C_out), y (N, C_out,
// OH, OW), all C-contiguous. The arithmetic runs in the register-tiled micro-kernels of
// simd.hpp, on per-thread buffers sized for the caches (never the whole batch).
// Except for strided 1x1 convolutions, the forward and weight gradient read zero-padded input
// rows in place ("direct" paths), and so does the input gradient at stride 1; otherwise panels
// of the im2col matrix are gathered tile by tile. Depthwise convolutions (one input channel per
// group) run a kernel of their own, since they have no reduction over channels to feed a matrix
// product.
//
// Determinism: every output element is computed by one thread, from contributions added in an
// order fixed by the shapes alone; the weight gradient of a small layer is split over a fixed
// number of image chunks whose partial sums are added in chunk order. Results are therefore
// bitwise identical for any number of threads.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "parallel.hpp"
#include "shape.hpp"
#include "simd.hpp"

namespace convpool {

struct Conv2dParams {
  int64_t batch = 1, in_channels = 1, out_channels = 1, groups = 1;
  // h.padding and w.padding are the padding before the input; the padding after it is implied
  // by h.output and w.output.
  WindowDim h, w;

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t taps() const { return h.kernel * w.kernel; }
  // The length of one output channel's weight, and of the matrix product's reduction.
  int64_t weight_row() const { return in_per_group() * taps(); }
  int64_t input_plane() const { return h.input * w.input; }
  int64_t output_plane() const { return h.output * w.output; }
  bool depthwise() const { return groups > 1 && groups == in_channels; }
};

namespace detail {

// A depth block of 256 steps of B panels, nr wide, stays in the L2 cache (256 KB for float).
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kPanelBytes = 256 * 1024;

template <typename T>
int64_t column_block(int nr) {
  return std::max<int64_t>(nr, static_cast<int64_t>(kPanelBytes / (kDepthBlock * sizeof(T))) / nr * nr);
}

inline int64_t round_up(int64_t value, int64_t multiple) { return ceil_div(value, multiple) * multiple; }

// One row of the im2col matrix: for output positions q in [q0, q1) of the plane, the input value
// under tap (kh, kw), or 0 where the tap falls in the padding.
template <typename T>
void gather_input_taps(const T* plane, const Conv2dParams& p, int64_t kh, int64_t kw, int64_t q0, int64_t q1, T* row) {
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t first = w.first_output(kw), end = w.end_output(kw);
  const int64_t column_offset = kw * w.dilation - w.padding;
  for (int64_t q = q0; q < q1;) {
    const int64_t oh = q / w.output, ow0 = q % w.output, ow1 = std::min(w.output, ow0 + (q1 - q));
    T* out = row + (q - q0);  // out[ow - ow0] for ow in [ow0, ow1)
    const int64_t ih = h.start(oh) + kh * h.dilation;
    const int64_t lo = std::clamp(first, ow0, ow1), hi = std::clamp(end, lo, ow1);
    if (ih < 0 || ih >= h.input || lo == hi) {
      std::fill(out, out + (ow1 - ow0), T(0));
    } else {
      const T* src = plane + ih * w.input;
      std::fill(out, out + (lo - ow0), T(0));
      if (w.stride == 1) {
        std::memcpy(out + (lo - ow0), src + (lo + column_offset), (hi - lo) * sizeof(T));
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) out[ow - ow0] = src[ow * w.stride + column_offset];
      }
      std::fill(out + (hi - ow0), out + (ow1 - ow0), T(0));
    }
    q += ow1 - ow0;
  }
}

// Packs a (rows x depth) matrix, given element-wise by value(i, d), into panels of mr rows:
// panel b holds value(b * mr + r, d) at [d * mr + r], zero-padded past the last row.
template <typename T, class Value>
void pack_row_panels(int64_t rows, int64_t depth, int mr, Value&& value, T* out) {
  for (int64_t i0 = 0; i0 < rows; i0 += mr)
    for (int64_t d = 0; d < depth; ++d)
      for (int r = 0; r < mr; ++r) *out++ = i0 + r < rows ? value(i0 + r, d) : T(0);
}

// Stores row `r` (of `depth`) of a B block, `columns` wide, into its nr-wide panels.
template <typename T>
void store_panel_row(const T* row, int64_t columns, int64_t r, int64_t depth, int nr, T* panels) {
  for (int64_t j0 = 0; j0 < columns; j0 += nr) {
    const int64_t n = std::min<int64_t>(nr, columns - j0);
    T* dst = panels + (j0 / nr) * depth * nr + r * nr;
    std::memcpy(dst, row + j0, n * sizeof(T));
    std::fill(dst + n, dst + nr, T(0));
  }
}

// Per-thread buffers of the implicit matrix product over one tile of columns.
template <typename T>
struct TileWorkspace {
  std::vector<T> row, panels;
  TileWorkspace(int64_t columns, int nr) : row(columns), panels(kDepthBlock * round_up(columns, nr)) {}
};

// C (m x columns, row stride ldc) = row_init + A * B, where A is packed by pack_row_panels
// (m x depth) and row d of B is produced by fill_row(d, out) over the tile's columns.
template <typename T, class FillRow>
void multiply_tile(const GemmMicroKernel<T>& kernel, const T* packed_a, int64_t m, int64_t depth, int64_t columns,
                   FillRow&& fill_row, T* c, int64_t ldc, const T* row_init, TileWorkspace<T>& ws) {
  const int mr = kernel.mr, nr = kernel.nr;
  for (int64_t d0 = 0; d0 < depth; d0 += kDepthBlock) {
    const int64_t block = std::min(kDepthBlock, depth - d0);
    for (int64_t r = 0; r < block; ++r) {
      fill_row(d0 + r, ws.row.data());
      store_panel_row(ws.row.data(), columns, r, block, nr, ws.panels.data());
    }
    for (int64_t j0 = 0; j0 < columns; j0 += nr) {
      const T* b = ws.panels.data() + (j0 / nr) * block * nr;
      const int n_valid = static_cast<int>(std::min<int64_t>(nr, columns - j0));
      for (int64_t i0 = 0; i0 < m; i0 += mr)
        kernel.run(block, packed_a + i0 * depth + d0 * mr, b, c + i0 * ldc + j0, ldc,
                   static_cast<int>(std::min<int64_t>(mr, m - i0)), n_valid, d0 > 0,
                   row_init ? row_init + i0 : nullptr);
    }
  }
}

// --- matrix-product paths ------------------------------------------------------------------

// Packs each group's (rows x depth) A matrix, value(g, i, d), into mr-row panels: group g's
// panels start at g * group_stride(...).
inline int64_t group_stride(int64_t rows, int64_t depth, int mr) { return round_up(rows, mr) * depth; }

template <typename T, class Value>
std::vector<T> pack_group_panels(int64_t groups, int64_t rows, int64_t depth, int mr, Value&& value) {
  const int64_t stride = group_stride(rows, depth, mr);
  std::vector<T> packed(groups * stride);
  parallel_for(groups, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g)
      pack_row_panels<T>(
          rows, depth, mr, [&](int64_t i, int64_t d) { return value(g, i, d); }, packed.data() + g * stride);
  });
  return packed;
}

// For every image n, group g and tile of `columns`: out[n, g*m + i, q] = row_init[g*m + i] +
// sum over d of A_g[i, d] * B[d, q], with B's rows produced by fill_row(n, g, q0, q1, d, row).
// `out` has `out_channels` planes of `columns` per image; row_init may be null.
template <typename T, class FillRow>
void multiply_column_tiles(const GemmMicroKernel<T>& kernel, const Conv2dParams& p, const std::vector<T>& packed,
                           int64_t m, int64_t depth, int64_t columns, FillRow&& fill_row, T* out, int64_t out_channels,
                           const T* row_init) {
  const int64_t groups = p.groups, stride = group_stride(m, depth, kernel.mr);
  const int64_t tile = column_block<T>(kernel.nr), tiles = ceil_div(columns, tile);
  parallel_for(p.batch * groups * tiles, [&](int64_t begin, int64_t end) {
    TileWorkspace<T> ws(std::min(tile, columns), kernel.nr);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / (groups * tiles), g = item / tiles % groups, q0 = item % tiles * tile;
      const int64_t q1 = std::min(columns, q0 + tile);
      auto fill = [&](int64_t d, T* row) { fill_row(n, g, q0, q1, d, row); };
      multiply_tile(kernel, packed.data() + g * stride, m, depth, q1 - q0, fill,
                    out + (n * out_channels + g * m) * columns + q0, columns, row_init ? row_init + g * m : nullptr,
                    ws);
    }
  });
}

template <typename T>
void conv2d_forward_gemm(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p) {
  const GemmMicroKernel<T>& kernel = gemm_micro_kernel<T>();
  const int64_t m = p.out_per_group(), depth = p.weight_row(), taps = p.taps(), plane = p.input_plane();
  const std::vector<T> packed = pack_group_panels<T>(
      p.groups, m, depth, kernel.mr, [&](int64_t g, int64_t i, int64_t d) { return weight[(g * m + i) * depth + d]; });
  auto fill = [&](int64_t n, int64_t g, int64_t q0, int64_t q1, int64_t d, T* row) {
    const T* x_group = x + (n * p.in_channels + g * p.in_per_group()) * plane;
    const int64_t tap = d % taps;
    gather_input_taps(x_group + d / taps * plane, p, tap / p.w.kernel, tap % p.w.kernel, q0, q1, row);
  };
  multiply_column_tiles(kernel, p, packed, m, depth, p.output_plane(), fill, y, p.out_channels, bias);
}

// grad_input for strided convolutions (where a stride-1 correlation of the output gradient would
// multiply mostly zeros) and for one or two input channels (a nearly empty register tile for the
// direct path's correlation): per image and group,
// columns = weight^T * grad_output (rows (ci, kh, kw), one column per output position), each
// column then added into the input positions its taps read. One thread owns each image and
// group, and adds in a fixed order.
template <typename T>
void conv2d_backward_input_col2im(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  const GemmMicroKernel<T>& kernel = gemm_micro_kernel<T>();
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t groups = p.groups, ins = p.in_per_group(), outs = p.out_per_group(), taps = p.taps();
  const int64_t m = ins * taps, plane = p.input_plane(), out_plane = p.output_plane();
  const int64_t group_size = group_stride(m, outs, kernel.mr);
  const std::vector<T> packed = pack_group_panels<T>(
      groups, m, outs, kernel.mr, [&](int64_t g, int64_t r, int64_t co) { return weight[(g * outs + co) * m + r]; });
  const int64_t tile = std::min(column_block<T>(kernel.nr), out_plane);
  parallel_for(p.batch * groups, [&](int64_t begin, int64_t end) {
    TileWorkspace<T> ws(tile, kernel.nr);
    std::vector<T> columns(m * tile);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / groups, g = item % groups;
      const T* grad_group = grad_output + (n * p.out_channels + g * outs) * out_plane;
      T* grad_in = grad_input + (n * p.in_channels + g * ins) * plane;
      std::fill(grad_in, grad_in + ins * plane, T(0));
      for (int64_t q0 = 0; q0 < out_plane; q0 += tile) {
        const int64_t q1 = std::min(out_plane, q0 + tile);
        auto fill = [&](int64_t co, T* out) {
          std::copy(grad_group + co * out_plane + q0, grad_group + co * out_plane + q1, out);
        };
        multiply_tile(kernel, packed.data() + g * group_size, m, outs, q1 - q0, fill, columns.data(), tile,
                      static_cast<const T*>(nullptr), ws);
        for (int64_t r = 0; r < m; ++r) {
          const int64_t kh = r % taps / w.kernel, kw = r % w.kernel;
          const int64_t first = w.first_output(kw), end = w.end_output(kw), offset = kw * w.dilation - w.padding;
          T* in_plane = grad_in + r / taps * plane;
          const T* column = columns.data() + r * tile;  // column[q - q0] for q in [q0, q1)
          for (int64_t q = q0; q < q1;) {
            const int64_t oh = q / w.output, ow0 = q % w.output, ow1 = std::min(w.output, ow0 + (q1 - q));
            const int64_t ih = h.start(oh) + kh * h.dilation;
            if (ih >= 0 && ih < h.input) {
              T* in_row = in_plane + ih * w.input;
              const T* src = column + (q - q0);  // src[ow - ow0]
              for (int64_t ow = std::max(first, ow0); ow < std::min(end, ow1); ++ow)
                in_row[ow * w.stride + offset] += src[ow - ow0];
            }
            q += ow1 - ow0;
          }
        }
      }
    }
  });
}

// The weight gradient's reduction runs over every image and output position. When the weight is
// too small to keep the threads busy, the images are cut into this many chunks (a function of the
// shapes only), reduced separately and added in chunk order.
inline int64_t weight_gradient_chunks(const Conv2dParams& p, int mr, int nr) {
  const int64_t tiles = p.groups * ceil_div(p.out_per_group(), mr) * ceil_div(p.weight_row(), nr);
  return tiles >= 16 ? 1 : std::min<int64_t>(p.batch, 8);
}

// grad_weight[co, k] = sum over images n and output positions q of grad_output[n, co, q] *
// im2col(x[n])[k, q]: rows from grad_output, columns from the im2col matrix, both packed along q.
template <typename T>
void conv2d_backward_weight_gemm(const T* grad_output, const T* x, T* grad_weight, const Conv2dParams& p) {
  const GemmMicroKernel<T>& kernel = gemm_micro_kernel<T>();
  const int mr = kernel.mr, nr = kernel.nr;
  const int64_t groups = p.groups, m = p.out_per_group(), columns = p.weight_row(), taps = p.taps();
  const int64_t plane = p.input_plane(), out_plane = p.output_plane();
  const int64_t weight_size = p.out_channels * columns;
  const int64_t chunks = std::max<int64_t>(1, weight_gradient_chunks(p, mr, nr));
  const int64_t panels = ceil_div(columns, nr);
  // Columns are shared out between threads in panel ranges; that split never changes a sum.
  const int64_t ranges = std::clamp<int64_t>(ceil_div(get_num_threads(), chunks * groups), 1, panels);
  std::vector<T> partial(chunks > 1 ? chunks * weight_size : 0);
  parallel_for(chunks * groups * ranges, [&](int64_t begin, int64_t end) {
    std::vector<T> a(round_up(m, mr) * kDepthBlock), b(kDepthBlock * nr), row(kDepthBlock);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t chunk = item / (groups * ranges), g = item / ranges % groups, range = item % ranges;
      const int64_t n_begin = p.batch * chunk / chunks, n_end = p.batch * (chunk + 1) / chunks;
      const int64_t j_begin = panels * range / ranges * nr,
                    j_end = std::min(columns, panels * (range + 1) / ranges * nr);
      T* c = (chunks > 1 ? partial.data() + chunk * weight_size : grad_weight) + g * m * columns;
      if (n_begin == n_end) {
        for (int64_t i = 0; i < m; ++i) std::fill(c + i * columns + j_begin, c + i * columns + j_end, T(0));
        continue;
      }
      for (int64_t n = n_begin; n < n_end; ++n) {
        const T* grad_group = grad_output + (n * p.out_channels + g * m) * out_plane;
        const T* x_group = x + (n * p.in_channels + g * p.in_per_group()) * plane;
        for (int64_t q0 = 0; q0 < out_plane; q0 += kDepthBlock) {
          const int64_t block = std::min(kDepthBlock, out_plane - q0);
          const bool accumulate = n > n_begin || q0 > 0;
          pack_row_panels<T>(
              m, block, mr, [&](int64_t i, int64_t s) { return grad_group[i * out_plane + q0 + s]; }, a.data());
          for (int64_t j0 = j_begin; j0 < j_end; j0 += nr) {
            const int n_valid = static_cast<int>(std::min<int64_t>(nr, j_end - j0));
            for (int col = 0; col < nr; ++col) {
              if (col < n_valid) {
                const int64_t k = j0 + col, tap = k % taps;
                gather_input_taps(x_group + k / taps * plane, p, tap / p.w.kernel, tap % p.w.kernel, q0, q0 + block,
                                  row.data());
                for (int64_t s = 0; s < block; ++s) b[s * nr + col] = row[s];
              } else {
                for (int64_t s = 0; s < block; ++s) b[s * nr + col] = T(0);
              }
            }
            for (int64_t i0 = 0; i0 < m; i0 += mr)
              kernel.run(block, a.data() + i0 * block, b.data(), c + i0 * columns + j0, columns,
                         static_cast<int>(std::min<int64_t>(mr, m - i0)), n_valid, accumulate, nullptr);
          }
        }
      }
    }
  });
  if (chunks > 1) {
    parallel_for(weight_size, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T sum = partial[i];
        for (int64_t chunk = 1; chunk < chunks; ++chunk) sum += partial[chunk * weight_size + i];
        grad_weight[i] = sum;
      }
    });
  }
}

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
// read once, sequentially, however many phases it is split into.
template <typename T>
void pad_phases(const T* src, int64_t rows, int64_t cols, int64_t top, int64_t left, T* dst, int64_t dst_rows,
                int64_t dst_cols, int64_t sh, int64_t sw, int64_t phase_stride) {
  for (int64_t r = 0; r < dst_rows; ++r)
    for (int64_t a = 0; a < sh; ++a) {
      const int64_t source_row = r * sh + a - top;
      for (int64_t b = 0; b < sw; ++b) {
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

// --- direct paths --------------------------------------------------------------------------

// No im2col panel is packed: each tile of output rows reads a zero-padded copy of its input rows,
// padded to the output's width plus the kernel's span, so that output position
// q = oh * padded_w + ow reads input q + offset(c, kh, kw) for every tap. Kernels with output
// positions in the vector lanes compute the columns past the output's width and drop them;
// where those are many (narrow outputs), a kernel with output channels in the lanes, which
// broadcasts each input, wastes fewer (LeNet conv2's 8-wide rows). At stride (sh, sw)
// the copy is split into sh * sw phase planes, phase (a, b) holding the input rows a, a + sh, ...
// and columns b, b + sw, ..., so that every tap again reads whole rows of one phase at unit
// stride.
//
// This measured faster than gathering panels on every layer of the benchmarks (the commits that
// introduced it have the numbers), except strided 1x1 convolutions, which would copy phases no
// tap reads.
//
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

// The direct paths (see above): not strided 1x1 layers, and not where the copy is unbounded.
inline bool direct_applies(const Conv2dParams& p) {
  return !p.depthwise() && (p.taps() > 1 || unit_stride(p)) && forward_correlation(p).copy_bounded();
}

// The depthwise kernels copy whole planes through the same geometry.
inline bool depthwise_applies(const Conv2dParams& p) { return p.depthwise() && forward_correlation(p).copy_bounded(); }

// The direct kernels whose register tiles cover `rows` output channels by `columns` positions
// with the least waste (the first of equals).
template <typename T>
const DirectKernels<T>& direct_kernels_for(int64_t rows, int64_t columns) {
  const DirectKernels<T>* best = nullptr;
  double best_fill = 0;
  for (const DirectKernels<T>& kernels : direct_kernel_variants<T>()) {
    const double fill = static_cast<double>(rows) / round_up(rows, kernels.mr) * static_cast<double>(columns) /
                        round_up(columns, kernels.nr);
    if (!best || fill > best_fill) {
      best = &kernels;
      best_fill = fill;
    }
  }
  return *best;
}

// Output positions per tile of `channels` source planes: up to 4096 (a whole 56x56 image), fewer
// as the channels grow, so that a tile's padded input rows stay near 1 MB, one core's L2 cache
// on this project's machine (at 64 channels, 4096 positions measured faster than 1024).
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
                   gm.phase_rows(rows), gm.padded_w(), gm.sh, gm.sw, gm.phase_plane());
    }
  }
};

// Whether the channel-vector kernel leaves fewer lanes idle than the position-vector one, whose
// vectors also run over the padded_w - out_w dropped columns of every row (LeNet conv2: 8 of 12),
// counting the channel kernel's transpose of each tile into the channel planes as 8 more steps of
// its reduction (the transpose's cost as measured on the CIFAR first layer's 27-step reduction).
template <typename T>
bool uses_channel_vectors(int64_t m, int64_t depth, const DirectGeometry& gm) {
  constexpr double kTransposeSteps = 8;
  const int64_t tile_rows = gm.tile_rows(), columns = tile_rows * gm.padded_w();
  const DirectKernels<T>& positions = direct_kernels_for<T>(m, columns);
  const ChannelVectorKernel<T>& channels = channel_vector_kernel<T>();
  const auto fill = [](int64_t used, int64_t tile) { return static_cast<double>(used) / round_up(used, tile); };
  const double position_fill = fill(m, positions.mr) * fill(columns, positions.nr) * gm.out_w / gm.padded_w();
  const double channel_fill = fill(m, channels.channels) * fill(gm.out_w, channels.cols) *
                              fill(tile_rows, channels.rows) * depth / (depth + kTransposeSteps);
  return channel_fill > position_fill;
}

// out[n, g*m + i] = row_init[g*m + i] + sum over (c, kh, kw) of a(g, i, (c, kh, kw)) *
// source[n, g*channels + c] read through gm. One thread computes each (image, group, row tile).
template <typename T, typename Coefficient>
void direct_correlate(const T* source, int64_t source_channels, int64_t channels, Coefficient a, int64_t m,
                      int64_t groups, int64_t batch, const DirectGeometry& gm, const T* row_init, T* out,
                      int64_t out_channels) {
  const int64_t tile_rows = gm.tile_rows(), tiles = ceil_div(gm.out_h, tile_rows), padded_w = gm.padded_w();
  const int64_t ldc = tile_rows * padded_w, out_plane = gm.out_h * gm.out_w;
  const DirectKernels<T>& kernel = direct_kernels_for<T>(m, ldc);
  const ChannelVectorKernel<T>& channel_kernel = channel_vector_kernel<T>();
  const int64_t depth = channels * gm.kernel_h * gm.kernel_w;
  const bool by_channels = uses_channel_vectors<T>(m, depth, gm);
  const int panel_rows = by_channels ? channel_kernel.channels : kernel.mr;
  const int64_t stride = group_stride(m, depth, panel_rows);
  const std::vector<T> packed = pack_group_panels<T>(groups, m, depth, panel_rows, a);
  // Past a tile's last row and column, the channel kernel reads up to a register tile further.
  const int64_t over_read = by_channels ? (channel_kernel.rows - 1) * padded_w + channel_kernel.cols : kernel.nr;
  parallel_for(batch * groups * tiles, [&](int64_t begin, int64_t end) {
    DirectTile<T> tile(gm, channels, over_read);
    std::vector<T> result(by_channels ? 0 : round_up(m, kernel.mr) * ldc);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / (groups * tiles), g = item / tiles % groups, oh0 = item % tiles * tile_rows;
      const int64_t rows = std::min(tile_rows, gm.out_h - oh0), columns = rows * padded_w;
      tile.fill(source + (n * source_channels + g * channels) * gm.in_h * gm.in_w, channels, gm, oh0, rows);
      T* const out_tile = out + (n * out_channels + g * m) * out_plane + oh0 * gm.out_w;
      if (by_channels) {
        for (int64_t i0 = 0; i0 < m; i0 += panel_rows)
          for (int64_t r0 = 0; r0 < rows; r0 += channel_kernel.rows)
            for (int64_t c0 = 0; c0 < gm.out_w; c0 += channel_kernel.cols)
              channel_kernel.multiply(depth, packed.data() + g * stride + i0 * depth,
                                      tile.padded.data() + r0 * padded_w + c0, padded_w, tile.offsets.data(),
                                      out_tile + i0 * out_plane + r0 * gm.out_w + c0, gm.out_w, out_plane,
                                      static_cast<int>(std::min<int64_t>(panel_rows, m - i0)),
                                      static_cast<int>(std::min<int64_t>(channel_kernel.rows, rows - r0)),
                                      static_cast<int>(std::min<int64_t>(channel_kernel.cols, gm.out_w - c0)),
                                      row_init ? row_init + g * m + i0 : nullptr);
        continue;
      }
      for (int64_t j0 = 0; j0 < columns; j0 += kernel.nr)
        for (int64_t i0 = 0; i0 < m; i0 += kernel.mr)
          kernel.multiply(depth, packed.data() + g * stride + i0 * depth, tile.padded.data() + j0, tile.offsets.data(),
                          result.data() + i0 * ldc + j0, ldc, static_cast<int>(std::min<int64_t>(kernel.mr, m - i0)),
                          static_cast<int>(std::min<int64_t>(kernel.nr, columns - j0)),
                          row_init ? row_init + g * m + i0 : nullptr);
      for (int64_t i = 0; i < m; ++i)
        copy_rows(result.data() + i * ldc, padded_w, out_tile + i * out_plane, gm.out_w, rows, gm.out_w);
    }
  });
}

// The direct weight gradient also multiplies the dropped columns' inputs, by a zero output
// gradient: exact for finite inputs, but 0 * inf would add a NaN that the definition has not.
template <typename T>
bool all_finite(const T* values, int64_t count) {
  int64_t finite = 0;
#pragma omp simd reduction(+ : finite)
  for (int64_t i = 0; i < count; ++i) finite += (values[i] - values[i] == T(0));
  return finite == count;
}

template <typename T>
DirectGeometry forward_geometry(const Conv2dParams& p) {
  DirectGeometry gm = forward_correlation(p);
  gm.tile_positions = direct_tile_positions<T>(p.in_per_group() * p.h.stride * p.w.stride);
  return gm;
}

template <typename T>
void conv2d_forward_direct(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p) {
  const int64_t m = p.out_per_group(), depth = p.weight_row();
  const auto coefficient = [&](int64_t g, int64_t i, int64_t d) { return weight[(g * m + i) * depth + d]; };
  direct_correlate(x, p.in_channels, p.in_per_group(), coefficient, m, p.groups, p.batch, forward_geometry<T>(p), bias,
                   y, p.out_channels);
}

template <typename T>
void conv2d_backward_input_direct(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  const int64_t ins = p.in_per_group(), outs = p.out_per_group(), taps = p.taps(), weight_row = p.weight_row();
  const int64_t kh_last = p.h.kernel - 1, kw_last = p.w.kernel - 1;
  const auto flipped = [&](int64_t g, int64_t ci, int64_t d) {
    const int64_t tap = d % taps, kh = kh_last - tap / p.w.kernel, kw = kw_last - tap % p.w.kernel;
    return weight[(g * outs + d / taps) * weight_row + ci * taps + kh * p.w.kernel + kw];
  };
  DirectGeometry gm = input_gradient_correlation(p);
  gm.tile_positions = direct_tile_positions<T>(outs);
  direct_correlate(grad_output, p.out_channels, outs, flipped, ins, p.groups, p.batch, gm,
                   static_cast<const T*>(nullptr), grad_input, p.in_channels);
}

// grad_weight[g*m + i, (c, kh, kw)] = sum over images and output positions of
// grad_output[n, g*m + i](oh, ow) * x_padded[n, g*ins + c](oh + kh*dh, ow + kw*dw), with the
// output gradient laid out in rows of padded_w (zeros past the output's width). Small images are
// taken several at a time, so that the register tile runs a long reduction. The images are cut
// into a fixed number of chunks whose sums are added in chunk order.
template <typename T>
void conv2d_backward_weight_direct(const T* grad_output, const T* x, T* grad_weight, const Conv2dParams& p) {
  const DirectKernels<T>& kernel = direct_kernels<T>();
  const DirectGeometry gm = forward_geometry<T>(p);
  const int64_t groups = p.groups, m = p.out_per_group(), ins = p.in_per_group(), depth = p.weight_row();
  const int64_t rows_padded = round_up(m, kernel.rows), tile_rows = gm.tile_rows(), padded_w = gm.padded_w();
  const int64_t length = round_up(tile_rows * padded_w, kernel.nr), out_plane = p.output_plane();
  const int64_t lanes = kernel.lanes, chunks = std::clamp<int64_t>(p.batch, 1, 8);
  const int64_t chunk_size = groups * rows_padded * depth;
  // Images per pass: when an image is a single row tile, enough of the chunk's images for ~4096
  // positions.
  const int64_t images_per_pass =
      tile_rows < gm.out_h ? 1 : std::clamp<int64_t>(4096 / length, 1, ceil_div(p.batch, chunks));
  std::vector<T> partial(chunks * chunk_size, T(0));
  parallel_for(chunks * groups, [&](int64_t begin, int64_t end) {
    DirectTile<T> tile(gm, ins, kernel.nr, images_per_pass);
    const int64_t rows_stride = rows_padded * length;
    std::vector<T> grad_rows(images_per_pass * rows_stride);
    std::vector<const T*> row_pointers(rows_padded);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t chunk = item / groups, g = item % groups;
      const int64_t n_end = p.batch * (chunk + 1) / chunks;
      T* sums = partial.data() + chunk * chunk_size + g * rows_padded * depth;
      for (int64_t n0 = p.batch * chunk / chunks; n0 < n_end; n0 += images_per_pass) {
        const int64_t images = std::min(images_per_pass, n_end - n0);
        for (int64_t oh0 = 0; oh0 < gm.out_h; oh0 += tile_rows) {
          const int64_t rows = std::min(tile_rows, gm.out_h - oh0);
          // Only rows [0, rows) of the output gradient are copied: the columns past the output's
          // width and the padding rows of the register tile stay zero from the allocation, and the
          // vector's worth past a short last tile is zeroed here.
          const int64_t used = rows * padded_w;
          for (int64_t b = 0; b < images; ++b) {
            const int64_t n = n0 + b;
            tile.fill(x + (n * p.in_channels + g * ins) * p.input_plane(), ins, gm, oh0, rows, b);
            const T* grad_group = grad_output + (n * p.out_channels + g * m) * out_plane + oh0 * gm.out_w;
            for (int64_t i = 0; i < m; ++i) {
              T* dst = grad_rows.data() + b * rows_stride + i * length;
              copy_rows(grad_group + i * out_plane, gm.out_w, dst, padded_w, rows, gm.out_w);
              std::fill(dst + used, dst + round_up(used, lanes), T(0));
            }
          }
          for (int64_t i0 = 0; i0 < rows_padded; i0 += kernel.rows) {
            for (int r = 0; r < kernel.rows; ++r) row_pointers[r] = grad_rows.data() + (i0 + r) * length;
            for (int64_t j0 = 0; j0 < depth; j0 += kernel.cols)
              kernel.correlate(images, round_up(rows * padded_w, lanes), row_pointers.data(), rows_stride,
                               tile.padded.data(), tile.image_stride, tile.offsets.data() + j0,
                               static_cast<int>(std::min<int64_t>(kernel.cols, depth - j0)), sums + i0 * depth + j0,
                               depth);
          }
        }
      }
    }
  });
  parallel_for(p.out_channels, [&](int64_t begin, int64_t end) {
    for (int64_t co = begin; co < end; ++co) {
      const int64_t row = (co / m * rows_padded + co % m) * depth;
      for (int64_t d = 0; d < depth; ++d) {
        T sum = partial[row + d];
        for (int64_t chunk = 1; chunk < chunks; ++chunk) sum += partial[chunk * chunk_size + row + d];
        grad_weight[co * depth + d] = sum;
      }
    }
  });
}

// --- depthwise paths (one input channel per group) -----------------------------------------

// Each input plane goes whole into a per-thread DirectTile of one channel (at stride > 1 split
// into phase planes), so that every tap reads whole rows at unit stride and the vector kernels
// run without bounds checks; they write the output in place, masking the last vector of a row.
template <typename T>
struct DepthwisePlane {
  DirectGeometry gm;
  DirectTile<T> tile;

  DepthwisePlane(DirectGeometry geometry, int lanes) : gm(whole(geometry)), tile(gm, 1, lanes) {}

  static DirectGeometry whole(DirectGeometry geometry) {
    geometry.tile_positions = std::numeric_limits<int64_t>::max();
    return geometry;
  }
  int64_t row_stride() const { return gm.padded_w(); }
  const int64_t* offsets() const { return tile.offsets.data(); }

  void fill(const T* source) { tile.fill(source, 1, gm, 0, gm.out_h); }

  // The transpose of fill: source (in_h x in_w) receives the phase planes' values at the
  // positions fill took them from; positions no window reads get zero.
  void gather(T* source) const {
    const int64_t rows = gm.phase_rows(gm.out_h), cols = gm.padded_w();
    // Source columns [0, first) lie inside the phase planes' columns.
    const int64_t first = std::clamp<int64_t>(gm.sw * cols - gm.left, 0, gm.in_w);
    for (int64_t ih = 0; ih < gm.in_h; ++ih) {
      T* out = source + ih * gm.in_w;
      const int64_t padded_row = ih + gm.top, r = padded_row / gm.sh;
      if (r >= rows) {
        std::fill(out, out + gm.in_w, T(0));
        continue;
      }
      const T* phases = tile.padded.data() + padded_row % gm.sh * gm.sw * gm.phase_plane() + r * cols;
      // Column iw comes from phase (iw + left) % sw, column (iw + left) / sw.
      if (gm.sw == 2) {  // a constant step lets the compiler vectorize with shuffles
        const T* even = phases + gm.left % 2 * gm.phase_plane() + gm.left / 2;
        const T* odd = phases + (gm.left + 1) % 2 * gm.phase_plane() + (gm.left + 1) / 2;
        const int64_t pairs = first / 2;
#pragma omp simd
        for (int64_t j = 0; j < pairs; ++j) {
          out[2 * j] = even[j];
          out[2 * j + 1] = odd[j];
        }
        if (first % 2) out[first - 1] = even[pairs];
      } else {
        for (int64_t iw = 0; iw < first; ++iw)
          out[iw] = phases[(iw + gm.left) % gm.sw * gm.phase_plane() + (iw + gm.left) / gm.sw];
      }
      std::fill(out + first, out + gm.in_w, T(0));
    }
  }
};

template <typename T>
void conv2d_forward_depthwise(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p) {
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(forward_geometry<T>(p), kernels.lanes);
    for (int64_t item = begin; item < end; ++item) {
      plane.fill(x + item * p.input_plane());

      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co)
        kernels.plane(plane.tile.padded.data(), plane.row_stride(), weight + co * taps, p.h.kernel, p.w.kernel,
                      plane.offsets(), false, bias ? bias[co] : T(0), y + (n * p.out_channels + co) * p.output_plane(),
                      p.h.output, p.w.output, p.w.output);
    }
  });
}

// Phase (a, b) of the padded input gradient, the positions (r * sh + a, c * sw + b), is a
// stride-1 correlation of the output gradient with the taps that land on that phase, tap
// (kh, kw) shifted by (kh * dh / sh, kw * dw / sw): every phase element is written once, the
// vector kernels accumulating in registers, and the phases are then gathered into place.
template <typename T>
void conv2d_backward_input_depthwise_strided(const T* grad_output, const T* weight, T* grad_input,
                                             const Conv2dParams& p) {
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t multiplier = p.out_per_group(), taps = p.taps(), phases = h.stride * w.stride;
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  const DirectGeometry gm = DepthwisePlane<T>::whole(forward_geometry<T>(p));
  // The output gradient padded by the taps' reach, so that each phase's correlation reads whole rows.
  const int64_t reach_h = (h.kernel - 1) * h.dilation / h.stride, reach_w = (w.kernel - 1) * w.dilation / w.stride;
  const int64_t grad_rows = gm.phase_rows(h.output) + reach_h;
  const int64_t grad_cols = round_up(gm.padded_w(), kernels.lanes) + reach_w;
  std::vector<int64_t> phase_taps(phases + 1), tap_order,
      offsets;  // phase ph's taps: [phase_taps[ph], phase_taps[ph + 1])
  for (int64_t a = 0; a < h.stride; ++a)
    for (int64_t b = 0; b < w.stride; ++b) {
      for (int64_t kh = 0; kh < h.kernel; ++kh)
        for (int64_t kw = 0; kw < w.kernel; ++kw)
          if (kh * h.dilation % h.stride == a && kw * w.dilation % w.stride == b) {
            tap_order.push_back(kh * w.kernel + kw);
            offsets.push_back((reach_h - kh * h.dilation / h.stride) * grad_cols + reach_w -
                              kw * w.dilation / w.stride);
          }
      phase_taps[a * w.stride + b + 1] = static_cast<int64_t>(tap_order.size());
    }
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(gm, kernels.lanes);
    std::vector<T> padded_grad(grad_rows * grad_cols + kernels.lanes), coefficients(taps);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co) {
        copy_into_zeroed(grad_output + (n * p.out_channels + co) * p.output_plane(), h.output, w.output, reach_h,
                         reach_w, padded_grad.data(), grad_rows, grad_cols);
        for (int64_t t = 0; t < taps; ++t) coefficients[t] = weight[co * taps + tap_order[t]];
        for (int64_t phase = 0; phase < phases; ++phase) {
          // A phase no tap lands on (a 1x1 kernel's odd columns at stride 2) gets zeros.
          const int64_t first = phase_taps[phase], count = phase_taps[phase + 1] - first;
          kernels.plane(padded_grad.data(), grad_cols, coefficients.data() + first, 1, count, offsets.data() + first,
                        co > ci * multiplier, T(0), plane.tile.padded.data() + phase * gm.phase_plane(),
                        gm.phase_rows(h.output), gm.padded_w(), gm.padded_w());
        }
      }
      plane.gather(grad_input + item * p.input_plane());
    }
  });
}

// Stride 1: the input gradient is a depthwise convolution of the padded output gradient with the
// flipped kernel, summed over the channel multiplier.
template <typename T>
void conv2d_backward_input_depthwise(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  if (!unit_stride(p)) return conv2d_backward_input_depthwise_strided(grad_output, weight, grad_input, p);
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.batch * p.in_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(input_gradient_correlation(p), kernels.lanes);
    std::vector<T> flipped(taps);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / p.in_channels, ci = item % p.in_channels;
      for (int64_t co = ci * multiplier; co < (ci + 1) * multiplier; ++co) {
        plane.fill(grad_output + (n * p.out_channels + co) * p.output_plane());
        std::reverse_copy(weight + co * taps, weight + (co + 1) * taps, flipped.begin());
        kernels.plane(plane.tile.padded.data(), plane.row_stride(), flipped.data(), h.kernel, w.kernel, plane.offsets(),
                      co > ci * multiplier, T(0), grad_input + item * p.input_plane(), h.input, w.input, w.input);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight_depthwise(const T* grad_output, const T* x, T* grad_weight, const Conv2dParams& p) {
  const int64_t multiplier = p.out_per_group(), taps = p.taps();
  const DepthwiseKernels<T>& kernels = depthwise_kernels<T>();
  parallel_for(p.out_channels, [&](int64_t begin, int64_t end) {
    DepthwisePlane<T> plane(forward_geometry<T>(p), kernels.lanes);
    for (int64_t co = begin; co < end; ++co) {
      T* sums = grad_weight + co * taps;
      std::fill(sums, sums + taps, T(0));
      for (int64_t n = 0; n < p.batch; ++n) {
        plane.fill(x + (n * p.in_channels + co / multiplier) * p.input_plane());
        kernels.weight_plane(plane.tile.padded.data(), plane.row_stride(),
                             grad_output + (n * p.out_channels + co) * p.output_plane(), p.h.output, p.w.output,
                             p.w.output, p.h.kernel, p.w.kernel, plane.offsets(), sums);
      }
    }
  });
}

// grad_bias[co] = the sum of grad_output's channel co over the images. Each channel keeps
// kPartials running sums, element q of every plane going to sum q % kPartials, added in order
// at the end: independent additions that pipeline (a single running sum waits on every
// addition, which made the bias gradient of the first layers' large planes several times
// slower), in an order fixed by the shapes alone and, with only additions, the same at every
// vector width.
template <typename T>
void conv2d_backward_bias(const T* grad_output, T* grad_bias, const Conv2dParams& p) {
  constexpr int64_t kPartials = 32;
  const int64_t plane = p.output_plane(), whole = plane / kPartials * kPartials;
  parallel_for_vectorized(p.out_channels, [&](int64_t begin, int64_t end) {
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

}  // namespace detail

// y = conv2d(x, weight) + bias; bias may be null.
template <typename T>
void conv2d_forward(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p) {
  if (p.batch == 0) return;
  if (detail::depthwise_applies(p))
    detail::conv2d_forward_depthwise(x, weight, bias, y, p);
  else if (detail::direct_applies(p))
    detail::conv2d_forward_direct(x, weight, bias, y, p);
  else
    detail::conv2d_forward_gemm(x, weight, bias, y, p);
}

// The gradients of conv2d_forward; each of grad_input, grad_weight and grad_bias may be null to
// skip it. x is read only for grad_weight and weight only for grad_input.
template <typename T>
void conv2d_backward(const T* grad_output, const T* x, const T* weight, T* grad_input, T* grad_weight, T* grad_bias,
                     const Conv2dParams& p) {
  if (p.batch == 0) {  // the sums over no images; nothing else is read or written
    if (grad_weight) std::fill(grad_weight, grad_weight + p.out_channels * p.weight_row(), T(0));
    if (grad_bias) std::fill(grad_bias, grad_bias + p.out_channels, T(0));
    return;
  }
  if (grad_input) {
    const bool stride_one_bounded = detail::unit_stride(p) && detail::input_gradient_correlation(p).copy_bounded();
    // The strided depthwise path splits the forward correlation's copy into phases instead.
    if (p.depthwise() && (detail::unit_stride(p) ? stride_one_bounded : detail::depthwise_applies(p)))
      detail::conv2d_backward_input_depthwise(grad_output, weight, grad_input, p);
    // With one or two input channels the direct path's 6-row tile is mostly empty; col2im is
    // faster there (measured on LeNet conv1 and on the CIFAR first layer's 3 channels).
    else if (!p.depthwise() && stride_one_bounded && p.in_per_group() >= 3)
      detail::conv2d_backward_input_direct(grad_output, weight, grad_input, p);
    else
      detail::conv2d_backward_input_col2im(grad_output, weight, grad_input, p);
  }
  if (grad_weight) {
    if (detail::depthwise_applies(p))
      detail::conv2d_backward_weight_depthwise(grad_output, x, grad_weight, p);
    else if (detail::direct_applies(p) && detail::all_finite(x, p.batch * p.in_channels * p.input_plane()))
      detail::conv2d_backward_weight_direct(grad_output, x, grad_weight, p);
    else
      detail::conv2d_backward_weight_gemm(grad_output, x, grad_weight, p);
  }
  if (grad_bias) detail::conv2d_backward_bias(grad_output, grad_bias, p);
}

}  // namespace convpool
