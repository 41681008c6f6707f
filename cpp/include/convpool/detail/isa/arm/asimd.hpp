#pragma once
// Advanced SIMD (NEON) of 64-bit ARM, with its fused multiply-add. Every ARMv8-A CPU has it; the
// kernel system reports it (HWCAP_ASIMD) so that a CPU without it, or a later set, can be told
// apart. Its kernels: asimd_kernels.hpp.

#include <asm/hwcap.h>
#include <sys/auxv.h>

namespace convpool::detail::isa_asimd {

struct InstructionSet {
  static bool supported() { return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0; }
  // The baseline copy of the vectorized loops, which the compiler already vectorizes with Advanced
  // SIMD on this architecture.
  using VectorLoops = isa_baseline::VectorIsa;
};

}  // namespace convpool::detail::isa_asimd
