// The small-M linear kernel (src/torch/kernels/small_m_linear.hpp) against the path
// layers::linear took before it (at::linear on float32 weights through the BLAS;
// upcast_linear for bfloat16 / int8 weights), on the Qwen2-0.5B shape's matrices, for each
// M (rows of x), weight dtype and thread count: microseconds per call, best of --repeat
// rounds of enough calls to take ~50 ms. Also the pool's wake-up cost: a call with 32 output
// rows at 2 threads against 1. Used to pick kernels::kDefaultMaxRows.
//
// Usage: bench_small_m [--threads "1 2"] [--rows "1 2 4 8 16 32 48 64"] [--repeat 3]
//                      [--shapes qwen|small]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/torch/threads.hpp"
#include "torch/kernels/small_m_linear.hpp"
#include "torch/models/layers.hpp"

using namespace qstar::lm;
namespace k = qstar::lm::kernels;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> ints(const std::string& s) {
  std::vector<int> v;
  std::istringstream in(s);
  for (int x; in >> x;) v.push_back(x);
  return v;
}

/// Microseconds per call of f: best of `repeat` rounds of enough calls to take ~50 ms.
template <class F>
double time_us(F&& f, int repeat) {
  f();
  const double t0 = now();
  f();
  const double once = std::max(now() - t0, 1e-7);
  const int calls = std::max(1, static_cast<int>(0.05 / once));
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const double a = now();
    for (int i = 0; i < calls; ++i) f();
    best = std::min(best, (now() - a) / calls);
  }
  return best * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2}, rows = {1, 2, 4, 8, 16, 32, 48, 64};
  int repeat = 3;
  std::string shapes = "qwen";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--threads") threads = ints(next());
    else if (a == "--rows") rows = ints(next());
    else if (a == "--repeat") repeat = std::max(1, std::atoi(next().c_str()));
    else if (a == "--shapes") shapes = next();
    else { std::fprintf(stderr, "bench_small_m: unknown option %s\n", a.c_str()); return 2; }
  }
  c10::InferenceMode guard;
  at::manual_seed(1);
  // [N, K]: Qwen2-0.5B's gate/up, down, q/o, k/v (hidden 896, intermediate 4864, 2 KV heads).
  std::vector<std::pair<std::int64_t, std::int64_t>> mats = {{4864, 896}, {896, 4864}, {896, 896}, {128, 896}};
  if (shapes == "small") mats = {{1216, 224}, {224, 1216}, {224, 224}, {32, 224}};
  std::printf("variant %s\n", k::isa_name(k::active_isa()));
  std::printf("| N x K | dtype | threads | M | kernel us | before us | before / kernel |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (auto [N, K] : mats) {
    const at::Tensor w32 = at::randn({N, K}) / 30.0;
    const at::Tensor wbf = w32.to(at::kBFloat16);
    at::Tensor wq = at::empty({N, K}, at::TensorOptions().dtype(at::kChar));
    at::Tensor sc = at::empty({N}, at::TensorOptions().dtype(at::kFloat));
    k::quantize_rows_int8(w32.data_ptr<float>(), N, K, wq.data_ptr<std::int8_t>(), sc.data_ptr<float>());
    for (int t : threads) {
      set_threads(t);
      for (const char* dt : {"f32", "bf16", "int8"}) {
        const std::string d = dt;
        const at::Tensor& w = d == "f32" ? w32 : d == "bf16" ? wbf : wq;
        const at::Tensor s = d == "int8" ? sc : at::Tensor();
        for (int M : rows) {
          const at::Tensor x = at::randn({M, K});
          at::Tensor out;
          const double kern = time_us([&] { k::try_linear(x, w, {}, s, out, 1 << 20); }, repeat);
          const double before = time_us(
              [&] { out = d == "f32" ? at::linear(x, w) : layers::upcast_linear(x, w, {}, 0, s); }, repeat);
          std::printf("| %lld x %lld | %s | %d | %d | %.1f | %.1f | %.2f |\n", static_cast<long long>(N),
                      static_cast<long long>(K), dt, t, M, kern, before, before / kern);
          std::fflush(stdout);
        }
      }
    }
  }
  // The pool's cost per call: 32 output rows (2 split units), K = 64, 1 row of x.
  {
    const at::Tensor w = at::randn({32, 64}), x = at::randn({1, 64});
    at::Tensor out;
    for (int t : {1, 2}) {
      set_threads(t);
      std::printf("tiny call (N 32, K 64, M 1), %d thread(s): %.2f us\n", t,
                  time_us([&] { k::try_linear(x, w, {}, {}, out, 1 << 20); }, repeat));
    }
  }
  return 0;
}
