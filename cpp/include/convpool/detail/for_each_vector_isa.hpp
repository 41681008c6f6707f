// Compiles the kernel text named by CONVPOOL_VECTOR_KERNELS (a file next to this one) once per
// copy of the vectorized loops that the instruction sets run (isa.hpp: each set's VectorLoops),
// each copy inside its namespace and under its target options, so that the loops of every copy
// vectorize for its set. Code in the text calls its own functions unqualified (they resolve within
// the copy) and takes the copy's VectorIsa tag as the first parameter of each entry point. A new
// instruction set runs one of these copies, or has its own: one more block here and its VectorIsa
// tag in isa.hpp.
//
// No include guard: each kernel family's header includes this once with its own text.

#ifndef CONVPOOL_VECTOR_KERNELS
#error "define CONVPOOL_VECTOR_KERNELS to the kernel text before including for_each_vector_isa.hpp"
#endif

namespace convpool::detail::isa_baseline {
#include CONVPOOL_VECTOR_KERNELS
}  // namespace convpool::detail::isa_baseline

#ifdef CONVPOOL_X86
#pragma GCC push_options
#pragma GCC target("avx2")
namespace convpool::detail::isa_avx2 {
#include CONVPOOL_VECTOR_KERNELS
}  // namespace convpool::detail::isa_avx2
#pragma GCC pop_options
#endif

#undef CONVPOOL_VECTOR_KERNELS
