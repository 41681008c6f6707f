#pragma once
// The instruction set of the vector kernels: detected once at run time from the CPU (lowered by
// CONVPOOL_ISA=avx2|baseline), and with_vector_isa, which calls the kernels compiled for it. One
// binary runs on any x86-64 CPU and still uses AVX2 or AVX-512 where present.

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#define CONVPOOL_X86 1
#endif

namespace convpool {

enum class Isa { baseline, avx2, avx512 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

// The best instruction set the CPU supports (the kernel tester runs every level up to it).
inline Isa hardware_isa() {
  Isa best = Isa::baseline;
#ifdef CONVPOOL_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (best == Isa::avx2 && __builtin_cpu_supports("avx512f")) best = Isa::avx512;
#endif
  return best;
}

namespace detail {

inline Isa detect_isa() {
  Isa best = hardware_isa();
  // CONVPOOL_ISA lowers the level (to compare paths on one machine); it never raises it.
  if (const char* forced = std::getenv("CONVPOOL_ISA")) {
    Isa wanted = best;
    if (std::strcmp(forced, "baseline") == 0) wanted = Isa::baseline;
    if (std::strcmp(forced, "avx2") == 0) wanted = Isa::avx2;
    if (static_cast<int>(wanted) < static_cast<int>(best)) best = wanted;
  }
  return best;
}

}  // namespace detail

// The instruction set the kernels use on this CPU, detected once.
inline Isa active_isa() {
  static const Isa isa = detail::detect_isa();
  return isa;
}

// The pooling and elementwise kernels are loops the compiler vectorizes: their text is compiled
// once per instruction set below, each copy in that set's namespace (detail/for_each_vector_isa.hpp),
// and with_vector_isa calls the copy for active_isa(). Only the baseline and AVX2, without FMA, so
// that no multiply-add is fused and every level rounds alike; not AVX-512, whose copies of these
// loops measured slower (docs/install.md, "A portable wheel").
namespace detail {
namespace isa_baseline {
struct VectorIsa {};
}  // namespace isa_baseline
#ifdef CONVPOOL_X86
namespace isa_avx2 {
struct VectorIsa {};
}  // namespace isa_avx2
#endif
}  // namespace detail

// Calls body(tag) with the VectorIsa tag of the set to run: an unqualified call f(tag, ...) in
// body finds, by argument-dependent lookup, the copy of f in that set's namespace.
template <class Body>
decltype(auto) with_vector_isa(Body&& body) {
#ifdef CONVPOOL_X86
  if (active_isa() != Isa::baseline) return body(detail::isa_avx2::VectorIsa{});
#endif
  return body(detail::isa_baseline::VectorIsa{});
}

}  // namespace convpool
