// The small-M linear kernel (src/torch/kernels/small_m_linear.hpp) against a float64
// reference computed here with plain loops over the same (for int8: dequantised) weights,
// for every variant this CPU runs; its dispatch in layers::linear against the ATen path on
// a tiny random model; per-row int8 quantisation on hand values; int8 weight storage at load.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/torch/model.hpp"
#include "support/tiny_model.hpp"
#include "torch/decoder.hpp"
#include "torch/kernels/small_m_linear.hpp"
#include "torch/models/layers.hpp"

#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using namespace qstar::lm;
namespace k = qstar::lm::kernels;

namespace {

float bf16_value(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Restores the kernel's process-wide settings when a test ends.
struct KernelSettings {
  ~KernelSettings() {
    k::clear_isa_override();
    k::set_threads(1);
    k::set_max_rows(k::kDefaultMaxRows);
    k::set_min_work_per_thread(k::kDefaultMinWorkPerThread);
  }
  KernelSettings() { k::set_min_work_per_thread(1); }  // split even tiny calls over threads
};

/// Random weights of one type plus their exact float64 values (int8: q * scale).
struct Weights {
  std::vector<float> f32;
  std::vector<std::uint16_t> bf16;
  std::vector<std::int8_t> i8;
  std::vector<float> scale;
  std::vector<double> exact;  // [N][K]
  const void* data(k::WeightType t) const {
    return t == k::WeightType::F32 ? static_cast<const void*>(f32.data())
           : t == k::WeightType::BF16 ? static_cast<const void*>(bf16.data())
                                       : static_cast<const void*>(i8.data());
  }
};

Weights make_weights(k::WeightType t, std::int64_t N, std::int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> z;
  Weights w;
  w.exact.resize(static_cast<std::size_t>(N * K));
  if (t == k::WeightType::F32) {
    for (auto i = 0; i < N * K; ++i) w.f32.push_back(z(rng));
    for (std::size_t i = 0; i < w.exact.size(); ++i) w.exact[i] = w.f32[i];
  } else if (t == k::WeightType::BF16) {
    for (auto i = 0; i < N * K; ++i) {
      float f = z(rng);
      std::uint32_t u;
      std::memcpy(&u, &f, sizeof u);
      w.bf16.push_back(static_cast<std::uint16_t>(u >> 16));  // truncation: any bf16 value will do
    }
    for (std::size_t i = 0; i < w.exact.size(); ++i) w.exact[i] = bf16_value(w.bf16[i]);
  } else {
    std::uniform_int_distribution<int> q(-127, 127);
    std::uniform_real_distribution<float> s(0.001f, 0.05f);
    for (auto i = 0; i < N * K; ++i) w.i8.push_back(static_cast<std::int8_t>(q(rng)));
    for (auto n = 0; n < N; ++n) w.scale.push_back(s(rng));
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t j = 0; j < K; ++j)
        w.exact[static_cast<std::size_t>(n * K + j)] =
            static_cast<double>(w.i8[static_cast<std::size_t>(n * K + j)]) * w.scale[static_cast<std::size_t>(n)];
  }
  return w;
}

const char* type_name(k::WeightType t) {
  return t == k::WeightType::F32 ? "f32" : t == k::WeightType::BF16 ? "bf16" : "int8";
}

}  // namespace

TEST_CASE("small-M linear: every variant against a float64 loop, tails, bias, threads") {
  KernelSettings restore;
  std::mt19937 rng(1234);
  std::normal_distribution<float> z;
  // K and N off the 16-lane / 4-row / 16-row-split / 512-chunk multiples, and on them.
  const std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {
      {1, 1}, {5, 3}, {16, 16}, {37, 19}, {64, 531}, {23, 1030}};
  int checked = 0;
  for (k::Isa isa : {k::Isa::Scalar, k::Isa::Avx2, k::Isa::Avx512}) {
    if (!k::isa_supported(isa)) {
      MESSAGE("variant " << k::isa_name(isa) << " not supported by this CPU: skipped");
      continue;
    }
    k::set_isa_override(isa);
    CHECK(k::active_isa() == isa);
    for (k::WeightType t : {k::WeightType::F32, k::WeightType::BF16, k::WeightType::I8}) {
      for (auto [N, K] : shapes) {
        const Weights w = make_weights(t, N, K, rng);
        std::vector<float> bias;
        for (auto n = 0; n < N; ++n) bias.push_back(z(rng));
        for (std::int64_t M : {1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 32, 64}) {
          const std::int64_t ldx = K + 3;  // a row stride other than K
          std::vector<float> x(static_cast<std::size_t>(M * ldx));
          for (auto& v : x) v = z(rng);
          for (bool with_bias : {false, true}) {
            for (int threads : {1, 2, 3}) {
              k::set_threads(threads);
              std::vector<float> y(static_cast<std::size_t>(M * N), -1.f);
              k::small_m_linear(x.data(), M, K, ldx, w.data(t), t, w.scale.data(),
                                with_bias ? bias.data() : nullptr, N, y.data(), N);
              double worst = 0;  // |y - ref| / (sum |x w| + |b|), in float32 ulps
              for (std::int64_t m = 0; m < M; ++m)
                for (std::int64_t n = 0; n < N; ++n) {
                  double ref = with_bias ? bias[static_cast<std::size_t>(n)] : 0.0, mag = std::fabs(ref);
                  for (std::int64_t j = 0; j < K; ++j) {
                    const double p = static_cast<double>(x[static_cast<std::size_t>(m * ldx + j)]) *
                                     w.exact[static_cast<std::size_t>(n * K + j)];
                    ref += p;
                    mag += std::fabs(p);
                  }
                  const double err = std::fabs(y[static_cast<std::size_t>(m * N + n)] - ref) /
                                     (mag > 0 ? mag : 1.0) / 0x1p-24;
                  worst = std::max(worst, err);
                }
              CAPTURE(k::isa_name(isa));
              CAPTURE(type_name(t));
              CAPTURE(N);
              CAPTURE(K);
              CAPTURE(M);
              CAPTURE(threads);
              // float32 summation of K products: error <~ log2(K)-ish ulps of sum|x w|
              // in practice; 8 ulps bounds it at these K (K <= 1030) with margin.
              CHECK(worst <= 8.0);
              ++checked;
            }
          }
        }
      }
    }
  }
  CHECK(checked > 0);
}

TEST_CASE("small-M linear: int8 per-row quantisation on hand values") {
  // Row 0: max |w| = 1.27 -> scale 0.01, every value a multiple: exact round trip.
  // Row 1: all zero -> scale 1, q 0. Row 2: 254 -> scale 2; 3 -> 1.5 rounds to 2 (nearest
  // even), -1 -> -0.5 rounds to -0 (even), 100 -> 50.
  const std::vector<float> w = {1.27f, -0.5f, 0.01f, 0.f, 0.f, 0.f, 254.f, 3.f, -1.f, 100.f, 0.f, 0.f};
  // (rows of 4: pad row 0 / 1 / 2 to 4 columns)
  const std::vector<float> rows = {1.27f, -0.5f, 0.01f, 0.f, 0.f, 0.f, 0.f, 0.f, 254.f, 3.f, -1.f, 100.f};
  std::vector<std::int8_t> q(12);
  std::vector<float> s(3);
  k::quantize_rows_int8(rows.data(), 3, 4, q.data(), s.data());
  CHECK(s[0] == doctest::Approx(0.01f).epsilon(1e-6));
  CHECK(s[1] == 1.f);
  CHECK(s[2] == 2.f);
  const std::vector<int> want = {127, -50, 1, 0, 0, 0, 0, 0, 127, 2, 0, 50};
  for (std::size_t i = 0; i < q.size(); ++i) CHECK(static_cast<int>(q[i]) == want[i]);
  // Dequantised row 0 equals the input to float32 rounding of q * scale.
  for (std::size_t j = 0; j < 4; ++j) CHECK(static_cast<float>(q[j]) * s[0] == doctest::Approx(rows[j]).epsilon(1e-6));
  (void)w;
}

TEST_CASE("small-M linear: try_linear's dispatch rules and the tensor path") {
  KernelSettings restore;
  c10::InferenceMode guard;
  at::manual_seed(3);
  const at::Tensor w = at::randn({37, 19}), b = at::randn({37}), x = at::randn({2, 3, 19});
  at::Tensor out;
  REQUIRE(k::try_linear(x, w, b, {}, out));
  const at::Tensor ref = at::linear(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble));
  CHECK(out.sizes() == at::IntArrayRef({2, 3, 37}));
  CHECK(((out.to(at::kDouble) - ref).abs().max().item<double>() <= 1e-5 * ref.abs().max().item<double>()));
  CHECK_FALSE(k::try_linear(x, w, b, {}, out, /*max_rows=*/5));  // 6 rows > 5
  CHECK_FALSE(k::try_linear(x, w.to(at::kHalf), b, {}, out));    // float16: not handled
  CHECK_FALSE(k::try_linear(x, w.to(at::kChar), b, {}, out));    // int8 without scales
  CHECK_FALSE(k::try_linear(x.to(at::kDouble), w.to(at::kDouble), {}, {}, out));
  CHECK_FALSE(k::try_linear(x, w.t().contiguous().t(), b, {}, out));  // non-contiguous weight
  k::set_max_rows(0);
  CHECK_FALSE(k::try_linear(x, w, b, {}, out));
}

TEST_CASE("small-M linear: autograd takes the ATen path") {
  KernelSettings restore;
  at::manual_seed(4);
  at::Tensor w = at::randn({8, 5}).requires_grad_(true);
  const at::Tensor x = at::randn({1, 5});
  at::Tensor out;
  CHECK_FALSE(k::try_linear(x, w, {}, {}, out));
  const at::Tensor y = layers::linear(x, w);
  CHECK(y.requires_grad());
  y.sum().backward();
  CHECK(w.grad().defined());
}

namespace {

/// config.json + model.safetensors of a tiny random Qwen2 (q/k/v biases, tied head or not),
/// with shapes off the kernel's 16-lane / 4-row multiples.
void write_qwen2(const std::string& dir, bool tie, unsigned seed) {
  tiny::Layout l;
  l.hidden = 56;
  l.inter = 90;
  l.heads = 4;
  l.kv = 2;
  l.vocab = 61;
  l.tie = tie;
  l.qkv_bias = true;
  tiny::write_weights(dir + "/model.safetensors", tiny::tensor_layout(l), seed,
                      tiny::standard_fill());
  std::ofstream(dir + "/config.json") << "{" << tiny::config_fields("Qwen2ForCausalLM", "qwen2", l, 10000.0, 256)
                                      << "}\n";
}

/// Logits of a 3-sequence batch: a ragged prefill (7, 12, 1 tokens: M = 36 rows padded, above
/// the tests' threshold of 32: ATen), then 6 batched single-token decode steps (M = 3: the
/// kernel), greedy. Returns all logits concatenated [rows, vocab].
at::Tensor batch_logits(const Decoder& d) {
  c10::InferenceMode guard;
  const std::vector<std::vector<std::int64_t>> prompts = {
      {1, 5, 9, 2, 44, 3, 17}, {8, 8, 60, 0, 31, 2, 7, 7, 19, 23, 4, 50}, {11}};
  std::vector<at::Tensor> out;
  std::vector<std::vector<KVSegment>> kv(prompts.size());
  std::vector<std::int64_t> next(prompts.size());
  const ForwardOptions all{LogitsMode::All, false};
  for (int step = 0; step < 7; ++step) {
    std::vector<SequenceInput> in(prompts.size());
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      for (const auto& s : kv[b]) in[b].past.push_back(&s);
      in[b].tokens = step == 0 ? prompts[b] : std::vector<std::int64_t>{next[b]};
    }
    auto o = d.forward(in, all);
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      out.push_back(o[b].logits);
      next[b] = o[b].logits[-1].argmax().item<std::int64_t>();
      kv[b].push_back(std::move(o[b].kv));
    }
  }
  return at::cat(out, 0);
}

double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor x = a.to(at::kDouble), y = ref.to(at::kDouble);
  REQUIRE(x.sizes() == y.sizes());
  return (x - y).abs().max().item<double>() / std::max(1e-30, y.abs().max().item<double>());
}

}  // namespace

TEST_CASE("small-M linear: a model's logits through the kernel equal the ATen path's") {
  KernelSettings restore;
  for (bool tie : {false, true}) {
    tiny::TempDir dir;
    write_qwen2(dir.str(), tie, 21);
    for (qstar::hf::DType st : {qstar::hf::DType::F32, qstar::hf::DType::BF16}) {
      const auto d = load_decoder(dir.str(), LoadOptions{"cpu", st});
      for (int threads : {1, 2}) {
        k::set_threads(threads);
        k::set_max_rows(0);
        const at::Tensor ref = batch_logits(*d);
        k::set_max_rows(32);
        const at::Tensor got = batch_logits(*d);
        CAPTURE(tie);
        CAPTURE(threads);
        CAPTURE(static_cast<int>(st));
        const double e = rel_err(got, ref);
        MESSAGE("kernel vs ATen path, tie " << tie << " dtype " << static_cast<int>(st) << " threads "
                                            << threads << ": " << e);
        CHECK(e <= 1e-5);
        CHECK(e > 0.0);  // the kernel did run (a different summation order than the BLAS)
      }
    }
  }
}

TEST_CASE("small-M linear: int8 weight storage loads, generates, and tracks float32") {
  KernelSettings restore;
  tiny::TempDir dir;
  write_qwen2(dir.str(), /*tie=*/false, 5);
  const auto f32 = load_decoder(dir.str(), LoadOptions{"cpu", qstar::hf::DType::F32});
  LoadOptions o{"cpu", qstar::hf::DType::F32};
  o.int8 = true;
  const auto i8 = load_decoder(dir.str(), o);
  CHECK((i8->weight_dtype() == at::kChar));
  CHECK((i8->dtype() == at::kFloat));
  // Bytes: the 7 matrices per layer and lm_head at 1 byte + 4 per row scale; embedding,
  // norms and biases at 4.
  const std::size_t D = 56, I = 90, V = 61, KVd = 2 * 14, L = 2;
  const std::size_t mats = L * (D * D + 2 * KVd * D + D * D + 3 * I * D) + V * D;
  const std::size_t rows = L * (D + 2 * KVd + D + 2 * I + D) + V;
  const std::size_t vecs = V * D + L * (2 * D + D + 2 * KVd) + D;
  CHECK(i8->weight_bytes() == mats + 4 * rows + 4 * vecs);
  CHECK(f32->weight_bytes() == 4 * (mats + vecs));

  // Same batch, greedy: both paths of the int8 model agree (kernel vs dequantising ATen path).
  k::set_max_rows(0);
  const at::Tensor i8_aten = batch_logits(*i8);
  k::set_max_rows(32);
  const at::Tensor i8_kern = batch_logits(*i8);
  CHECK(rel_err(i8_kern, i8_aten) <= 1e-5);
  // Against float32 on one uncached sequence of 40 tokens: logits close, argmax mostly equal.
  std::vector<std::int64_t> toks;
  std::mt19937 rng(9);
  for (int i = 0; i < 40; ++i) toks.push_back(static_cast<std::int64_t>(rng() % V));
  c10::InferenceMode guard;
  const at::Tensor a = i8->forward_tokens(toks), b = f32->forward_tokens(toks);
  const double e = rel_err(a, b);
  const double agree = a.argmax(-1).eq(b.argmax(-1)).to(at::kDouble).mean().item<double>();
  MESSAGE("int8 vs float32: max |dlogit| / max |logit| " << e << ", argmax agreement " << agree);
  CHECK(e > 0.0);
  CHECK(e < 0.05);
  CHECK(agree >= 0.9);

  // LanguageModel / the dtype strings.
  const auto lm = LanguageModel::load(dir.str(), "cpu", "int8");
  CHECK(lm.weight_dtype() == "int8");
  CHECK(lm.dtype() == "float32");
  std::string msg;
  try {
    (void)LanguageModel::load(dir.str(), "cpu", "int4");
  } catch (const qstar::InvalidArgument& ex) {
    msg = ex.what();
  }
  CHECK(msg.find("int8") != std::string::npos);
  msg.clear();
  try {
    (void)LanguageModel::load(dir.str(), "cuda", "int8");
  } catch (const qstar::InvalidArgument& ex) {
    msg = ex.what();
  }
  CHECK(msg.find("CPU only") != std::string::npos);
}
