#pragma once
// The direct paths of conv.hpp: no im2col panel is packed; each tile of output rows reads its
// zero-padded input rows (conv_padded_rows.hpp) in place. Kernels with output positions in the
// vector lanes compute the columns past the output's width and drop them; where those are many
// (narrow outputs), a kernel with output channels in the lanes, which broadcasts each input,
// wastes fewer (LeNet conv2's 8-wide rows).
//
// This measured faster than gathering panels on every layer of the benchmarks (the commits that
// introduced it have the numbers), except strided 1x1 convolutions, which would copy phases no
// tap reads.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "../parallel.hpp"
#include "../shape.hpp"
#include "conv_kernels.hpp"
#include "conv_packing.hpp"
#include "conv_padded_rows.hpp"

namespace convpool::detail {

// The direct paths (see above), except where the copy is unbounded.
inline bool direct_applies(const Conv2dParams& p) { return !p.depthwise() && forward_correlation(p).copy_bounded(); }

template <typename T>
bool all_finite(const T* values, int64_t count) {
  int64_t finite = 0;
#pragma omp simd reduction(+ : finite)
  for (int64_t i = 0; i < count; ++i) finite += (values[i] - values[i] == T(0));
  return finite == count;
}

// The direct input gradient: stride 1 with a bounded copy, and three input channels per group or
// more (with one or two, the 6-row tile is mostly empty and col2im is faster: LeNet conv1, the
// CIFAR first layer).
inline bool direct_input_gradient_applies(const Conv2dParams& p) {
  return !p.depthwise() && unit_stride(p) && input_gradient_correlation(p).copy_bounded() && p.in_per_group() >= 3;
}

// The direct weight gradient also multiplies the dropped columns' inputs, by a zero output
// gradient: exact for finite inputs, but 0 * inf would add a NaN that the definition has not.
// So it applies where the direct paths do and every element of x is finite (one read of x).
// Its register tile sums each weight over the output positions of a chunk of images, then adds
// the vector's lanes: with fewer than 256 positions to a chunk (one 14x14 image) those lane sums
// cost more than the products, and the matrix product, which sums in the lanes, is faster.
template <typename T>
bool direct_weight_gradient_applies(const Conv2dParams& p, const T* x) {
  constexpr int64_t kMinChunkPositions = 256;
  const int64_t chunk_images = p.batch / std::clamp<int64_t>(p.batch, 1, 8);
  return direct_applies(p) && chunk_images * p.output_plane() >= kMinChunkPositions &&
         all_finite(x, p.batch * p.in_channels * p.input_plane());
}

// Whether the channel-vector kernel leaves fewer lanes idle than the position-vector one, whose
// vectors also run over the padded_w - out_w dropped columns of every row (LeNet conv2: 8 of 12),
// counting the channel kernel's transpose of each tile into the channel planes as 8 more steps of
// its reduction (the transpose's cost as measured on the CIFAR first layer's 27-step reduction).
template <typename T>
bool uses_channel_vectors(int64_t m, int64_t depth, const DirectGeometry& gm) {
  constexpr double kTransposeSteps = 8;
  const int64_t tile_rows = gm.tile_rows(), columns = tile_rows * gm.padded_w();
  const DirectKernels<T>& positions = direct_kernels_for<T>(m, columns);
  const ChannelVectorKernel<T>& channels = channel_kernel_for<T>(m, tile_rows, gm.out_w);
  const auto fill = [](int64_t used, int64_t tile) { return static_cast<double>(used) / round_up(used, tile); };
  const double position_fill = fill(m, positions.mr) * fill(columns, positions.nr) * gm.out_w / gm.padded_w();
  const double channel_fill = fill(m, channels.channels) * fill(gm.out_w, channels.cols) *
                              fill(tile_rows, channels.rows) * depth / (depth + kTransposeSteps);
  return channel_fill > position_fill;
}

// gm with its output rows cut into more tiles when `images` images give fewer than `wanted`,
// down to tiles of ~256 positions, which still run a register tile several times.
inline DirectGeometry with_tiles_for(DirectGeometry gm, int64_t images, int64_t wanted) {
  constexpr int64_t kMinTilePositions = 256;
  const int64_t tiles = ceil_div(gm.out_h, gm.tile_rows());
  if (images * tiles >= wanted) return gm;
  const int64_t most = std::max(tiles, gm.out_h / ceil_div(kMinTilePositions, gm.padded_w()));
  gm.tile_positions = ceil_div(gm.out_h, std::clamp(ceil_div(wanted, images), tiles, most)) * gm.padded_w();
  return gm;
}

// out[n, g*m + i] = row_init[g*m + i] + sum over (c, kh, kw) of a(g, i, (c, kh, kw)) *
// source[n, g*channels + c] read through gm, where panels_for(rows) gives the coefficients a in
// panels of `rows` output channels (pack_group_panels). One thread computes each (image, group,
// row tile, block of output channels); a thread fills a tile's padded rows once for all its
// blocks.
template <typename T, typename PanelsFor>
void direct_correlate(const T* source, int64_t source_channels, int64_t channels, PanelsFor&& panels_for, int64_t m,
                      int64_t groups, int64_t batch, const DirectGeometry& geometry, const T* row_init, T* out,
                      int64_t out_channels, Activation activation = Activation::none) {
  const int64_t wanted = work_items_wanted();
  const DirectGeometry gm = with_tiles_for(geometry, batch * groups, wanted);
  const int64_t tile_rows = gm.tile_rows(), tiles = ceil_div(gm.out_h, tile_rows), padded_w = gm.padded_w();
  const int64_t ldc = tile_rows * padded_w, out_plane = gm.out_h * gm.out_w;
  const DirectKernels<T>& kernel = direct_kernels_for<T>(m, ldc);
  const ChannelVectorKernel<T>& channel_kernel = channel_kernel_for<T>(m, tile_rows, gm.out_w);
  const int64_t depth = channels * gm.kernel_h * gm.kernel_w;
  const bool by_channels = uses_channel_vectors<T>(m, depth, gm);
  const int panel_rows = by_channels ? channel_kernel.channels : kernel.mr;
  const int64_t stride = group_stride(m, depth, panel_rows);
  const Panels<T> packed = panels_for(panel_rows);
  const int64_t block = channel_block(m, panel_rows, batch * groups * tiles, wanted), blocks = ceil_div(m, block);
  // Past a tile's last row and column, the channel kernel reads up to a register tile further.
  const int64_t over_read = by_channels ? (channel_kernel.rows - 1) * padded_w + channel_kernel.cols : kernel.nr;
  parallel_for(batch * groups * tiles * blocks, [&](int64_t begin, int64_t end) {
    DirectTile<T> tile(gm, channels, over_read);
    std::vector<T> result(by_channels ? 0 : round_up(block, kernel.mr) * ldc);
    int64_t filled = -1;  // the (image, group, tile) whose rows the tile holds
    for (int64_t item = begin; item < end; ++item) {
      const int64_t slab = item / blocks, n = slab / (groups * tiles), g = slab / tiles % groups;
      const int64_t oh0 = slab % tiles * tile_rows, i_begin = item % blocks * block,
                    i_end = std::min(m, i_begin + block);
      const int64_t rows = std::min(tile_rows, gm.out_h - oh0), columns = rows * padded_w;
      if (slab != filled) {
        tile.fill(source + (n * source_channels + g * channels) * gm.in_h * gm.in_w, channels, gm, oh0, rows);
        filled = slab;
      }
      T* const out_tile = out + (n * out_channels + g * m) * out_plane + oh0 * gm.out_w;
      const T* const panels = packed.get() + g * stride;
      const T* const init = row_init ? row_init + g * m : nullptr;
      if (by_channels) {
        for (int64_t i0 = i_begin; i0 < i_end; i0 += panel_rows)
          for (int64_t r0 = 0; r0 < rows; r0 += channel_kernel.rows)
            for (int64_t c0 = 0; c0 < gm.out_w; c0 += channel_kernel.cols)
              channel_kernel.multiply(depth, panels + i0 * depth, tile.padded.data() + r0 * padded_w + c0, padded_w,
                                      tile.offsets.data(), out_tile + i0 * out_plane + r0 * gm.out_w + c0, gm.out_w,
                                      out_plane, static_cast<int>(std::min<int64_t>(panel_rows, i_end - i0)),
                                      static_cast<int>(std::min<int64_t>(channel_kernel.rows, rows - r0)),
                                      static_cast<int>(std::min<int64_t>(channel_kernel.cols, gm.out_w - c0)),
                                      init ? init + i0 : nullptr);
      } else {
        for (int64_t j0 = 0; j0 < columns; j0 += kernel.nr)
          for (int64_t i0 = i_begin; i0 < i_end; i0 += kernel.mr)
            kernel.multiply(depth, panels + i0 * depth, tile.padded.data() + j0, tile.offsets.data(),
                            result.data() + (i0 - i_begin) * ldc + j0, ldc,
                            static_cast<int>(std::min<int64_t>(kernel.mr, i_end - i0)),
                            static_cast<int>(std::min<int64_t>(kernel.nr, columns - j0)), init ? init + i0 : nullptr);
        for (int64_t i = i_begin; i < i_end; ++i)
          copy_rows(result.data() + (i - i_begin) * ldc, padded_w, out_tile + i * out_plane, gm.out_w, rows, gm.out_w);
      }
      activate_rows(activation, out_tile + i_begin * out_plane, i_end - i_begin, rows * gm.out_w, out_plane);
    }
  });
}

// The forward pass with the weight's panels of `rows` output channels from panels_for(rows).
template <typename T, class PanelsFor>
void conv2d_forward_direct(const T* x, PanelsFor&& panels_for, const T* bias, T* y, const Conv2dParams& p,
                           Activation activation) {
  direct_correlate(x, p.in_channels, p.in_per_group(), panels_for, p.out_per_group(), p.groups, p.batch,
                   forward_geometry<T>(p), bias, y, p.out_channels, activation);
}

template <typename T>
void conv2d_backward_input_direct(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  const int64_t ins = p.in_per_group(), outs = p.out_per_group(), taps = p.taps(), weight_row = p.weight_row();
  const int64_t kh_last = p.h.kernel - 1, kw_last = p.w.kernel - 1;
  // Where step d = (co, kh, kw) of the reduction reads its group's weight, from input channel 0;
  // a table, since packing reads it for every element of the weight.
  std::vector<int64_t> step_offsets(outs * taps);
  for (int64_t d = 0; d < outs * taps; ++d) {
    const int64_t tap = d % taps, kh = kh_last - tap / p.w.kernel, kw = kw_last - tap % p.w.kernel;
    step_offsets[d] = d / taps * weight_row + kh * p.w.kernel + kw;
  }
  const auto flipped = [&](int64_t g, int64_t ci, int64_t d) {
    return weight[g * outs * weight_row + ci * taps + step_offsets[d]];
  };
  DirectGeometry gm = input_gradient_correlation(p);
  gm.tile_positions = direct_tile_positions<T>(outs);
  direct_correlate(grad_output, p.out_channels, outs, packing_on_call<T>(p.groups, ins, outs * taps, flipped), ins,
                   p.groups, p.batch, gm, static_cast<const T*>(nullptr), grad_input, p.in_channels);
}

// The phase split (below) replaces col2im for strided layers with at least three input channels
// per group (as the direct input gradient) and few phases, each a bounded correlation.
inline bool phase_input_gradient_applies(const Conv2dParams& p) {
  constexpr int64_t kMaxPhases = 16;
  if (p.depthwise() || unit_stride(p) || p.in_per_group() < 3 || p.h.stride * p.w.stride > kMaxPhases) return false;
  for (int64_t rh = 0; rh < p.h.stride; ++rh)
    for (int64_t rw = 0; rw < p.w.stride; ++rw) {
      const PhaseTaps th = phase_taps(p.h, rh), tw = phase_taps(p.w, rw);
      if (phase_computed(th, tw) && !phase_correlation(p, th, tw).copy_bounded()) return false;
    }
  return true;
}

// grad_input at stride (sh, sw) as sh * sw stride-1 correlations of the output gradient, one per
// phase of the input (PhaseTaps), each on the direct path and then spread into its positions: no
// column of the im2col matrix is formed or scattered. Positions no tap reaches are zero.
template <typename T>
void conv2d_backward_input_phases(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  const int64_t ins = p.in_per_group(), outs = p.out_per_group(), taps = p.taps(), weight_row = p.weight_row();
  const int64_t planes = p.batch * p.in_channels, plane = p.input_plane();
  std::vector<PhaseTaps> rows(p.h.stride), cols(p.w.stride);
  int64_t largest = 0;
  bool every_position_reached = true;
  for (int64_t r = 0; r < p.h.stride; ++r) rows[r] = phase_taps(p.h, r);
  for (int64_t r = 0; r < p.w.stride; ++r) cols[r] = phase_taps(p.w, r);
  for (const PhaseTaps& th : rows)
    for (const PhaseTaps& tw : cols) {
      largest = std::max(largest, th.size * tw.size);
      every_position_reached &= phase_computed(th, tw) || th.size * tw.size == 0;
    }
  if (!every_position_reached)
    parallel_for(planes, [&](int64_t begin, int64_t end) {
      std::fill(grad_input + begin * plane, grad_input + end * plane, T(0));
    });
  std::unique_ptr<T[]> phase(new T[planes * largest]);
  for (int64_t rh = 0; rh < p.h.stride; ++rh)
    for (int64_t rw = 0; rw < p.w.stride; ++rw) {
      const PhaseTaps &th = rows[rh], &tw = cols[rw];
      if (!phase_computed(th, tw)) continue;
      // Step d = (co, u, v) of the reduction reads tap (first + (count - 1 - u) * step, ...) of
      // output channel co: its offset in the group's weight, from input channel 0.
      const int64_t phase_taps_count = th.count * tw.count;
      std::vector<int64_t> step_offsets(outs * phase_taps_count);
      for (int64_t d = 0; d < outs * phase_taps_count; ++d) {
        const int64_t u = d % phase_taps_count / tw.count, v = d % tw.count;
        const int64_t kh = th.first_tap + (th.count - 1 - u) * th.step,
                      kw = tw.first_tap + (tw.count - 1 - v) * tw.step;
        step_offsets[d] = d / phase_taps_count * weight_row + kh * p.w.kernel + kw;
      }
      const auto coefficient = [&](int64_t g, int64_t ci, int64_t d) {
        return weight[g * outs * weight_row + ci * taps + step_offsets[d]];
      };
      DirectGeometry gm = phase_correlation(p, th, tw);
      gm.tile_positions = direct_tile_positions<T>(outs);
      direct_correlate(grad_output, p.out_channels, outs,
                       packing_on_call<T>(p.groups, ins, outs * phase_taps_count, coefficient), ins, p.groups, p.batch,
                       gm, static_cast<const T*>(nullptr), phase.get(), p.in_channels);
      const int64_t row0 = rh - p.h.padding + th.first * p.h.stride, col0 = rw - p.w.padding + tw.first * p.w.stride;
      parallel_for(planes, [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
          const T* src = phase.get() + c * th.size * tw.size;
          T* dst = grad_input + c * plane + row0 * p.w.input + col0;
          for (int64_t j = 0; j < th.size; ++j)
            for (int64_t k = 0; k < tw.size; ++k)
              dst[j * p.h.stride * p.w.input + k * p.w.stride] = src[j * tw.size + k];
        }
      });
    }
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
  // Few images are cut further into blocks of output channels, whole register tiles of rows,
  // each reading the input tiles again.
  const int64_t block = channel_block(rows_padded, kernel.rows, chunks * groups, work_items_wanted());
  const int64_t blocks = ceil_div(rows_padded, block);
  // One chunk of images whose rows fill whole register tiles sums straight into grad_weight, with
  // the same additions: a large layer's weight would otherwise be allocated, zeroed and copied
  // again.
  const bool in_place = chunks == 1 && rows_padded == m;
  std::vector<T> partial(in_place ? 0 : chunks * chunk_size, T(0));
  parallel_for(chunks * groups * blocks, [&](int64_t begin, int64_t end) {
    DirectTile<T> tile(gm, ins, kernel.nr, images_per_pass);
    const int64_t rows_stride = rows_padded * length;
    std::vector<T> grad_rows(images_per_pass * rows_stride);
    std::vector<const T*> row_pointers(kernel.rows);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t chunk = item / (groups * blocks), g = item / blocks % groups;
      const int64_t i_begin = item % blocks * block, i_end = std::min(rows_padded, i_begin + block);
      const int64_t n_end = p.batch * (chunk + 1) / chunks;
      T* sums = in_place ? grad_weight + g * m * depth : partial.data() + chunk * chunk_size + g * rows_padded * depth;
      if (in_place) std::fill(sums + i_begin * depth, sums + i_end * depth, T(0));
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
            for (int64_t i = i_begin; i < std::min(m, i_end); ++i) {
              T* dst = grad_rows.data() + b * rows_stride + i * length;
              copy_rows(grad_group + i * out_plane, gm.out_w, dst, padded_w, rows, gm.out_w);
              std::fill(dst + used, dst + round_up(used, lanes), T(0));
            }
          }
          for (int64_t i0 = i_begin; i0 < i_end; i0 += kernel.rows) {
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
  if (in_place) return;
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

}  // namespace convpool::detail
