#pragma once
// The instruction set of the vector kernels: detected once at run time from the CPU (lowered by
// CONVPOOL_ISA=avx2|baseline), and with_vector_isa, which runs a loop body compiled for it. One
// binary runs on any x86-64 CPU and still uses AVX2 or AVX-512 where present.

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "parallel.hpp"

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

namespace detail {
// Each wrapper inlines every call below `body` (flatten) into one copy compiled for its
// instruction set, so plain loops (`#pragma omp simd`) are vectorized for that set.
template <class Body>
__attribute__((flatten)) void run_baseline(Body& body) {
  body();
}
#ifdef CONVPOOL_X86
template <class Body>
__attribute__((target("avx2"), flatten)) void run_avx2(Body& body) {
  body();
}
#endif
}  // namespace detail

// Runs body() compiled for AVX2 when active_isa() allows it, else for the baseline: the pooling
// and elementwise kernels, whose loops the compiler vectorizes, call it inside each thread's
// share of the work. Without FMA, so that no multiply-add is fused and every level rounds alike;
// not for AVX-512, whose copies of these loops measured slower (README.md, "Portable wheel").
template <class Body>
void with_vector_isa(Body&& body) {
#ifdef CONVPOOL_X86
  if (active_isa() != Isa::baseline) return detail::run_avx2(body);
#endif
  detail::run_baseline(body);
}

// parallel_for whose body runs under with_vector_isa.
template <class Body>
void parallel_for_vectorized(int64_t count, Body&& body) {
  parallel_for(count, [&](int64_t begin, int64_t end) { with_vector_isa([&] { body(begin, end); }); });
}

}  // namespace convpool
