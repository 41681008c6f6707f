// The register-tiled micro-kernel body, written once against a vector-operations struct `Ops`
// and included by gemm.hpp into one namespace per instruction set, inside a
// `#pragma GCC target` region: every function here is then compiled for that instruction set,
// even in an unoptimized build (where a template shared across targets would pass vectors
// across an ABI boundary).
//
// C[m_valid x n_valid] (row stride ldc) = init + A * B over `depth` steps, where A is a packed
// panel of MR values per step and B a packed panel of NV * Ops::lanes values per step. init is
// C itself when `accumulate`, else row_init[i] (or zero when row_init is null).

template <class Ops, int MR, int NV>
void micro_kernel(int64_t depth, const typename Ops::T* a, const typename Ops::T* b, typename Ops::T* c,
                  int64_t ldc, int m_valid, int n_valid, bool accumulate, const typename Ops::T* row_init) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kNr = NV * kLanes;
  V acc[MR][NV];
  _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t s = 0; s < depth; ++s) {
    V bv[NV];
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + s * kNr + v * kLanes);
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i) {
      const V ai = Ops::broadcast(a[s * MR + i]);
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
    }
  }
  if (m_valid == MR && n_valid == kNr) {
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i) {
      const V init = accumulate ? Ops::zero() : row_init ? Ops::broadcast(row_init[i]) : Ops::zero();
      _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) {
        T* dst = c + i * ldc + v * kLanes;
        Ops::store(dst, Ops::add(accumulate ? Ops::load(dst) : init, acc[i][v]));
      }
    }
    return;
  }
  // Edge tile: the same single addition per element as above, through a scratch tile.
  alignas(64) T tile[MR * kNr];
  _Pragma("GCC unroll 16") for (int i = 0; i < MR; ++i)
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) Ops::store(tile + i * kNr + v * kLanes, acc[i][v]);
  for (int i = 0; i < m_valid; ++i) {
    const T init = row_init ? row_init[i] : T(0);
    T* dst = c + i * ldc;
    for (int j = 0; j < n_valid; ++j) dst[j] = (accumulate ? dst[j] : init) + tile[i * kNr + j];
  }
}

template <class Ops, int MR, int NV>
GemmMicroKernel<typename Ops::T> make_micro_kernel() {
  return {MR, NV * Ops::lanes, &micro_kernel<Ops, MR, NV>};
}
