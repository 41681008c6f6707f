#pragma once
// The AVX-512 (+ FMA) room: its vector operations (Ops) and the convolution kernels written on
// them (conv_kernels.inl). Included by conv_kernels.hpp after the kernel contracts.

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
#include "../conv_kernels.inl"
}  // namespace convpool::detail::isa_avx512
#pragma GCC pop_options
