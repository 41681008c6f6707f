#pragma once
// The AVX2 (+ FMA) room's kernels: its vector operations (Ops), the convolution kernels written on
// them (conv_kernels.inl) and its kernel table. Included by conv_kernels.hpp after the kernel
// contracts.

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace convpool::detail::isa_avx2 {
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
#include "../../conv_kernels.inl"

// Its 16 registers take the tiles for 16 registers.
template <typename T>
KernelTable<T> make_kernel_table(InstructionSet, T) {
  return kernel_table_for_16_registers<Ops<T>>();
}
}  // namespace convpool::detail::isa_avx2
#pragma GCC pop_options
