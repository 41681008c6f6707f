#pragma once
// The matrix-product paths of conv.hpp, which every convolution can take: panels of the im2col
// matrix gathered tile by tile into per-thread buffers and multiplied by the register-tiled
// micro-kernel (forward, the col2im input gradient, the weight gradient).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "../activation.hpp"
#include "../parallel.hpp"
#include "../shape.hpp"
#include "conv_kernels.hpp"
#include "conv_packing.hpp"
#include "scratch.hpp"

namespace convpool::detail {

// A depth block of 256 steps of B panels, nr wide, stays in the L2 cache (256 KB for float).
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kPanelBytes = 256 * 1024;

template <typename T>
int64_t column_block(int nr) {
  return std::max<int64_t>(nr, static_cast<int64_t>(kPanelBytes / (kDepthBlock * sizeof(T))) / nr * nr);
}

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

// For every image n, group g and tile of `columns`: out[n, g*m + i, q] = row_init[g*m + i] +
// sum over d of A_g[i, d] * B[d, q], with B's rows produced by fill_row(n, g, q0, q1, d, row).
// `out` has `out_channels` planes of `columns` per image; row_init may be null. The columns are
// cut into tiles of equal size, and the rows into blocks when there are too few tiles to share.
template <typename T, class FillRow>
void multiply_column_tiles(const GemmMicroKernel<T>& kernel, const Conv2dParams& p, const T* packed, int64_t m,
                           int64_t depth, int64_t columns, FillRow&& fill_row, T* out, int64_t out_channels,
                           const T* row_init, Activation activation = Activation::none) {
  const int64_t groups = p.groups, stride = group_stride(m, depth, kernel.mr);
  const int64_t wanted = work_items_wanted();
  const int64_t fewest_tiles = ceil_div(columns, column_block<T>(kernel.nr));
  const int64_t tiles_wanted = std::clamp(ceil_div(wanted, p.batch * groups), fewest_tiles,
                                          std::max(fewest_tiles, columns / (4 * int64_t{kernel.nr})));
  // Whole register tiles of columns; rounding them up can leave fewer tiles than wanted.
  const int64_t tile = round_up(ceil_div(columns, tiles_wanted), kernel.nr), tiles = ceil_div(columns, tile);
  const int64_t block = channel_block(m, kernel.mr, p.batch * groups * tiles, wanted), blocks = ceil_div(m, block);
  parallel_for(p.batch * groups * tiles * blocks, [&](int64_t begin, int64_t end) {
    TileWorkspace<T> ws(std::min(tile, columns), kernel.nr);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t slab = item / blocks, n = slab / (groups * tiles), g = slab / tiles % groups;
      const int64_t q0 = slab % tiles * tile, q1 = std::min(columns, q0 + tile);
      const int64_t i0 = item % blocks * block, rows = std::min(block, m - i0);
      auto fill = [&](int64_t d, T* row) { fill_row(n, g, q0, q1, d, row); };
      T* const out_tile = out + (n * out_channels + g * m + i0) * columns + q0;
      multiply_tile(kernel, packed + g * stride + i0 * depth, rows, depth, q1 - q0, fill, out_tile, columns,
                    row_init ? row_init + g * m + i0 : nullptr, ws);
      activate_rows(activation, out_tile, rows, q1 - q0, columns);
    }
  });
}

// The forward pass with the weight's panels of mr output channels from panels_for(mr).
template <typename T, class PanelsFor>
void conv2d_forward_gemm(const T* x, PanelsFor&& panels_for, const T* bias, T* y, const Conv2dParams& p,
                         Activation activation) {
  const GemmMicroKernel<T>& kernel = gemm_micro_kernel<T>();
  const int64_t m = p.out_per_group(), depth = p.weight_row(), taps = p.taps(), plane = p.input_plane();
  const Panels<T> packed = panels_for(kernel.mr);
  auto fill = [&](int64_t n, int64_t g, int64_t q0, int64_t q1, int64_t d, T* row) {
    const T* x_group = x + (n * p.in_channels + g * p.in_per_group()) * plane;
    const int64_t tap = d % taps;
    gather_input_taps(x_group + d / taps * plane, p, tap / p.w.kernel, tap % p.w.kernel, q0, q1, row);
  };
  multiply_column_tiles(kernel, p, packed.get(), m, depth, p.output_plane(), fill, y, p.out_channels, bias, activation);
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
  const ScratchBuffer<T> packed = pack_group_panels<T>(
      groups, m, outs, kernel.mr, [&](int64_t g, int64_t r, int64_t co) { return weight[(g * outs + co) * m + r]; });
  const int64_t tile = std::min(column_block<T>(kernel.nr), out_plane);
  // Few images are cut into blocks of input channels, each a whole number of register tiles of
  // rows, which own their input planes.
  const int64_t unit = kernel.mr / std::gcd<int64_t>(kernel.mr, taps);
  const int64_t block = std::min(
      round_up(ins, unit), round_up(std::max<int64_t>(ceil_div(ins, ceil_div(work_items_wanted(), p.batch * groups)),
                                                      ceil_div(kernel.mr, taps)),
                                    unit));
  const int64_t blocks = ceil_div(ins, block);
  parallel_for(p.batch * groups * blocks, [&](int64_t begin, int64_t end) {
    TileWorkspace<T> ws(tile, kernel.nr);
    std::vector<T> columns(block * taps * tile);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / (groups * blocks), g = item / blocks % groups, c0 = item % blocks * block;
      const int64_t r_begin = c0 * taps, r_end = std::min(ins, c0 + block) * taps;
      const T* grad_group = grad_output + (n * p.out_channels + g * outs) * out_plane;
      T* grad_in = grad_input + (n * p.in_channels + g * ins) * plane;
      std::fill(grad_in + c0 * plane, grad_in + r_end / taps * plane, T(0));
      for (int64_t q0 = 0; q0 < out_plane; q0 += tile) {
        const int64_t q1 = std::min(out_plane, q0 + tile);
        auto fill = [&](int64_t co, T* out) {
          std::copy(grad_group + co * out_plane + q0, grad_group + co * out_plane + q1, out);
        };
        multiply_tile(kernel, packed.get() + g * group_size + r_begin * outs, r_end - r_begin, outs, q1 - q0, fill,
                      columns.data(), tile, static_cast<const T*>(nullptr), ws);
        for (int64_t r = r_begin; r < r_end; ++r) {
          const int64_t kh = r % taps / w.kernel, kw = r % w.kernel;
          const int64_t first = w.first_output(kw), end = w.end_output(kw), offset = kw * w.dilation - w.padding;
          T* in_plane = grad_in + r / taps * plane;
          const T* column = columns.data() + (r - r_begin) * tile;  // column[q - q0] for q in [q0, q1)
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

}  // namespace convpool::detail
