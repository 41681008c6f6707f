#pragma once
// AVX-512 Foundation with FMA (x86-64, Skylake-SP and Zen 4 onwards). Its kernels:
// avx512_kernels.hpp.

namespace convpool::detail::isa_avx512 {

struct InstructionSet {
  static bool supported() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  // The AVX2 copy of the vectorized loops: compiled for AVX-512 they were slower (docs/install.md,
  // "A portable wheel"), and an AVX-512 CPU runs AVX2.
  using VectorLoops = isa_avx2::VectorIsa;
};

}  // namespace convpool::detail::isa_avx512
