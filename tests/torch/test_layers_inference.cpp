// models/layers.hpp's inference-only variants (used by the Llama forward) against the
// autograd-safe functions the trainer uses, on random inputs: same math, fewer passes.
// Non-contiguous inputs (as the forward passes them: transposed heads), GQA with several
// query heads per KV head, a past longer than the new tokens and a padded mask row.
// The end-to-end check against the float64 Python reference is test_families.cpp's.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <limits>

#include "torch/models/layers.hpp"

#include <doctest/doctest.h>

namespace layers = qstar::lm::layers;

namespace {

double max_rel(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace

TEST_CASE("layers: inference variants equal the trainer's functions") {
  c10::InferenceMode guard;
  at::manual_seed(7);
  const std::int64_t B = 2, T = 5, P = 3, H = 6, KV = 2, hd = 8, D = 24, I = 40;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);

  SUBCASE("rms_norm") {
    const at::Tensor x = at::randn({B, T, D}, f32), w = at::randn({D}, f32);
    CHECK(max_rel(layers::rms_norm_inference(x, w, 1e-6), layers::rms_norm(x, w, 1e-6)) < 1e-6);
  }
  SUBCASE("RoPE on a transposed (non-contiguous) input") {
    const at::Tensor x = at::randn({B, T, H, hd}, f32).transpose(1, 2);  // [B, H, T, hd]
    const at::Tensor pos = at::arange(T, f32).view({1, T}).expand({B, T}) + 11;
    const auto [cos, sin] = layers::rope_tables(pos, layers::rope_inv_freq(hd, 10000.0), at::kFloat);
    const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [B, 1, T, hd]
    const at::Tensor got = layers::apply_rope_inference(x, c, s);
    CHECK(got.is_contiguous());
    CHECK(max_rel(got, layers::apply_rope(x, c, s)) < 1e-6);
  }
  SUBCASE("GQA attention with a past and a padded row") {
    const std::int64_t S = P + T;
    const at::Tensor q = at::randn({B, T, H, hd}, f32).transpose(1, 2).contiguous();
    const at::Tensor K = at::randn({B, KV, S, hd}, f32), V = at::randn({B, KV, S, hd}, f32);
    // Sequence 0 sees its whole past, sequence 1 the first 2 keys of it; causal over new keys.
    at::Tensor mask = at::full({B, 1, 1, T, S}, -std::numeric_limits<float>::infinity(), f32);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < T; ++i) {
        for (std::int64_t j = 0; j < (b == 0 ? P : 2); ++j) mask[b][0][0][i][j] = 0.0f;
        for (std::int64_t j = 0; j <= i; ++j) mask[b][0][0][i][P + j] = 0.0f;
      }
    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    const at::Tensor got = layers::gqa_attention_inference(q, K, V, mask, scale, at::kFloat);
    CHECK(got.sizes() == at::IntArrayRef({B, T, H * hd}));
    CHECK(max_rel(got, layers::gqa_attention(q, K, V, mask, scale, at::kFloat)) < 1e-6);
    // And against attention written out per head, in float64 (an independent reference).
    at::Tensor ref = at::empty({B, T, H, hd}, at::TensorOptions().dtype(at::kDouble));
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h) {
        const at::Tensor qh = q[b][h].to(at::kDouble), kh = K[b][h / (H / KV)].to(at::kDouble);
        const at::Tensor sc = at::matmul(qh, kh.t()) * scale + mask[b][0][0].to(at::kDouble);
        ref.select(0, b).select(1, h).copy_(at::matmul(at::softmax(sc, -1), V[b][h / (H / KV)].to(at::kDouble)));
      }
    CHECK(max_rel(got.to(at::kDouble), ref.view({B, T, H * hd})) < 1e-5);
  }
  SUBCASE("SwiGLU MLP with biases") {
    const at::Tensor h = at::randn({B, T, D}, f32);
    const at::Tensor wg = at::randn({I, D}, f32), wu = at::randn({I, D}, f32), wd = at::randn({D, I}, f32);
    const at::Tensor bg = at::randn({I}, f32), bu = at::randn({I}, f32), bd = at::randn({D}, f32);
    CHECK(max_rel(layers::swiglu_mlp_inference(h, wg, bg, wu, bu, wd, bd),
                  layers::swiglu_mlp(h, wg, bg, wu, bu, wd, bd)) < 1e-6);
  }
}
