// Micro-benchmarks of conv2d on shapes from real networks, with a FLOP/s counter (2 flops per
// multiply-add; the backward computes the input and weight gradients, twice the forward's flops)
// to set against this machine's peak.
//
//   cmake --preset bench && cmake --build --preset bench && ./build/bench/bench/convpool_conv_bench

#include <benchmark/benchmark.h>
#include <convpool/conv.hpp>
#include <convpool/conv_transpose.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace convpool;

namespace {

struct ConvShape {
  const char* name;
  int64_t n, ci, h, w, co, k, stride, padding, groups;
};

const ConvShape kShapes[] = {
    {"ResNet 3x3", 16, 64, 56, 56, 64, 3, 1, 1, 1},
    {"CIFAR 3x3", 64, 32, 32, 32, 64, 3, 1, 1, 1},
    {"1x1", 16, 256, 28, 28, 64, 1, 1, 0, 1},
    {"LeNet conv1", 64, 1, 28, 28, 6, 5, 1, 0, 1},
    {"LeNet conv2", 64, 6, 12, 12, 16, 5, 1, 0, 1},
    {"CIFAR first layer", 64, 3, 32, 32, 32, 3, 1, 1, 1},
    {"depthwise 3x3", 16, 128, 28, 28, 128, 3, 1, 1, 128},
    {"depthwise 3x3 s2", 16, 128, 56, 56, 128, 3, 2, 1, 128},
    {"ResNet stem 7x7 s2", 8, 3, 224, 224, 64, 7, 2, 3, 1},
    {"ResNet 3x3 s2", 16, 64, 56, 56, 128, 3, 2, 1, 1},
    // Inference on one image: ResNet-18's convolutions at N = 1.
    {"N=1 stem 7x7 s2", 1, 3, 224, 224, 64, 7, 2, 3, 1},
    {"N=1 3x3 64", 1, 64, 56, 56, 64, 3, 1, 1, 1},
    {"N=1 3x3 s2 64->128", 1, 64, 56, 56, 128, 3, 2, 1, 1},
    {"N=1 1x1 s2 64->128", 1, 64, 56, 56, 128, 1, 2, 0, 1},
    {"N=1 3x3 128", 1, 128, 28, 28, 128, 3, 1, 1, 1},
    {"N=1 3x3 256", 1, 256, 14, 14, 256, 3, 1, 1, 1},
    {"N=1 3x3 s2 256->512", 1, 256, 14, 14, 512, 3, 2, 1, 1},
    {"N=1 3x3 512", 1, 512, 7, 7, 512, 3, 1, 1, 1},
};

Conv2dParams params_of(const ConvShape& s) {
  Conv2dParams p;
  p.batch = s.n;
  p.in_channels = s.ci;
  p.out_channels = s.co;
  p.groups = s.groups;
  p.h = WindowDim{s.h, conv_output_size(s.h, s.k, s.stride, s.padding, s.padding, 1), s.k, s.stride, s.padding, 1};
  p.w = WindowDim{s.w, conv_output_size(s.w, s.k, s.stride, s.padding, s.padding, 1), s.k, s.stride, s.padding, 1};
  return p;
}

std::vector<float> random_values(int64_t count) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = normal(rng);
  return v;
}

struct Buffers {
  std::vector<float> x, weight, bias, y, grad_output, grad_input, grad_weight, grad_bias;
  explicit Buffers(const Conv2dParams& p)
      : x(random_values(p.batch * p.in_channels * p.input_plane())),
        weight(random_values(p.out_channels * p.weight_row())),
        bias(random_values(p.out_channels)),
        y(p.batch * p.out_channels * p.output_plane()),
        grad_output(random_values(p.batch * p.out_channels * p.output_plane())),
        grad_input(x.size()),
        grad_weight(weight.size()),
        grad_bias(bias.size()) {}
};

void report(benchmark::State& state, const ConvShape& s, double flops_per_call, const std::string& prefix = "") {
  const auto text = [](int64_t v) { return std::to_string(v); };
  state.SetLabel(prefix + s.name + " (" + text(s.n) + "," + text(s.ci) + "," + text(s.h) + "," + text(s.w) + ")->" +
                 text(s.co) + " k" + text(s.k) + " s" + text(s.stride) + " p" + text(s.padding) +
                 (s.groups > 1 ? " g" + text(s.groups) : std::string()) + " threads=" + text(get_num_threads()) +
                 " isa=" + isa_name(active_isa()));
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_call, benchmark::Counter::kIsIterationInvariantRate);
}

double forward_flops(const Conv2dParams& p) {
  return 2.0 * p.batch * p.out_channels * p.output_plane() * p.weight_row();
}

void BM_Conv2dForward(benchmark::State& state) {
  const ConvShape& s = kShapes[state.range(0)];
  const Conv2dParams p = params_of(s);
  Buffers b(p);
  for (auto _ : state) {
    conv2d_forward(b.x.data(), b.weight.data(), b.bias.data(), b.y.data(), p);
    benchmark::DoNotOptimize(b.y.data());
  }
  report(state, s, forward_flops(p));
}

// The forward on a weight packed once (inference): range(1) = 1 packs it for Winograd's
// F(2x2, 3x3), which 3x3 stride-1 layers then take where it saves work. FLOP/s counts the direct
// convolution's multiply-adds.
void BM_Conv2dForwardPacked(benchmark::State& state) {
  const ConvShape& s = kShapes[state.range(0)];
  const Conv2dParams p = params_of(s);
  Buffers b(p);
  const PackedConvWeight<float> packed(b.weight.data(), p.out_channels, p.weight_row(), state.range(1) == 1);
  for (auto _ : state) {
    conv2d_forward(b.x.data(), packed, b.bias.data(), b.y.data(), p);
    benchmark::DoNotOptimize(b.y.data());
  }
  report(state, s, forward_flops(p), state.range(1) == 1 ? "packed, winograd: " : "packed: ");
}

// The backward pass, or one of its halves (null pointers skip a gradient), to see which one a
// shape is short of; flops counts one forward's worth per gradient computed.
void time_backward(benchmark::State& state, bool input, bool weight) {
  const ConvShape& s = kShapes[state.range(0)];
  const Conv2dParams p = params_of(s);
  Buffers b(p);
  for (auto _ : state) {
    conv2d_backward<float>(b.grad_output.data(), b.x.data(), b.weight.data(), input ? b.grad_input.data() : nullptr,
                           weight ? b.grad_weight.data() : nullptr, input && weight ? b.grad_bias.data() : nullptr, p);
    benchmark::DoNotOptimize(b.grad_input.data());
    benchmark::DoNotOptimize(b.grad_weight.data());
  }
  report(state, s, (input + weight) * forward_flops(p));
}

void BM_Conv2dBackward(benchmark::State& state) { time_backward(state, true, true); }
void BM_Conv2dBackwardInput(benchmark::State& state) { time_backward(state, true, false); }
void BM_Conv2dBackwardWeight(benchmark::State& state) { time_backward(state, false, true); }

// conv_transpose2d of a shape: the transposed convolution whose input is the shape's output, so
// the same work as the forward and backward above.
void BM_ConvTranspose2dForward(benchmark::State& state) {
  const ConvShape& s = kShapes[state.range(0)];
  const Conv2dParams p = params_of(s);
  Buffers b(p);
  for (auto _ : state) {
    conv_transpose2d_forward(b.grad_output.data(), b.weight.data(), static_cast<const float*>(nullptr),
                             b.grad_input.data(), p);
    benchmark::DoNotOptimize(b.grad_input.data());
  }
  report(state, s, forward_flops(p));
}

void BM_ConvTranspose2dBackward(benchmark::State& state) {
  const ConvShape& s = kShapes[state.range(0)];
  const Conv2dParams p = params_of(s);
  Buffers b(p);
  for (auto _ : state) {
    conv_transpose2d_backward(b.x.data(), b.grad_output.data(), b.weight.data(), b.y.data(), b.grad_weight.data(),
                              static_cast<float*>(nullptr), p);
    benchmark::DoNotOptimize(b.y.data());
    benchmark::DoNotOptimize(b.grad_weight.data());
  }
  report(state, s, 2 * forward_flops(p));
}

}  // namespace

// Every shape, in milliseconds of wall time.
void every_shape(benchmark::internal::Benchmark* family) {
  family->DenseRange(0, static_cast<int>(std::size(kShapes)) - 1)->Unit(benchmark::kMillisecond)->UseRealTime();
}

// The shapes of ResNet-18 at N = 1, the inference rows of kShapes.
void inference_shapes(benchmark::internal::Benchmark* family) {
  for (int shape = 0; shape < static_cast<int>(std::size(kShapes)); ++shape)
    if (kShapes[shape].n == 1)
      for (int winograd : {0, 1}) family->Args({shape, winograd});
  family->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Conv2dForward)->Apply(every_shape);
BENCHMARK(BM_Conv2dForwardPacked)->Apply(inference_shapes);
BENCHMARK(BM_Conv2dBackward)->Apply(every_shape);
BENCHMARK(BM_Conv2dBackwardInput)->Apply(every_shape);
BENCHMARK(BM_Conv2dBackwardWeight)->Apply(every_shape);
BENCHMARK(BM_ConvTranspose2dForward)->Apply(every_shape);
BENCHMARK(BM_ConvTranspose2dBackward)->Apply(every_shape);

BENCHMARK_MAIN();
