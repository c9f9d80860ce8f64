// Generator families and RoPE scaling against the independent float64 Python reference
// (tests/torch/reference_llama.py): Llama-3.x's llama3 RoPE, linear, dynamic NTK and YaRN
// scaling, Qwen3 (q/k norms, head_dim from config.json), Mistral's and Qwen2/Qwen3's sliding
// windows, and DeepSeek-R1-Distill-Qwen's and SmolLM2's configs as they are. Each model is a
// tiny random-weight folder written with the real model's config.json fields (sizes shrunk)
// and tensor names; every scaling and window is active in the tested lengths (checked: the
// same weights without it give other logits).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../cli_run.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "support/tiny_model.hpp"
#include "torch/decoder.hpp"

// doctest after the torch headers (glog's CHECK; see test_model.cpp).
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

#include "support/torch_reference.hpp"

using namespace qstar::lm;
using reference::rel_err;

namespace {

constexpr double kTol = 1e-5;
constexpr std::size_t kTokens = 28;

struct Case {
  std::string label;
  std::string arch, model_type;
  tiny::Layout layout;         // tensor shapes (hidden 64, 4 heads, 2 kv heads unless set)
  bool write_head_dim = true;  // config.json's "head_dim" (when layout.head_dim > 0)
  std::string fields;          // the other config.json fields: the real model's, shrunk
  std::string baseline;        // the same with the scaling / window off ("": none)
  int dynamic_max_positions = 0;  // > 0: dynamic NTK past this length (cache != full)
};

tiny::Layout layout(int layers = 2) {
  tiny::Layout l;
  l.hidden = 64;
  l.inter = 96;
  l.layers = layers;
  l.heads = 4;
  l.kv = 2;
  l.vocab = 64;
  return l;
}

// architectures, model_type and the sizes (plus id2label for token classification).
std::string size_fields(const Case& c) {
  const tiny::Layout& l = c.layout;
  std::ostringstream o;
  o << "\"architectures\": [\"" << c.arch << "\"], \"model_type\": \"" << c.model_type
    << "\", \"vocab_size\": " << l.vocab << ", \"hidden_size\": " << l.hidden
    << ", \"intermediate_size\": " << l.inter << ", \"num_hidden_layers\": " << l.layers
    << ", \"num_attention_heads\": " << l.heads << ", \"num_key_value_heads\": " << l.kv
    << ", \"tie_word_embeddings\": " << (l.tie ? "true" : "false");
  if (l.head_dim > 0 && c.write_head_dim) o << ", \"head_dim\": " << l.head_dim;
  if (l.num_labels > 0) {
    o << ", \"id2label\": {";
    for (int i = 0; i < l.num_labels; ++i) o << (i ? ", " : "") << "\"" << i << "\": \"LABEL_" << i << "\"";
    o << "}";
  }
  return o.str();
}

void write_model(const std::string& dir, const Case& c, const std::string& fields, unsigned seed) {
  tiny::write_weights(dir + "/model.safetensors", tiny::tensor_layout(c.layout), seed,
                      tiny::standard_fill());
  std::ofstream(dir + "/config.json") << "{" << size_fields(c) << ", " << fields << "}\n";
}

// The cases. Token ids of the real configs are shrunk into the 64-token vocabulary.
std::vector<Case> cases() {
  std::vector<Case> out;
  {
    Case c{"llama3 RoPE (Llama-3.2-1B fields)", "LlamaForCausalLM", "llama", layout(), true, "", ""};
    c.layout.tie = true;
    c.layout.head_dim = 16;
    // Original max 64 with low/high frequency factors 1/4: wavelengths below 16 are kept,
    // above 64 divided by 32, the one between (32.4) blended: all three bands are hit.
    const std::string common =
        R"("attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": [2, 3], )"
        R"("hidden_act": "silu", "initializer_range": 0.02, "max_position_embeddings": 131072, )"
        R"("mlp_bias": false, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, )"
        R"("torch_dtype": "float32", "transformers_version": "4.45.0.dev0", "use_cache": true, )";
    c.fields = common +
               R"("rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0, )"
               R"("original_max_position_embeddings": 64, "rope_type": "llama3"})";
    c.baseline = common + R"("rope_scaling": null)";
    out.push_back(c);
  }
  {
    Case c{"linear RoPE (4.x \"type\")", "LlamaForCausalLM", "llama", layout(), true, "", ""};
    const std::string common =
        R"("hidden_act": "silu", "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, )";
    c.fields = common + R"("rope_scaling": {"type": "linear", "factor": 4.0})";
    c.baseline = common + R"("rope_scaling": null)";
    out.push_back(c);
  }
  {
    Case c{"dynamic NTK RoPE (max_position_embeddings 16, 28 tokens)", "LlamaForCausalLM", "llama",
           layout(), true, "", ""};
    const std::string common = R"("hidden_act": "silu", "max_position_embeddings": 16, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, )";
    c.fields = common + R"("rope_scaling": {"rope_type": "dynamic", "factor": 2.0})";
    c.baseline = common + R"("rope_scaling": null)";
    c.dynamic_max_positions = 16;
    out.push_back(c);
  }
  {
    Case c{"yarn RoPE (Qwen2.5 rope_scaling, original max 32)", "Qwen2ForCausalLM", "qwen2", layout(), true, "", ""};
    c.layout.qkv_bias = true;
    const std::string common =
        R"("attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", )"
        R"("initializer_range": 0.02, "max_position_embeddings": 128, "max_window_layers": 28, )"
        R"("rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, )"
        R"("torch_dtype": "float32", "use_cache": true, "use_sliding_window": false, )";
    c.fields = common + R"("rope_scaling": {"factor": 4.0, "original_max_position_embeddings": 32, "type": "yarn"})";
    c.baseline = common + R"("rope_scaling": null)";
    out.push_back(c);
  }
  {
    Case c{"yarn RoPE (5.x rope_parameters, no truncation, betas, mscales)", "LlamaForCausalLM", "llama",
           layout(), true, "", ""};
    const std::string common = R"("hidden_act": "silu", "max_position_embeddings": 1024, "rms_norm_eps": 1e-06, )";
    c.fields = common +
               R"("rope_parameters": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, )"
               R"("original_max_position_embeddings": 256, "beta_fast": 8.0, "beta_slow": 2.0, )"
               R"("truncate": false, "mscale": 1.0, "mscale_all_dim": 0.5})";
    c.baseline = common + R"("rope_parameters": {"rope_type": "default", "rope_theta": 10000.0})";
    out.push_back(c);
  }
  const std::string qwen3 =
      R"("attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", )"
      R"("initializer_range": 0.02, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06, )"
      R"("rope_scaling": null, "rope_theta": 1000000, "torch_dtype": "float32", )"
      R"("transformers_version": "4.51.0", "use_cache": true, )";
  {
    // Qwen3-0.6B: head_dim 128 with hidden 1024 / 16 heads = 64; here 16 with 32 / 4 = 8.
    Case c{"qwen3 (Qwen3-0.6B fields: head_dim 2x hidden/heads, tied, q/k norms)", "Qwen3ForCausalLM",
           "qwen3", layout(), true, "", ""};
    c.layout.hidden = 32;
    c.layout.head_dim = 16;
    c.layout.tie = true;
    c.layout.qk_norm = true;
    c.fields = qwen3 +
               R"("attention_bias": false, "max_window_layers": 28, "sliding_window": null, "use_sliding_window": false)";
    out.push_back(c);
  }
  {
    Case c{"qwen3 (no head_dim in config.json: transformers' 128)", "Qwen3ForCausalLM", "qwen3", layout(), false,
           "", ""};
    c.layout.hidden = 32;
    c.layout.head_dim = 128;
    c.layout.qk_norm = true;
    c.fields = qwen3 + R"("attention_bias": false, "use_sliding_window": false)";
    out.push_back(c);
  }
  {
    Case c{"qwen3 (attention_bias, sliding window 8 on layers >= 1)", "Qwen3ForCausalLM", "qwen3", layout(3),
           true, "", ""};
    c.layout.head_dim = 16;
    c.layout.qk_norm = true;
    c.layout.qkv_bias = c.layout.o_bias = true;
    c.fields = qwen3 + R"("attention_bias": true, "max_window_layers": 1, "sliding_window": 8, "use_sliding_window": true)";
    c.baseline = qwen3 + R"("attention_bias": true, "max_window_layers": 1, "sliding_window": 8, "use_sliding_window": false)";
    out.push_back(c);
  }
  const std::string mistral =
      R"("attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", )"
      R"("initializer_range": 0.02, "max_position_embeddings": 32768, "rms_norm_eps": 1e-05, )"
      R"("rope_theta": 10000.0, "torch_dtype": "float32", "use_cache": true, )";
  {
    Case c{"mistral (Mistral-7B-v0.1 fields, sliding window 8)", "MistralForCausalLM", "mistral", layout(), true,
           "", ""};
    c.fields = mistral + R"("sliding_window": 8)";
    c.baseline = mistral + R"("sliding_window": null)";
    out.push_back(c);
  }
  {
    // Mistral-Nemo: head_dim 128 with hidden 5120 / 32 heads = 160; here 8 with 64 / 4 = 16.
    Case c{"mistral (Mistral-Nemo fields: head_dim given, no window)", "MistralForCausalLM", "mistral", layout(),
           true, "", ""};
    c.layout.head_dim = 8;
    c.fields =
        R"("attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", )"
        R"("initializer_range": 0.02, "max_position_embeddings": 1024000, "rms_norm_eps": 1e-05, )"
        R"("rope_theta": 1000000.0, "sliding_window": null, "torch_dtype": "float32", "use_cache": true)";
    out.push_back(c);
  }
  {
    Case c{"mistral token classification (2 labels, window 8)", "MistralForTokenClassification", "mistral",
           layout(), true, "", ""};
    c.layout.num_labels = 2;
    c.layout.score_bias = true;
    c.fields = mistral + R"("sliding_window": 8)";
    c.baseline = mistral + R"("sliding_window": null)";
    out.push_back(c);
  }
  const std::string qwen2 =
      R"("attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 1, "hidden_act": "silu", )"
      R"("initializer_range": 0.02, "max_position_embeddings": 131072, "rms_norm_eps": 1e-06, )"
      R"("rope_theta": 10000, "torch_dtype": "float32", "use_cache": true, "use_mrope": false, )";
  {
    Case c{"qwen2 (layer_types: sliding then full, window 6)", "Qwen2ForCausalLM", "qwen2", layout(), true, "", ""};
    c.layout.qkv_bias = true;
    c.fields = qwen2 + R"("sliding_window": 6, "use_sliding_window": true, "layer_types": ["sliding_attention", "full_attention"])";
    c.baseline = qwen2 + R"("sliding_window": 6, "use_sliding_window": true, "layer_types": ["full_attention", "full_attention"])";
    out.push_back(c);
  }
  {
    // DeepSeek-R1-Distill-Qwen-1.5B: sliding_window 4096 and max_window_layers 21 of 28, but
    // use_sliding_window false: no layer slides (the baseline turns it on: other logits).
    Case c{"DeepSeek-R1-Distill-Qwen (qwen2, use_sliding_window false)", "Qwen2ForCausalLM", "qwen2", layout(),
           true, "", ""};
    c.layout.qkv_bias = true;
    c.fields = qwen2 + R"("max_window_layers": 1, "sliding_window": 8, "use_sliding_window": false, )"
                       R"("transformers_version": "4.44.0")";
    c.baseline = qwen2 + R"("max_window_layers": 1, "sliding_window": 8, "use_sliding_window": true, )"
                         R"("transformers_version": "4.44.0")";
    out.push_back(c);
  }
  {
    // SmolLM2-135M: 9 heads / 3 kv heads of 64; here 3 / 1 of 16.
    Case c{"SmolLM2 (llama, tied, rope_scaling null)", "LlamaForCausalLM", "llama", layout(), true, "", ""};
    c.layout.hidden = 48;
    c.layout.heads = 3;
    c.layout.kv = 1;
    c.layout.tie = true;
    c.fields =
        R"("attention_bias": false, "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0, )"
        R"("hidden_act": "silu", "initializer_range": 0.041666666666666664, "is_llama_config": true, )"
        R"("max_position_embeddings": 8192, "mlp_bias": false, "pretraining_tp": 1, "rms_norm_eps": 1e-05, )"
        R"("rope_interleaved": false, "rope_scaling": null, "rope_theta": 100000, "torch_dtype": "float32", )"
        R"("transformers_version": "4.42.3", "use_cache": true)";
    out.push_back(c);
  }
  return out;
}

std::vector<std::int64_t> random_tokens(std::size_t n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, vocab - 1);
  std::vector<std::int64_t> t(n);
  for (auto& x : t) x = u(rng);
  return t;
}

std::vector<std::int64_t> sub(const std::vector<std::int64_t>& v, std::size_t b, std::size_t e) {
  return {v.begin() + static_cast<std::ptrdiff_t>(b), v.begin() + static_cast<std::ptrdiff_t>(e)};
}

// The model's outputs at every position of one uncached sequence: logits, or the token
// classification scores.
at::Tensor outputs(const Decoder& m, const std::vector<std::int64_t>& toks) {
  return m.has_lm_head() ? m.forward_tokens(toks) : m.score(m.hidden_states(toks));
}

struct Loaded {
  Case c;
  std::unique_ptr<tiny::TempDir> dir;
  std::shared_ptr<Decoder> model;
};

std::vector<Loaded> load_all(unsigned seed) {
  std::vector<Loaded> out;
  for (const Case& c : cases()) {
    Loaded l{c, std::make_unique<tiny::TempDir>(), nullptr};
    write_model(l.dir->str(), c, c.fields, seed + static_cast<unsigned>(out.size()));
    l.model = load_decoder(l.dir->str());
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

TEST_CASE("families: outputs equal the float64 Python reference, with RoPE scaling and windows active") {
  c10::InferenceMode guard;
  std::vector<Loaded> models = load_all(500);
  tiny::TempDir work;
  std::vector<reference::Job> jobs;
  std::vector<std::vector<std::int64_t>> toks;
  for (std::size_t i = 0; i < models.size(); ++i) {
    toks.push_back(random_tokens(kTokens, models[i].c.layout.vocab, static_cast<unsigned>(40 + i)));
    jobs.push_back({models[i].dir->str(), toks.back(), work.file("out" + std::to_string(i) + ".bin")});
  }
  const std::string python = reference::run(jobs, work.str());
  if (python.empty()) {
    MESSAGE("skipping the Python reference check: no python3 with torch and numpy");
    return;
  }
  for (std::size_t i = 0; i < models.size(); ++i) {
    const Loaded& md = models[i];
    CAPTURE(md.c.label);
    const at::Tensor ref = reference::read_matrix(jobs[i].out);
    const at::Tensor got = outputs(*md.model, toks[i]);
    const double err = rel_err(got, ref);
    MESSAGE(md.c.label << " (" << md.model->family() << "): C++ float32 vs Python float64, max relative error "
                       << err);
    CHECK(err <= kTol);
    if (!md.c.baseline.empty()) {
      // The same weights with the scaling / window off: clearly other outputs, so the
      // reference check above covers the feature.
      tiny::TempDir base;
      write_model(base.str(), md.c, md.c.baseline, 500 + static_cast<unsigned>(i));
      const double diff = rel_err(outputs(*load_decoder(base.str()), toks[i]), got);
      MESSAGE("  without it: relative difference " << diff);
      CHECK(diff > 1e-3);
    }
  }
}

TEST_CASE("families: cached decoding equals the full forward (windows crossed, RoPE scaled)") {
  c10::InferenceMode guard;
  for (const Loaded& md : load_all(600)) {
    CAPTURE(md.c.label);
    const Decoder& m = *md.model;
    const auto toks = random_tokens(kTokens, md.c.layout.vocab, 9);
    const at::Tensor full = m.hidden_states(toks);
    // Dynamic NTK is stateless per forward (models/rope.hpp): a cache equals the full
    // forward while the sequence is within max_position_embeddings.
    const std::size_t n = md.c.dynamic_max_positions > 0
                              ? static_cast<std::size_t>(md.c.dynamic_max_positions)
                              : kTokens;
    const at::Tensor ref = n == kTokens ? full : m.hidden_states(sub(toks, 0, n));
    std::deque<KVSegment> segs;
    auto past = [&] {
      std::vector<const KVSegment*> p;
      for (const auto& s : segs) p.push_back(&s);
      return p;
    };
    std::vector<at::Tensor> hidden;
    auto step = [&](std::size_t from, std::size_t to, PastAssembly mode, bool explicit_position) {
      SequenceInput in;
      in.past = past();
      in.tokens = sub(toks, from, to);
      if (explicit_position) in.position = static_cast<std::int64_t>(from);
      auto o = m.forward({&in, 1}, {LogitsMode::None, true, true, mode});
      hidden.push_back(o[0].hidden);
      segs.push_back(std::move(o[0].kv));
    };
    // Prefill 5, one token at a time to 12 (alternating past layouts), then chunks.
    step(0, 5, PastAssembly::Copy, false);
    for (std::size_t t = 5; t < std::min<std::size_t>(12, n); ++t)
      step(t, t + 1, t % 2 ? PastAssembly::Gather : PastAssembly::Copy, false);
    if (n > 12) step(12, std::min<std::size_t>(18, n), PastAssembly::Copy, true);
    if (n > 18) step(18, n, PastAssembly::Gather, false);
    const double err = rel_err(at::cat(hidden, 0), ref);
    MESSAGE(md.c.label << ": cached (" << n << " tokens) vs full, max relative error " << err);
    CHECK(err <= kTol);
    if (n < kTokens) {
      // Past max_position_embeddings the cached keys keep the shorter length's rotation.
      segs.clear();
      hidden.clear();
      step(0, n, PastAssembly::Copy, false);
      step(n, kTokens, PastAssembly::Copy, false);
      MESSAGE("  dynamic NTK past max_position_embeddings: cached vs full differ by "
              << rel_err(at::cat(hidden, 0), full) << " (documented: stateless per forward)");
    }
  }
}

TEST_CASE("families: a ragged batch equals each sequence alone (windows and RoPE scaling active)") {
  c10::InferenceMode guard;
  for (const Loaded& md : load_all(700)) {
    CAPTURE(md.c.label);
    const Decoder& m = *md.model;
    const int V = md.c.layout.vocab;
    // Sequences (tokens, past cuts): past [12, 8] + 6 new; 26 new; past 17 + 1 new.
    const std::vector<std::pair<std::vector<std::int64_t>, std::vector<std::size_t>>> seqs = {
        {random_tokens(26, V, 1), {12, 20}}, {random_tokens(26, V, 2), {}}, {random_tokens(18, V, 3), {17}}};
    std::vector<std::vector<KVSegment>> pasts(seqs.size());
    std::vector<SequenceInput> batch(seqs.size());
    for (std::size_t s = 0; s < seqs.size(); ++s) {
      std::size_t from = 0;
      for (std::size_t cut : seqs[s].second) {
        SequenceInput pre;
        for (auto& p : pasts[s]) pre.past.push_back(&p);
        pre.tokens = sub(seqs[s].first, from, cut);
        pasts[s].push_back(std::move(m.forward({&pre, 1}, {LogitsMode::None, false})[0].kv));
        from = cut;
      }
      for (auto& p : pasts[s]) batch[s].past.push_back(&p);
      batch[s].tokens = sub(seqs[s].first, from, seqs[s].first.size());
    }
    double worst = 0.0;
    for (PastAssembly mode : {PastAssembly::Copy, PastAssembly::Gather}) {
      const auto batched = m.forward(batch, {LogitsMode::None, true, true, mode});
      for (std::size_t s = 0; s < batch.size(); ++s) {
        const auto alone = m.forward({&batch[s], 1}, {LogitsMode::None, true});
        worst = std::max(worst, rel_err(batched[s].hidden, alone[0].hidden));
        for (std::size_t l = 0; l < batched[s].kv.k.size(); ++l)
          worst = std::max(worst, rel_err(batched[s].kv.k[l], alone[0].kv.k[l]));
      }
    }
    MESSAGE(md.c.label << ": ragged batch vs alone, max relative error " << worst);
    CHECK(worst <= kTol);
  }
}

TEST_CASE("families: registry and load errors") {
  const auto names = decoder_families();
  for (const char* f : {"llama", "qwen2", "qwen3", "mistral"})
    CHECK(std::find(names.begin(), names.end(), f) != names.end());
  auto load_error = [](const Case& c, const std::string& fields) {
    tiny::TempDir dir;
    write_model(dir.str(), c, fields, 1);
    try {
      (void)load_decoder(dir.str());
    } catch (const qstar::ParseError& e) {
      return std::string(e.what());
    }
    return std::string("no ParseError");
  };
  Case c{"", "LlamaForCausalLM", "llama", layout(), true, "", ""};
  std::string e = load_error(c, R"("rope_scaling": {"rope_type": "longrope", "factor": 4.0})");
  CAPTURE(e);
  CHECK(e.find("config.json") != std::string::npos);
  CHECK(e.find("longrope") != std::string::npos);
  // Qwen3 without its q/k norms: the missing tensor is named.
  Case q{"", "Qwen3ForCausalLM", "qwen3", layout(), true, "", ""};
  q.layout.head_dim = 16;
  e = load_error(q, R"("attention_bias": false)");
  CHECK(e.find("model.layers.0.self_attn.q_norm.weight") != std::string::npos);
  CHECK(e.find("missing") != std::string::npos);
}

TEST_CASE("families: qstar lm logits / generate --model load Qwen3, Mistral and scaled-RoPE folders") {
  c10::InferenceMode guard;
  unsigned seed = 800;
  for (const Case& c : cases()) {
    if (c.label.rfind("qwen3 (attention_bias", 0) != 0 && c.label.rfind("mistral (Mistral-7B", 0) != 0 &&
        c.label.rfind("llama3", 0) != 0)
      continue;
    CAPTURE(c.label);
    tiny::TempDir dir;
    write_model(dir.str(), c, c.fields, seed++);
    tiny::write_tokenizer(dir.file("tokenizer.json"));
    const std::string text = "3+4=7 and 5*6=30 then (7+30)/37=1 so 9";  // 38 tokens: past the window
    auto r = cli_test::run({"lm", "logits", "--model", dir.str(), "--text", text, "--json"});
    REQUIRE(r.code == 0);
    const auto rows = qstar::json::parse(r.out).get_array("logits");
    const auto ids = qstar::hf::Tokenizer::from_file(dir.file("tokenizer.json")).encode(text);
    const at::Tensor ref = load_decoder(dir.str())->forward_tokens(std::vector<std::int64_t>(ids.begin(), ids.end()));
    REQUIRE(static_cast<std::int64_t>(rows.size()) == ref.size(0));
    double worst = 0;
    for (std::size_t i = 0; i < rows.size(); ++i)
      for (std::size_t j = 0; j < rows[i].size(); ++j)
        worst = std::max(worst, std::abs(rows[i].at(j).as_double() -
                                         ref[static_cast<std::int64_t>(i)][static_cast<std::int64_t>(j)].item<double>()));
    CHECK(worst == 0.0);
    r = cli_test::run({"lm", "generate", "--model", dir.str(), "--prompt", text, "--steps", "2",
                       "--max-step-tokens", "12", "--json", "--seed", "1"});
    CHECK(r.code == 0);
    CHECK(qstar::json::parse(r.out).at("steps").size() >= 1);
  }
}
