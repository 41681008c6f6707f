#pragma once
// The vectorized inner kernels of convolution (conv.hpp): matrix-multiply micro-kernels on
// packed panels, direct-convolution tiles (output positions or output channels in the vector
// lanes) and depthwise plane kernels, compiled for several instruction sets and chosen
// once at run time from the CPU's features, so one binary runs on any x86-64 CPU and still uses
// AVX2 or AVX-512 where present.

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "../isa.hpp"

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

}  // namespace convpool

// One room per instruction set, detail/isa/ops_<set>.hpp, in namespace detail::isa_<set>: its
// Ops<T>, which wraps one vector of `lanes` T (unaligned load and store, load_first / store_first
// touching only the first `count` lanes in memory, the others loading as zero, so that none can
// fault past the end of a buffer; broadcast, zero, add and fused multiply-add), and the kernels of
// conv_kernels.inl compiled on it. A new instruction set is one more room and one more entry in
// each table below.
#include "isa/ops_baseline.hpp"
#ifdef CONVPOOL_X86
#include "isa/ops_avx2.hpp"
#include "isa/ops_avx512.hpp"
#endif

namespace convpool {

// Each instruction set's kernel table, built in this one place: the selectors below take the
// active set's, and the kernel tester (cpp/tests/test_kernels.cpp) every set the CPU has.
//
// Register tiles: 12 x 2 vectors leaves AVX-512's 32 registers room for the B loads and the
// broadcast; 6 x 2 does the same with 16 registers.
template <typename T>
GemmMicroKernel<T> gemm_micro_kernel_for(Isa isa) {
#ifdef CONVPOOL_X86
  if (isa == Isa::avx512) return detail::isa_avx512::make_micro_kernel<detail::isa_avx512::Ops<T>, 12, 2>();
  if (isa == Isa::avx2) return detail::isa_avx2::make_micro_kernel<detail::isa_avx2::Ops<T>, 6, 2>();
#endif
  return detail::isa_baseline::make_micro_kernel<detail::isa_baseline::Ops<T>, 6, 2>();
}

// Register tiles of the direct paths, the default first; conv.hpp picks one per layer. On
// AVX-512, 6 x 4 vectors suits layers of few output channels; 8 x 3 vectors (the same 24
// accumulators) fills its tile when the channels are a multiple of 8 or the rows are short (LeNet
// conv2, 16 channels by 96 positions). AVX2 and the baseline have one 6 x 2 tile (12
// accumulators).
template <typename T>
std::vector<DirectKernels<T>> direct_kernel_variants_for(Isa isa) {
#ifdef CONVPOOL_X86
  if (isa == Isa::avx512)
    return {detail::isa_avx512::make_direct_kernels<detail::isa_avx512::Ops<T>, 6, 4, 4, 6>(),
            detail::isa_avx512::make_direct_kernels<detail::isa_avx512::Ops<T>, 8, 3, 4, 6>()};
  if (isa == Isa::avx2) return {detail::isa_avx2::make_direct_kernels<detail::isa_avx2::Ops<T>, 6, 2, 2, 5>()};
#endif
  return {detail::isa_baseline::make_direct_kernels<detail::isa_baseline::Ops<T>, 6, 2, 2, 5>()};
}

// Register tiles of the channel-vector kernel; direct_correlate picks one per layer. 2 x 8
// positions by one vector of channels: 16 accumulators, 16 fused multiply-adds per loaded
// coefficient vector. Two vectors of channels per tile would leave the second idle wherever the
// channels fill one vector (LeNet conv2's 16, on AVX-512), and 16 accumulators already hide the
// multiply-add latency. On AVX-512, 2 x 7
// positions by two vectors (28 of the 32 registers) fits ResNet's 56-, 28-, 14- and 7-wide planes
// exactly, and 4 x 4 positions by one vector its 4x4 planes (ResNet-18's last stage at 112x112
// input), where the 7-wide tiles left three of seven columns idle. 8 positions on 16 registers.
template <typename T>
std::vector<ChannelVectorKernel<T>> channel_vector_kernel_variants_for(Isa isa) {
#ifdef CONVPOOL_X86
  if (isa == Isa::avx512)
    return {detail::isa_avx512::make_channel_kernel<detail::isa_avx512::Ops<T>, 2, 8, 1>(),
            detail::isa_avx512::make_channel_kernel<detail::isa_avx512::Ops<T>, 2, 7, 2>(),
            detail::isa_avx512::make_channel_kernel<detail::isa_avx512::Ops<T>, 1, 7, 4>(),
            detail::isa_avx512::make_channel_kernel<detail::isa_avx512::Ops<T>, 4, 4, 1>()};
  if (isa == Isa::avx2) return {detail::isa_avx2::make_channel_kernel<detail::isa_avx2::Ops<T>, 1, 8, 1>()};
#endif
  return {detail::isa_baseline::make_channel_kernel<detail::isa_baseline::Ops<T>, 1, 8, 1>()};
}

template <typename T>
DepthwiseKernels<T> depthwise_kernels_for(Isa isa) {
#ifdef CONVPOOL_X86
  if (isa == Isa::avx512) return detail::isa_avx512::make_depthwise_kernels<detail::isa_avx512::Ops<T>>();
  if (isa == Isa::avx2) return detail::isa_avx2::make_depthwise_kernels<detail::isa_avx2::Ops<T>>();
#endif
  return detail::isa_baseline::make_depthwise_kernels<detail::isa_baseline::Ops<T>>();
}

// The kernels of active_isa(), chosen once.
template <typename T>
const GemmMicroKernel<T>& gemm_micro_kernel() {
  static const GemmMicroKernel<T> kernel = gemm_micro_kernel_for<T>(active_isa());
  return kernel;
}

template <typename T>
const std::vector<DirectKernels<T>>& direct_kernel_variants() {
  static const std::vector<DirectKernels<T>> variants = direct_kernel_variants_for<T>(active_isa());
  return variants;
}

template <typename T>
const std::vector<ChannelVectorKernel<T>>& channel_vector_kernel_variants() {
  static const std::vector<ChannelVectorKernel<T>> variants = channel_vector_kernel_variants_for<T>(active_isa());
  return variants;
}

template <typename T>
const DirectKernels<T>& direct_kernels() {
  return direct_kernel_variants<T>().front();
}

template <typename T>
const DepthwiseKernels<T>& depthwise_kernels() {
  static const DepthwiseKernels<T> kernels = depthwise_kernels_for<T>(active_isa());
  return kernels;
}

}  // namespace convpool
