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

#include "isa.hpp"
#include "parallel.hpp"

#ifdef CONVPOOL_X86
#include <immintrin.h>
#endif

namespace convpool {

// A micro-kernel and its register tile: C (mr x nr, row stride ldc) from an mr-wide packed panel
// of A and an nr-wide packed panel of B. See detail/simd_kernels.inl for the contract.
template <typename T>
struct GemmMicroKernel {
  int mr, nr;
  void (*run)(int64_t depth, const T* a, const T* b, T* c, int64_t ldc, int m_valid, int n_valid, bool accumulate,
              const T* row_init);
};

// Depthwise convolution of one plane read through per-tap offsets (tap t of output (oh, ow)
// reads base[oh * row_stride + ow + offsets[t]], rows readable to whole vectors of `lanes` past
// the output's width) and its weight gradient. See detail/simd_kernels.inl.
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
// and `cols` shifted input rows for the weight gradient. See detail/simd_kernels.inl.
template <typename T>
struct DirectKernels {
  int mr, nr, lanes, rows, cols;
  void (*multiply)(int64_t depth, const T* a, const T* base, const int64_t* offsets, T* c, int64_t ldc, int m_valid,
                   int n_valid, const T* row_init);
  void (*correlate)(int64_t images, int64_t length, const T* const* rows, int64_t rows_stride, const T* base,
                    int64_t base_stride, const int64_t* offsets, int valid_cols, T* sums, int64_t ld_sums);
};

// Direct convolution with the output channels in the vector lanes: `multiply` computes `rows` x
// `cols` output positions by `channels` output channels. See detail/simd_kernels.inl.
template <typename T>
struct ChannelVectorKernel {
  int rows, cols, channels;
  void (*multiply)(int64_t depth, const T* a, const T* base, int64_t row_stride, const int64_t* offsets, T* out,
                   int64_t out_row_stride, int64_t channel_stride, int m_valid, int rows_valid, int cols_valid,
                   const T* row_init);
};

namespace detail {

// Each instruction set's Ops<T> wraps one vector of `lanes` T: unaligned load and store,
// load_first / store_first touching only the first `count` lanes in memory (the others load as
// zero; none can fault past the end of a buffer), broadcast, zero, add and fused multiply-add.

// Portable fallback: GCC vector extensions of 16 bytes (SSE2 on x86-64), multiply then add.
namespace isa_baseline {
template <typename Scalar>
struct Ops {
  using T = Scalar;
  typedef Scalar V __attribute__((vector_size(16)));
  static constexpr int lanes = 16 / sizeof(Scalar);
  static V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, V v) { std::memcpy(p, &v, sizeof v); }
  static V load_first(const T* p, int count) {
    V v{};
    std::memcpy(&v, p, count * sizeof(T));
    return v;
  }
  static void store_first(T* p, V v, int count) { std::memcpy(p, &v, count * sizeof(T)); }
  static V broadcast(T x) { return V{} + x; }
  static V zero() { return V{}; }
  static V add(V a, V b) { return a + b; }
  static V fma(V a, V b, V c) { return a * b + c; }
};
#include "detail/simd_kernels.inl"
}  // namespace isa_baseline

#ifdef CONVPOOL_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace isa_avx2 {
template <typename Scalar>
struct Ops;
template <>
struct Ops<float> {
  using T = float;
  using V = __m256;
  static constexpr int lanes = 8;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i first(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_first(const T* p, int count) { return _mm256_maskload_ps(p, first(count)); }
  static void store_first(T* p, V v, int count) { _mm256_maskstore_ps(p, first(count), v); }
  static V broadcast(T x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct Ops<double> {
  using T = double;
  using V = __m256d;
  static constexpr int lanes = 4;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static __m256i first(int count) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_first(const T* p, int count) { return _mm256_maskload_pd(p, first(count)); }
  static void store_first(T* p, V v, int count) { _mm256_maskstore_pd(p, first(count), v); }
  static V broadcast(T x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
};
#include "detail/simd_kernels.inl"
}  // namespace isa_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace isa_avx512 {
template <typename Scalar>
struct Ops;
template <>
struct Ops<float> {
  using T = float;
  using V = __m512;
  static constexpr int lanes = 16;
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 first(int count) { return static_cast<__mmask16>((1u << count) - 1); }
  static V load_first(const T* p, int count) { return _mm512_maskz_loadu_ps(first(count), p); }
  static void store_first(T* p, V v, int count) { _mm512_mask_storeu_ps(p, first(count), v); }
  static V broadcast(T x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Ops<double> {
  using T = double;
  using V = __m512d;
  static constexpr int lanes = 8;
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static __mmask8 first(int count) { return static_cast<__mmask8>((1u << count) - 1); }
  static V load_first(const T* p, int count) { return _mm512_maskz_loadu_pd(first(count), p); }
  static void store_first(T* p, V v, int count) { _mm512_mask_storeu_pd(p, first(count), v); }
  static V broadcast(T x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};
#include "detail/simd_kernels.inl"
}  // namespace isa_avx512
#pragma GCC pop_options
#endif  // CONVPOOL_X86

}  // namespace detail

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

// 2 x 8 positions by one vector of channels: 16 accumulators, 16 fused multiply-adds per loaded
// coefficient vector (3 x 4 positions by two vectors measured no faster on this project's
// machine, and slower on LeNet conv2, whose 16 channels fill one vector); 8 positions on 16
// registers.
template <typename T>
ChannelVectorKernel<T> channel_vector_kernel_for(Isa isa) {
#ifdef CONVPOOL_X86
  if (isa == Isa::avx512) return detail::isa_avx512::make_channel_kernel<detail::isa_avx512::Ops<T>, 2, 8, 1>();
  if (isa == Isa::avx2) return detail::isa_avx2::make_channel_kernel<detail::isa_avx2::Ops<T>, 1, 8, 1>();
#endif
  return detail::isa_baseline::make_channel_kernel<detail::isa_baseline::Ops<T>, 1, 8, 1>();
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
const ChannelVectorKernel<T>& channel_vector_kernel() {
  static const ChannelVectorKernel<T> kernel = channel_vector_kernel_for<T>(active_isa());
  return kernel;
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
