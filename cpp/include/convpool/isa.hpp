#pragma once
// The instruction sets of the kernels, in one list, and the one way a kernel is chosen for the CPU
// it runs on. Each set has a room, detail/isa/<architecture>/<set>.hpp, with its detection and
// the copy of the vectorized loops it runs (below), and <set>_kernels.hpp beside it with its
// vector operations and convolution kernel tables (detail/conv_kernels.hpp). One binary runs on
// any CPU of its architecture and uses the best set the CPU has; CONVPOOL_ISA=<name> picks
// another the CPU supports (to compare the paths on one machine).
//
// A new instruction set: its name in CONVPOOL_ISAS and in its architecture's CONVPOOL_TARGET_ISAS,
// its room's include below, and its two room files. Everything else (the enum, names, parsing of
// CONVPOOL_ISA, detection, kernel tables, build_info()["isas"], the kernel tester, the test suite
// and CI runs at every level) takes the list from here.

#include <cstdlib>
#include <cstring>
#include <vector>

// Every instruction set, in the order of the Isa enum.
#define CONVPOOL_ISAS(X) X(baseline) X(avx2) X(avx512) X(asimd)

// The sets compiled for this target, least preferred first: a CPU runs the last one it supports.
#if defined(__x86_64__)
#define CONVPOOL_X86 1
#define CONVPOOL_TARGET_ISAS(X) X(baseline) X(avx2) X(avx512)
#elif defined(__aarch64__)
#define CONVPOOL_TARGET_ISAS(X) X(baseline) X(asimd)
#else
#define CONVPOOL_TARGET_ISAS(X) X(baseline)
#endif

namespace convpool {

enum class Isa {
#define CONVPOOL_ISA_ENUMERATOR(name) name,
  CONVPOOL_ISAS(CONVPOOL_ISA_ENUMERATOR)
#undef CONVPOOL_ISA_ENUMERATOR
};

inline const char* isa_name(Isa isa) {
  switch (isa) {
#define CONVPOOL_ISA_NAME(name) \
  case Isa::name:               \
    return #name;
    CONVPOOL_ISAS(CONVPOOL_ISA_NAME)
#undef CONVPOOL_ISA_NAME
  }
  return "unknown";
}

// The vectorized loops of the pooling and elementwise kernels are written once and compiled once
// per copy below (detail/for_each_vector_isa.hpp), each in its namespace with a VectorIsa tag;
// each instruction set's room names the copy it runs. The copies are the baseline and, on x86,
// AVX2 without FMA, so that no multiply-add is fused and every level rounds these loops alike.
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

}  // namespace convpool

// The rooms' detection: in namespace detail::isa_<set>, a struct InstructionSet with `supported()`
// (whether this CPU runs the set) and `VectorLoops` (the VectorIsa of the loop copy it runs).
#include "detail/isa/baseline.hpp"
#ifdef CONVPOOL_X86
#include "detail/isa/x86/avx2.hpp"
#include "detail/isa/x86/avx512.hpp"
#elif defined(__aarch64__)
#include "detail/isa/arm/asimd.hpp"
#endif

namespace convpool {

// Calls f(tag) with the InstructionSet tag of `isa`'s room; an unqualified call g(tag, ...) in f
// finds, by argument-dependent lookup, the room's own g. A set not compiled for this target runs
// the baseline's.
template <class F>
decltype(auto) visit_isa(Isa isa, F&& f) {
  switch (isa) {
#define CONVPOOL_VISIT_ISA(name) \
  case Isa::name:                \
    return f(detail::isa_##name::InstructionSet{});
    CONVPOOL_TARGET_ISAS(CONVPOOL_VISIT_ISA)
#undef CONVPOOL_VISIT_ISA
    default:
      return f(detail::isa_baseline::InstructionSet{});
  }
}

// The sets compiled for this target, in CONVPOOL_TARGET_ISAS's order.
inline std::vector<Isa> target_isas() {
  return {
#define CONVPOOL_ISA_ENTRY(name) Isa::name,
      CONVPOOL_TARGET_ISAS(CONVPOOL_ISA_ENTRY)
#undef CONVPOOL_ISA_ENTRY
  };
}

inline bool isa_supported(Isa isa) {
  switch (isa) {
#define CONVPOOL_ISA_SUPPORTED(name) \
  case Isa::name:                    \
    return detail::isa_##name::InstructionSet::supported();
    CONVPOOL_TARGET_ISAS(CONVPOOL_ISA_SUPPORTED)
#undef CONVPOOL_ISA_SUPPORTED
    default:
      return false;
  }
}

// The sets this CPU runs (the kernel tester and the test suite go through each).
inline std::vector<Isa> supported_isas() {
  std::vector<Isa> supported;
  for (Isa isa : target_isas())
    if (isa_supported(isa)) supported.push_back(isa);
  return supported;
}

// The best set this CPU runs.
inline Isa hardware_isa() { return supported_isas().back(); }

namespace detail {

inline Isa detect_isa() {
  if (const char* wanted = std::getenv("CONVPOOL_ISA"))
    for (Isa isa : supported_isas())
      if (std::strcmp(wanted, isa_name(isa)) == 0) return isa;
  return hardware_isa();
}

}  // namespace detail

// The instruction set the kernels use on this CPU, chosen once.
inline Isa active_isa() {
  static const Isa isa = detail::detect_isa();
  return isa;
}

// Calls body(tag) with the VectorIsa tag of the loop copy the active set runs: an unqualified call
// f(tag, ...) in body finds, by argument-dependent lookup, the copy of f in that copy's namespace.
template <class Body>
decltype(auto) with_vector_isa(Body&& body) {
  return visit_isa(active_isa(),
                   [&](auto isa) -> decltype(auto) { return body(typename decltype(isa)::VectorLoops{}); });
}

}  // namespace convpool
