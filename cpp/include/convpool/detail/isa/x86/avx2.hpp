#pragma once
// AVX2 with FMA (x86-64, Haswell and Zen onwards). Its kernels: avx2_kernels.hpp.

namespace convpool::detail::isa_avx2 {

struct InstructionSet {
  static bool supported() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  using VectorLoops = VectorIsa;
};

}  // namespace convpool::detail::isa_avx2
