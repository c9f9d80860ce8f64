// bfloat16 / float16 weight storage on CPU (LoadOptions::dtype): the weight matrices stay in
// the narrow dtype and every matmul upcasts them to float32. Upcasting bf16/f16 to f32 is
// exact, so a model whose float32 weights are exactly representable in the storage dtype
// must give the same logits stored either way; rounding at load must be round-to-nearest-
// even (checked against qstar::hf's own float_to_bf16 / float_to_f16); the weights' bytes
// halve.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/hf/safetensors.hpp"
#include "qstar/torch/model.hpp"
#include "support/tiny_model.hpp"
#include "torch/decoder.hpp"
#include "torch/models/layers.hpp"

// doctest after the torch headers (glog's CHECK); see test_model.cpp.
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using namespace qstar::lm;
using qstar::hf::DType;

namespace {

using tiny::TempDir;

// Rounds a float to the nearest value of `d` (round-to-nearest-even), through qstar::hf's
// bit-level converters (not LibTorch's).
float round_to(float v, DType d) {
  switch (d) {
    case DType::BF16:
      return qstar::hf::bf16_to_float(qstar::hf::float_to_bf16(v));
    case DType::F16:
      return qstar::hf::f16_to_float(qstar::hf::float_to_f16(v));
    default:
      return v;
  }
}

struct Model {
  tiny::Layout layout;
  std::string arch, model_type;
};

Model llama() {
  Model m;
  m.layout.hidden = 48;
  m.layout.inter = 80;
  m.layout.vocab = 50;
  m.arch = "LlamaForCausalLM";
  m.model_type = "llama";
  return m;
}
Model qwen2_tied() {
  Model m = llama();
  m.layout.tie = true;
  m.layout.qkv_bias = true;
  m.arch = "Qwen2ForCausalLM";
  m.model_type = "qwen2";
  return m;
}
Model llama_token_class() {
  Model m = llama();
  m.layout.num_labels = 3;
  m.layout.score_bias = true;
  m.arch = "LlamaForTokenClassification";
  return m;
}

// config.json + model.safetensors: random float32 weights, rounded to `round` when it is
// not F32 (every tensor, or with `matrices_only` only the 2-D ones, as the loader does),
// written in `file_dtype` (F32, or the rounded values' own dtype: exact).
void write_model(const std::string& dir, const Model& m, unsigned seed, DType round,
                 DType file_dtype = DType::F32, bool matrices_only = false) {
  const std::string path = dir + "/model.safetensors";
  tiny::write_weights(
      path, tiny::tensor_layout(m.layout), seed,
      tiny::standard_fill(),
      [round, matrices_only](const tiny::TensorSpec& t, std::vector<float>& v) {
        if (matrices_only && t.shape.size() != 2) return;
        for (float& x : v) x = round_to(x, round);
      });
  if (file_dtype != DType::F32) {  // re-write every tensor as 16-bit bits
    std::vector<std::vector<std::uint16_t>> bits;
    std::vector<qstar::hf::TensorToWrite> out;
    {
      const auto f = qstar::hf::SafetensorsFile::open(path);
      bits.reserve(f.tensors().size());
      for (const auto& t : f.tensors()) {
        std::vector<std::uint16_t> b;
        for (float x : qstar::hf::tensor_to_float(t))
          b.push_back(file_dtype == DType::BF16 ? qstar::hf::float_to_bf16(x)
                                                : qstar::hf::float_to_f16(x));
        bits.push_back(std::move(b));
        out.push_back({t.name, file_dtype, t.shape,
                       std::as_bytes(std::span<const std::uint16_t>(bits.back()))});
      }
    }
    qstar::hf::write_safetensors(path, out);
  }
  std::ofstream(dir + "/config.json")
      << "{" << tiny::config_fields(m.arch, m.model_type, m.layout, 10000.0, 256) << "}\n";
}

std::vector<std::int64_t> tokens(std::size_t n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, vocab - 1);
  std::vector<std::int64_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

// max |a - ref| / max |ref|
double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor x = a.to(at::kDouble), y = ref.to(at::kDouble);
  REQUIRE(x.sizes() == y.sizes());
  const double denom = y.abs().max().item<double>();
  return (x - y).abs().max().item<double>() / (denom > 0 ? denom : 1.0);
}

// The model's outputs on `toks`: every position's logits (or token-class scores) of one
// uncached forward, then the same sequence fed as a 9-token prefill plus single-token
// cached steps.
struct Outputs {
  at::Tensor full, cached;
};

Outputs run(const Decoder& d, const std::vector<std::int64_t>& toks) {
  c10::InferenceMode guard;
  const bool scores = d.has_score_head();
  const auto head = [&](const SequenceOutput& o) {
    return scores ? d.score(o.hidden) : o.logits;
  };
  const ForwardOptions opts{scores ? LogitsMode::None : LogitsMode::All, scores};
  Outputs r;
  SequenceInput all;
  all.tokens = toks;
  r.full = head(d.forward({&all, 1}, opts)[0]);
  std::vector<KVSegment> segs;
  segs.reserve(toks.size());
  std::vector<at::Tensor> parts;
  for (std::size_t i = 0; i < toks.size();) {
    const std::size_t n = i == 0 ? 9 : 1;
    SequenceInput s;
    for (const auto& seg : segs) s.past.push_back(&seg);
    s.tokens.assign(toks.begin() + static_cast<std::ptrdiff_t>(i),
                    toks.begin() + static_cast<std::ptrdiff_t>(i + n));
    auto o = d.forward({&s, 1}, opts);
    parts.push_back(head(o[0]));
    segs.push_back(std::move(o[0].kv));
    i += n;
  }
  r.cached = at::cat(parts, 0);
  return r;
}

// Elements of the model's matrices (stored narrow) and vectors (norms, biases: float32).
std::pair<std::size_t, std::size_t> element_counts(const tiny::Layout& l) {
  std::size_t matrices = 0, vectors = 0;
  for (const auto& t : tiny::tensor_layout(l)) {
    std::size_t n = 1;
    for (auto d : t.shape) n *= static_cast<std::size_t>(d);
    (t.shape.size() == 2 ? matrices : vectors) += n;
  }
  return {matrices, vectors};
}

}  // namespace

TEST_CASE("weight dtype: bf16/f16 storage on CPU gives float32 storage's logits") {
  for (DType storage : {DType::BF16, DType::F16}) {
    for (const Model& m : {llama(), qwen2_tied(), llama_token_class()}) {
      CAPTURE(std::string(qstar::hf::dtype_name(storage)));
      CAPTURE(m.arch);
      CAPTURE(m.layout.tie);
      TempDir f32_file, narrow_file;
      write_model(f32_file.str(), m, 11, storage);
      write_model(narrow_file.str(), m, 11, storage, storage);
      const auto ref = load_decoder(f32_file.str(), LoadOptions{"cpu", DType::F32});
      const auto converted = load_decoder(f32_file.str(), LoadOptions{"cpu", storage});
      const auto as_read = load_decoder(narrow_file.str(), LoadOptions{"cpu", storage});
      const at::ScalarType st = to_scalar_type(storage);
      CHECK((ref->weight_dtype() == at::kFloat));
      for (const auto* d : {converted.get(), as_read.get()}) {
        CHECK((d->dtype() == at::kFloat));  // CPU computes in float32
        CHECK((d->weight_dtype() == st));
      }

      // The weights' bytes: matrices at 2 bytes, vectors at 4 (tied: the embedding once).
      auto [matrices, vectors] = element_counts(m.layout);
      CHECK(ref->weight_bytes() == 4 * (matrices + vectors));
      CHECK(converted->weight_bytes() == 2 * matrices + 4 * vectors);
      CHECK(as_read->weight_bytes() == converted->weight_bytes());
      // The matrices' share halves exactly.
      CHECK(2 * (converted->weight_bytes() - 4 * vectors) == ref->weight_bytes() - 4 * vectors);

      const auto toks = tokens(15, m.layout.vocab, 3);
      const Outputs r = run(*ref, toks);
      for (const auto* d : {converted.get(), as_read.get()}) {
        const Outputs o = run(*d, toks);
        const double full = rel_err(o.full, r.full), cached = rel_err(o.cached, r.cached),
                     self = rel_err(o.cached, o.full);
        MESSAGE(std::string(qstar::hf::dtype_name(storage)) << " " << m.arch << ": vs float32 storage "
                                               << full << " (cached " << cached
                                               << "), cached vs full " << self);
        CHECK(full <= 1e-6);
        CHECK(cached <= 1e-6);
        CHECK(self <= 1e-5);  // as float32 storage's own cached vs full (test_model.cpp)
      }
    }
  }
}

TEST_CASE("weight dtype: float32 weights are rounded to nearest even at load") {
  for (DType storage : {DType::BF16, DType::F16}) {
    CAPTURE(std::string(qstar::hf::dtype_name(storage)));
    TempDir original, rounded;
    write_model(original.str(), llama(), 5, DType::F32);
    // The same draws, the matrices rounded by qstar::hf (norms stay float32 at load).
    write_model(rounded.str(), llama(), 5, storage, DType::F32, /*matrices_only=*/true);
    const auto narrow = load_decoder(original.str(), LoadOptions{"cpu", storage});
    const auto ref = load_decoder(rounded.str(), LoadOptions{"cpu", DType::F32});
    const auto exact = load_decoder(original.str(), LoadOptions{"cpu", DType::F32});
    const auto toks = tokens(12, 50, 9);
    c10::InferenceMode guard;
    const at::Tensor a = narrow->forward_tokens(toks), b = ref->forward_tokens(toks),
                     c = exact->forward_tokens(toks);
    CHECK(rel_err(a, b) <= 1e-6);
    // And the rounding is a real change of the model (the cost the benchmark measures).
    const double cost = rel_err(a, c);
    MESSAGE(std::string(qstar::hf::dtype_name(storage)) << " rounding of float32 weights: logits rel err "
                                           << cost);
    CHECK(cost > 1e-6);
    CHECK(cost < (storage == DType::BF16 ? 5e-2 : 5e-3));
  }
}

TEST_CASE("weight dtype: upcast_linear against a float64 product, every chunking") {
  c10::InferenceMode guard;
  at::manual_seed(7);
  const at::Tensor w32 = at::randn({37, 19}), b = at::randn({37}), x = at::randn({2, 5, 19});
  for (at::ScalarType st : {at::kBFloat16, at::kHalf}) {
    const at::Tensor w = w32.to(st);
    const at::Tensor ref = (at::matmul(x.to(at::kDouble), w.to(at::kDouble).t()) + b.to(at::kDouble));
    const at::Tensor ref_nb = at::matmul(x.to(at::kDouble), w.to(at::kDouble).t());
    for (std::int64_t rows : {1, 5, 36, 37, 100, 0}) {
      CAPTURE(rows);
      const at::Tensor y = layers::upcast_linear(x, w, b, rows);
      CHECK(y.sizes() == at::IntArrayRef({2, 5, 37}));
      CHECK((y.scalar_type() == at::kFloat));
      CHECK(y.is_contiguous());
      CHECK(rel_err(y, ref) <= 1e-6);
      CHECK(rel_err(layers::upcast_linear(x, w, {}, rows), ref_nb) <= 1e-6);
    }
    CHECK(rel_err(layers::linear(x, w, b), ref) <= 1e-6);  // linear() routes narrow weights
    const at::Tensor ids = at::tensor(std::vector<std::int64_t>{3, 0, 36}).view({1, 3});
    const at::Tensor e = layers::embedding(w, ids, at::kFloat);
    CHECK((e.scalar_type() == at::kFloat));
    CHECK(at::equal(e, w.to(at::kFloat).index_select(0, ids.view({3})).view({1, 3, 19})));
  }
}

TEST_CASE("weight dtype: LanguageModel reports the storage dtype") {
  TempDir dir;
  write_model(dir.str(), qwen2_tied(), 2, DType::F32);
  const auto lm = LanguageModel::load(dir.str(), "cpu", "bf16");
  CHECK(lm.dtype() == "float32");
  CHECK(lm.weight_dtype() == "bfloat16");
  CHECK(LanguageModel::load(dir.str(), "cpu", "float16").weight_dtype() == "float16");
  CHECK(LanguageModel::load(dir.str()).weight_dtype() == "float32");
}
