#include <gtest/gtest.h>
#include <convpool/activation.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace convpool;

TEST(Relu, ChunkedAcrossThreadsMatchesDefinition) {
  // Not a multiple of the work chunk: the last thread's range is partial.
  const int64_t count = 3 * kElementwiseChunk + 17;
  std::vector<float> x(count), y(count), grad(count), grad_input(count);
  for (int64_t i = 0; i < count; ++i) {
    x[i] = static_cast<float>((i * 7919) % 201 - 100);
    grad[i] = static_cast<float>(i % 13) + 0.5f;
  }
  x[5] = std::numeric_limits<float>::quiet_NaN();
  x[6] = -0.0f;
  const int saved_threads = get_num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    relu_forward(x.data(), y.data(), count);
    relu_backward(grad.data(), y.data(), grad_input.data(), count);
    for (int64_t i = 0; i < count; ++i) {
      if (i == 5) {
        EXPECT_TRUE(std::isnan(y[i]));
        EXPECT_EQ(grad_input[i], grad[i]);  // PyTorch passes the gradient at a NaN output
        continue;
      }
      ASSERT_EQ(y[i], x[i] < 0 ? 0.0f : x[i]) << i;
      ASSERT_EQ(grad_input[i], y[i] > 0 ? grad[i] : 0.0f) << i;
    }
    EXPECT_TRUE(std::signbit(y[6]));
  }
  set_num_threads(saved_threads);
}
