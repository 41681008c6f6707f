// Pins two documented results through the installed headers: the tie rule of max pooling over
// overlapping windows, and a 3x3 convolution with padding.
#include <convpool/convpool.hpp>

#include <cstdio>
#include <vector>

int main() {
  // Input [0, 5, 5, 0], kernel (1, 2), stride 1, tie_break="split": gradient [0, 1.5, 1.5, 0].
  convpool::MaxPool2dParams pool;
  pool.geometry = {1, convpool::make_window_dim(1, 1, 1, 0, 1, false), convpool::make_window_dim(4, 2, 1, 0, 1, false)};
  pool.tie_break = convpool::TieBreak::split;
  const std::vector<float> x = {0, 5, 5, 0}, ones = {1, 1, 1};
  std::vector<float> y(3), grad_x(4);
  std::vector<int64_t> indices(3);
  convpool::max_pool2d_forward(x.data(), y.data(), indices.data(), pool);
  convpool::max_pool2d_backward(ones.data(), x.data(), indices.data(), grad_x.data(), pool);
  const std::vector<float> expected_grad = {0, 1.5f, 1.5f, 0};

  // A 3x3 all-ones kernel over a 3x3 all-ones image with padding 1 counts each pixel's neighbours.
  convpool::Conv2dParams conv;
  conv.h = {3, convpool::conv_output_size(3, 3, 1, 1, 1, 1), 3, 1, 1, 1};
  conv.w = conv.h;
  const std::vector<double> image(9, 1.0), kernel(9, 1.0);
  std::vector<double> out(9);
  convpool::conv2d_forward<double>(image.data(), kernel.data(), nullptr, out.data(), conv);
  const std::vector<double> expected_out = {4, 6, 4, 6, 9, 6, 4, 6, 4};

  if (grad_x != expected_grad || out != expected_out || indices != std::vector<int64_t>{1, 1, 2}) {
    std::puts("convpool consumer: unexpected results");
    return 1;
  }
  std::printf("convpool consumer: ok (isa %s)\n", convpool::isa_name(convpool::active_isa()));
  return 0;
}
