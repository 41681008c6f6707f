#pragma once
// The baseline room's kernels: its vector operations (Ops), the convolution kernels written on
// them (conv_kernels.inl) and its kernel table. Included by conv_kernels.hpp after the kernel
// contracts.

#include <cstring>

// Portable fallback: GCC vector extensions of 16 bytes (SSE2 on x86-64), multiply then add.
namespace convpool::detail::isa_baseline {
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
#include "../conv_kernels.inl"

// Its 16 registers (SSE2 on x86-64) take the tiles for 16 registers.
template <typename T>
KernelTable<T> make_kernel_table(InstructionSet, T) {
  return kernel_table_for_16_registers<Ops<T>>();
}
}  // namespace convpool::detail::isa_baseline
