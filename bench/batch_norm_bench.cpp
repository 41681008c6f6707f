// Micro-benchmarks of batch normalization, forward and backward, with a plain copy of the same
// bytes beside them: bytes_per_second counts each array read or written once, so the kernels' GB/s
// can be set against the copy's.
//
//   cmake --preset bench && cmake --build --preset bench && ./build/bench/bench/convpool_batch_norm_bench

#include <benchmark/benchmark.h>
#include <convpool/convpool.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

using namespace convpool;

namespace {

// (64, 64, 32, 32): a CIFAR network's first stage; (128, 16, 32, 32): ResNet-20's; (8, 256, 14, 14):
// a deep ImageNet stage at a small batch.
struct Shape {
  int64_t n, c, h, w;
};
const Shape kShapes[] = {{64, 64, 32, 32}, {128, 16, 32, 32}, {8, 256, 14, 14}};

BatchNorm2dParams params(const Shape& s, bool relu) {
  BatchNorm2dParams p;
  p.batch = s.n;
  p.channels = s.c;
  p.plane = s.h * s.w;
  p.activation = relu ? Activation::relu : Activation::none;
  return p;
}

std::vector<float> random_values(int64_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.5f, 2.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = normal(rng);
  return v;
}

void finish(benchmark::State& state, const Shape& s, int64_t arrays) {
  const int64_t bytes = arrays * s.n * s.c * s.h * s.w * static_cast<int64_t>(sizeof(float));
  state.SetBytesProcessed(state.iterations() * bytes);
  state.SetLabel("(" + std::to_string(s.n) + "," + std::to_string(s.c) + "," + std::to_string(s.h) + "," +
                 std::to_string(s.w) + ") threads=" + std::to_string(get_num_threads()));
}

void BM_batch_norm2d_forward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const BatchNorm2dParams p = params(s, state.range(1));
  const auto x = random_values(s.n * s.c * s.h * s.w, 1);
  std::vector<float> y(x.size()), weight(s.c, 1.5f), bias(s.c, 0.25f), running_mean(s.c), running_var(s.c, 1.0f),
      mean(s.c), invstd(s.c);
  for (auto _ : state)
    batch_norm2d_forward(x.data(), weight.data(), bias.data(), running_mean.data(), running_var.data(), y.data(),
                         mean.data(), invstd.data(), p);
  finish(state, s, 2);
}

void BM_batch_norm2d_backward(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const BatchNorm2dParams p = params(s, state.range(1));
  const auto x = random_values(s.n * s.c * s.h * s.w, 1), grad = random_values(x.size(), 2);
  std::vector<float> y(x.size()), grad_input(x.size()), weight(s.c, 1.5f), bias(s.c, 0.25f), mean(s.c), invstd(s.c),
      grad_weight(s.c), grad_bias(s.c);
  float* no_running_statistics = nullptr;
  batch_norm2d_forward(x.data(), weight.data(), bias.data(), no_running_statistics, no_running_statistics, y.data(),
                       mean.data(), invstd.data(), p);
  for (auto _ : state)
    batch_norm2d_backward(grad.data(), x.data(), y.data(), weight.data(), mean.data(), invstd.data(), grad_input.data(),
                          grad_weight.data(), grad_bias.data(), p);
  finish(state, s, p.activation == Activation::relu ? 4 : 3);
}

// The machine's reference: one array copied into another (threads as the kernels use).
void BM_copy(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  const auto x = random_values(s.n * s.c * s.h * s.w, 1);
  std::vector<float> y(x.size());
  const int64_t chunks = 64, chunk = (static_cast<int64_t>(x.size()) + chunks - 1) / chunks;
  for (auto _ : state) {
    parallel_for(chunks, [&](int64_t begin, int64_t end) {
      const int64_t first = begin * chunk, last = std::min<int64_t>(end * chunk, x.size());
      if (first < last) std::memcpy(y.data() + first, x.data() + first, (last - first) * sizeof(float));
    });
    benchmark::DoNotOptimize(y.data());
  }
  finish(state, s, 2);
}

}  // namespace

BENCHMARK(BM_batch_norm2d_forward)->ArgsProduct({{0, 1, 2}, {0, 1}})->ArgNames({"shape", "relu"})->UseRealTime();
BENCHMARK(BM_batch_norm2d_backward)->ArgsProduct({{0, 1, 2}, {0, 1}})->ArgNames({"shape", "relu"})->UseRealTime();
BENCHMARK(BM_copy)->DenseRange(0, 2)->ArgName("shape")->UseRealTime();

BENCHMARK_MAIN();
