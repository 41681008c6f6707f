#pragma once
// The AVX-512 (+ FMA) room's kernels: its vector operations (Ops), the convolution kernels written
// on them (conv_kernels.inl) and its kernel table. Included by conv_kernels.hpp after the kernel
// contracts.

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace convpool::detail::isa_avx512 {
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
#include "../../conv_kernels.inl"

// Register tiles. The gemm's 12 x 2 vectors leave the 32 registers room for the B loads and the
// broadcast. The direct paths, the default first: 6 x 4 vectors suits layers of few output
// channels; 8 x 3 vectors (the same 24 accumulators) fills its tile when the channels are a
// multiple of 8 or the rows are short (LeNet conv2, 16 channels by 96 positions). The
// channel-vector kernels: 2 x 8 positions by one vector of channels (16 accumulators, 16 fused
// multiply-adds per loaded coefficient vector); 2 x 7 positions by two vectors (28 of the 32
// registers) fits ResNet's 56-, 28-, 14- and 7-wide planes exactly, 1 x 7 by four vectors the
// layers of many channels, and 4 x 4 positions by one vector its 4x4 planes (ResNet-18's last
// stage at 112x112 input), where the 7-wide tiles leave three of seven columns idle. The
// channels-last kernels: 6 pixels by four vectors of channels (64 float channels, ten loads per 24
// fused multiply-adds), 12 by two and 16 by one for layers of fewer channels (24 by one would
// need more pointers to its rows than there are general registers, and ran at half the speed),
// and 8 by one, which the products over pixels take for 16 channels: its eight row pointers stay
// in registers, where 16 by one reloads some of them (its fill ties, and the weight gradient,
// whose rows are not pixels, keeps 16 by one).
template <typename T>
KernelTable<T> make_kernel_table(InstructionSet, T) {
  return {make_micro_kernel<Ops<T>, 12, 2>(),
          {make_direct_kernels<Ops<T>, 6, 4, 4, 6>(), make_direct_kernels<Ops<T>, 8, 3, 4, 6>()},
          {make_channel_kernel<Ops<T>, 2, 8, 1>(), make_channel_kernel<Ops<T>, 2, 7, 2>(),
           make_channel_kernel<Ops<T>, 1, 7, 4>(), make_channel_kernel<Ops<T>, 4, 4, 1>()},
          make_depthwise_kernels<Ops<T>>(),
          {make_channels_last_kernels<Ops<T>, 6, 4>(), make_channels_last_kernels<Ops<T>, 12, 2>(),
           make_channels_last_kernels<Ops<T>, 16, 1>(), make_channels_last_kernels<Ops<T>, 8, 1>()}};
}
}  // namespace convpool::detail::isa_avx512
#pragma GCC pop_options
