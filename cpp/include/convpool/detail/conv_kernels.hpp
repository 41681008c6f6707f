#pragma once
// The vectorized inner kernels of convolution (conv.hpp): matrix-multiply micro-kernels on
// packed panels, direct-convolution tiles (output positions or output channels in the vector
// lanes) and depthwise plane kernels, compiled for every instruction set of the target
// (isa.hpp) and chosen once at run time from the CPU's features.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "../isa.hpp"
#include "../shape.hpp"

namespace convpool {

// A micro-kernel and its register tile: C (mr x nr, row stride ldc) from an mr-wide packed panel
// of A and an nr-wide packed panel of B. See detail/conv_kernels.inl for the contract.
template <typename T>
struct GemmMicroKernel {
  int mr, nr;
  void (*run)(int64_t depth, const T* a, const T* b, T* c, int64_t ldc, int m_valid, int n_valid, bool accumulate,
              const T* row_init);
};

// Depthwise convolution of one plane read through per-tap offsets (tap t of output (oh, ow)
// reads base[oh * row_stride + ow + offsets[t]], rows readable to whole vectors of `lanes` past
// the output's width) and its weight gradient. See detail/conv_kernels.inl.
template <typename T>
struct DepthwiseKernels {
  int lanes;
  void (*plane)(const T* base, int64_t row_stride, const T* kernel, int64_t kernel_h, int64_t kernel_w,
                const int64_t* offsets, bool accumulate, T init_value, T* out, int64_t out_h, int64_t out_w,
                int64_t out_stride);
  void (*weight_plane)(const T* base, int64_t row_stride, const T* grad, int64_t out_h, int64_t out_w,
                       int64_t grad_stride, int64_t kernel_h, int64_t kernel_w, const int64_t* offsets, T* sums);
  // Channels last: out[j] = init[j] + the sum over u < count of a[u][j] * b[u][j], j < channels.
  void (*channels_last)(int64_t count, const T* const* a, const T* const* b, int64_t channels, const T* init, T* out);
};

// Convolutions computed directly on zero-padded row tiles (conv.hpp):
// `multiply` is a register tile of mr output channels by nr output positions whose input rows
// are read in place at per-step offsets; `correlate` sums products of `rows` output-gradient rows
// and `cols` shifted input rows for the weight gradient. See detail/conv_kernels.inl.
template <typename T>
struct DirectKernels {
  int mr, nr, lanes, rows, cols;
  void (*multiply)(int64_t depth, const T* a, const T* base, const int64_t* offsets, T* c, int64_t ldc, int m_valid,
                   int n_valid, const T* row_init);
  void (*correlate)(int64_t images, int64_t length, const T* const* rows, int64_t rows_stride, const T* base,
                    int64_t base_stride, const int64_t* offsets, int valid_cols, T* sums, int64_t ld_sums);
};

// Direct convolution with the output channels in the vector lanes: `multiply` computes `rows` x
// `cols` output positions by `channels` output channels. See detail/conv_kernels.inl.
template <typename T>
struct ChannelVectorKernel {
  int rows, cols, channels;
  void (*multiply)(int64_t depth, const T* a, const T* base, int64_t row_stride, const int64_t* offsets, T* out,
                   int64_t out_row_stride, int64_t channel_stride, int m_valid, int rows_valid, int cols_valid,
                   const T* row_init);
};

// Convolution of channels-last (NHWC) activations as a matrix product whose rows are pixels and
// whose columns are channels, vectorized over the channels: `multiply` computes mr pixels by nr
// output channels from each pixel's rows, one per tap (an indirection buffer, where a tap in the
// padding points at zeros), against nr-wide weight panels, one per tap; `correlate` sums over a
// run of pixels the products of mr input channels of each pixel's row with nr channels of its
// gradient row (the weight gradient). See detail/conv_kernels.inl.
template <typename T>
struct ChannelsLastKernels {
  int mr, nr;
  void (*multiply)(int64_t taps, int64_t channels, const T* const* rows, const T* const* panels, T* c, int64_t ldc,
                   int m_valid, int n_valid, bool accumulate, const T* column_init);
  void (*correlate)(int64_t steps, const T* const* rows, int64_t row_offset, const T* b, int64_t ldb, T* c, int64_t ldc,
                    int m_valid, int n_valid, bool accumulate);
};

// Every kernel of one instruction set, as its room (detail/isa/) builds them: the register tiles
// are the set's choice, since they follow its register count.
template <typename T>
struct KernelTable {
  GemmMicroKernel<T> gemm;
  std::vector<DirectKernels<T>> direct;                // the default first; conv.hpp picks one per layer
  std::vector<ChannelVectorKernel<T>> channel_vector;  // direct_correlate picks one per layer
  DepthwiseKernels<T> depthwise;
  std::vector<ChannelsLastKernels<T>> channels_last;  // the widest first; channels_last_kernels_for picks
};

}  // namespace convpool

// The rooms' kernels, in namespace detail::isa_<set>: its Ops<T>, which wraps one vector of `lanes`
// T (unaligned load and store, load_first / store_first touching only the first `count` lanes in
// memory, the others loading as zero, so that none can fault past the end of a buffer; broadcast,
// zero, add and fused multiply-add), the kernels of conv_kernels.inl compiled on it, and
// make_kernel_table(InstructionSet, T).
#include "isa/baseline_kernels.hpp"
#ifdef CONVPOOL_X86
#include "isa/x86/avx2_kernels.hpp"
#include "isa/x86/avx512_kernels.hpp"
#elif defined(__aarch64__)
#include "isa/arm/asimd_kernels.hpp"
#endif

namespace convpool {

// The kernel table of `isa` (the kernel tester takes every set the CPU has).
template <typename T>
KernelTable<T> kernel_table_for(Isa isa) {
  return visit_isa(isa, [](auto tag) { return make_kernel_table(tag, T{}); });
}

// The kernels of active_isa(), chosen once.
template <typename T>
const KernelTable<T>& kernel_table() {
  static const KernelTable<T> table = kernel_table_for<T>(active_isa());
  return table;
}

template <typename T>
const GemmMicroKernel<T>& gemm_micro_kernel() {
  return kernel_table<T>().gemm;
}

template <typename T>
const std::vector<DirectKernels<T>>& direct_kernel_variants() {
  return kernel_table<T>().direct;
}

template <typename T>
const std::vector<ChannelVectorKernel<T>>& channel_vector_kernel_variants() {
  return kernel_table<T>().channel_vector;
}

template <typename T>
const DirectKernels<T>& direct_kernels() {
  return direct_kernel_variants<T>().front();
}

template <typename T>
const DepthwiseKernels<T>& depthwise_kernels() {
  return kernel_table<T>().depthwise;
}

// The first of `variants` with the largest fill(variant): the register tile that wastes least.
template <typename Variant, class Fill>
const Variant& least_waste(const std::vector<Variant>& variants, Fill&& fill) {
  const Variant* best = nullptr;
  double best_fill = 0;
  for (const Variant& variant : variants)
    if (const double f = fill(variant); !best || f > best_fill) {
      best = &variant;
      best_fill = f;
    }
  return *best;
}

// The channels-last kernels whose tiles waste least of `columns` (vector lanes, the dearer to
// waste), then of `rows` (the widest of equals).
template <typename T>
const ChannelsLastKernels<T>& channels_last_kernels_for(int64_t rows, int64_t columns) {
  return least_waste(kernel_table<T>().channels_last, [&](const ChannelsLastKernels<T>& kernels) {
    const double column_fill = static_cast<double>(columns) / round_up(columns, kernels.nr);
    const double row_fill = static_cast<double>(rows) / round_up(rows, kernels.mr);
    return column_fill + row_fill / 1024;  // ties of the columns broken by the rows
  });
}

// The direct kernels whose register tiles cover `rows` output channels by `columns` positions.
template <typename T>
const DirectKernels<T>& direct_kernels_for(int64_t rows, int64_t columns) {
  return least_waste(direct_kernel_variants<T>(), [&](const DirectKernels<T>& kernels) {
    return static_cast<double>(rows) / round_up(rows, kernels.mr) * static_cast<double>(columns) /
           round_up(columns, kernels.nr);
  });
}

// The channel-vector kernel whose register tile covers `m` output channels by tiles of
// `tile_rows` rows of `out_w` positions.
template <typename T>
const ChannelVectorKernel<T>& channel_kernel_for(int64_t m, int64_t tile_rows, int64_t out_w) {
  return least_waste(channel_vector_kernel_variants<T>(), [&](const ChannelVectorKernel<T>& kernel) {
    return static_cast<double>(m) / round_up(m, kernel.channels) * static_cast<double>(out_w) /
           round_up(out_w, kernel.cols) * static_cast<double>(tile_rows) / round_up(tile_rows, kernel.rows);
  });
}

}  // namespace convpool
