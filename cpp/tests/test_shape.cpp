#include <gtest/gtest.h>
#include <convpool/shape.hpp>

using convpool::make_window_dim;
using convpool::pooling_output_size;

TEST(OutputSize, FollowsPyTorchFloorAndCeil) {
  EXPECT_EQ(pooling_output_size(112, 3, 2, 1, 1, false), 56);
  EXPECT_EQ(pooling_output_size(5, 2, 2, 0, 1, false), 2);
  EXPECT_EQ(pooling_output_size(5, 2, 2, 0, 1, true), 3);
  // The ceil_mode window that would start in the right padding is dropped: 6 + pad 1, k 2, s 2
  // would give 4 windows, the last starting at 5 = input + padding - 1 ... kept; with s 3 the
  // window starting at 8 > 6 + 1 is dropped.
  EXPECT_EQ(pooling_output_size(6, 2, 2, 1, 1, true), 4);
  EXPECT_EQ(pooling_output_size(6, 3, 3, 1, 1, true), 3);
  EXPECT_EQ(pooling_output_size(4, 5, 1, 0, 1, false), 0);
  EXPECT_EQ(pooling_output_size(7, 3, 1, 0, 3, false), 1);  // dilated span 7
}

TEST(WindowDim, TapAndOutputRangesAgreeWithBruteForce) {
  for (int64_t input = 1; input < 9; ++input)
    for (int64_t k = 1; k < 5; ++k)
      for (int64_t s = 1; s < 4; ++s)
        for (int64_t d = 1; d < 3; ++d)
          for (int64_t p = 0; p <= k / 2; ++p) {
            const auto dim = make_window_dim(input, k, s, p, d, true);
            for (int64_t o = 0; o < dim.output; ++o)
              for (int64_t t = 0; t < k; ++t) {
                const int64_t i = dim.start(o) + t * d;
                const bool inside = i >= 0 && i < input;
                EXPECT_EQ(inside, t >= dim.first_tap(o) && t < dim.end_tap(o));
                EXPECT_EQ(inside, o >= dim.first_output(t) && o < dim.end_output(t));
              }
          }
}
