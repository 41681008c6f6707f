#pragma once
// The baseline instruction set: what every CPU of the target architecture runs (SSE2 on x86-64,
// Advanced SIMD on 64-bit ARM), through GCC's generic vectors. Its kernels: baseline_kernels.hpp.

namespace convpool::detail::isa_baseline {

struct InstructionSet {
  static bool supported() { return true; }
  using VectorLoops = VectorIsa;
};

}  // namespace convpool::detail::isa_baseline
