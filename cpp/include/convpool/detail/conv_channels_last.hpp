#pragma once
// The channels-last (NHWC) paths of conv.hpp: x (N, H, W, C_in), y (N, OH, OW, C_out), the weight
// in PyTorch's (C_out, C_in / groups, KH, KW). A pixel's channels lie side by side, so every
// convolution is a matrix product whose rows are pixels and whose columns are channels, vectorized
// over the channels whatever the plane's size: the rows of each tile of pixels are read in place
// through an indirection buffer (one pointer per pixel and tap, to zeros in the padding), so
// padding, stride and dilation cost no copy, and the batch's pixels form one product (a 1x1
// convolution is a plain matrix product over N * H * W rows).
//
// The input gradient at a stride s is the same product over the input's pixels, taken by
// phases: the pixels of one input row whose column is congruent modulo s read the same taps, so
// each tile lists only the taps that reach it (no products of zeros, no phase copies). The
// weight gradient sums, for each tap, the products of input and gradient rows over the pixels.
//
// Every output element is one chain of multiply-adds in an order fixed by the shapes (taps, then
// channels; blocks of the reduction added in order), so the results do not depend on the number
// of threads.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "../activation.hpp"
#include "../parallel.hpp"
#include "../shape.hpp"
#include "conv_kernels.hpp"
#include "conv_packing.hpp"
#include "conv_padded_rows.hpp"
#include "scratch.hpp"

namespace convpool::detail {

// A block of the reduction, in values of one row: its weight panel (this many steps of nr
// channels) stays in the L2 cache with the block's rows of pixels.
constexpr int64_t kChannelsLastDepth = 512;
// Tiles of pixels per work item at most: enough rows to reuse each weight panel many times.
constexpr int64_t kChannelsLastTiles = 16;

// Weight panels of nr columns for the channels-last product of each group: panel j of group g
// holds, tap by tap and channel by channel (the reduction's order), nr values of columns
// [j * nr, j * nr + nr), zero past the last column. The value of (column, tap, channel) is
// weight[g * strides.group + column * strides.column + channel * strides.channel + tap]: the
// weight's taps are contiguous, and what its columns and channels are depends on the product.
struct WeightStrides {
  int64_t group, column, channel;
};

inline int64_t channels_last_panel_size(int64_t taps, int64_t channels, int nr) { return taps * channels * nr; }

template <typename T>
void pack_channels_last_panels_into(int64_t groups, int64_t columns, int64_t taps, int64_t channels, int nr,
                                    const T* weight, WeightStrides strides, T* out) {
  const int64_t panels = ceil_div(columns, nr), size = channels_last_panel_size(taps, channels, nr);
  parallel_for(groups * panels, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = item / panels, j0 = item % panels * nr;
      const int valid = static_cast<int>(std::min<int64_t>(nr, columns - j0));
      T* panel = out + item * size;
      // Eight channels at a time, then tap by tap: the weight values these read (eight runs of
      // taps per column) and the panel rows they write (eight consecutive ones) stay in the L1
      // cache. Going through the taps innermost would write rows a tap's size apart, which for a
      // large layer fall in one cache set and evict each other.
      constexpr int64_t kChannelsAtOnce = 8;
      for (int64_t k0 = 0; k0 < channels; k0 += kChannelsAtOnce) {
        const int64_t k1 = std::min(channels, k0 + kChannelsAtOnce);
        for (int64_t t = 0; t < taps; ++t) {
          T* rows = panel + t * channels * nr;
          for (int col = 0; col < valid; ++col) {
            const T* source = weight + g * strides.group + (j0 + col) * strides.column + t;
            for (int64_t k = k0; k < k1; ++k) rows[k * nr + col] = source[k * strides.channel];
          }
          for (int64_t k = k0; k < k1; ++k) std::fill(rows + k * nr + valid, rows + (k + 1) * nr, T(0));
        }
      }
    }
  });
}

// The forward's panels: columns are a group's output channels, channels its input channels.
template <typename T>
void pack_channels_last_weight_into(const T* weight, const Conv2dParams& p, int nr, T* out) {
  const int64_t m = p.out_per_group(), ins = p.in_per_group(), taps = p.taps();
  pack_channels_last_panels_into<T>(p.groups, m, taps, ins, nr, weight, {m * ins * taps, ins * taps, taps}, out);
}

inline int64_t channels_last_weight_size(const Conv2dParams& p, int nr) {
  return p.groups * ceil_div(p.out_per_group(), nr) * channels_last_panel_size(p.taps(), p.in_per_group(), nr);
}

// Per-thread buffers of multiply_pixel_block.
template <typename T>
struct PixelBlockWorkspace {
  std::vector<const T*> rows, tile_rows, tap_panels;
  std::vector<T> edges;  // merged window rows cut by the image's edge (WindowRows)
};

// For one block of `pixels` pixels of one group: out[i * ldc + col] = column_init[col] + the sum
// over the block's taps u and channels k of ws.rows[(tile * taps + u) * mr + i % mr][k] (the
// block's indirection buffer, tile by tile, i in tile i / mr) times the weight of column col at
// tap tap_ids[u] and channel k, for the columns of panels [j_begin, j_end) (panel j at
// group_panels + j * panel_size); then the activation. column_init may be null.
template <typename T>
void multiply_pixel_block(const ChannelsLastKernels<T>& kernels, int64_t pixels, int64_t taps, const int64_t* tap_ids,
                          int64_t channels, const T* group_panels, int64_t panel_size, int64_t j_begin, int64_t j_end,
                          int64_t columns, T* out, int64_t ldc, const T* column_init, Activation activation,
                          PixelBlockWorkspace<T>& ws) {
  const int mr = kernels.mr, nr = kernels.nr;
  const int64_t tiles = ceil_div(pixels, mr);
  if (taps == 0) {  // no tap reaches these pixels (a stride larger than the kernel)
    const int64_t c0 = j_begin * nr, c1 = std::min(columns, j_end * nr);
    for (int64_t i = 0; i < pixels; ++i) {
      T* row = out + i * ldc;
      for (int64_t col = c0; col < c1; ++col) row[col] = column_init ? column_init[col] : T(0);
      activate_rows(activation, row + c0, 1, c1 - c0, 0);
    }
    return;
  }
  const int64_t channel_block = std::min(channels, kChannelsLastDepth);
  const int64_t taps_per_block = std::max<int64_t>(1, kChannelsLastDepth / channel_block);
  ws.tile_rows.resize(taps_per_block * mr);
  ws.tap_panels.resize(taps_per_block);
  for (int64_t u0 = 0; u0 < taps; u0 += taps_per_block) {
    const int64_t u1 = std::min(taps, u0 + taps_per_block);
    for (int64_t c0 = 0; c0 < channels; c0 += channel_block) {
      const int64_t c1 = std::min(channels, c0 + channel_block);
      const bool first = u0 == 0 && c0 == 0, last = u1 == taps && c1 == channels;
      for (int64_t j = j_begin; j < j_end; ++j) {
        const T* panel = group_panels + j * panel_size;
        for (int64_t u = u0; u < u1; ++u) ws.tap_panels[u - u0] = panel + (tap_ids[u] * channels + c0) * nr;
        const int n_valid = static_cast<int>(std::min<int64_t>(nr, columns - j * nr));
        const T* init = first && column_init ? column_init + j * nr : nullptr;
        for (int64_t tile = 0; tile < tiles; ++tile) {
          const T* const* rows = ws.rows.data() + tile * taps * mr;
          if (!(first && last)) {  // the block's taps, moved to its first channel
            for (int64_t u = u0; u < u1; ++u)
              for (int i = 0; i < mr; ++i) ws.tile_rows[(u - u0) * mr + i] = rows[u * mr + i] + c0;
            rows = ws.tile_rows.data();
          }
          const int m_valid = static_cast<int>(std::min<int64_t>(mr, pixels - tile * mr));
          T* c = out + tile * mr * ldc + j * nr;
          kernels.multiply(u1 - u0, c1 - c0, rows, ws.tap_panels.data(), c, ldc, m_valid, n_valid, !first, init);
          if (last) activate_rows(activation, c, m_valid, n_valid, ldc);
        }
      }
    }
  }
}

// Image, row and column of consecutive pixels of (images, rows, columns) planes, advanced without
// a division per pixel.
struct PixelCursor {
  int64_t n, row, column, rows, columns;
  PixelCursor(int64_t q, int64_t rows_, int64_t columns_)
      : n(q / (rows_ * columns_)), row(q / columns_ % rows_), column(q % columns_), rows(rows_), columns(columns_) {}
  void advance() {
    if (++column < columns) return;
    column = 0;
    if (++row < rows) return;
    row = 0;
    ++n;
  }
};

// The rows of one pixel's window, tap by tap, in an NHWC image of height x width pixels of
// `channels` channels, tap (kh, kw) lying at (row + direction * kh * dilation_h, column +
// direction * kw * dilation_w) from the window's origin (direction -1: the pixels of the output
// gradient that reach an input pixel): the taps' offsets, and the check whether every tap falls
// inside the image, so that each row is the origin's plus its offset, with no test per tap.
//
// Merged (one group, forward, dense columns): a window row's taps read consecutive pixels, whose
// channels lie side by side, so each window row is one run of KW * channels values, in the
// weight panels' (kw, channel) order, and the product sees KH taps of that many channels: fewer,
// longer runs for layers of few channels. A run that the image's edge cuts is copied, with its
// zeros, into `edges`.
struct WindowRows {
  int64_t kernel_h, kernel_w, step_h, step_w, height, width, channels;
  bool merged;
  int64_t run;                   // the values of a row the product reads
  std::vector<int64_t> offsets;  // of each row (tap kh * KW + kw, or window row kh when merged), in values
  // group_channels: the channels of a group, which a tap's row holds (merged: all of them).
  WindowRows(const WindowDim& h, const WindowDim& w, int64_t height_, int64_t width_, int64_t channels_,
             int64_t group_channels, int64_t direction, bool merge = false)
      : kernel_h(h.kernel),
        kernel_w(w.kernel),
        step_h(direction * h.dilation),
        step_w(direction * w.dilation),
        height(height_),
        width(width_),
        channels(channels_),
        merged(merge),
        run(merge ? w.kernel * channels_ : group_channels),
        offsets(merge ? h.kernel : h.kernel * w.kernel) {
    for (int64_t kh = 0; kh < kernel_h; ++kh)
      for (int64_t kw = 0; kw < (merged ? 1 : kernel_w); ++kw)
        offsets[kh * (merged ? 1 : kernel_w) + kw] = (kh * step_h * width + kw * step_w) * channels;
  }

  static bool spans(int64_t origin, int64_t last, int64_t size) {
    return std::min(origin, last) >= 0 && std::max(origin, last) < size;
  }

  // Row t (tap kh * KW + kw, or window row kh when merged) of the window at (row, column) of
  // `image`, or zeros (run values) where it lies outside; a merged row that the image's edge cuts
  // is copied, with its zeros, onto the end of `edges` (its capacity reserved by the caller, so
  // that the rows pointing into it never move).
  template <typename T>
  const T* row(const T* image, int64_t origin_row, int64_t origin_column, int64_t t, const T* zeros,
               std::vector<T>& edges) const {
    const int64_t r = origin_row + (merged ? t : t / kernel_w) * step_h;
    if (r < 0 || r >= height) return zeros;
    if (!merged) {
      const int64_t c = origin_column + t % kernel_w * step_w;
      return c >= 0 && c < width ? image + (r * width + c) * channels : zeros;
    }
    if (spans(origin_column, origin_column + kernel_w - 1, width))
      return image + (r * width + origin_column) * channels;
    const size_t start = edges.size();
    edges.resize(start + run);  // zeros, within the reserved capacity
    T* copy = edges.data() + start;
    for (int64_t kw = std::max<int64_t>(0, -origin_column); kw < std::min(kernel_w, width - origin_column); ++kw) {
      const T* pixel = image + (r * width + origin_column + kw) * channels;
      for (int64_t c = 0; c < channels; ++c) copy[kw * channels + c] = pixel[c];
    }
    return copy;
  }

  // rows[t * stride] = every row t of the window, as row() gives it; a window inside the image
  // takes its rows' offsets from its origin, with no test per row.
  template <typename T>
  void fill(const T* image, int64_t origin_row, int64_t origin_column, const T* zeros, const T** rows, int64_t stride,
            std::vector<T>& edges) const {
    if (spans(origin_row, origin_row + (kernel_h - 1) * step_h, height) &&
        spans(origin_column, origin_column + (kernel_w - 1) * step_w, width)) {
      const T* origin = image + (origin_row * width + origin_column) * channels;
      for (size_t t = 0; t < offsets.size(); ++t) rows[t * stride] = origin + offsets[t];
      return;
    }
    for (size_t t = 0; t < offsets.size(); ++t)
      rows[t * stride] = row(image, origin_row, origin_column, static_cast<int64_t>(t), zeros, edges);
  }
};

// Whether `columns` channels fill at least half of the channels-last tiles' columns. Where they do
// not (a layer of 6 output channels), conv.hpp runs the NCHW kernels, which vectorize over pixels,
// on transposed copies.
template <typename T>
bool channels_last_fills(int64_t columns) {
  const ChannelsLastKernels<T>& kernels = channels_last_kernels_for<T>(1, columns);
  return 2 * columns >= round_up(columns, kernels.nr);
}

// out[n][c][q] = in[n][q][c] for `batch` images of `pixels` pixels of `channels` channels (NHWC to
// NCHW; with pixels and channels swapped, back), in blocks that stay in the cache.
template <typename T>
void transpose_images(const T* in, T* out, int64_t batch, int64_t pixels, int64_t channels) {
  constexpr int64_t kBlock = 32;
  const int64_t pixel_blocks = ceil_div(pixels, kBlock);
  parallel_for(batch * pixel_blocks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / pixel_blocks, q0 = item % pixel_blocks * kBlock, q1 = std::min(pixels, q0 + kBlock);
      const T* image = in + n * pixels * channels;
      T* planes = out + n * pixels * channels;
      for (int64_t c0 = 0; c0 < channels; c0 += kBlock)
        for (int64_t c = c0; c < std::min(channels, c0 + kBlock); ++c)
          for (int64_t q = q0; q < q1; ++q) planes[c * pixels + q] = image[q * channels + c];
    }
  });
}

// Pixels per work item and the split of the columns' panels, so that the items are about as many
// as work_items_wanted(): blocks of whole tiles (at most kChannelsLastTiles), and the panels cut
// into ranges where the blocks are too few to share evenly (nine blocks on two threads would
// keep one idle a ninth of the time).
struct PixelBlocking {
  int64_t block, blocks, ranges;
  PixelBlocking(int64_t pixels, int64_t units, int mr, int64_t panels) {
    const int64_t wanted = work_items_wanted(), tiles = ceil_div(pixels, mr);
    // Blocks of nearly equal size: 131 tiles make nine blocks of 15 or 14, not eight of 16 and one of 3.
    const int64_t least_blocks =
        std::max(ceil_div(tiles, kChannelsLastTiles), std::min(tiles, ceil_div(wanted, units)));
    block = mr * ceil_div(tiles, least_blocks);
    blocks = ceil_div(pixels, block);
    ranges = std::clamp<int64_t>(ceil_div(2 * wanted, blocks * units), 1, panels);
  }
};

// The dense product over every pixel of the batch (of rows x columns planes) and group: pixel
// (n, row, column) reads the rows of its window in `source` (an NHWC array of window.height x
// window.width pixels of window.channels) at origin(row, column), `channels` of them per group
// and tap, and out[pixel * out_stride + g * out_columns + col] (out_columns per group) receives
// column_init + the products with group g's panels (pack_channels_last_panels_into), then the
// activation.
template <typename T, class Origin>
void multiply_every_pixel(const ChannelsLastKernels<T>& kernels, int64_t batch, int64_t groups, int64_t rows,
                          int64_t columns, const WindowRows& window, Origin&& origin, const T* source, int64_t channels,
                          const T* panels, int64_t out_columns, T* out, int64_t out_stride, const T* column_init,
                          Activation activation) {
  const int mr = kernels.mr;
  const int64_t taps = static_cast<int64_t>(window.offsets.size()), pixels = batch * rows * columns;
  const int64_t group_panels = ceil_div(out_columns, kernels.nr);
  const int64_t panel_size = channels_last_panel_size(taps, window.run, kernels.nr);
  const int64_t image_size = window.height * window.width * window.channels;
  const std::vector<T> zeros(window.run, T(0));
  std::vector<int64_t> tap_ids(taps);
  std::iota(tap_ids.begin(), tap_ids.end(), 0);
  const PixelBlocking split(pixels, groups, mr, group_panels);
  parallel_for(split.blocks * groups * split.ranges, [&](int64_t begin, int64_t end) {
    PixelBlockWorkspace<T> ws;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (groups * split.ranges), g = item / split.ranges % groups, r = item % split.ranges;
      const int64_t q0 = b * split.block, count = std::min(split.block, pixels - q0), tiles = ceil_div(count, mr);
      ws.rows.resize(tiles * taps * mr);
      ws.edges.clear();
      ws.edges.reserve(window.merged ? count * taps * window.run : 0);  // never moved while rows point in
      PixelCursor at(q0, rows, columns);
      for (int64_t tile = 0; tile < tiles; ++tile)
        for (int i = 0; i < mr; ++i, at.advance()) {
          const T** row = ws.rows.data() + tile * taps * mr + i;
          if (tile * mr + i < count) {
            const auto [origin_row, origin_column] = origin(at.row, at.column);
            window.fill(source + at.n * image_size + g * channels, origin_row, origin_column, zeros.data(), row, mr,
                        ws.edges);
          } else {
            for (int64_t t = 0; t < taps; ++t) row[t * mr] = zeros.data();
          }
        }
      multiply_pixel_block(kernels, count, taps, tap_ids.data(), window.run, panels + g * group_panels * panel_size,
                           panel_size, group_panels * r / split.ranges, group_panels * (r + 1) / split.ranges,
                           out_columns, out + q0 * out_stride + g * out_columns, out_stride,
                           column_init ? column_init + g * out_columns : nullptr, activation, ws);
    }
  });
}

// The forward pass, on the panels of nr output channels panels_for(nr) gives
// (pack_channels_last_weight_into's layout).
template <typename T, class PanelsFor>
void conv2d_forward_channels_last(const T* x, PanelsFor&& panels_for, const T* bias, T* y, const Conv2dParams& p,
                                  Activation activation) {
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  // The rows are the batch's pixels, too many for their tiles' fill to matter: by the columns alone (rows = 1
  // leaves the widest tile of equals).
  const ChannelsLastKernels<T>& kernels = channels_last_kernels_for<T>(1, p.out_per_group());
  const Panels<T> packed = panels_for(kernels.nr);
  // Window rows merge for layers of few channels, whose taps are short runs of the reduction.
  const bool merge = p.groups == 1 && w.dilation == 1 && w.kernel > 1 && p.in_channels < 64;
  multiply_every_pixel(
      kernels, p.batch, p.groups, h.output, w.output,
      WindowRows(h, w, h.input, w.input, p.in_channels, p.in_per_group(), 1, merge),
      [&](int64_t oh, int64_t ow) {
        return std::pair{h.start(oh), w.start(ow)};
      },
      x, p.in_per_group(), packed.get(), p.out_per_group(), y, p.out_channels, bias, activation);
}

// The input gradient: grad_input[n, ih, iw, g * C_in/g + ci] = the sum over the taps (kh, kw) that
// reach it from an output pixel (oh, ow) (ih = oh * stride - padding + kh * dilation) and over
// the group's output channels co of grad_output[n, oh, ow, g * m + co] * weight[g * m + co, ci,
// kh, kw].
template <typename T>
void conv2d_backward_input_channels_last(const T* grad_output, const T* weight, T* grad_input, const Conv2dParams& p) {
  const int64_t m = p.out_per_group(), ins = p.in_per_group(), taps = p.taps(), groups = p.groups;
  const ChannelsLastKernels<T>& kernels = channels_last_kernels_for<T>(1, ins);
  const int mr = kernels.mr, nr = kernels.nr;
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t panels = ceil_div(ins, nr), panel_size = channels_last_panel_size(taps, m, nr);
  const ScratchBuffer<T> packed(groups * panels * panel_size);
  // Columns are the group's input channels, channels its output channels.
  pack_channels_last_panels_into<T>(groups, ins, taps, m, nr, weight, {m * ins * taps, taps, ins * taps}, packed.get());
  if (h.stride == 1 && w.stride == 1) {
    // Every tap reaches every pixel (or its zeros): the batch's pixels are one product, each
    // reading its window of the output gradient backwards.
    multiply_every_pixel(
        kernels, p.batch, groups, h.input, w.input, WindowRows(h, w, h.output, w.output, p.out_channels, m, -1),
        [&](int64_t ih, int64_t iw) {
          return std::pair{ih + h.padding, iw + w.padding};
        },
        grad_output, m, static_cast<const T*>(packed.get()), ins, grad_input, p.in_channels,
        static_cast<const T*>(nullptr), Activation::none);
    return;
  }
  // Strided: one item per input row, column phase and group; the phase's pixels lie w.stride
  // apart and read the same taps.
  const std::vector<T> zeros(m, T(0));
  const int64_t phases = std::min(w.stride, w.input), sequences = p.batch * h.input * phases;
  const int64_t ranges = std::clamp<int64_t>(ceil_div(work_items_wanted(), sequences * groups), 1, panels);
  parallel_for(sequences * groups * ranges, [&](int64_t begin, int64_t end) {
    PixelBlockWorkspace<T> ws;
    std::vector<int64_t> tap_ids, out_rows, out_columns;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t sequence = item / (groups * ranges), g = item / ranges % groups, r = item % ranges;
      const int64_t n = sequence / (h.input * phases), ih = sequence / phases % h.input, phase = sequence % phases;
      const int64_t count = ceil_div(w.input - phase, w.stride), tiles = ceil_div(count, mr);
      // The taps whose offset kh * dilation is congruent to ih + padding modulo the stride, and
      // likewise across (conv_padded_rows.hpp's phases).
      const PhaseTaps th = phase_taps(h, (ih + h.padding) % h.stride),
                      tw = phase_taps(w, (phase + w.padding) % w.stride);
      tap_ids.clear();
      for (int64_t qh = 0; qh < th.count; ++qh)
        for (int64_t qw = 0; qw < tw.count; ++qw)
          tap_ids.push_back((th.first_tap + qh * th.step) * w.kernel + tw.first_tap + qw * tw.step);
      const int64_t reaching = static_cast<int64_t>(tap_ids.size());
      ws.rows.resize(tiles * reaching * mr);
      // Tap u reaches the phase's k-th pixel from output row out_rows[u], column out_columns[u] + k.
      out_rows.resize(reaching);
      out_columns.resize(reaching);
      for (int64_t u = 0; u < reaching; ++u) {
        out_rows[u] = (ih + h.padding - tap_ids[u] / w.kernel * h.dilation) / h.stride;
        out_columns[u] = (phase + w.padding - tap_ids[u] % w.kernel * w.dilation) / w.stride;
      }
      const T* image = grad_output + n * h.output * w.output * p.out_channels + g * m;
      for (int64_t tile = 0; tile < tiles; ++tile)
        for (int i = 0; i < mr; ++i) {
          const int64_t k = tile * mr + i;
          const T** row = ws.rows.data() + tile * reaching * mr + i;
          for (int64_t u = 0; u < reaching; ++u) {
            const int64_t oh = out_rows[u], ow = out_columns[u] + k;
            const bool reaches = k < count && oh >= 0 && oh < h.output && ow >= 0 && ow < w.output;
            row[u * mr] = reaches ? image + (oh * w.output + ow) * p.out_channels : zeros.data();
          }
        }
      multiply_pixel_block(kernels, count, reaching, tap_ids.data(), m, packed.get() + g * panels * panel_size,
                           panel_size, panels * r / ranges, panels * (r + 1) / ranges, ins,
                           grad_input + ((n * h.input + ih) * w.input + phase) * p.in_channels + g * ins,
                           w.stride * p.in_channels, static_cast<const T*>(nullptr), Activation::none, ws);
    }
  });
}

// The weight gradient: for each group and tap, the (C_in/groups x m) product of the input rows
// the tap reads with the output gradient rows, summed over the pixels in order. Where the input
// channels would leave rows of a register tile empty, a step's row is a window row's KW taps,
// side by side in the image (ResNet-20's 16 channels: 48 rows), or, with fewer channels still (a
// first layer's three), the block's im2col rows (every tap's channels of a pixel side by side,
// (tap, channel) in the weight's order), copied. A small weight (too few tiles to share) sums
// over a fixed number of pixel chunks, added in chunk order.
template <typename T>
void conv2d_backward_weight_channels_last(const T* grad_output, const T* x, T* grad_weight, const Conv2dParams& p) {
  constexpr int64_t kSteps = 256;  // pixels whose rows are gathered at once
  const int64_t m = p.out_per_group(), ins = p.in_per_group(), taps = p.taps(), groups = p.groups;
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  // The rows each step reads: one tap's channels; or (merged) a window row's, KW taps side by side
  // in the image; or (copied) every tap's, gathered. The first whose register tiles waste least.
  const auto fill = [&](int64_t rows) {
    const ChannelsLastKernels<T>& kernels = channels_last_kernels_for<T>(rows, m);
    return static_cast<double>(rows) / round_up(rows, kernels.mr) * static_cast<double>(m) / round_up(m, kernels.nr);
  };
  int64_t taps_per_row = 1;
  if (p.groups == 1 && w.dilation == 1 && w.kernel > 1 && ins < 64 && fill(w.kernel * ins) > fill(ins))
    taps_per_row = w.kernel;
  // Copying costs about as much as the products it feeds: only where neither of the others fills
  // half a tile.
  if (taps > 1 && fill(taps_per_row * ins) < 0.5 && fill(taps * ins) > fill(taps_per_row * ins)) taps_per_row = taps;
  const bool merged = taps_per_row == w.kernel && taps_per_row < taps, copied = taps_per_row == taps && taps > 1;
  const int64_t units = taps / taps_per_row, row_length = taps_per_row * ins;
  const ChannelsLastKernels<T>& kernels = channels_last_kernels_for<T>(row_length, m);
  const int mr = kernels.mr, nr = kernels.nr;
  const int64_t pixels = p.batch * p.output_plane();
  const int64_t row_tiles = ceil_div(row_length, mr), panels = ceil_div(m, nr);
  // Chunks of at least 512 pixels, so that none is empty; copied rows are shared out by chunks,
  // since every item copies the rows it reads.
  const int64_t tiles = groups * units * row_tiles;  // (group, unit of taps, row tile), each owning its sums
  const int64_t chunks = !copied && tiles * panels >= 16 ? 1 : std::clamp<int64_t>(pixels / 4096, 1, 8);
  // Each item takes a range of the tiles through every block of its chunk's pixels: the block's
  // gradient rows are read from memory once per item, and two items a thread balance the work.
  const int64_t ranges = copied ? 1 : std::clamp<int64_t>(ceil_div(2 * int64_t{get_num_threads()}, chunks), 1, tiles);
  const int64_t weight_size = groups * taps * ins * m;  // sums[chunk][g][tap][ci][co]
  ScratchBuffer<T> sums(chunks * weight_size);
  const std::vector<T> zeros(row_length, T(0));
  const WindowRows window(h, w, h.input, w.input, p.in_channels, ins, 1, merged);
  const int64_t image_size = h.input * w.input * p.in_channels;
  parallel_for(chunks * ranges, [&](int64_t begin, int64_t end) {
    std::vector<const T*> rows(kSteps), taps_rows(copied ? taps : 0);
    std::vector<T> block(copied ? kSteps * row_length : 0), edges;
    edges.reserve(merged ? kSteps * row_length : 0);  // never moved while rows point in
    for (int64_t item = begin; item < end; ++item) {
      const int64_t chunk = item / ranges, r = item % ranges;
      const int64_t first = tiles * r / ranges, last = tiles * (r + 1) / ranges;
      const int64_t q_begin = pixels * chunk / chunks, q_end = pixels * (chunk + 1) / chunks;
      for (int64_t q0 = q_begin; q0 < q_end; q0 += kSteps) {
        const int64_t steps = std::min(kSteps, q_end - q0);
        for (int64_t tile = first; tile < last; ++tile) {
          const int64_t g = tile / (units * row_tiles), u = tile / row_tiles % units, k0 = tile % row_tiles * mr;
          if (tile == first || k0 == 0) {  // the block's rows of group g for unit u
            edges.clear();
            PixelCursor at(q0, h.output, w.output);
            for (int64_t s = 0; s < steps; ++s, at.advance()) {
              const T* image = x + at.n * image_size + g * ins;
              const int64_t ih = h.start(at.row), iw = w.start(at.column);
              if (!copied) {
                rows[s] = window.row(image, ih, iw, u, zeros.data(), edges);
                continue;
              }
              window.fill(image, ih, iw, zeros.data(), taps_rows.data(), 1, edges);
              T* row = block.data() + s * row_length;
              // A loop, not std::copy: a memmove call would cost more than three channels' copy.
              for (int64_t v = 0; v < taps; ++v)
                for (int64_t c = 0; c < ins; ++c) row[v * ins + c] = taps_rows[v][c];
              rows[s] = row;
            }
          }
          const T* gradient = grad_output + q0 * p.out_channels + g * m;
          T* c = sums.get() + chunk * weight_size + (g * taps + u * taps_per_row) * ins * m;
          const int m_valid = static_cast<int>(std::min<int64_t>(mr, row_length - k0));
          for (int64_t j = 0; j < panels; ++j)
            kernels.correlate(steps, rows.data(), k0, gradient + j * nr, p.out_channels, c + k0 * m + j * nr, m,
                              m_valid, static_cast<int>(std::min<int64_t>(nr, m - j * nr)), q0 > q_begin);
        }
      }
    }
  });
  // Chunks added in order, and (tap, ci, co) turned into the weight's (co, ci, tap).
  parallel_for(groups * m, [&](int64_t begin, int64_t end) {
    for (int64_t gco = begin; gco < end; ++gco) {
      const int64_t g = gco / m, co = gco % m;
      for (int64_t ci = 0; ci < ins; ++ci)
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t at = ((g * taps + t) * ins + ci) * m + co;
          T sum = sums.get()[at];
          for (int64_t chunk = 1; chunk < chunks; ++chunk) sum += sums.get()[chunk * weight_size + at];
          grad_weight[(gco * ins + ci) * taps + t] = sum;
        }
    }
  });
}

// Depthwise layers (groups == C_in) have no reduction over channels to feed a matrix product,
// but their channels lie side by side: each pixel's output row is a sum over its taps of products
// of rows, vectorized over the channels (DepthwiseKernels::channels_last), on the weight laid out
// tap by tap: taps_weight[t * C_out + j] = weight[j, 0, kh, kw]. With a channel multiplier
// (C_out = multiplier * C_in), output channel j reads input channel j / multiplier, and the loops
// are plain ones.
template <typename T>
std::vector<T> depthwise_taps_weight(const T* weight, const Conv2dParams& p) {
  const int64_t taps = p.taps();
  std::vector<T> taps_weight(taps * p.out_channels);
  for (int64_t j = 0; j < p.out_channels; ++j)
    for (int64_t t = 0; t < taps; ++t) taps_weight[t * p.out_channels + j] = weight[j * taps + t];
  return taps_weight;
}

// The (tap, output position) pairs that reach each input position along one dimension
// (output o's tap k reads input o * stride - padding + k * dilation), in tap order.
struct ReachingTaps {
  std::vector<int64_t> begin;                      // input i's pairs are [begin[i], begin[i + 1])
  std::vector<std::pair<int64_t, int64_t>> pairs;  // (tap, output)
  explicit ReachingTaps(const WindowDim& d) : begin(d.input + 1) {
    for (int64_t i = 0; i < d.input; ++i) {
      begin[i] = static_cast<int64_t>(pairs.size());
      for (int64_t k = 0; k < d.kernel; ++k) {
        const int64_t r = i + d.padding - k * d.dilation;
        if (r >= 0 && r % d.stride == 0 && r / d.stride < d.output) pairs.emplace_back(k, r / d.stride);
      }
    }
    begin[d.input] = static_cast<int64_t>(pairs.size());
  }
};

// out[j] = init[j] (or zero) + the sum over u < count of a[u][j / multiplier] * b[u][j].
template <typename T>
void sum_depthwise_products(int64_t count, const T* const* a, const T* const* b, int64_t channels, int64_t multiplier,
                            const T* init, T* out) {
  if (multiplier == 1) return depthwise_kernels<T>().channels_last(count, a, b, channels, init, out);
  for (int64_t j = 0; j < channels; ++j) {
    T sum = 0;
    for (int64_t u = 0; u < count; ++u) sum += a[u][j / multiplier] * b[u][j];
    out[j] = init ? init[j] + sum : sum;
  }
}

// y[q, j] = activation(bias[j] + the sum over the taps inside the input, in tap order, of
// x[pixel under the tap, j / multiplier] * weight).
template <typename T>
void conv2d_forward_depthwise_channels_last(const T* x, const T* weight, const T* bias, T* y, const Conv2dParams& p,
                                            Activation activation) {
  const std::vector<T> taps_weight = depthwise_taps_weight(weight, p);
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t channels = p.out_channels;
  const TapRanges rows_taps(h), columns_taps(w);
  parallel_for(p.batch * p.output_plane(), [&](int64_t begin, int64_t end) {
    std::vector<const T*> rows(p.taps()), weights(p.taps());
    PixelCursor at(begin, h.output, w.output);
    for (int64_t q = begin; q < end; ++q, at.advance()) {
      int64_t count = 0;
      for (int64_t kh = rows_taps.first[at.row]; kh < rows_taps.end[at.row]; ++kh)
        for (int64_t kw = columns_taps.first[at.column]; kw < columns_taps.end[at.column]; ++kw, ++count) {
          const int64_t ih = h.start(at.row) + kh * h.dilation, iw = w.start(at.column) + kw * w.dilation;
          rows[count] = x + ((at.n * h.input + ih) * w.input + iw) * p.in_channels;
          weights[count] = taps_weight.data() + (kh * w.kernel + kw) * channels;
        }
      T* out = y + q * channels;
      sum_depthwise_products(count, rows.data(), weights.data(), channels, p.out_per_group(), bias, out);
      activate_rows(activation, out, 1, channels, 0);
    }
  });
}

// grad_input[p, c] = the sum over the taps that reach input pixel p from an output pixel q, in
// tap order, and over c's output channels j, of grad_output[q, j] * weight[j, tap].
template <typename T>
void conv2d_backward_input_depthwise_channels_last(const T* grad_output, const T* weight, T* grad_input,
                                                   const Conv2dParams& p) {
  const std::vector<T> taps_weight = depthwise_taps_weight(weight, p);
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t multiplier = p.out_per_group();
  const ReachingTaps rows_taps(h), columns_taps(w);
  parallel_for(p.batch * p.input_plane(), [&](int64_t begin, int64_t end) {
    std::vector<const T*> rows(p.taps()), weights(p.taps());
    PixelCursor at(begin, h.input, w.input);
    for (int64_t q = begin; q < end; ++q, at.advance()) {
      int64_t count = 0;
      for (int64_t a = rows_taps.begin[at.row]; a < rows_taps.begin[at.row + 1]; ++a) {
        const auto [kh, oh] = rows_taps.pairs[a];
        for (int64_t b = columns_taps.begin[at.column]; b < columns_taps.begin[at.column + 1]; ++b) {
          const auto [kw, ow] = columns_taps.pairs[b];
          rows[count] = grad_output + ((at.n * h.output + oh) * w.output + ow) * p.out_channels;
          weights[count++] = taps_weight.data() + (kh * w.kernel + kw) * p.out_channels;
        }
      }
      T* out = grad_input + q * p.in_channels;
      if (multiplier == 1) {
        depthwise_kernels<T>().channels_last(count, rows.data(), weights.data(), p.in_channels,
                                             static_cast<const T*>(nullptr), out);
        continue;
      }
      for (int64_t c = 0; c < p.in_channels; ++c) {
        T sum = 0;
        for (int64_t u = 0; u < count; ++u)
          for (int64_t k = c * multiplier; k < (c + 1) * multiplier; ++k) sum += rows[u][k] * weights[u][k];
        out[c] = sum;
      }
    }
  });
}

// The weight gradient: for chunks of kChunk output pixels and each tap, the sum over the chunk's
// pixels in order of x[pixel under the tap] * grad_output[pixel], vectorized over the channels;
// then the chunks added in order.
template <typename T>
void conv2d_backward_weight_depthwise_channels_last(const T* grad_output, const T* x, T* grad_weight,
                                                    const Conv2dParams& p) {
  constexpr int64_t kChunk = 256;
  const WindowDim& h = p.h;
  const WindowDim& w = p.w;
  const int64_t taps = p.taps(), channels = p.out_channels, pixels = p.batch * p.output_plane();
  const int64_t chunks = ceil_div(pixels, kChunk);
  ScratchBuffer<T> sums(chunks * taps * channels);  // sums[chunk][tap][j]
  const std::vector<T> zeros(p.in_channels, T(0));
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    std::vector<const T*> rows(kChunk), gradients(kChunk);
    for (int64_t chunk = begin; chunk < end; ++chunk) {
      const int64_t q0 = chunk * kChunk, count = std::min(pixels, q0 + kChunk) - q0;
      for (int64_t s = 0; s < count; ++s) gradients[s] = grad_output + (q0 + s) * channels;
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t kh = t / w.kernel, kw = t % w.kernel;
        PixelCursor at(q0, h.output, w.output);
        for (int64_t s = 0; s < count; ++s, at.advance()) {
          const int64_t ih = h.start(at.row) + kh * h.dilation, iw = w.start(at.column) + kw * w.dilation;
          const bool inside = ih >= 0 && ih < h.input && iw >= 0 && iw < w.input;
          rows[s] = inside ? x + ((at.n * h.input + ih) * w.input + iw) * p.in_channels : zeros.data();
        }
        sum_depthwise_products(count, rows.data(), gradients.data(), channels, p.out_per_group(),
                               static_cast<const T*>(nullptr), sums.get() + (chunk * taps + t) * channels);
      }
    }
  });
  parallel_for(channels, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j)
      for (int64_t t = 0; t < taps; ++t) {
        T total = sums.get()[t * channels + j];
        for (int64_t chunk = 1; chunk < chunks; ++chunk) total += sums.get()[(chunk * taps + t) * channels + j];
        grad_weight[j * taps + t] = total;
      }
  });
}

}  // namespace convpool::detail
