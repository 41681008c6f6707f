// The vectorized kernels, written once against a vector-operations struct `Ops` and included by
// each room of detail/isa/ (ops_<set>.hpp) into its namespace, inside a `#pragma GCC target` region: every
// function here is then compiled for that instruction set, even in an unoptimized build (where a
// template shared across targets would pass vectors across an ABI boundary).
//
// Matrix-multiply micro-kernel:
// C[m_valid x n_valid] (row stride ldc) = init + A * B over `depth` steps, where A is a packed
// panel of MR values per step and B a packed panel of NV * Ops::lanes values per step. init is
// C itself when `accumulate`, else row_init[i] (or zero when row_init is null).

template <class Ops, int MR, int NV>
void micro_kernel(int64_t depth, const typename Ops::T* a, const typename Ops::T* b, typename Ops::T* c, int64_t ldc,
                  int m_valid, int n_valid, bool accumulate, const typename Ops::T* row_init) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kNr = NV * kLanes;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t s = 0; s < depth; ++s) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + s * kNr + v * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Ops::broadcast(a[s * MR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
    }
  }
  if (m_valid == MR && n_valid == kNr) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V init = accumulate ? Ops::zero() : row_init ? Ops::broadcast(row_init[i]) : Ops::zero();
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        T* dst = c + i * ldc + v * kLanes;
        Ops::store(dst, Ops::add(accumulate ? Ops::load(dst) : init, acc[i][v]));
      }
    }
    return;
  }
  // Edge tile: the same single addition per element as above, through a scratch tile.
  alignas(64) T tile[MR * kNr];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Ops::store(tile + i * kNr + v * kLanes, acc[i][v]);
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

// Direct-convolution micro-kernel: as micro_kernel, but row s of B is read in place from
// base + offsets[s] (NV * Ops::lanes values), not from a packed panel. On a zero-padded image
// whose rows are as wide as the output's, every tap of a stride-1 convolution is such a row.
template <class Ops, int MR, int NV>
void offset_micro_kernel(int64_t depth, const typename Ops::T* a, const typename Ops::T* base, const int64_t* offsets,
                         typename Ops::T* c, int64_t ldc, int m_valid, int n_valid, const typename Ops::T* row_init) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kNr = NV * kLanes;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t s = 0; s < depth; ++s) {
    const T* b = base + offsets[s];
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + v * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Ops::broadcast(a[s * MR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
    }
  }
  if (m_valid == MR && n_valid == kNr) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V init = row_init ? Ops::broadcast(row_init[i]) : Ops::zero();
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Ops::store(c + i * ldc + v * kLanes, Ops::add(init, acc[i][v]));
    }
    return;
  }
  alignas(64) T tile[MR * kNr];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Ops::store(tile + i * kNr + v * kLanes, acc[i][v]);
  for (int i = 0; i < m_valid; ++i) {
    const T init = row_init ? row_init[i] : T(0);
    for (int j = 0; j < n_valid; ++j) c[i * ldc + j] = init + tile[i * kNr + j];
  }
}

// The lanes of v added in lane order, so that a sum's rounding depends on the shapes alone.
template <class Ops>
typename Ops::T lane_sum(typename Ops::V v) {
  alignas(64) typename Ops::T lanes[Ops::lanes];
  Ops::store(lanes, v);
  typename Ops::T total = 0;
  for (int l = 0; l < Ops::lanes; ++l) total += lanes[l];
  return total;
}

// Weight-gradient tile of a direct convolution, over `images` images whose rows and inputs lie
// at fixed strides: for i < R and j < valid_cols, sums[i * ld_sums + j] += the sum over images b
// and q < length (a multiple of Ops::lanes) of (rows[i] + b * rows_stride)[q] *
// (base + b * base_stride + offsets[j])[q]. The accumulators stay in registers across the
// images; their lanes are added in a fixed order at the end (columns past valid_cols read
// offsets[0] and are dropped).
template <class Ops, int R, int C>
void correlate_tile(int64_t images, int64_t length, const typename Ops::T* const* rows, int64_t rows_stride,
                    const typename Ops::T* base, int64_t base_stride, const int64_t* offsets, int valid_cols,
                    typename Ops::T* sums, int64_t ld_sums) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  V acc[R][C];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) acc[i][j] = Ops::zero();
  for (int64_t b = 0; b < images; ++b) {
    const T* row[R];
    const T* cols[C];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) row[i] = rows[i] + b * rows_stride;
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) cols[j] = base + b * base_stride + offsets[j < valid_cols ? j : 0];
    for (int64_t q = 0; q < length; q += kLanes) {
      V rv[R];
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) rv[i] = Ops::load(row[i] + q);
#pragma GCC unroll 8
      for (int j = 0; j < C; ++j) {
        const V cv = Ops::load(cols[j] + q);
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) acc[i][j] = Ops::fma(rv[i], cv, acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < valid_cols; ++j) sums[i * ld_sums + j] += lane_sum<Ops>(acc[i][j]);
}

template <class Ops, int MR, int NV, int R, int C>
DirectKernels<typename Ops::T> make_direct_kernels() {
  return {MR, NV * Ops::lanes, Ops::lanes, R, C, &offset_micro_kernel<Ops, MR, NV>, &correlate_tile<Ops, R, C>};
}

// Direct-convolution kernel vectorized over output channels, for outputs too narrow to fill
// offset_micro_kernel's position vectors: a register tile of RH output rows by P positions by
// NV * Ops::lanes output channels. Step s reads a packed panel row a[s * NV * lanes ...] of
// channel coefficients and broadcasts the input of every position, position (r, j) reading
// base[r * row_stride + j + offsets[s]]. out[i * channel_stride + r * out_row_stride + j] =
// row_init[i] (or zero) + the sum, for i < m_valid, r < rows_valid, j < cols_valid.
template <class Ops, int RH, int P, int NV>
void channel_micro_kernel(int64_t depth, const typename Ops::T* a, const typename Ops::T* base, int64_t row_stride,
                          const int64_t* offsets, typename Ops::T* out, int64_t out_row_stride, int64_t channel_stride,
                          int m_valid, int rows_valid, int cols_valid, const typename Ops::T* row_init) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kChannels = NV * kLanes;
  V acc[RH][P][NV];
#pragma GCC unroll 4
  for (int r = 0; r < RH; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][j][v] = Ops::zero();
  for (int64_t s = 0; s < depth; ++s) {
    V coefficients[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) coefficients[v] = Ops::load(a + s * kChannels + v * kLanes);
#pragma GCC unroll 4
    for (int r = 0; r < RH; ++r) {
      const T* row = base + r * row_stride + offsets[s];
#pragma GCC unroll 16
      for (int j = 0; j < P; ++j) {
        const V in = Ops::broadcast(row[j]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][j][v] = Ops::fma(in, coefficients[v], acc[r][j][v]);
      }
    }
  }
  alignas(64) T tile[RH * P * kChannels];
#pragma GCC unroll 4
  for (int r = 0; r < RH; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Ops::store(tile + (r * P + j) * kChannels + v * kLanes, acc[r][j][v]);
  // The transpose into the output's channel planes; a whole tile has its bounds unrolled.
  const auto transpose = [&](int channels, int rows, int cols) {
    for (int i = 0; i < channels; ++i) {
      const T init = row_init ? row_init[i] : T(0);
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < cols; ++j)
          out[i * channel_stride + r * out_row_stride + j] = init + tile[(r * P + j) * kChannels + i];
    }
  };
  if (m_valid == kChannels && rows_valid == RH && cols_valid == P)
    transpose(kChannels, RH, P);
  else
    transpose(m_valid, rows_valid, cols_valid);
}

template <class Ops, int RH, int P, int NV>
ChannelVectorKernel<typename Ops::T> make_channel_kernel() {
  return {RH, P, NV * Ops::lanes, &channel_micro_kernel<Ops, RH, P, NV>};
}

// Depthwise kernels on one plane read through per-tap offsets: tap t of output (oh, ow) reads
// base[oh * row_stride + ow + offsets[t]]. Rows are read up to ow = out_w rounded up to whole
// vectors (those lanes are dropped); outputs are written only inside their out_w columns.

// Whether the offsets are a K x K kernel's on consecutive rows (stride 1, row dilation 1), so
// that input rows can be shared between output rows; *dw is then the column step.
template <int K>
bool consecutive_rows(int64_t kernel_h, int64_t kernel_w, const int64_t* offsets, int64_t row_stride, int64_t* dw) {
  if (kernel_h != K || kernel_w != K) return false;
  *dw = offsets[1] - offsets[0];
  for (int t = 0; t < K * K; ++t)
    if (offsets[t] != offsets[0] + t / K * row_stride + t % K * *dw) return false;
  return true;
}

// out[oh * out_stride + ow] = init + the sum over taps t, in order, of kernel[t] * the input tap t
// reads, for R rows at once so that independent accumulators hide the latency of the fused
// multiply-adds; init is out's own value when `accumulate`, else init_value.
template <class Ops, int R>
void depthwise_rows(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* kernel, int64_t taps,
                    const int64_t* offsets, bool accumulate, typename Ops::T init_value, typename Ops::T* out,
                    int64_t out_w, int64_t out_stride) {
  using V = typename Ops::V;
  for (int64_t ow = 0; ow < out_w; ow += Ops::lanes) {
    const int valid = static_cast<int>(std::min<int64_t>(Ops::lanes, out_w - ow));
    V acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      acc[r] = accumulate ? Ops::load_first(out + r * out_stride + ow, valid) : Ops::broadcast(init_value);
    for (int64_t t = 0; t < taps; ++t) {
      const V tap = Ops::broadcast(kernel[t]);
      const typename Ops::T* src = base + ow + offsets[t];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = Ops::fma(tap, Ops::load(src + r * row_stride), acc[r]);
    }
    if (valid == Ops::lanes) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) Ops::store(out + r * out_stride + ow, acc[r]);
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) Ops::store_first(out + r * out_stride + ow, acc[r], valid);
    }
  }
}

// depthwise_rows for a KH x KW kernel on consecutive rows, the taps held in registers: each input
// row vector is loaded once and serves every output row that reads it (3x3, 8 rows: 30 loads for
// 72 fused multiply-adds instead of 72), in the same order of taps.
template <class Ops, int R, int KH, int KW>
void depthwise_rows_fixed(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* kernel, int64_t dw,
                          bool accumulate, typename Ops::T init_value, typename Ops::T* out, int64_t out_w,
                          int64_t out_stride) {
  using V = typename Ops::V;
  V taps[KH * KW];
#pragma GCC unroll 32
  for (int t = 0; t < KH * KW; ++t) taps[t] = Ops::broadcast(kernel[t]);
  for (int64_t ow = 0; ow < out_w; ow += Ops::lanes) {
    const int valid = static_cast<int>(std::min<int64_t>(Ops::lanes, out_w - ow));
    V acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      acc[r] = accumulate ? Ops::load_first(out + r * out_stride + ow, valid) : Ops::broadcast(init_value);
#pragma GCC unroll 16
    for (int i = 0; i < R + KH - 1; ++i)
#pragma GCC unroll 8
      for (int kw = 0; kw < KW; ++kw) {
        const V in = Ops::load(base + i * row_stride + ow + kw * dw);
#pragma GCC unroll 8
        for (int kh = 0; kh < KH; ++kh)
          if (i - kh >= 0 && i - kh < R) acc[i - kh] = Ops::fma(taps[kh * KW + kw], in, acc[i - kh]);
      }
    if (valid == Ops::lanes) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) Ops::store(out + r * out_stride + ow, acc[r]);
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) Ops::store_first(out + r * out_stride + ow, acc[r], valid);
    }
  }
}

// run(rows, oh) over the output rows [0, out_h) in blocks of R rows (a std::integral_constant),
// then the rest in blocks of 2 and 1.
template <int R, class Run>
void in_row_blocks(int64_t out_h, Run&& run) {
  int64_t oh = 0;
  for (; oh + R <= out_h; oh += R) run(std::integral_constant<int, R>(), oh);
  for (; oh + 2 <= out_h; oh += 2) run(std::integral_constant<int, 2>(), oh);
  if (oh < out_h) run(std::integral_constant<int, 1>(), oh);
}

template <class Ops>
void depthwise_plane(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* kernel, int64_t kernel_h,
                     int64_t kernel_w, const int64_t* offsets, bool accumulate, typename Ops::T init_value,
                     typename Ops::T* out, int64_t out_h, int64_t out_w, int64_t out_stride) {
  int64_t dw = 0;
  const auto fixed = [&](auto rows, auto k) {
    constexpr int kK = decltype(k)::value;
    const typename Ops::T* first = base + offsets[0];
    in_row_blocks<decltype(rows)::value>(out_h, [&](auto block, int64_t oh) {
      depthwise_rows_fixed<Ops, decltype(block)::value, kK, kK>(first + oh * row_stride, row_stride, kernel, dw,
                                                                accumulate, init_value, out + oh * out_stride, out_w,
                                                                out_stride);
    });
  };
  // 3x3: 9 taps, the rows' accumulators and the loaded row fill AVX-512's 32 registers or the
  // others' 16. 5x5: 25 taps and 4 rows fill AVX-512's; elsewhere some taps are reloaded.
  constexpr bool kWide = sizeof(typename Ops::V) == 64;
  if (consecutive_rows<3>(kernel_h, kernel_w, offsets, row_stride, &dw))
    return fixed(std::integral_constant < int, kWide ? 8 : 4 > (), std::integral_constant<int, 3>());
  if (consecutive_rows<5>(kernel_h, kernel_w, offsets, row_stride, &dw))
    return fixed(std::integral_constant<int, 4>(), std::integral_constant<int, 5>());
  const int64_t taps = kernel_h * kernel_w;
  in_row_blocks<8>(out_h, [&](auto block, int64_t oh) {
    depthwise_rows<Ops, decltype(block)::value>(base + oh * row_stride, row_stride, kernel, taps, offsets, accumulate,
                                                init_value, out + oh * out_stride, out_w, out_stride);
  });
}

// sums[t] += the sum over oh < out_h, ow < out_w of grad[oh * grad_stride + ow] times the input
// tap t reads, for t < NT: one accumulator per tap, so each output-gradient vector is loaded once
// for all NT taps. Past out_w both factors load as zero, so an infinity outside the window cannot
// turn into a NaN.
template <class Ops, int NT>
void depthwise_weight_taps(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* grad, int64_t out_h,
                           int64_t out_w, int64_t grad_stride, const int64_t* offsets, typename Ops::T* sums) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  V acc[NT];
#pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) acc[t] = Ops::zero();
  for (int64_t oh = 0; oh < out_h; ++oh) {
    const T* g = grad + oh * grad_stride;
    const T* row = base + oh * row_stride;
    int64_t ow = 0;
    for (; ow + Ops::lanes <= out_w; ow += Ops::lanes) {
      const V gv = Ops::load(g + ow);
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) acc[t] = Ops::fma(gv, Ops::load(row + ow + offsets[t]), acc[t]);
    }
    if (ow < out_w) {
      const int valid = static_cast<int>(out_w - ow);
      const V gv = Ops::load_first(g + ow, valid);
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) acc[t] = Ops::fma(gv, Ops::load_first(row + ow + offsets[t], valid), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) sums[t] += lane_sum<Ops>(acc[t]);
}

// depthwise_weight_taps for a KH x KW kernel on consecutive rows: input row i serves output rows
// i - kh for every kh, so each input vector is loaded once for KH taps and the last KH
// output-gradient rows stay in registers (3x3: 4 loads for 9 fused multiply-adds instead of 10).
// Rows at the plane's top and bottom, where some kh have no output row, take the checked step.
template <class Ops, int KH, int KW>
void depthwise_weight_fixed(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* grad, int64_t out_h,
                            int64_t out_w, int64_t grad_stride, int64_t dw, typename Ops::T* sums) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  V acc[KH * KW];
#pragma GCC unroll 32
  for (int t = 0; t < KH * KW; ++t) acc[t] = Ops::zero();
  for (int64_t ow = 0; ow < out_w; ow += Ops::lanes) {
    const int valid = static_cast<int>(std::min<int64_t>(Ops::lanes, out_w - ow));
    auto strip = [&](auto masked) {
      auto load = [&](const T* p) { return masked ? Ops::load_first(p, valid) : Ops::load(p); };
      // g[kh]: output-gradient row i - kh. Rows above the plane are never multiplied; zeroing
      // them keeps the first shifts from copying indeterminate values.
      V g[KH];
#pragma GCC unroll 8
      for (int kh = 0; kh < KH; ++kh) g[kh] = Ops::zero();
      auto step = [&](int64_t i, auto checked) {
#pragma GCC unroll 8
        for (int kh = KH - 1; kh > 0; --kh) g[kh] = g[kh - 1];
        if (!checked || i < out_h) g[0] = load(grad + i * grad_stride + ow);
#pragma GCC unroll 8
        for (int kw = 0; kw < KW; ++kw) {
          const V in = load(base + i * row_stride + ow + kw * dw);
#pragma GCC unroll 8
          for (int kh = 0; kh < KH; ++kh)
            if (!checked || (i - kh >= 0 && i - kh < out_h)) acc[kh * KW + kw] = Ops::fma(g[kh], in, acc[kh * KW + kw]);
        }
      };
      int64_t i = 0;
      for (; i < KH - 1; ++i) step(i, std::true_type());
      for (; i < out_h; ++i) step(i, std::false_type());
      for (; i < out_h + KH - 1; ++i) step(i, std::true_type());
    };
    if (valid == Ops::lanes)
      strip(std::false_type());
    else
      strip(std::true_type());
  }
  for (int t = 0; t < KH * KW; ++t) sums[t] += lane_sum<Ops>(acc[t]);
}

// depthwise_weight_taps for NT = 1, 2, ..., sizeof...(Counts).
template <class Ops, int... Counts>
constexpr auto depthwise_weight_taps_table(std::integer_sequence<int, Counts...>) {
  return std::array{&depthwise_weight_taps<Ops, Counts + 1>...};
}

// Depthwise weight gradient: sums[t] += the sum over oh < out_h, ow < out_w of grad[oh][ow]
// times the input tap t reads. The taps go in near-equal groups of at most kMaxTaps, one
// accumulator register each.
template <class Ops>
void depthwise_weight_plane(const typename Ops::T* base, int64_t row_stride, const typename Ops::T* grad, int64_t out_h,
                            int64_t out_w, int64_t grad_stride, int64_t kernel_h, int64_t kernel_w,
                            const int64_t* offsets, typename Ops::T* sums) {
  // AVX-512 has 32 vector registers, the others 16.
  constexpr int kMaxTaps = sizeof(typename Ops::V) == 64 ? 12 : 8;
  static constexpr auto by_count = depthwise_weight_taps_table<Ops>(std::make_integer_sequence<int, kMaxTaps>());
  int64_t dw = 0;
  if (consecutive_rows<3>(kernel_h, kernel_w, offsets, row_stride, &dw))
    return depthwise_weight_fixed<Ops, 3, 3>(base + offsets[0], row_stride, grad, out_h, out_w, grad_stride, dw, sums);
  const int64_t taps = kernel_h * kernel_w, groups = (taps + kMaxTaps - 1) / kMaxTaps;
  for (int64_t group = 0, first = 0; group < groups; ++group) {
    const int64_t count = taps / groups + (group < taps % groups);
    by_count[count - 1](base, row_stride, grad, out_h, out_w, grad_stride, offsets + first, sums + first);
    first += count;
  }
}

// Depthwise convolution of channels-last rows: out[j] = init[j] (zero when init is null) + the sum
// over u < count, in order, of a[u][j] * b[u][j], for j < channels; four vectors of channels at a
// time summed in registers.
template <class Ops>
void depthwise_channels_last(int64_t count, const typename Ops::T* const* a, const typename Ops::T* const* b,
                             int64_t channels, const typename Ops::T* init, typename Ops::T* out) {
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  int64_t j = 0;
  for (; j + 4 * kLanes <= channels; j += 4 * kLanes) {
    V acc[4] = {Ops::zero(), Ops::zero(), Ops::zero(), Ops::zero()};
    for (int64_t u = 0; u < count; ++u)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v)
        acc[v] = Ops::fma(Ops::load(a[u] + j + v * kLanes), Ops::load(b[u] + j + v * kLanes), acc[v]);
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v)
      Ops::store(out + j + v * kLanes, init ? Ops::add(Ops::load(init + j + v * kLanes), acc[v]) : acc[v]);
  }
  for (; j < channels; j += kLanes) {
    const int valid = static_cast<int>(std::min<int64_t>(kLanes, channels - j));
    V acc = Ops::zero();
    for (int64_t u = 0; u < count; ++u)
      acc = Ops::fma(Ops::load_first(a[u] + j, valid), Ops::load_first(b[u] + j, valid), acc);
    Ops::store_first(out + j, init ? Ops::add(Ops::load_first(init + j, valid), acc) : acc, valid);
  }
}

template <class Ops>
DepthwiseKernels<typename Ops::T> make_depthwise_kernels() {
  return {Ops::lanes, &depthwise_plane<Ops>, &depthwise_weight_plane<Ops>, &depthwise_channels_last<Ops>};
}

// Channels-last (NHWC) micro-kernels, where a pixel's channels lie side by side: the register
// tile is MR pixels (or input channels) by NV vectors of channels. The loops over the tile are
// unrolled whole (MR is up to 24), or the accumulators would live in memory.
//
// channels_last_multiply: C[m_valid x n_valid] (row stride ldc) = init + the sum over taps t and
// channels k of rows[t * MR + i][k] * panels[t][k * NV * lanes + j], where rows holds each tap's MR
// pixel rows (an indirection buffer: a pixel in the padding, or past m_valid, points at zeros) and
// panels[t] the tap's packed weight panel. init is C itself when `accumulate`, else
// column_init[j] (or zero when column_init is null). The sum runs taps first, then channels.
template <class Ops, int MR, int NV>
void channels_last_multiply(int64_t taps, int64_t channels, const typename Ops::T* const* rows,
                            const typename Ops::T* const* panels, typename Ops::T* c, int64_t ldc, int m_valid,
                            int n_valid, bool accumulate, const typename Ops::T* column_init) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kNr = NV * kLanes;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t t = 0; t < taps; ++t) {
    const T* row[MR];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) row[i] = rows[t * MR + i];
    const T* b = panels[t];
    for (int64_t k = 0; k < channels; ++k) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + k * kNr + v * kLanes);
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        const V ai = Ops::broadcast(row[i][k]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
      }
    }
  }
  if (m_valid == MR && n_valid == kNr) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const V init = column_init ? Ops::load(column_init + v * kLanes) : Ops::zero();
#pragma GCC unroll 32
      for (int i = 0; i < MR; ++i) {
        T* dst = c + i * ldc + v * kLanes;
        Ops::store(dst, Ops::add(accumulate ? Ops::load(dst) : init, acc[i][v]));
      }
    }
    return;
  }
  // Edge tile: the same single addition per element, through a scratch tile.
  alignas(64) T tile[MR * kNr];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Ops::store(tile + i * kNr + v * kLanes, acc[i][v]);
  for (int i = 0; i < m_valid; ++i) {
    T* dst = c + i * ldc;
    for (int j = 0; j < n_valid; ++j)
      dst[j] = (accumulate ? dst[j] : column_init ? column_init[j] : T(0)) + tile[i * kNr + j];
  }
}

// channels_last_correlate (the weight gradient): C[m_valid x n_valid] (row stride ldc) = init +
// the sum over steps s of rows[s][row_offset + i] * b[s * ldb + j], init being C itself when
// `accumulate`, else zero. rows[s] is a pixel's input row at the tap (zeros in the padding), whose
// channel row_offset is the tile's first; b's row s the pixel's output-gradient row, from the
// tile's first output channel. kWhole reads whole tiles; an edge tile reads only its valid rows
// of each step's row and its valid columns of b, so that none is read past its array.
template <class Ops, int MR, int NV, bool kWhole>
void channels_last_correlate_tile(int64_t steps, const typename Ops::T* const* rows, int64_t row_offset,
                                  const typename Ops::T* b, int64_t ldb, typename Ops::T* c, int64_t ldc, int m_valid,
                                  int n_valid, bool accumulate) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  constexpr int kLanes = Ops::lanes;
  constexpr int kNr = NV * kLanes;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  int row_index[MR], column_count[NV];
  for (int i = 0; i < MR; ++i) row_index[i] = kWhole ? i : std::min(i, m_valid - 1);
  for (int v = 0; v < NV; ++v) column_count[v] = std::clamp(n_valid - v * kLanes, 0, kLanes);
  for (int64_t s = 0; s < steps; ++s) {
    const T* a = rows[s] + row_offset;
    const T* bs = b + s * ldb;
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = kWhole ? Ops::load(bs + v * kLanes) : Ops::load_first(bs + v * kLanes, column_count[v]);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai = Ops::broadcast(a[kWhole ? i : row_index[i]]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Ops::fma(ai, bv[v], acc[i][v]);
    }
  }
  alignas(64) T tile[MR * kNr];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) Ops::store(tile + i * kNr + v * kLanes, acc[i][v]);
  for (int i = 0; i < m_valid; ++i) {
    T* dst = c + i * ldc;
    for (int j = 0; j < n_valid; ++j) dst[j] = (accumulate ? dst[j] : T(0)) + tile[i * kNr + j];
  }
}

template <class Ops, int MR, int NV>
void channels_last_correlate(int64_t steps, const typename Ops::T* const* rows, int64_t row_offset,
                             const typename Ops::T* b, int64_t ldb, typename Ops::T* c, int64_t ldc, int m_valid,
                             int n_valid, bool accumulate) {
  if (m_valid == MR && n_valid == NV * Ops::lanes)
    channels_last_correlate_tile<Ops, MR, NV, true>(steps, rows, row_offset, b, ldb, c, ldc, m_valid, n_valid,
                                                    accumulate);
  else
    channels_last_correlate_tile<Ops, MR, NV, false>(steps, rows, row_offset, b, ldb, c, ldc, m_valid, n_valid,
                                                     accumulate);
}

template <class Ops, int MR, int NV>
ChannelsLastKernels<typename Ops::T> make_channels_last_kernels() {
  return {MR, NV * Ops::lanes, &channels_last_multiply<Ops, MR, NV>, &channels_last_correlate<Ops, MR, NV>};
}

// The register tiles for 16 vector registers: the gemm's and the direct paths' 6 x 2 vectors (12
// accumulators) leave room for the loads and the broadcast; the channel-vector kernel computes
// 1 x 8 positions by one vector of channels; the channels-last kernels 6 pixels by two vectors of
// channels, or 12 by one where the channels fill one vector. A set with more registers may
// choose larger tiles.
template <class Ops>
KernelTable<typename Ops::T> kernel_table_for_16_registers() {
  return {make_micro_kernel<Ops, 6, 2>(),
          {make_direct_kernels<Ops, 6, 2, 2, 5>()},
          {make_channel_kernel<Ops, 1, 8, 1>()},
          make_depthwise_kernels<Ops>(),
          {make_channels_last_kernels<Ops, 6, 2>(), make_channels_last_kernels<Ops, 12, 1>()}};
}
