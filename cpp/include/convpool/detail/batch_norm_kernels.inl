// The kernels of batch_norm.hpp, compiled once per vector instruction set by
// detail/for_each_vector_isa.hpp.

inline constexpr int64_t kBatchNormPartials = 32;
// Terms added in T before a partial sum joins the double total: at most 64 per partial sum, so the
// vector loops run at T's width and float32 sums keep about 1e-6 relative accuracy.
inline constexpr int64_t kBatchNormChunk = 64 * kBatchNormPartials;

// The total of the 32 running sums: folded in T to 8 (j + 16, then j + 8: whole-vector additions),
// then those 8 added in order in double. A fixed order, without a chain of 32 dependent additions,
// which would cost more than a small plane's own sums.
template <typename T>
double fold_sum(T (&partial)[kBatchNormPartials]) {
  for (int64_t width = kBatchNormPartials / 2; width >= 8; width /= 2)
    for (int64_t j = 0; j < width; ++j) partial[j] += partial[j + width];
  double total = 0;
  for (int64_t j = 0; j < 8; ++j) total += partial[j];
  return total;
}

// The sums of each term(q, A{}) (computed and returned in A) over q in [0, count): term q goes to
// running sum q % 32 in A, and every chunk of 2048 terms adds its 32 sums (fold_sum) to a double
// total. The order is fixed by count alone.
template <typename A, class... Terms>
std::array<double, sizeof...(Terms)> ordered_sums(int64_t count, Terms... terms) {
  constexpr size_t kTerms = sizeof...(Terms);
  std::array<double, kTerms> total{};
  for (int64_t start = 0; start < count; start += kBatchNormChunk) {
    const int64_t length = std::min(kBatchNormChunk, count - start);
    const int64_t whole = length / kBatchNormPartials * kBatchNormPartials;
    A partial[kTerms][kBatchNormPartials] = {};
    for (int64_t q = 0; q < whole; q += kBatchNormPartials) {
#pragma omp simd
      for (int64_t j = 0; j < kBatchNormPartials; ++j) {
        size_t t = 0;
        ((partial[t++][j] += terms(start + q + j, A{})), ...);
      }
    }
    for (int64_t q = whole; q < length; ++q) {
      size_t t = 0;
      ((partial[t++][q - whole] += terms(start + q, A{})), ...);
    }
    for (size_t t = 0; t < kTerms; ++t) total[t] += fold_sum(partial[t]);
  }
  return total;
}

// ordered_sums in T, at T's vector width. float32 partial sums (and squares) overflow where
// float64 ones do not, for values beyond about 1e19 (squares) or 1e36 (sums of 64): a float32
// plane whose sums are not all finite is summed again with double terms, so that a result is
// inf or NaN only where the double sums of the same values are. Whether a plane is summed again
// depends on its values alone, never on the number of threads.
template <typename T, class... Terms>
std::array<double, sizeof...(Terms)> plane_sums(int64_t count, Terms... terms) {
  std::array<double, sizeof...(Terms)> sums = ordered_sums<T>(count, terms...);
  if constexpr (std::is_same_v<T, float>) {
    if (!std::all_of(sums.begin(), sums.end(), [](double v) { return std::isfinite(v); }))
      sums = ordered_sums<double>(count, terms...);
  }
  return sums;
}

// The moments of one plane (image n, channel c) about a reference r, its mean rounded to T:
// sum(x - r) and sum((x - r)^2), from which any mean's squared deviations follow exactly.
struct PlaneMoments {
  double reference, deviations, squares;
};

// Every plane's moments, in parallel: two passes over a plane, the second from the cache. A
// plane whose sum is not finite (an infinity or NaN among its values) has no mean to centre on:
// its moments are taken about 0, so that an infinite mean stays infinite instead of inf - inf.
template <typename T>
void plane_moments(const T* x, const BatchNorm2dParams& p, PlaneMoments* moments) {
  parallel_for(p.batch * p.channels, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* plane = x + r * p.plane;
      const double sum = plane_sums<T>(p.plane, [plane](int64_t q, auto a) { return decltype(a)(plane[q]); })[0];
      const T reference = std::isfinite(sum) ? static_cast<T>(sum / static_cast<double>(p.plane)) : T(0);
      const auto [deviations, squares] = plane_sums<T>(
          p.plane, [plane, reference](int64_t q, auto a) { return decltype(a)(plane[q]) - decltype(a)(reference); },
          [plane, reference](int64_t q, auto a) {
            const auto deviation = decltype(a)(plane[q]) - decltype(a)(reference);
            return deviation * deviation;
          });
      moments[r] = {reference, deviations, squares};
    }
  });
}

template <typename T>
void batch_norm2d_forward(VectorIsa, const T* x, const T* weight, const T* bias, T* running_mean, T* running_var, T* y,
                          T* save_mean, T* save_invstd, const BatchNorm2dParams& p) {
  const int64_t planes = p.batch * p.channels;
  std::vector<PlaneMoments> moments(p.training ? planes : 0);
  if (p.training) plane_moments(x, p, moments.data());
  std::vector<T> alpha(p.channels), beta(p.channels);
  const double count = static_cast<double>(p.per_channel()), plane = static_cast<double>(p.plane);
  for (int64_t c = 0; c < p.channels; ++c) {
    double mean, invstd;
    if (p.training) {
      // Over the planes in image order: the total, then the squared deviations from the channel's
      // mean, sum((x - mean)^2) = squares - 2 (mean - r) deviations + n (mean - r)^2 per plane.
      double total = 0, deviations = 0;
      for (int64_t n = 0; n < p.batch; ++n) {
        const PlaneMoments& m = moments[n * p.channels + c];
        total += plane * m.reference + m.deviations;
      }
      mean = total / count;
      for (int64_t n = 0; n < p.batch; ++n) {
        const PlaneMoments& m = moments[n * p.channels + c];
        const double shift = mean - m.reference;
        deviations += m.squares - 2.0 * shift * m.deviations + plane * shift * shift;
      }
      invstd = 1.0 / std::sqrt(deviations / count + p.eps);
      if (running_mean) running_mean[c] = static_cast<T>((1.0 - p.momentum) * running_mean[c] + p.momentum * mean);
      if (running_var)
        running_var[c] = static_cast<T>((1.0 - p.momentum) * running_var[c] + p.momentum * deviations / (count - 1.0));
    } else {
      mean = running_mean[c];
      invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + p.eps);
    }
    save_mean[c] = static_cast<T>(mean);
    save_invstd[c] = static_cast<T>(invstd);
    const double scale = (weight ? weight[c] : 1.0) * invstd;
    alpha[c] = static_cast<T>(scale);
    beta[c] = static_cast<T>((bias ? bias[c] : 0.0) - mean * scale);
  }
  const bool relu = p.activation == Activation::relu;
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T a = alpha[r % p.channels], b = beta[r % p.channels];
      const T* in = x + r * p.plane;
      T* out = y + r * p.plane;
#pragma omp simd
      for (int64_t q = 0; q < p.plane; ++q) {
        const T value = in[q] * a + b;
        out[q] = relu ? relu_of(value) : value;
      }
    }
  });
}

// The backward with the ReLU's mask (kRelu: no gradient where y <= 0) or without it.
template <bool kRelu, typename T>
void batch_norm2d_backward_masked(const T* grad_output, const T* x, const T* y, const T* weight, const T* save_mean,
                                  const T* save_invstd, T* grad_input, T* grad_weight, T* grad_bias,
                                  const BatchNorm2dParams& p) {
  const int64_t planes = p.batch * p.channels;
  // The gradient reaching the normalization.
  const auto grad_at = [grad_output, y](int64_t i) {
    if constexpr (!kRelu) return grad_output[i];
    return relu_gradient(grad_output[i], y[i]);
  };
  const bool needs_sums = grad_weight || grad_bias || (grad_input && p.training);
  std::vector<double> sums(needs_sums ? planes : 0), dots(sums.size());  // of grad, and of grad * (x - mean)
  if (needs_sums)
    parallel_for(planes, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t first = r * p.plane;
        const T mean = save_mean[r % p.channels];
        const auto [sum, dot] = plane_sums<T>(
            p.plane, [&grad_at, first](int64_t q, auto a) { return decltype(a)(grad_at(first + q)); },
            [&grad_at, x, first, mean](int64_t q, auto a) {
              using A = decltype(a);
              return A(grad_at(first + q)) * (A(x[first + q]) - A(mean));
            });
        sums[r] = sum;
        dots[r] = dot;
      }
    });
  // grad_input = a * grad + b * x + shift. Training: w * invstd * (grad - sum / M - (x - mean)
  // * invstd^2 * dot / M), the batch statistics depending on x; evaluation: w * invstd * grad.
  std::vector<T> a(p.channels), b(p.channels), shift(p.channels);
  const double count = static_cast<double>(p.per_channel());
  for (int64_t c = 0; c < p.channels; ++c) {
    double sum = 0, dot = 0;
    for (int64_t n = 0; n < (needs_sums ? p.batch : 0); ++n) {
      sum += sums[n * p.channels + c];
      dot += dots[n * p.channels + c];
    }
    const double invstd = save_invstd[c], scale = (weight ? weight[c] : 1.0) * invstd;
    if (grad_bias) grad_bias[c] = static_cast<T>(sum);
    if (grad_weight) grad_weight[c] = static_cast<T>(dot * invstd);
    const double k = p.training ? dot / count * invstd * invstd : 0.0;
    a[c] = static_cast<T>(scale);
    b[c] = static_cast<T>(-scale * k);
    shift[c] = static_cast<T>(p.training ? scale * (save_mean[c] * k - sum / count) : 0.0);
  }
  if (!grad_input) return;
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % p.channels, first = r * p.plane;
      const T ac = a[c], bc = b[c], shift_c = shift[c];
#pragma omp simd
      for (int64_t i = first; i < first + p.plane; ++i) grad_input[i] = grad_at(i) * ac + x[i] * bc + shift_c;
    }
  });
}

template <typename T>
void batch_norm2d_backward(VectorIsa, const T* grad_output, const T* x, const T* y, const T* weight, const T* save_mean,
                           const T* save_invstd, T* grad_input, T* grad_weight, T* grad_bias,
                           const BatchNorm2dParams& p) {
  if (p.activation == Activation::relu)
    batch_norm2d_backward_masked<true>(grad_output, x, y, weight, save_mean, save_invstd, grad_input, grad_weight,
                                       grad_bias, p);
  else
    batch_norm2d_backward_masked<false>(grad_output, x, y, weight, save_mean, save_invstd, grad_input, grad_weight,
                                        grad_bias, p);
}
