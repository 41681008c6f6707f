#pragma once
// What the convolution paths share to multiply: how a call's work is cut into items
// (work_items_wanted, channel_block), the packing of each group's weight matrix into panels of
// register-tile rows, for one call or once ahead of the calls (Panels, packing_on_call), and the
// activation applied to finished output rows.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "../activation.hpp"
#include "../parallel.hpp"
#include "../shape.hpp"
#include "scratch.hpp"

namespace convpool::detail {

// The activation over `rows` rows of `width` elements, `stride` apart.
template <typename T>
void activate_rows(Activation activation, T* data, int64_t rows, int64_t width, int64_t stride) {
  if (activation == Activation::none) return;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = data + r * stride;
#pragma omp simd
    for (int64_t i = 0; i < width; ++i) row[i] = relu_of(row[i]);
  }
}

// Work items wanted per thread: enough that items of unequal size still load the threads evenly.
// Where the images (times groups) alone are fewer, as for inference on one image, a convolution
// also cuts each image's output into tiles of positions and blocks of output channels. Every
// output element is still one chain of multiply-adds over the reduction, in a fixed order,
// whichever tile or block computes it, so the cut may follow the number of threads without
// changing a result.
inline int64_t work_items_wanted() { return 4 * int64_t{get_num_threads()}; }

// Output channels per block, so that `items` items per block become about `wanted`: whole
// register tiles of `panel_rows`, and at least 32 channels, whose multiply-adds repay the input
// tile each block reads again.
inline int64_t channel_block(int64_t m, int panel_rows, int64_t items, int64_t wanted) {
  constexpr int64_t kMinBlockChannels = 32;
  if (items >= wanted) return m;
  return std::min(m, round_up(std::max(ceil_div(m, ceil_div(wanted, items)), kMinBlockChannels), panel_rows));
}

// Packs rows [i0, i0 + mr) of a (rows x depth) matrix, given element-wise by value(i, d), into
// one panel: out[d * mr + r] = value(i0 + r, d), zero past the last row. Eight rows are read side
// by side, a cache line of each at a time: more could evict each other from the L1 cache when the
// row length is a multiple of a large power of two.
template <typename T, class Value>
void pack_row_panel(int64_t i0, int64_t rows, int64_t depth, int mr, Value&& value, T* out) {
  constexpr int kRowsAtOnce = 8;
  const int valid = static_cast<int>(std::min<int64_t>(mr, rows - i0));
  for (int r0 = 0; r0 < mr; r0 += kRowsAtOnce) {
    const int r1 = std::min(mr, r0 + kRowsAtOnce), valid_end = std::clamp(valid, r0, r1);
    for (int64_t d = 0; d < depth; ++d) {
      for (int r = r0; r < valid_end; ++r) out[d * mr + r] = value(i0 + r, d);
      for (int r = valid_end; r < r1; ++r) out[d * mr + r] = T(0);
    }
  }
}

// All the panels of the matrix, one after another.
template <typename T, class Value>
void pack_row_panels(int64_t rows, int64_t depth, int mr, Value&& value, T* out) {
  for (int64_t i0 = 0; i0 < rows; i0 += mr) pack_row_panel(i0, rows, depth, mr, value, out + i0 * depth);
}

// Packs each group's (rows x depth) A matrix, value(g, i, d), into mr-row panels at `out`: group
// g's panels start at g * group_stride(...). The panels are packed in parallel, since a batch of
// one image may take as long to pack the weights as to use them; every element is written.
inline int64_t group_stride(int64_t rows, int64_t depth, int mr) { return round_up(rows, mr) * depth; }

template <typename T, class Value>
void pack_group_panels_into(int64_t groups, int64_t rows, int64_t depth, int mr, Value&& value, T* out) {
  const int64_t stride = group_stride(rows, depth, mr), panels = ceil_div(rows, mr);
  parallel_for(groups * panels, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = item / panels, i0 = item % panels * mr;
      pack_row_panel<T>(
          i0, rows, depth, mr, [&](int64_t i, int64_t d) { return value(g, i, d); }, out + g * stride + i0 * depth);
    }
  });
}

// The same panels in the calling thread's scratch buffer, for one call.
template <typename T, class Value>
ScratchBuffer<T> pack_group_panels(int64_t groups, int64_t rows, int64_t depth, int mr, Value&& value) {
  ScratchBuffer<T> packed(groups * group_stride(rows, depth, mr));
  pack_group_panels_into<T>(groups, rows, depth, mr, value, packed.get());
  return packed;
}

// A call's weight panels (pack_group_panels' layout): packed for the call, or borrowed from a
// weight packed once ahead of the calls (PackedConvWeight in conv.hpp).
template <typename T>
class Panels {
 public:
  explicit Panels(ScratchBuffer<T>&& packed) : packed_(std::move(packed)), data_(packed_->get()) {}
  explicit Panels(const T* borrowed) : data_(borrowed) {}
  const T* get() const { return data_; }

 private:
  std::optional<ScratchBuffer<T>> packed_;
  const T* data_;
};

// The panels of mr rows of each group's (rows x depth) A matrix, value(g, i, d), packed when the
// call asks for them: what a convolution without a packed weight passes as its `panels_for`.
template <typename T, class Value>
auto packing_on_call(int64_t groups, int64_t rows, int64_t depth, Value&& value) {
  return [=](int mr) { return Panels<T>(pack_group_panels<T>(groups, rows, depth, mr, value)); };
}

}  // namespace convpool::detail
