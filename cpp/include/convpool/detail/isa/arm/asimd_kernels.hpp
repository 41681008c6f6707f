#pragma once
// The Advanced SIMD (NEON) room's kernels: its vector operations (Ops) on 128-bit registers with
// the fused multiply-add, the convolution kernels written on them (conv_kernels.inl) and its
// kernel table. Included by conv_kernels.hpp after the kernel contracts.

#include <arm_neon.h>

#include <cstring>

namespace convpool::detail::isa_asimd {
template <typename Scalar>
struct Ops;
template <>
struct Ops<float> {
  using T = float;
  using V = float32x4_t;
  static constexpr int lanes = 4;
  static V load(const T* p) { return vld1q_f32(p); }
  static void store(T* p, V v) { vst1q_f32(p, v); }
  // Partial vectors go through a full one on the stack, so that no lane past `count` is touched.
  static V load_first(const T* p, int count) {
    T lanes_read[lanes] = {};
    std::memcpy(lanes_read, p, count * sizeof(T));
    return vld1q_f32(lanes_read);
  }
  static void store_first(T* p, V v, int count) {
    T lanes_written[lanes];
    vst1q_f32(lanes_written, v);
    std::memcpy(p, lanes_written, count * sizeof(T));
  }
  static V broadcast(T x) { return vdupq_n_f32(x); }
  static V zero() { return vdupq_n_f32(0.0f); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
};
template <>
struct Ops<double> {
  using T = double;
  using V = float64x2_t;
  static constexpr int lanes = 2;
  static V load(const T* p) { return vld1q_f64(p); }
  static void store(T* p, V v) { vst1q_f64(p, v); }
  static V load_first(const T* p, int count) {
    T lanes_read[lanes] = {};
    std::memcpy(lanes_read, p, count * sizeof(T));
    return vld1q_f64(lanes_read);
  }
  static void store_first(T* p, V v, int count) {
    T lanes_written[lanes];
    vst1q_f64(lanes_written, v);
    std::memcpy(p, lanes_written, count * sizeof(T));
  }
  static V broadcast(T x) { return vdupq_n_f64(x); }
  static V zero() { return vdupq_n_f64(0.0); }
  static V add(V a, V b) { return vaddq_f64(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f64(c, a, b); }
};
#include "../../conv_kernels.inl"

// The tiles for 16 registers. ARM's 32 vector registers would hold larger ones, as AVX-512's
// do; which pay is for a measurement on an ARM machine to decide (the tests here run under
// emulation, which proves the kernels correct but says nothing of their speed).
template <typename T>
KernelTable<T> make_kernel_table(InstructionSet, T) {
  return kernel_table_for_16_registers<Ops<T>>();
}
}  // namespace convpool::detail::isa_asimd
