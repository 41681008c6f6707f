// Every vector micro-kernel of every instruction set this CPU supports, called directly and
// compared with the plain sum its contract states (simd.hpp, detail/simd_kernels.inl): edge
// tiles, partial vectors, accumulation, and reads past the valid region that must be dropped.
// Testers in XNNPACK's builder style: GemmTester().depth(5).valid(3, 7).Test(kernel).
#include <gtest/gtest.h>
#include <convpool/simd.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace convpool;

namespace {

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas{Isa::baseline};
  if (static_cast<int>(hardware_isa()) >= static_cast<int>(Isa::avx2)) isas.push_back(Isa::avx2);
  if (hardware_isa() == Isa::avx512) isas.push_back(Isa::avx512);
  return isas;
}

// Values in [-1, 1); buffers are filled past what a kernel may use with values it must not
// let into a result, so that a read that is not dropped shows.
template <typename T>
std::vector<T> random_values(size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<T> values(count);
  for (T& v : values) v = static_cast<T>(uniform(rng));
  return values;
}

// |actual - expected| within the rounding of a sum of `magnitude` (the sum of the terms' absolute
// values): the instruction sets fuse or do not fuse multiply-adds and add lanes in other orders.
template <typename T>
void expect_sum(T actual, long double expected, long double magnitude, const std::string& where) {
  const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-13) * static_cast<double>(magnitude + 1);
  EXPECT_NEAR(static_cast<double>(actual), static_cast<double>(expected), tolerance) << where;
}

constexpr double kUntouched = 1234.5;

class GemmTester {
 public:
  GemmTester& depth(int64_t v) {
    depth_ = v;
    return *this;
  }
  GemmTester& valid(int m, int n) {
    m_valid_ = m;
    n_valid_ = n;
    return *this;
  }
  GemmTester& accumulate(bool v) {
    accumulate_ = v;
    return *this;
  }
  GemmTester& row_init(bool v) {
    row_init_ = v;
    return *this;
  }

  // C (m_valid x n_valid of an mr x nr tile, row stride ldc) = init + A * B over depth steps.
  template <typename T>
  void Test(const GemmMicroKernel<T>& kernel, const std::string& name) const {
    const int mr = kernel.mr, nr = kernel.nr, m = m_valid_ < 0 ? mr : m_valid_, n = n_valid_ < 0 ? nr : n_valid_;
    const int64_t ldc = nr + 5;
    const std::vector<T> a = random_values<T>(depth_ * mr, 1), b = random_values<T>(depth_ * nr, 2);
    const std::vector<T> init = random_values<T>(mr, 3);
    std::vector<T> c(mr * ldc, T(kUntouched));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[i * ldc + j] = static_cast<T>(i - j);
    const std::vector<T> before = c;
    kernel.run(depth_, a.data(), b.data(), c.data(), ldc, m, n, accumulate_, row_init_ ? init.data() : nullptr);
    for (int i = 0; i < mr; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const std::string where = name + " row " + std::to_string(i) + " column " + std::to_string(j);
        if (i >= m || j >= n) {
          EXPECT_EQ(c[i * ldc + j], T(kUntouched)) << where;
          continue;
        }
        long double sum = accumulate_ ? before[i * ldc + j] : row_init_ ? init[i] : 0, magnitude = std::abs(sum);
        for (int64_t s = 0; s < depth_; ++s) {
          sum += static_cast<long double>(a[s * mr + i]) * b[s * nr + j];
          magnitude += std::abs(static_cast<long double>(a[s * mr + i]) * b[s * nr + j]);
        }
        expect_sum(c[i * ldc + j], sum, magnitude, where);
      }
  }

 private:
  int64_t depth_ = 1;
  int m_valid_ = -1, n_valid_ = -1;
  bool accumulate_ = false, row_init_ = false;
};

class DirectTester {
 public:
  DirectTester& depth(int64_t v) {
    depth_ = v;
    return *this;
  }
  DirectTester& valid(int m, int n) {
    m_valid_ = m;
    n_valid_ = n;
    return *this;
  }
  DirectTester& row_init(bool v) {
    row_init_ = v;
    return *this;
  }
  DirectTester& images(int64_t v) {
    images_ = v;
    return *this;
  }
  DirectTester& length(int64_t vectors) {
    length_vectors_ = vectors;
    return *this;
  }
  DirectTester& valid_cols(int v) {
    valid_cols_ = v;
    return *this;
  }

  // multiply: C[i][j] = init[i] + sum over s of a[s * mr + i] * base[offsets[s] + j], the whole
  // nr-wide row read at each offset, C written for i < m_valid, j < n_valid only.
  template <typename T>
  void TestMultiply(const DirectKernels<T>& kernel, const std::string& name) const {
    const int mr = kernel.mr, nr = kernel.nr, m = m_valid_ < 0 ? mr : m_valid_, n = n_valid_ < 0 ? nr : n_valid_;
    const int64_t ldc = nr + 3;
    const std::vector<T> a = random_values<T>(depth_ * mr, 4), base = random_values<T>(depth_ * 7 + nr, 5);
    const std::vector<T> init = random_values<T>(mr, 6);
    std::vector<int64_t> offsets(depth_);
    for (int64_t s = 0; s < depth_; ++s) offsets[s] = (s * 7) % (depth_ * 7);  // any order, overlapping rows
    std::vector<T> c(mr * ldc, T(kUntouched));
    kernel.multiply(depth_, a.data(), base.data(), offsets.data(), c.data(), ldc, m, n,
                    row_init_ ? init.data() : nullptr);
    for (int i = 0; i < mr; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const std::string where = name + " row " + std::to_string(i) + " column " + std::to_string(j);
        if (i >= m || j >= n) {
          EXPECT_EQ(c[i * ldc + j], T(kUntouched)) << where;
          continue;
        }
        long double sum = row_init_ ? init[i] : 0, magnitude = std::abs(sum);
        for (int64_t s = 0; s < depth_; ++s) {
          const long double term = static_cast<long double>(a[s * mr + i]) * base[offsets[s] + j];
          sum += term;
          magnitude += std::abs(term);
        }
        expect_sum(c[i * ldc + j], sum, magnitude, where);
      }
  }

  // correlate: sums[i][j] += over images b and q < length of rows[i][b * rows_stride + q] *
  // base[b * base_stride + offsets[j] + q], for i < rows, j < valid_cols (the others untouched).
  template <typename T>
  void TestCorrelate(const DirectKernels<T>& kernel, const std::string& name) const {
    const int64_t length = length_vectors_ * kernel.lanes, rows_stride = length + 3, base_stride = length + 40;
    const int valid = valid_cols_ < 0 ? kernel.cols : valid_cols_;
    const std::vector<T> grad = random_values<T>(kernel.rows * images_ * rows_stride, 7);
    const std::vector<T> base = random_values<T>(images_ * base_stride + 64, 8);
    std::vector<const T*> rows(kernel.rows);
    for (int i = 0; i < kernel.rows; ++i) rows[i] = grad.data() + i * images_ * rows_stride;
    std::vector<int64_t> offsets(kernel.cols);
    for (int j = 0; j < kernel.cols; ++j) offsets[j] = (j * 13) % 37;
    const int64_t ld_sums = kernel.cols + 2;
    std::vector<T> sums(kernel.rows * ld_sums);
    for (size_t k = 0; k < sums.size(); ++k) sums[k] = static_cast<T>(k % 5);
    const std::vector<T> before = sums;
    kernel.correlate(images_, length, rows.data(), rows_stride, base.data(), base_stride, offsets.data(), valid,
                     sums.data(), ld_sums);
    for (int i = 0; i < kernel.rows; ++i)
      for (int64_t j = 0; j < ld_sums; ++j) {
        const std::string where = name + " row " + std::to_string(i) + " column " + std::to_string(j);
        if (j >= valid) {
          EXPECT_EQ(sums[i * ld_sums + j], before[i * ld_sums + j]) << where;
          continue;
        }
        long double sum = before[i * ld_sums + j], magnitude = std::abs(sum);
        for (int64_t b = 0; b < images_; ++b)
          for (int64_t q = 0; q < length; ++q) {
            const long double term =
                static_cast<long double>(rows[i][b * rows_stride + q]) * base[b * base_stride + offsets[j] + q];
            sum += term;
            magnitude += std::abs(term);
          }
        expect_sum(sums[i * ld_sums + j], sum, magnitude, where);
      }
  }

 private:
  int64_t depth_ = 1, images_ = 1, length_vectors_ = 1;
  int m_valid_ = -1, n_valid_ = -1, valid_cols_ = -1;
  bool row_init_ = false;
};

class ChannelTester {
 public:
  ChannelTester& depth(int64_t v) {
    depth_ = v;
    return *this;
  }
  ChannelTester& valid(int channels, int rows, int cols) {
    channels_ = channels;
    rows_ = rows;
    cols_ = cols;
    return *this;
  }
  ChannelTester& row_init(bool v) {
    row_init_ = v;
    return *this;
  }

  // out[i * channel_stride + r * out_row_stride + j] = init[i] + sum over s of
  // a[s * channels + i] * base[r * row_stride + j + offsets[s]], inside the valid region only.
  template <typename T>
  void Test(const ChannelVectorKernel<T>& kernel, const std::string& name) const {
    const int m = channels_ < 0 ? kernel.channels : channels_, rows = rows_ < 0 ? kernel.rows : rows_;
    const int cols = cols_ < 0 ? kernel.cols : cols_;
    const int64_t row_stride = kernel.cols + 11, out_row_stride = kernel.cols + 2;
    const int64_t channel_stride = kernel.rows * out_row_stride + 1;
    const std::vector<T> a = random_values<T>(depth_ * kernel.channels, 9),
                         init = random_values<T>(kernel.channels, 10);
    const std::vector<T> base = random_values<T>(kernel.rows * row_stride + depth_ * 3 + kernel.cols, 11);
    std::vector<int64_t> offsets(depth_);
    for (int64_t s = 0; s < depth_; ++s) offsets[s] = (s * 5) % (depth_ * 3 + 1);
    std::vector<T> out(kernel.channels * channel_stride, T(kUntouched));
    kernel.multiply(depth_, a.data(), base.data(), row_stride, offsets.data(), out.data(), out_row_stride,
                    channel_stride, m, rows, cols, row_init_ ? init.data() : nullptr);
    for (int i = 0; i < kernel.channels; ++i)
      for (int64_t k = 0; k < channel_stride; ++k) {
        const int64_t r = k / out_row_stride, j = k % out_row_stride;
        const std::string where = name + " channel " + std::to_string(i) + " element " + std::to_string(k);
        if (i >= m || r >= rows || j >= cols) {
          EXPECT_EQ(out[i * channel_stride + k], T(kUntouched)) << where;
          continue;
        }
        long double sum = row_init_ ? init[i] : 0, magnitude = std::abs(sum);
        for (int64_t s = 0; s < depth_; ++s) {
          const long double term =
              static_cast<long double>(a[s * kernel.channels + i]) * base[r * row_stride + j + offsets[s]];
          sum += term;
          magnitude += std::abs(term);
        }
        expect_sum(out[i * channel_stride + k], sum, magnitude, where);
      }
  }

 private:
  int64_t depth_ = 1;
  int channels_ = -1, rows_ = -1, cols_ = -1;
  bool row_init_ = false;
};

class DepthwiseTester {
 public:
  DepthwiseTester& kernel(int64_t h, int64_t w) {
    kernel_h_ = h;
    kernel_w_ = w;
    return *this;
  }
  DepthwiseTester& output(int64_t h, int64_t w) {
    out_h_ = h;
    out_w_ = w;
    return *this;
  }
  // Taps on consecutive rows, dw columns apart (the fixed 3x3 and 5x5 kernels' pattern), or
  // scattered.
  DepthwiseTester& dense_taps(int64_t dw) {
    dw_ = dw;
    return *this;
  }
  DepthwiseTester& accumulate(bool v) {
    accumulate_ = v;
    return *this;
  }

  template <typename T>
  void Test(const DepthwiseKernels<T>& kernels, const std::string& name) const {
    const int64_t taps = kernel_h_ * kernel_w_, reach = kernel_w_ * std::max<int64_t>(dw_, 3);
    const int64_t row_stride = (out_w_ + kernels.lanes - 1) / kernels.lanes * kernels.lanes + reach + 3;
    std::vector<int64_t> offsets(taps);
    for (int64_t t = 0; t < taps; ++t)
      offsets[t] = dw_ > 0 ? (t / kernel_w_) * row_stride + (t % kernel_w_) * dw_ : (t * 7) % (2 * row_stride);
    const std::vector<T> base = random_values<T>((out_h_ + kernel_h_ + 2) * row_stride + kernels.lanes, 12);
    const std::vector<T> weights = random_values<T>(taps, 13),
                         grad_values = random_values<T>(out_h_ * (out_w_ + 4), 14);
    const int64_t out_stride = out_w_ + 4;
    std::vector<T> out(out_h_ * out_stride);
    for (size_t k = 0; k < out.size(); ++k)
      out[k] = k % out_stride < static_cast<size_t>(out_w_) ? T(0.5) : T(kUntouched);
    const std::vector<T> before = out;
    kernels.plane(base.data(), row_stride, weights.data(), kernel_h_, kernel_w_, offsets.data(), accumulate_, T(0.25),
                  out.data(), out_h_, out_w_, out_stride);
    for (int64_t oh = 0; oh < out_h_; ++oh)
      for (int64_t ow = 0; ow < out_stride; ++ow) {
        const std::string where = name + " plane output " + std::to_string(oh) + ", " + std::to_string(ow);
        if (ow >= out_w_) {
          EXPECT_EQ(out[oh * out_stride + ow], T(kUntouched)) << where;
          continue;
        }
        long double sum = accumulate_ ? before[oh * out_stride + ow] : 0.25, magnitude = std::abs(sum);
        for (int64_t t = 0; t < taps; ++t) {
          const long double term = static_cast<long double>(weights[t]) * base[oh * row_stride + ow + offsets[t]];
          sum += term;
          magnitude += std::abs(term);
        }
        expect_sum(out[oh * out_stride + ow], sum, magnitude, where);
      }
    // weight_plane: sums[t] += over (oh, ow) of grad[oh * grad_stride + ow] * base[oh * row_stride + ow + offsets[t]].
    std::vector<T> sums(taps, T(1));
    kernels.weight_plane(base.data(), row_stride, grad_values.data(), out_h_, out_w_, out_stride, kernel_h_, kernel_w_,
                         offsets.data(), sums.data());
    for (int64_t t = 0; t < taps; ++t) {
      long double sum = 1, magnitude = 1;
      for (int64_t oh = 0; oh < out_h_; ++oh)
        for (int64_t ow = 0; ow < out_w_; ++ow) {
          const long double term =
              static_cast<long double>(grad_values[oh * out_stride + ow]) * base[oh * row_stride + ow + offsets[t]];
          sum += term;
          magnitude += std::abs(term);
        }
      expect_sum(sums[t], sum, magnitude, name + " weight_plane tap " + std::to_string(t));
    }
  }

 private:
  int64_t kernel_h_ = 3, kernel_w_ = 3, out_h_ = 4, out_w_ = 9, dw_ = 1;
  bool accumulate_ = false;
};

template <typename T>
std::string label(Isa isa, const char* kernel) {
  return std::string(isa_name(isa)) + (std::is_same_v<T, float> ? " float " : " double ") + kernel;
}

template <typename T>
void test_gemm() {
  for (Isa isa : supported_isas()) {
    const GemmMicroKernel<T> kernel = gemm_micro_kernel_for<T>(isa);
    const std::string name = label<T>(isa, "gemm");
    for (int64_t depth : {1, 5, 300}) {
      GemmTester().depth(depth).Test(kernel, name);
      GemmTester().depth(depth).row_init(true).Test(kernel, name);
      GemmTester().depth(depth).accumulate(true).Test(kernel, name);
      GemmTester().depth(depth).valid(kernel.mr - 1, kernel.nr - 3).row_init(true).Test(kernel, name);
      GemmTester().depth(depth).valid(1, 1).accumulate(true).Test(kernel, name);
    }
  }
}

template <typename T>
void test_direct() {
  for (Isa isa : supported_isas())
    for (const DirectKernels<T>& kernel : direct_kernel_variants_for<T>(isa)) {
      const std::string name = label<T>(isa, "direct ") + std::to_string(kernel.mr) + "x" + std::to_string(kernel.nr);
      for (int64_t depth : {1, 9, 75}) {
        DirectTester().depth(depth).TestMultiply(kernel, name);
        DirectTester().depth(depth).row_init(true).valid(kernel.mr - 1, kernel.nr - 1).TestMultiply(kernel, name);
        DirectTester().depth(depth).valid(2, 3).TestMultiply(kernel, name);
      }
      for (int64_t images : {1, 3})
        for (int64_t vectors : {1, 4}) {
          DirectTester().images(images).length(vectors).TestCorrelate(kernel, name);
          DirectTester().images(images).length(vectors).valid_cols(kernel.cols - 1).TestCorrelate(kernel, name);
          DirectTester().images(images).length(vectors).valid_cols(1).TestCorrelate(kernel, name);
        }
    }
}

template <typename T>
void test_channel_vectors() {
  for (Isa isa : supported_isas()) {
    const ChannelVectorKernel<T> kernel = channel_vector_kernel_for<T>(isa);
    const std::string name = label<T>(isa, "channel-vector");
    for (int64_t depth : {1, 27, 150}) {
      ChannelTester().depth(depth).Test(kernel, name);
      ChannelTester().depth(depth).row_init(true).Test(kernel, name);
      ChannelTester().depth(depth).valid(kernel.channels - 3, 1, kernel.cols - 1).row_init(true).Test(kernel, name);
      ChannelTester().depth(depth).valid(1, kernel.rows, 2).Test(kernel, name);
    }
  }
}

template <typename T>
void test_depthwise() {
  for (Isa isa : supported_isas()) {
    const DepthwiseKernels<T> kernels = depthwise_kernels_for<T>(isa);
    const std::string name = label<T>(isa, "depthwise");
    for (int64_t k : {3, 5})
      for (int64_t dw : {1, 2})
        for (int64_t out_h : {1, 2, 9})
          for (int64_t out_w : {1, kernels.lanes, kernels.lanes + 3, 3 * kernels.lanes - 1})
            for (bool accumulate : {false, true})
              DepthwiseTester()
                  .kernel(k, k)
                  .dense_taps(dw)
                  .output(out_h, out_w)
                  .accumulate(accumulate)
                  .Test(kernels, name);
    DepthwiseTester().kernel(2, 4).dense_taps(1).output(5, 11).Test(kernels, name);
    DepthwiseTester().kernel(3, 3).dense_taps(0).output(6, 13).accumulate(true).Test(kernels, name);
    DepthwiseTester().kernel(1, 7).dense_taps(3).output(3, 20).Test(kernels, name);
  }
}

}  // namespace

TEST(Kernels, GemmMicroKernelAtEveryInstructionSet) {
  test_gemm<float>();
  test_gemm<double>();
}

TEST(Kernels, DirectMultiplyAndCorrelateAtEveryInstructionSet) {
  test_direct<float>();
  test_direct<double>();
}

TEST(Kernels, ChannelVectorKernelAtEveryInstructionSet) {
  test_channel_vectors<float>();
  test_channel_vectors<double>();
}

TEST(Kernels, DepthwisePlaneAndWeightPlaneAtEveryInstructionSet) {
  test_depthwise<float>();
  test_depthwise<double>();
}
