#pragma once
// Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016), the opt-in path of conv.hpp for 3x3 convolutions at stride 1 (a
// PackedConvWeight packed with it, or Conv2dParams::winograd): each 2x2 block of outputs ("tile")
// of each output channel is A^T [sum over ci of U(co, ci) * V(ci, tile)] A, elementwise over the
// 16 points of a 4x4 transform, with U = G g G^T the transformed kernel and V = B^T d B the
// transformed 4x4 input patch. That is 16 multiply-adds per 4 outputs and input channel instead
// of 36: 2.25 times fewer, at the price of the transforms and of a different rounding (the sums
// are of transformed values).
//
// The work is cut into (image, band of rows of tiles, block of output channels), planned by
// winograd_plan. Each point's products M[xi] = U[xi] V[xi] come from the direct paths' register
// tiles, which read the rows of V in place. Each output element is computed by one thread in an
// order fixed by the shapes, so results are bitwise identical for any number of threads.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "../activation.hpp"
#include "../parallel.hpp"
#include "../shape.hpp"
#include "conv_kernels.hpp"
#include "conv_packing.hpp"
#include "conv_padded_rows.hpp"
#include "scratch.hpp"

#define CONVPOOL_VECTOR_KERNELS "conv_winograd_kernels.inl"
#include "for_each_vector_isa.hpp"

namespace convpool::detail {

constexpr int kWinogradPoints = 16;

// One group of a 3x3 kernel at stride 1 and dilation 1, whose zero-padded input copy
// (conv_padded_rows.hpp) is bounded.
inline bool winograd_applies(const Conv2dParams& p) {
  return p.groups == 1 && p.h.kernel == 3 && p.w.kernel == 3 && unit_stride(p) && p.h.dilation == 1 &&
         p.w.dilation == 1 && !p.depthwise() && forward_correlation(p).copy_bounded();
}

// Tiles (2x2 outputs each) per row of tiles.
inline int64_t winograd_tile_columns(const Conv2dParams& p) { return ceil_div(p.w.output, int64_t{2}); }

// How a call is cut into work items: (image, band of band_rows rows of tiles, block of output
// channels), multiplied by `kernel`'s register tiles.
template <typename T>
struct WinogradPlan {
  int64_t band_rows = 1, bands = 1, block = 1, blocks = 1;
  const DirectKernels<T>* kernel = nullptr;
  double computed = 0;  // tile columns times output channels the register tiles compute, all items
};

// The plan whose busiest thread computes least (the register tiles cover whole bands of tiles and
// whole panels of channels, so a short last band or block costs a whole tile), the longer band of
// equals, among bands whose transformed input and products (16 points of C_in rows, and of up to
// 64 output channels' rows, of the band's tiles) take at most 1.5 MB: each point's products read
// and write a sixteenth of that, so it stays near one core's 1 MB L2 cache. A smaller bound cuts
// short bands whose last register tiles then run part empty, a larger one leaves the cache.
template <typename T>
WinogradPlan<T> winograd_plan(const Conv2dParams& p) {
  constexpr int64_t kTransformedBytes = 3 << 19;
  const int64_t rows = ceil_div(p.h.output, int64_t{2}), columns = winograd_tile_columns(p);
  const int64_t cached = kTransformedBytes / (kWinogradPoints * static_cast<int64_t>(sizeof(T)) *
                                              (p.in_channels + std::min<int64_t>(p.out_channels, 64)));
  const int64_t threads = get_num_threads(), wanted = work_items_wanted(), co = p.out_channels;
  WinogradPlan<T> best;
  double best_span = 0;
  for (int64_t r = std::min(rows, std::max<int64_t>(1, cached / columns)); r >= 1; --r) {
    WinogradPlan<T> plan;
    plan.band_rows = r;
    plan.bands = ceil_div(rows, r);
    plan.kernel = &direct_kernels_for<T>(co, r * columns);
    const int64_t nr = plan.kernel->nr, mr = plan.kernel->mr;
    plan.block = channel_block(co, mr, p.batch * plan.bands, wanted);
    plan.blocks = ceil_div(co, plan.block);
    const int64_t items = p.batch * plan.bands * plan.blocks;
    const auto work = [&](int64_t item) {
      const int64_t band = item / plan.blocks % plan.bands, block = item % plan.blocks;
      const int64_t tiles = std::min(r, rows - band * r) * columns;
      return static_cast<double>(round_up(tiles, nr)) *
             static_cast<double>(round_up(std::min(plan.block, co - block * plan.block), int64_t{mr}));
    };
    double span = 0;
    for (int64_t t = 0; t < std::min(threads, items); ++t) {  // parallel_for's split
      double busy = 0;
      for (int64_t item = items * t / threads; item < items * (t + 1) / threads; ++item) busy += work(item);
      span = std::max(span, busy);
    }
    for (int64_t item = 0; item < items; ++item) plan.computed += work(item);
    if (!best.kernel || span < best_span) {
      best = plan;
      best_span = span;
    }
  }
  return best;
}

// The plan of a call that takes F(2x2, 3x3), or nullopt where the direct paths stay: where it
// does not apply, and where it does not save work. It saves 2.25 times the multiply-adds, less
// what the register tiles compute past a band's last tile or a block's last channel (a 7x7 image
// has 16 tiles, a third of a tile of 48) and past an odd output's edge, and is taken when still
// 1.5 times fewer, which leaves room for the transforms.
//
// The transforms cost per channel what the products save per pair of channels, so few channels
// cannot pay for them: at CIFAR ResNet's 16 and 32 channels the direct paths were faster, at 40
// and 48 F(2x2, 3x3) was (commit 50e14e7 has the measurements), hence 40 input and output channels.
template <typename T>
std::optional<WinogradPlan<T>> winograd_plan_if_it_pays(const Conv2dParams& p) {
  constexpr double kMinSaving = 1.5;
  constexpr int64_t kMinChannels = 40;
  if (p.batch == 0 || !winograd_applies(p) || p.in_channels < kMinChannels || p.out_channels < kMinChannels)
    return std::nullopt;
  const double useful =
      static_cast<double>(p.batch) * static_cast<double>(p.output_plane()) / 4.0 * static_cast<double>(p.out_channels);
  WinogradPlan<T> plan = winograd_plan<T>(p);
  if (2.25 * useful / plan.computed < kMinSaving) return std::nullopt;
  return plan;
}

// U = G g G^T of each (co, ci) 3x3 kernel g, computed in double: point xi of (co, ci) at
// u[(xi * out_channels + co) * in_channels + ci].
template <typename T>
std::vector<T> winograd_weight(const T* weight, int64_t out_channels, int64_t in_channels) {
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  std::vector<T> u(kWinogradPoints * out_channels * in_channels);
  for (int64_t co = 0; co < out_channels; ++co)
    for (int64_t ci = 0; ci < in_channels; ++ci) {
      const T* g = weight + (co * in_channels + ci) * 9;
      double gg[4][3];  // G g
      for (int a = 0; a < 4; ++a)
        for (int c = 0; c < 3; ++c) gg[a][c] = kG[a][0] * g[c] + kG[a][1] * g[3 + c] + kG[a][2] * g[6 + c];
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b)
          u[((a * 4 + b) * out_channels + co) * in_channels + ci] =
              static_cast<T>(gg[a][0] * kG[b][0] + gg[a][1] * kG[b][1] + gg[a][2] * kG[b][2]);
    }
  return u;
}

// U of weight (C_out x C_in 3x3 kernels), packed for register tiles of mr output channels: group
// xi of pack_group_panels holds point xi.
template <typename T>
void pack_winograd_panels_into(const T* weight, int64_t out_channels, int64_t in_channels, int mr, T* out) {
  const std::vector<T> u = winograd_weight(weight, out_channels, in_channels);
  pack_group_panels_into<T>(
      kWinogradPoints, out_channels, in_channels, mr,
      [&](int64_t xi, int64_t i, int64_t d) { return u[(xi * out_channels + i) * in_channels + d]; }, out);
}

// The transformed weight of a call whose weight is not packed ahead, in the calling thread's
// scratch memory.
template <typename T>
auto winograd_packing_on_call(const T* weight, int64_t out_channels, int64_t in_channels) {
  return [=](int mr) {
    ScratchBuffer<T> packed(kWinogradPoints * group_stride(out_channels, in_channels, mr));
    pack_winograd_panels_into(weight, out_channels, in_channels, mr, packed.get());
    return Panels<T>(std::move(packed));
  };
}

// The input gradient of a 3x3 stride-1 convolution is the stride-1 convolution of the output
// gradient with the weight's kernels flipped and transposed (C_in x C_out) and the padding
// 2 - p; where F(2x2, 3x3) applies and that padding is not negative, that convolution's params,
// else nullopt.
inline std::optional<Conv2dParams> winograd_input_gradient(const Conv2dParams& p) {
  if (!winograd_applies(p) || p.h.padding > 2 || p.w.padding > 2) return std::nullopt;
  Conv2dParams q = p;
  std::swap(q.in_channels, q.out_channels);
  q.h = WindowDim{p.h.output, p.h.input, 3, 1, 2 - p.h.padding, 1};
  q.w = WindowDim{p.w.output, p.w.input, 3, 1, 2 - p.w.padding, 1};
  return q;
}

// weight (C_out x C_in 3x3 kernels) flipped in both directions and transposed to C_in x C_out.
template <typename T>
std::vector<T> flipped_transposed(const T* weight, int64_t out_channels, int64_t in_channels) {
  std::vector<T> flipped(out_channels * in_channels * 9);
  for (int64_t co = 0; co < out_channels; ++co)
    for (int64_t ci = 0; ci < in_channels; ++ci)
      for (int t = 0; t < 9; ++t)
        flipped[(ci * out_channels + co) * 9 + t] = weight[(co * in_channels + ci) * 9 + 8 - t];
  return flipped;
}

// The zero-padded input rows a band reads: a padded-row tile (DirectTile) of the
// correlation over whole tiles (2 * tile_columns wide), rows of tiles band_rows at a time.
inline DirectGeometry winograd_geometry(const Conv2dParams& p, int64_t band_rows) {
  const int64_t columns = 2 * winograd_tile_columns(p);
  return {p.h.input,   p.w.input,   2 * ceil_div(p.h.output, int64_t{2}), columns, 3, 3, 1, 1, 1, 1,
          p.h.padding, p.w.padding, 2 * band_rows * (columns + 2)};
}

// y = activation(conv2d(x) + bias) through F(2x2, 3x3) as `plan` cuts it, panels_for(mr) giving the transformed
// weight U[xi] (C_out x C_in) of each point xi as group xi of pack_group_panels. The work is cut
// into (image, band of rows of tiles, block of output channels): a band's patches are transformed
// into V[xi] (C_in x the band's tiles), the products M[xi] = U[xi] V[xi] come from the direct
// paths' register tiles (which read the rows of V in place), and the output transform writes the
// band's outputs.
//
// Returns false when an output came out infinite or NaN (before the activation): the transforms
// add and subtract up to 4 inputs and 9 products, so values near T's largest overflow there where
// the direct sums may not, and an infinite or NaN input spreads differently. The caller then
// computes y again by the direct sums, whose results define the convolution: a check of each
// output as it is written, where bounding the inputs' magnitudes first would cost a pass over x.
template <typename T, class PanelsFor>
bool conv2d_forward_winograd(const T* x, PanelsFor&& panels_for, const T* bias, T* y, const Conv2dParams& p,
                             const WinogradPlan<T>& plan, Activation activation) {
  const int64_t ci = p.in_channels, co = p.out_channels;
  const int64_t tile_rows = ceil_div(p.h.output, int64_t{2}), tile_columns = winograd_tile_columns(p);
  const int64_t band_rows = plan.band_rows, bands = plan.bands, band_tiles = band_rows * tile_columns;
  const int64_t block = plan.block, blocks = plan.blocks;
  const DirectKernels<T>& kernel = *plan.kernel;
  // The input transform runs over whole vectors of tiles, kWholeTiles at a time: a 7-wide row of
  // tiles would otherwise leave every vector partial, which the compiler's loop takes one element
  // at a time. The tiles it computes past a row's end land on the next row's, which come after
  // them, or past the band's last tile, in columns that are then zeroed; the rows of V are long
  // enough for them.
  constexpr int64_t kWholeTiles = 16;
  const int64_t transformed_columns = round_up(tile_columns, kWholeTiles);
  const int64_t band_columns = round_up(band_tiles + transformed_columns - tile_columns, int64_t{kernel.nr});
  const DirectGeometry gm = winograd_geometry(p, band_rows);
  const Panels<T> u = panels_for(kernel.mr);
  const int64_t u_stride = group_stride(co, ci, kernel.mr);
  // The products of a block are formed and transformed back a few register tiles of channels at a
  // time, so that they stay in the cache with the band's transformed input.
  const int64_t sub_block = std::min(block, round_up(int64_t{64}, int64_t{kernel.mr}));
  // The 16 points of a tile are written (input transform) and read (output transform) together:
  // a cache line apart beyond whole pages, not whole pages apart, which would put all 16 in one
  // set of the L1 cache.
  constexpr int64_t kPointSkew = 64 / sizeof(T);
  const int64_t v_point = round_up(ci * band_columns, int64_t{1024}) + kPointSkew,
                m_point = round_up(sub_block * band_columns, int64_t{1024}) + kPointSkew;
  std::atomic<bool> non_finite{false};
  parallel_for(p.batch * bands * blocks, [&](int64_t begin, int64_t end) {
    bool item_non_finite = false;
    DirectTile<T> tile(gm, ci, 2 * (transformed_columns - tile_columns) + 2);
    // Every element of v and m that is read is written first.
    const std::unique_ptr<T[]> v(new T[kWinogradPoints * v_point]), m(new T[kWinogradPoints * m_point]);
    std::vector<T> spare_row(2 * tile_columns);  // the second output row of the last tiles of an odd height
    std::vector<int64_t> rows_of_v(ci);          // where the micro-kernel reads step c of the reduction
    for (int64_t c = 0; c < ci; ++c) rows_of_v[c] = c * band_columns;
    int64_t transformed = -1;  // the (image, band) whose patches v holds
    for (int64_t item = begin; item < end; ++item) {
      const int64_t slab = item / blocks, n = slab / bands, ty0 = slab % bands * band_rows;
      const int64_t rows = std::min(band_rows, tile_rows - ty0), tiles = rows * tile_columns;
      const int64_t co0 = item % blocks * block, co_count = std::min(block, co - co0);
      if (slab != transformed) {
        tile.fill(x + n * ci * p.input_plane(), ci, gm, 2 * ty0, 2 * rows);
        const int64_t row = gm.padded_w();
        for (int64_t c = 0; c < ci; ++c) {
          const T* plane = tile.padded.data() + c * gm.padded_plane();
          T* const v_row = v.get() + c * band_columns;
          for (int64_t r = 0; r < rows; ++r)
            with_vector_isa([&](auto isa) {
              winograd_input_tiles(isa, plane + 2 * r * row, row, transformed_columns, v_row + r * tile_columns,
                                   v_point);
            });
          // The columns past the band's last tile multiply into products that are dropped; zeros
          // keep them finite and normal.
          for (int xi = 0; xi < kWinogradPoints; ++xi)
            std::fill(v_row + xi * v_point + tiles, v_row + xi * v_point + band_columns, T(0));
        }
        transformed = slab;
      }
      for (int64_t s0 = 0; s0 < co_count; s0 += sub_block) {
        const int64_t s_count = std::min(sub_block, co_count - s0);
        for (int xi = 0; xi < kWinogradPoints; ++xi)
          for (int64_t j0 = 0; j0 < tiles; j0 += kernel.nr)
            for (int64_t i0 = 0; i0 < s_count; i0 += kernel.mr)
              kernel.multiply(ci, u.get() + xi * u_stride + (co0 + s0 + i0) * ci, v.get() + xi * v_point + j0,
                              rows_of_v.data(), m.get() + xi * m_point + i0 * band_columns + j0, band_columns,
                              static_cast<int>(std::min<int64_t>(kernel.mr, s_count - i0)),
                              static_cast<int>(std::min<int64_t>(kernel.nr, tiles - j0)), nullptr);
        for (int64_t i = 0; i < s_count; ++i) {
          T* const out = y + (n * co + co0 + s0 + i) * p.output_plane();
          const T channel_bias = bias ? bias[co0 + s0 + i] : T(0);
          for (int64_t r = 0; r < rows; ++r) {
            const int64_t oh = 2 * (ty0 + r);
            T* const row0 = out + oh * p.w.output;
            T* const row1 = oh + 1 < p.h.output ? row0 + p.w.output : spare_row.data();
            item_non_finite |= with_vector_isa([&](auto isa) {
              return winograd_output_tiles(isa, m.get() + i * band_columns + r * tile_columns, m_point, tile_columns,
                                           channel_bias, activation, row0, row1, p.w.output);
            });
          }
        }
      }
    }
    if (item_non_finite) non_finite.store(true);
  });
  return !non_finite.load();
}

}  // namespace convpool::detail
