// Every vector micro-kernel of every instruction set this CPU supports, called directly and
// compared with the plain sum its contract states (detail/conv_kernels.hpp and .inl): edge
// tiles, partial vectors, accumulation, and reads past the valid region that must be dropped.
// Testers in XNNPACK's builder style: KernelTester().depth(5).valid(3, 7).Test(kernel).
#include <gtest/gtest.h>
#include <convpool/detail/conv_kernels.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace convpool;

namespace {

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

// A sum of products in long double and the sum of their magnitudes, which bounds its rounding.
struct ExpectedSum {
  long double sum, magnitude;
  explicit ExpectedSum(long double start) : sum(start), magnitude(std::abs(start)) {}
  void add(long double a, long double b) {
    sum += a * b;
    magnitude += std::abs(a * b);
  }
  template <typename T>
  void expect(T actual, const std::string& where) const {
    expect_sum(actual, sum, magnitude, where);
  }
};

// Checks a register tile of mr rows stored ldc apart: element (i, j) is expected(i, j) for i < m,
// j < n, and untouched elsewhere.
template <typename T, class Expected>
void check_tile(const std::vector<T>& c, int mr, int64_t ldc, int m, int n, const std::string& name,
                Expected expected) {
  for (int i = 0; i < mr; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const std::string where = name + " row " + std::to_string(i) + " column " + std::to_string(j);
      if (i >= m || j >= n)
        EXPECT_EQ(c[i * ldc + j], T(kUntouched)) << where;
      else
        expected(i, j).expect(c[i * ldc + j], where);
    }
}

// One builder for every kernel: each Test reads the settings its kernel has.
class KernelTester {
 public:
  KernelTester& depth(int64_t v) { return set(depth_, v); }
  // The rows and columns of a register tile that are kept.
  KernelTester& valid(int m, int n) { return set(m_valid_, m).set(n_valid_, n); }
  // The channel-vector kernel's kept channels, rows and columns.
  KernelTester& valid_region(int channels, int rows, int cols) {
    return set(m_valid_, channels).set(rows_valid_, rows).set(n_valid_, cols);
  }
  KernelTester& accumulate(bool v) { return set(accumulate_, v); }
  KernelTester& row_init(bool v) { return set(row_init_, v); }
  KernelTester& images(int64_t v) { return set(images_, v); }
  KernelTester& taps(int64_t v) { return set(taps_, v); }
  KernelTester& length(int64_t vectors) { return set(length_vectors_, vectors); }
  KernelTester& kernel(int64_t h, int64_t w) { return set(kernel_h_, h).set(kernel_w_, w); }
  KernelTester& output(int64_t h, int64_t w) { return set(out_h_, h).set(out_w_, w); }
  // Taps on consecutive rows, dw columns apart (the fixed 3x3 and 5x5 kernels' pattern), or
  // scattered (0).
  KernelTester& dense_taps(int64_t dw) { return set(dw_, dw); }

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
    check_tile(c, mr, ldc, m, n, name, [&](int i, int64_t j) {
      ExpectedSum expected(accumulate_ ? before[i * ldc + j] : row_init_ ? init[i] : 0);
      for (int64_t s = 0; s < depth_; ++s) expected.add(a[s * mr + i], b[s * nr + j]);
      return expected;
    });
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
    check_tile(c, mr, ldc, m, n, name, [&](int i, int64_t j) {
      ExpectedSum expected(row_init_ ? init[i] : 0);
      for (int64_t s = 0; s < depth_; ++s) expected.add(a[s * mr + i], base[offsets[s] + j]);
      return expected;
    });
  }

  // correlate: sums[i][j] += over images b and q < length of rows[i][b * rows_stride + q] *
  // base[b * base_stride + offsets[j] + q], for i < rows, j < n_valid (the others untouched).
  template <typename T>
  void TestCorrelate(const DirectKernels<T>& kernel, const std::string& name) const {
    const int64_t length = length_vectors_ * kernel.lanes, rows_stride = length + 3, base_stride = length + 40;
    const int valid = n_valid_ < 0 ? kernel.cols : n_valid_;
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
        ExpectedSum expected(before[i * ld_sums + j]);
        for (int64_t b = 0; b < images_; ++b)
          for (int64_t q = 0; q < length; ++q)
            expected.add(rows[i][b * rows_stride + q], base[b * base_stride + offsets[j] + q]);
        expected.expect(sums[i * ld_sums + j], where);
      }
  }

  // out[i * channel_stride + r * out_row_stride + j] = init[i] + sum over s of
  // a[s * channels + i] * base[r * row_stride + j + offsets[s]], inside the valid region only.
  template <typename T>
  void Test(const ChannelVectorKernel<T>& kernel, const std::string& name) const {
    const int m = m_valid_ < 0 ? kernel.channels : m_valid_, rows = rows_valid_ < 0 ? kernel.rows : rows_valid_;
    const int cols = n_valid_ < 0 ? kernel.cols : n_valid_;
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
        ExpectedSum expected(row_init_ ? init[i] : 0);
        for (int64_t s = 0; s < depth_; ++s)
          expected.add(a[s * kernel.channels + i], base[r * row_stride + j + offsets[s]]);
        expected.expect(out[i * channel_stride + k], where);
      }
  }

  // plane: out[oh][ow] = init + sum over taps t of weights[t] * base[oh * row_stride + ow + offsets[t]]
  // for ow < out_w (the row's tail untouched); weight_plane: sums[t] += over (oh, ow) of
  // grad[oh * grad_stride + ow] * base[oh * row_stride + ow + offsets[t]].
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
        ExpectedSum expected(accumulate_ ? before[oh * out_stride + ow] : 0.25);
        for (int64_t t = 0; t < taps; ++t) expected.add(weights[t], base[oh * row_stride + ow + offsets[t]]);
        expected.expect(out[oh * out_stride + ow], where);
      }
    std::vector<T> sums(taps, T(1));
    kernels.weight_plane(base.data(), row_stride, grad_values.data(), out_h_, out_w_, out_stride, kernel_h_, kernel_w_,
                         offsets.data(), sums.data());
    for (int64_t t = 0; t < taps; ++t) {
      ExpectedSum expected(1);
      for (int64_t oh = 0; oh < out_h_; ++oh)
        for (int64_t ow = 0; ow < out_w_; ++ow)
          expected.add(grad_values[oh * out_stride + ow], base[oh * row_stride + ow + offsets[t]]);
      expected.expect(sums[t], name + " weight_plane tap " + std::to_string(t));
    }
  }

  // Channels last, multiply: C[i][j] = init + the sum over taps t and channels k of
  // rows[t * mr + i][k] * panels[t][k * nr + j] (init: C when accumulating, else column_init[j]
  // or zero), for i < m_valid, j < n_valid only; depth_ is the channels, taps_ the taps.
  template <typename T>
  void TestMultiply(const ChannelsLastKernels<T>& kernel, const std::string& name) const {
    const int mr = kernel.mr, nr = kernel.nr, m = m_valid_ < 0 ? mr : m_valid_, n = n_valid_ < 0 ? nr : n_valid_;
    const int64_t ldc = nr + 5, row_length = depth_ + 3, pixels = mr + 4;
    const std::vector<T> image = random_values<T>(pixels * row_length, 15);
    const std::vector<T> weights = random_values<T>(taps_ * depth_ * nr, 16), init = random_values<T>(nr, 17);
    std::vector<const T*> rows(taps_ * mr), panels(taps_);
    for (int64_t t = 0; t < taps_; ++t) {
      panels[t] = weights.data() + t * depth_ * nr;
      for (int i = 0; i < mr; ++i) rows[t * mr + i] = image.data() + (t * 5 + i * 3) % pixels * row_length;
    }
    std::vector<T> c(mr * ldc, T(kUntouched));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[i * ldc + j] = static_cast<T>(i - j);
    const std::vector<T> before = c;
    kernel.multiply(taps_, depth_, rows.data(), panels.data(), c.data(), ldc, m, n, accumulate_,
                    row_init_ ? init.data() : nullptr);
    check_tile(c, mr, ldc, m, n, name + " multiply", [&](int i, int64_t j) {
      ExpectedSum expected(accumulate_ ? before[i * ldc + j] : row_init_ ? init[j] : 0);
      for (int64_t t = 0; t < taps_; ++t)
        for (int64_t k = 0; k < depth_; ++k) expected.add(rows[t * mr + i][k], panels[t][k * nr + j]);
      return expected;
    });
  }

  // Channels last, correlate: C[i][j] = init + the sum over steps s of rows[s][offset + i] *
  // b[s * ldb + j]. Each step's row ends m_valid values past the offset and b's rows are n_valid
  // wide, the last of each at the end of its allocation, so that AddressSanitizer sees a read past
  // the valid region.
  template <typename T>
  void TestCorrelate(const ChannelsLastKernels<T>& kernel, const std::string& name) const {
    const int mr = kernel.mr, nr = kernel.nr, m = m_valid_ < 0 ? mr : m_valid_, n = n_valid_ < 0 ? nr : n_valid_;
    const int64_t offset = 2, row_length = offset + m, ldc = nr + 3;
    const std::vector<T> a = random_values<T>(depth_ * row_length, 18), b = random_values<T>(depth_ * n, 19);
    std::vector<const T*> rows(depth_);
    for (int64_t s = 0; s < depth_; ++s) rows[s] = a.data() + (depth_ - 1 - s) * row_length;
    std::vector<T> c(mr * ldc, T(kUntouched));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) c[i * ldc + j] = static_cast<T>(i + j);
    const std::vector<T> before = c;
    kernel.correlate(depth_, rows.data(), offset, b.data(), n, c.data(), ldc, m, n, accumulate_);
    check_tile(c, mr, ldc, m, n, name + " correlate", [&](int i, int64_t j) {
      ExpectedSum expected(accumulate_ ? before[i * ldc + j] : 0);
      for (int64_t s = 0; s < depth_; ++s) expected.add(rows[s][offset + i], b[s * n + j]);
      return expected;
    });
  }

  // Depthwise channels last: out[j] = init[j] (or zero) + the sum over u < taps_ of a[u][j] *
  // b[u][j] for j < depth_ (the channels), the element past them untouched.
  template <typename T>
  void TestChannelsLast(const DepthwiseKernels<T>& kernels, const std::string& name) const {
    const int64_t channels = depth_;
    const std::vector<T> a = random_values<T>(taps_ * channels, 20), b = random_values<T>(taps_ * channels, 21);
    const std::vector<T> init = random_values<T>(channels, 22);
    std::vector<const T*> a_rows(taps_), b_rows(taps_);
    for (int64_t u = 0; u < taps_; ++u) {
      a_rows[u] = a.data() + u * channels;
      b_rows[u] = b.data() + (taps_ - 1 - u) * channels;
    }
    std::vector<T> out(channels + 1, T(kUntouched));
    kernels.channels_last(taps_, a_rows.data(), b_rows.data(), channels, row_init_ ? init.data() : nullptr, out.data());
    for (int64_t j = 0; j < channels; ++j) {
      ExpectedSum expected(row_init_ ? init[j] : 0);
      for (int64_t u = 0; u < taps_; ++u) expected.add(a_rows[u][j], b_rows[u][j]);
      expected.expect(out[j], name + " channels_last channel " + std::to_string(j));
    }
    EXPECT_EQ(out[channels], T(kUntouched)) << name << " channels_last past the channels";
  }

 private:
  template <typename Field>
  KernelTester& set(Field& field, Field value) {
    field = value;
    return *this;
  }

  int64_t depth_ = 1, images_ = 1, length_vectors_ = 1, taps_ = 1;
  int m_valid_ = -1, n_valid_ = -1, rows_valid_ = -1;
  bool accumulate_ = false, row_init_ = false;
  int64_t kernel_h_ = 3, kernel_w_ = 3, out_h_ = 4, out_w_ = 9, dw_ = 1;
};

template <typename T>
std::string label(Isa isa, const char* kernel) {
  return std::string(isa_name(isa)) + (std::is_same_v<T, float> ? " float " : " double ") + kernel;
}

// Calls test(kernel, name) with the kernel make(isa) of every instruction set this CPU has.
template <typename T, class Make, class Test>
void at_every_isa(const char* kernel_name, Make make, Test test) {
  for (Isa isa : supported_isas()) test(make(isa), label<T>(isa, kernel_name));
}

template <typename T>
void test_gemm(const GemmMicroKernel<T>& kernel, const std::string& name) {
  for (int64_t depth : {1, 5, 300}) {
    KernelTester().depth(depth).Test(kernel, name);
    KernelTester().depth(depth).row_init(true).Test(kernel, name);
    KernelTester().depth(depth).accumulate(true).Test(kernel, name);
    KernelTester().depth(depth).valid(kernel.mr - 1, kernel.nr - 3).row_init(true).Test(kernel, name);
    KernelTester().depth(depth).valid(1, 1).accumulate(true).Test(kernel, name);
  }
}

template <typename T>
void test_direct(const std::vector<DirectKernels<T>>& variants, const std::string& isa_name) {
  for (const DirectKernels<T>& kernel : variants) {
    const std::string name = isa_name + " " + std::to_string(kernel.mr) + "x" + std::to_string(kernel.nr);
    for (int64_t depth : {1, 9, 75}) {
      KernelTester().depth(depth).TestMultiply(kernel, name);
      KernelTester().depth(depth).row_init(true).valid(kernel.mr - 1, kernel.nr - 1).TestMultiply(kernel, name);
      KernelTester().depth(depth).valid(2, 3).TestMultiply(kernel, name);
    }
    for (int64_t images : {1, 3})
      for (int64_t vectors : {1, 4}) {
        KernelTester().images(images).length(vectors).TestCorrelate(kernel, name);
        KernelTester().images(images).length(vectors).valid(kernel.rows, kernel.cols - 1).TestCorrelate(kernel, name);
        KernelTester().images(images).length(vectors).valid(kernel.rows, 1).TestCorrelate(kernel, name);
      }
  }
}

template <typename T>
void test_channel_vectors(const std::vector<ChannelVectorKernel<T>>& variants, const std::string& isa_name) {
  for (const ChannelVectorKernel<T>& kernel : variants) {
    const std::string name = isa_name + " " + std::to_string(kernel.rows) + "x" + std::to_string(kernel.cols) + "x" +
                             std::to_string(kernel.channels);
    for (int64_t depth : {1, 27, 150}) {
      KernelTester().depth(depth).Test(kernel, name);
      KernelTester().depth(depth).row_init(true).Test(kernel, name);
      KernelTester()
          .depth(depth)
          .valid_region(kernel.channels - 3, 1, kernel.cols - 1)
          .row_init(true)
          .Test(kernel, name);
      KernelTester().depth(depth).valid_region(1, kernel.rows, 2).Test(kernel, name);
    }
  }
}

template <typename T>
void test_depthwise(const DepthwiseKernels<T>& kernels, const std::string& name) {
  for (int64_t k : {3, 5})
    for (int64_t dw : {1, 2})
      for (int64_t out_h : {1, 2, 9})
        for (int64_t out_w : {1, kernels.lanes, kernels.lanes + 3, 3 * kernels.lanes - 1})
          for (bool accumulate : {false, true})
            KernelTester().kernel(k, k).dense_taps(dw).output(out_h, out_w).accumulate(accumulate).Test(kernels, name);
  KernelTester().kernel(2, 4).dense_taps(1).output(5, 11).Test(kernels, name);
  KernelTester().kernel(3, 3).dense_taps(0).output(6, 13).accumulate(true).Test(kernels, name);
  KernelTester().kernel(1, 7).dense_taps(3).output(3, 20).Test(kernels, name);
}

template <typename T>
void test_channels_last(const std::vector<ChannelsLastKernels<T>>& variants, const std::string& isa_name) {
  for (const ChannelsLastKernels<T>& kernel : variants) {
    const std::string name = isa_name + " " + std::to_string(kernel.mr) + "x" + std::to_string(kernel.nr);
    for (int64_t taps : {1, 9})
      for (int64_t channels : {1, 3, 16}) {
        KernelTester().taps(taps).depth(channels).TestMultiply(kernel, name);
        KernelTester()
            .taps(taps)
            .depth(channels)
            .row_init(true)
            .valid(kernel.mr - 1, kernel.nr - 1)
            .TestMultiply(kernel, name);
        KernelTester()
            .taps(taps)
            .depth(channels)
            .accumulate(true)
            .valid(1, std::min(3, kernel.nr))
            .TestMultiply(kernel, name);
      }
    KernelTester().taps(0).depth(4).row_init(true).TestMultiply(kernel, name);  // no tap reaches the pixels
    for (int64_t steps : {1, 7, 300}) {
      KernelTester().depth(steps).TestCorrelate(kernel, name);
      KernelTester().depth(steps).accumulate(true).TestCorrelate(kernel, name);
      KernelTester().depth(steps).valid(kernel.mr - 1, kernel.nr - 1).TestCorrelate(kernel, name);
      KernelTester().depth(steps).valid(1, 1).accumulate(true).TestCorrelate(kernel, name);
    }
  }
}

template <typename T>
void test_depthwise_channels_last(const DepthwiseKernels<T>& kernels, const std::string& name) {
  for (int64_t taps : {0, 1, 9})
    for (int64_t channels : {1, kernels.lanes - 1, 4 * kernels.lanes, 5 * kernels.lanes + 3})
      for (bool init : {false, true})
        KernelTester().taps(taps).depth(channels).row_init(init).TestChannelsLast(kernels, name);
}

}  // namespace

template <typename T>
class Kernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Kernels, FloatTypes);

TYPED_TEST(Kernels, GemmMicroKernelAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "gemm", [](Isa isa) { return kernel_table_for<TypeParam>(isa).gemm; }, test_gemm<TypeParam>);
}

TYPED_TEST(Kernels, DirectMultiplyAndCorrelateAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "direct", [](Isa isa) { return kernel_table_for<TypeParam>(isa).direct; }, test_direct<TypeParam>);
}

TYPED_TEST(Kernels, ChannelVectorKernelAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "channel-vector", [](Isa isa) { return kernel_table_for<TypeParam>(isa).channel_vector; },
      test_channel_vectors<TypeParam>);
}

TYPED_TEST(Kernels, DepthwisePlaneAndWeightPlaneAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "depthwise", [](Isa isa) { return kernel_table_for<TypeParam>(isa).depthwise; }, test_depthwise<TypeParam>);
}

TEST(InstructionSets, TheBaselineRunsEverywhereAndTheBestSupportedIsChosen) {
  const std::vector<Isa> supported = supported_isas();
  ASSERT_FALSE(supported.empty());
  EXPECT_EQ(supported.front(), Isa::baseline);
  EXPECT_EQ(hardware_isa(), supported.back());
  for (Isa isa : target_isas()) EXPECT_STRNE(isa_name(isa), "unknown");
}

TYPED_TEST(Kernels, ChannelsLastMultiplyAndCorrelateAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "channels-last", [](Isa isa) { return kernel_table_for<TypeParam>(isa).channels_last; },
      test_channels_last<TypeParam>);
}

TYPED_TEST(Kernels, DepthwiseChannelsLastAtEveryInstructionSet) {
  at_every_isa<TypeParam>(
      "depthwise", [](Isa isa) { return kernel_table_for<TypeParam>(isa).depthwise; },
      test_depthwise_channels_last<TypeParam>);
}
