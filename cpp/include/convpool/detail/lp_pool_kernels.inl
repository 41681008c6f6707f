// The kernels of lp_pool.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

// The per-element functions of L1 and L2 pooling (kNorm = 1 or 2), free of pow so that their
// loops vectorize.
template <typename T, int kNorm>
struct LpNorm {
  static_assert(kNorm == 1 || kNorm == 2);

  T power(T x) const {  // |x|^p
    if constexpr (kNorm == 1) return std::abs(x);
    return x * x;
  }
  T root(T sum) const {  // sum^(1/p)
    if constexpr (kNorm == 1) return sum;
    return std::sqrt(sum);
  }
  T output_scale(T y) const {  // y^(p-1)
    if constexpr (kNorm == 1) return T(1);
    return y;
  }
  T input_factor(T x) const {  // sign(x) |x|^(p-1), 0 at x == 0
    if (x == T(0)) return T(0);
    if constexpr (kNorm == 1) return x > T(0) ? T(1) : T(-1);
    return x;
  }
};

// Calls body(LpNorm<T, p>) for p = 1 or 2.
template <typename T, class Body>
void with_lp_norm(double norm_type, Body&& body) {
  if (norm_type == 1.0)
    body(LpNorm<T, 1>());
  else
    body(LpNorm<T, 2>());
}

// Computes one output row of y. `column`: see window_sum_row_dispatch.
template <typename T, class Norm>
void lp_pool2d_row(const T* plane, T* out, T* column, const Pool2dGeometry& g, int64_t oh, const Norm& norm) {
  window_sum_row_dispatch(plane, out, column, g, oh, [&norm](T v) { return norm.power(v); });
#pragma omp simd
  for (int64_t ow = 0; ow < g.w.output; ++ow) out[ow] = norm.root(out[ow]);
}

// One window of the general p: its largest |x| and the sum of (|x| / largest)^p over its taps
// in row-major order (largest == 0 for an all-zero window, whose sum is then 0).
struct ScaledPowerSum {
  double largest = 0, sum = 0;
};

template <typename T>
ScaledPowerSum scaled_power_sum(const T* plane, const Pool2dGeometry& g, int64_t oh, int64_t ow, double p) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  const int64_t kh_begin = H.first_tap(oh), kh_end = H.end_tap(oh), kw_begin = W.first_tap(ow), kw_end = W.end_tap(ow);
  const auto magnitude = [&](int64_t kh, int64_t kw) {
    return std::abs(static_cast<double>(plane[(H.start(oh) + kh) * W.input + W.start(ow) + kw]));
  };
  ScaledPowerSum window;
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) window.largest = std::max(window.largest, magnitude(kh, kw));
  if (window.largest == 0) return window;
  for (int64_t kh = kh_begin; kh < kh_end; ++kh)
    for (int64_t kw = kw_begin; kw < kw_end; ++kw) window.sum += std::pow(magnitude(kh, kw) / window.largest, p);
  return window;
}

template <typename T>
void lp_pool2d_forward(VectorIsa, const T* input, T* output, const LpPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OH = g.h.output, OW = g.w.output;
  const bool direct_sums = p.norm_type == 1.0 || p.norm_type == 2.0;
  parallel_for(g.planes * OH, [&](int64_t begin, int64_t end) {
    if (!direct_sums) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const auto window = scaled_power_sum(input + (r / OH) * g.input_plane(), g, r % OH, ow, p.norm_type);
          output[r * OW + ow] = static_cast<T>(window.largest * std::pow(window.sum, 1.0 / p.norm_type));
        }
      return;
    }
    std::vector<T> column = column_scratch(g, T(0));
    with_lp_norm<T>(p.norm_type, [&](const auto& norm) {
      for (int64_t r = begin; r < end; ++r)
        lp_pool2d_row(input + (r / OH) * g.input_plane(), output + r * OW, column.data(), g, r % OH, norm);
    });
  });
}

// The general p's gradient over input rows [r0, r1) of one plane: each window adds, to each of
// its taps, grad_output sign(x) (|x| / m)^(p-1) s^(-(p-1)/p) with m and s from scaled_power_sum,
// which is sign(x) (|x| / y)^(p-1) without a power that could overflow. Windows are taken in
// row-major output order.
template <typename T>
void lp_pool2d_backward_scaled_band(const T* grad_output, const T* plane, T* grad_plane, const Pool2dGeometry& g,
                                    double p, int64_t r0, int64_t r1) {
  const WindowDim& H = g.h;
  const WindowDim& W = g.w;
  for (int64_t i = r0 * W.input; i < r1 * W.input; ++i) grad_plane[i] = T(0);
  const int64_t oh_end = H.end_output_touching(r1);
  for (int64_t oh = H.first_output_touching(r0); oh < oh_end; ++oh) {
    const int64_t ih_begin = std::max(H.start(oh) + H.first_tap(oh), r0);
    const int64_t ih_end = std::min(H.start(oh) + H.end_tap(oh), r1);
    for (int64_t ow = 0; ow < W.output; ++ow) {
      const ScaledPowerSum window = scaled_power_sum(plane, g, oh, ow, p);
      if (window.largest == 0) continue;
      const double factor = grad_output[oh * W.output + ow] * std::pow(window.sum, -(p - 1) / p);
      for (int64_t ih = ih_begin; ih < ih_end; ++ih)
        for (int64_t iw = W.start(ow) + W.first_tap(ow); iw < W.start(ow) + W.end_tap(ow); ++iw) {
          const double x = plane[ih * W.input + iw];
          if (x != 0)
            grad_plane[ih * W.input + iw] +=
                static_cast<T>(factor * std::copysign(std::pow(std::abs(x) / window.largest, p - 1), x));
        }
    }
  }
}

// y is recomputed from the input.
template <typename T>
void lp_pool2d_backward(VectorIsa, const T* grad_output, const T* input, T* grad_input, const LpPool2dParams& p) {
  const Pool2dGeometry& g = p.geometry;
  const int64_t OW = g.w.output;
  const bool direct_sums = p.norm_type == 1.0 || p.norm_type == 2.0;
  for_each_input_band<T>(g, [&](int64_t plane, int64_t r0, int64_t r1, T* weights) {
    const T* in = input + plane * g.input_plane();
    const T* go = grad_output + plane * g.output_plane();
    T* gi = grad_input + plane * g.input_plane();
    if (!direct_sums) return lp_pool2d_backward_scaled_band(go, in, gi, g, p.norm_type, r0, r1);
    // y is recomputed in the forward pass's summation order, so it equals the forward's output.
    std::vector<T> column = column_scratch(g, T(0));
    with_lp_norm<T>(p.norm_type, [&](const auto& norm) {
      // gi = input_factor(x) * sum over windows of grad_output / y^(p-1)
      window_sum_transpose_band(gi, g, r0, r1, weights, [&](int64_t oh, T* w) {
        lp_pool2d_row(in, w, column.data(), g, oh, norm);
#pragma omp simd
        for (int64_t ow = 0; ow < OW; ++ow) {
          const T y = w[ow];
          w[ow] = y > T(0) ? go[oh * OW + ow] / norm.output_scale(y) : T(0);
        }
      });
#pragma omp simd
      for (int64_t i = r0 * g.w.input; i < r1 * g.w.input; ++i) gi[i] *= norm.input_factor(in[i]);
    });
  });
}
