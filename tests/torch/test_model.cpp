// The Llama / Qwen2 forward: cached decoding, ragged batches, parity with an independent
// Python reference (tests/torch/reference_llama.py), the token-classification head, and
// malformed model folders. The tests write their own tiny random models.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/hf/safetensors.hpp"
#include "support/tiny_model.hpp"
#include "torch/decoder.hpp"

// doctest goes AFTER the torch headers: Debian's LibTorch is built with glog, whose
// <glog/logging.h> (pulled in by ATen) silently redefines CHECK as a fatal glog check.
// Re-assert doctest's CHECK in case a torch header came in later through some other path.
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

#include "support/torch_reference.hpp"

namespace fs = std::filesystem;
using namespace qstar::lm;
using namespace qstar::hf;
using reference::join;
using reference::read_matrix;
using reference::rel_err;

namespace {

constexpr double kTol = 1e-5;

using tiny::TempDir;

struct Spec {
  std::string arch = "LlamaForCausalLM";
  std::string model_type = "llama";
  int hidden = 48, inter = 80, layers = 2, heads = 4, kv = 2, vocab = 50;
  bool tie = false;
  int num_labels = 0;  // > 0: token classification (id2label written)
  bool score_bias = false;
  bool attention_bias = false, mlp_bias = false;
  double theta = 10000.0;
  std::string extra_json;                                  // extra config fields ("...": ..., )
  std::vector<std::string> drop;                           // tensors to leave out
  std::map<std::string, std::vector<std::int64_t>> shape;  // shape overrides
  bool write_head = true;                                  // lm_head.weight when untied
};

Spec llama_spec() { return Spec{}; }

Spec qwen2_spec() {
  Spec s;
  s.arch = "Qwen2ForCausalLM";
  s.model_type = "qwen2";
  s.tie = true;
  s.theta = 1000000.0;
  return s;
}

bool is_qwen2(const Spec& s) { return s.model_type == "qwen2"; }
bool is_tc(const Spec& s) { return s.num_labels > 0; }

// Writes config.json and model.safetensors with random float32 weights.
void write_model(const std::string& dir, const Spec& s, unsigned seed) {
  tiny::Layout l;
  l.hidden = s.hidden;
  l.inter = s.inter;
  l.layers = s.layers;
  l.heads = s.heads;
  l.kv = s.kv;
  l.vocab = s.vocab;
  l.num_labels = s.num_labels;
  l.tie = s.tie;
  l.write_head = s.write_head;
  l.qkv_bias = is_qwen2(s) || s.attention_bias;
  l.o_bias = !is_qwen2(s) && s.attention_bias;
  l.mlp_bias = !is_qwen2(s) && s.mlp_bias;
  l.score_bias = s.score_bias;
  std::vector<tiny::TensorSpec> ts;
  for (auto t : tiny::tensor_layout(l)) {
    if (std::find(s.drop.begin(), s.drop.end(), t.name) != s.drop.end()) continue;
    if (auto it = s.shape.find(t.name); it != s.shape.end()) t.shape = it->second;
    ts.push_back(std::move(t));
  }
  tiny::write_weights(dir + "/model.safetensors", ts, seed,
                      tiny::standard_fill());
  std::ostringstream c;
  c << "{" << tiny::config_fields(s.arch, s.model_type, l, s.theta, 256);
  if (!is_qwen2(s))
    c << ", \"attention_bias\": " << (s.attention_bias ? "true" : "false")
      << ", \"mlp_bias\": " << (s.mlp_bias ? "true" : "false");
  if (!s.extra_json.empty()) c << ", " << s.extra_json;
  c << "}\n";
  std::ofstream(dir + "/config.json") << c.str();
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

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const qstar::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A qstar::Error: ") + e.what();
  }
  return "NO ERROR";
}

}  // namespace

TEST_CASE("lm: cached incremental decoding equals the full forward") {
  c10::InferenceMode guard;
  for (const Spec& spec : {llama_spec(), qwen2_spec()}) {
    CAPTURE(spec.arch);
    TempDir dir;
    write_model(dir.str(), spec, 11);
    auto m = load_decoder(dir.str());
    const auto toks = random_tokens(23, spec.vocab, 5);
    const at::Tensor full = m->forward_tokens(toks);  // [23, V]
    REQUIRE(full.sizes() == at::IntArrayRef({23, spec.vocab}));
    double worst = 0.0;

    // Prefill 6 tokens, then keep every new run as its own segment.
    std::deque<KVSegment> segs;  // stable addresses
    SequenceInput in;
    in.tokens = sub(toks, 0, 6);
    auto r = m->forward({&in, 1}, {LogitsMode::All, false});
    worst = std::max(worst, rel_err(r[0].logits, full.narrow(0, 0, 6)));
    CHECK(r[0].kv.length() == 6);
    // Store the prefix as two slices: segments may be views.
    const KVSegment prefix = std::move(r[0].kv);
    segs.push_back(prefix.slice(0, 4));
    segs.push_back(prefix.slice(4, 2));

    auto past_all = [&] {
      std::vector<const KVSegment*> p;
      for (const auto& s : segs) p.push_back(&s);
      return p;
    };
    // One token at a time (Last logits), positions implicit.
    std::size_t at_tok = 6;
    for (; at_tok < 11; ++at_tok) {
      SequenceInput step;
      step.past = past_all();
      step.tokens = {toks[at_tok]};
      // Alternate the two past layouts; they must agree.
      ForwardOptions opts{LogitsMode::Last, false, true,
                          at_tok % 2 ? PastAssembly::Gather : PastAssembly::Copy};
      auto o = m->forward({&step, 1}, opts);
      REQUIRE(o[0].logits.sizes() == at::IntArrayRef({1, spec.vocab}));
      worst = std::max(worst,
                       rel_err(o[0].logits, full.narrow(0, static_cast<std::int64_t>(at_tok), 1)));
      segs.push_back(std::move(o[0].kv));
    }
    // A chunk of 4 with an explicit position.
    {
      SequenceInput step;
      step.past = past_all();
      step.tokens = sub(toks, 11, 15);
      step.position = 11;
      auto o = m->forward({&step, 1}, {LogitsMode::All, false});
      worst = std::max(worst, rel_err(o[0].logits, full.narrow(0, 11, 4)));
      segs.push_back(std::move(o[0].kv));
    }
    // A chunk of 8 over a past regrouped as [concat(first 3 segments), the rest].
    {
      std::vector<const KVSegment*> first = {&segs[0], &segs[1], &segs[2]};
      const KVSegment merged = KVSegment::concat(first);
      CHECK(merged.length() == 7);
      SequenceInput step;
      step.past.push_back(&merged);
      for (std::size_t i = 3; i < segs.size(); ++i) step.past.push_back(&segs[i]);
      step.tokens = sub(toks, 15, 23);
      auto o = m->forward({&step, 1}, {LogitsMode::All, false});
      worst = std::max(worst, rel_err(o[0].logits, full.narrow(0, 15, 8)));
      segs.push_back(std::move(o[0].kv));
    }
    // The cached KV equals the KV of one full prefill.
    {
      SequenceInput all;
      all.tokens = toks;
      auto o = m->forward({&all, 1}, {LogitsMode::None, false});
      const KVSegment whole = KVSegment::concat(past_all());
      REQUIRE(whole.length() == 23);
      double kv_err = 0.0;
      for (int l = 0; l < spec.layers; ++l) {
        kv_err = std::max(kv_err, rel_err(whole.k[static_cast<std::size_t>(l)],
                                          o[0].kv.k[static_cast<std::size_t>(l)]));
        kv_err = std::max(kv_err, rel_err(whole.v[static_cast<std::size_t>(l)],
                                          o[0].kv.v[static_cast<std::size_t>(l)]));
      }
      CHECK(kv_err <= kTol);
      CHECK(o[0].logits.defined() == false);
    }
    MESSAGE(spec.arch << ": cached vs full, max relative error " << worst);
    CHECK(worst <= kTol);
  }
}

TEST_CASE("lm: a ragged batch equals each sequence alone") {
  c10::InferenceMode guard;
  for (const Spec& spec : {llama_spec(), qwen2_spec()}) {
    CAPTURE(spec.arch);
    TempDir dir;
    write_model(dir.str(), spec, 21);
    auto m = load_decoder(dir.str());

    struct Case {
      std::vector<std::int64_t> toks;
      std::vector<std::size_t> cuts;  // segment boundaries of the past; last = past length
    };
    const std::vector<Case> cases = {
        {random_tokens(8, spec.vocab, 1), {2, 5}},     // past 5 as [2, 3], new 3
        {random_tokens(6, spec.vocab, 2), {}},         // no past, new 6
        {random_tokens(10, spec.vocab, 3), {9}},       // past 9, new 1
        {random_tokens(7, spec.vocab, 4), {1, 2, 3}},  // past 3 as [1, 1, 1], new 4
    };
    std::vector<std::vector<KVSegment>> pasts(cases.size());
    std::vector<SequenceInput> batch(cases.size());
    for (std::size_t c = 0; c < cases.size(); ++c) {
      std::size_t from = 0;
      for (std::size_t cut : cases[c].cuts) {
        SequenceInput pre;
        for (auto& s : pasts[c]) pre.past.push_back(&s);
        pre.tokens = sub(cases[c].toks, from, cut);
        auto o = m->forward({&pre, 1}, {LogitsMode::None, false});
        pasts[c].push_back(std::move(o[0].kv));
        from = cut;
      }
      for (auto& s : pasts[c]) batch[c].past.push_back(&s);
      batch[c].tokens = sub(cases[c].toks, from, cases[c].toks.size());
    }
    // A fifth sequence shares the first segment (tokens 0..1) of sequence 0, as siblings
    // in a search tree share their parent's KV, then has a segment of its own.
    std::vector<std::int64_t> fifth = sub(cases[0].toks, 0, 2);
    for (auto t : random_tokens(5, spec.vocab, 77)) fifth.push_back(t);
    KVSegment fifth_own;
    {
      SequenceInput pre;
      pre.past = {&pasts[0][0]};
      pre.tokens = sub(fifth, 2, 4);
      fifth_own = std::move(m->forward({&pre, 1}, {LogitsMode::None, false})[0].kv);
      SequenceInput in;
      in.past = {&pasts[0][0], &fifth_own};
      in.tokens = sub(fifth, 4, 7);
      batch.push_back(in);
    }
    std::vector<std::vector<std::int64_t>> all_toks;
    for (const auto& c : cases) all_toks.push_back(c.toks);
    all_toks.push_back(fifth);

    double worst = 0.0, worst_last = 0.0, worst_full = 0.0;
    for (PastAssembly mode : {PastAssembly::Copy, PastAssembly::Gather})
      for (bool copy_kv : {true, false}) {
        CAPTURE(static_cast<int>(mode));
        CAPTURE(copy_kv);
        ForwardOptions all_opts{LogitsMode::All, true, copy_kv, mode};
        ForwardOptions last_opts{LogitsMode::Last, false, copy_kv, mode};
        const auto batched = m->forward(batch, all_opts);
        const auto batched_last = m->forward(batch, last_opts);
        REQUIRE(batched.size() == batch.size());
        for (std::size_t c = 0; c < batch.size(); ++c) {
          CAPTURE(c);
          const auto alone = m->forward({&batch[c], 1}, {LogitsMode::All, true});
          const auto T = static_cast<std::int64_t>(batch[c].tokens.size());
          REQUIRE(batched[c].logits.sizes() == at::IntArrayRef({T, spec.vocab}));
          REQUIRE(batched[c].hidden.sizes() == at::IntArrayRef({T, spec.hidden}));
          worst = std::max(worst, rel_err(batched[c].logits, alone[0].logits));
          worst = std::max(worst, rel_err(batched[c].hidden, alone[0].hidden));
          for (int l = 0; l < spec.layers; ++l) {
            const auto ul = static_cast<std::size_t>(l);
            REQUIRE(batched[c].kv.k[ul].sizes() ==
                    at::IntArrayRef({spec.kv, T, spec.hidden / spec.heads}));
            if (copy_kv) CHECK(batched[c].kv.k[ul].is_contiguous());
            worst = std::max(worst, rel_err(batched[c].kv.k[ul], alone[0].kv.k[ul]));
            worst = std::max(worst, rel_err(batched[c].kv.v[ul], alone[0].kv.v[ul]));
          }
          worst_last = std::max(
              worst_last, rel_err(batched_last[c].logits, alone[0].logits.narrow(0, T - 1, 1)));
          // And against the uncached full forward.
          const at::Tensor full = m->forward_tokens(all_toks[c]);
          worst_full =
              std::max(worst_full, rel_err(batched[c].logits, full.narrow(0, full.size(0) - T, T)));
        }
      }
    MESSAGE(spec.arch << ": ragged batch vs alone " << worst << ", last-only " << worst_last
                      << ", vs full uncached " << worst_full);
    CHECK(worst <= kTol);
    CHECK(worst_last <= kTol);
    CHECK(worst_full <= kTol);
  }
}

TEST_CASE("lm: C++ forward and token-classification scores equal the Python reference") {
  c10::InferenceMode guard;
  struct Model {
    std::string label;
    Spec spec;
    std::unique_ptr<TempDir> dir;
    std::vector<std::int64_t> toks;
  };
  std::vector<Model> models;
  auto add = [&](std::string label, Spec s) {
    Model m{std::move(label), std::move(s), std::make_unique<TempDir>(), {}};
    write_model(m.dir->str(), m.spec, static_cast<unsigned>(100 + models.size()));
    m.toks = random_tokens(19, m.spec.vocab, static_cast<unsigned>(7 + models.size()));
    models.push_back(std::move(m));
  };
  add("llama (untied, GQA)", llama_spec());
  add("qwen2 (qkv bias, tied, GQA)", qwen2_spec());
  {
    Spec s;  // Llama with attention and MLP biases, MQA, rope_parameters (transformers 5.x)
    s.attention_bias = s.mlp_bias = true;
    s.kv = 1;
    s.extra_json = "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 500000.0}";
    add("llama (biases, MQA, rope_parameters)", s);
  }
  {
    Spec s;
    s.arch = "LlamaForTokenClassification";
    s.num_labels = 1;
    s.score_bias = true;
    add("llama token classification (1 label, bias)", s);
  }
  {
    Spec s = qwen2_spec();
    s.arch = "Qwen2ForTokenClassification";
    s.tie = false;
    s.num_labels = 2;
    add("qwen2 token classification (2 labels)", s);
  }

  TempDir work;
  {
    std::ofstream jobs(work.file("jobs.tsv"));
    for (std::size_t i = 0; i < models.size(); ++i)
      jobs << models[i].dir->str() << "\t" << join(models[i].toks) << "\t"
           << work.file("out" + std::to_string(i) + ".bin") << "\n";
  }
  const std::string script = std::string(QSTAR_TEST_SCRIPTS) + "/reference_llama.py";
  // CMake's Python3 may be an interpreter without torch: fall back to Debian's.
  std::string python;
  std::string last_rc;
  for (const std::string& candidate :
       {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
    if (candidate.empty() || !fs::exists(candidate)) continue;
    const std::string cmd = "\"" + candidate + "\" \"" + script + "\" --jobs \"" +
                            work.file("jobs.tsv") + "\" 2> \"" + work.file("stderr.txt") + "\"";
    const int rc = std::system(cmd.c_str());
    if (rc == 0) {
      python = candidate;
      break;
    }
    const std::string probe = "\"" + candidate + "\" -c \"import torch, numpy\" > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) {
      std::ifstream err(work.file("stderr.txt"));
      std::stringstream ss;
      ss << err.rdbuf();
      FAIL("reference_llama.py failed with " << candidate << ":\n" << ss.str());
    }
    last_rc = candidate;
  }
  if (python.empty()) {
    MESSAGE(
        "skipping the Python reference check: no python3 with torch and numpy (tried " QSTAR_PYTHON
        " and /usr/bin/python3)");
    return;
  }

  for (std::size_t i = 0; i < models.size(); ++i) {
    const Model& md = models[i];
    CAPTURE(md.label);
    const at::Tensor ref = read_matrix(work.file("out" + std::to_string(i) + ".bin"));
    const auto lm = LanguageModel::load(md.dir->str());
    std::vector<std::int32_t> ids(md.toks.begin(), md.toks.end());
    const auto rows = is_tc(md.spec) ? lm.token_scores(ids) : lm.logits(ids);
    REQUIRE(static_cast<std::int64_t>(rows.size()) == ref.size(0));
    at::Tensor got = at::empty_like(ref);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      REQUIRE(static_cast<std::int64_t>(rows[r].size()) == ref.size(1));
      std::memcpy(got[static_cast<std::int64_t>(r)].data_ptr<float>(), rows[r].data(),
                  rows[r].size() * sizeof(float));
    }
    const double err = rel_err(got, ref);
    MESSAGE(md.label << ": C++ vs Python reference, max relative error " << err << " (" << python
                     << ")");
    CHECK(err <= kTol);

    if (is_tc(md.spec)) {
      // The PRM path: hidden states from the cached forward, score() at chosen positions.
      auto m = lm.impl();
      SequenceInput a;
      a.tokens = sub(md.toks, 0, 10);
      auto o1 = m->forward({&a, 1}, {LogitsMode::None, true});
      SequenceInput b;
      b.past = {&o1[0].kv};
      b.tokens = sub(md.toks, 10, md.toks.size());
      auto o2 = m->forward({&b, 1}, {LogitsMode::None, true});
      const at::Tensor s = m->score(at::cat({o1[0].hidden, o2[0].hidden}, 0));
      const double err2 = rel_err(s, ref);
      MESSAGE(md.label << ": cached hidden + score() vs reference " << err2);
      CHECK(err2 <= kTol);
    }
  }
}

TEST_CASE("lm: the public wrapper") {
  TempDir dir;
  write_model(dir.str(), qwen2_spec(), 3);
  const auto lm = LanguageModel::load(dir.str(), "cpu", "bfloat16");  // CPU computes in float32
  CHECK(lm.device() == "cpu");
  CHECK(lm.dtype() == "float32");
  CHECK(lm.has_lm_head());
  CHECK_FALSE(lm.has_score_head());
  CHECK(lm.config().architecture == "Qwen2ForCausalLM");
  const std::vector<std::int32_t> ids = {1, 2, 3, 4};
  const auto rows = lm.logits(ids);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].size() == 50);
  {
    c10::InferenceMode guard;
    const at::Tensor ref = lm.impl()->forward_tokens(std::vector<std::int64_t>{1, 2, 3, 4});
    CHECK(rows[3][7] == ref[3][7].item<float>());
  }
  CHECK(error_of([&] { (void)lm.token_scores(ids); }).find("no token-classification head") !=
        std::string::npos);
  const std::vector<std::int32_t> bad = {1, 50};
  CHECK(error_of([&] { (void)lm.logits(bad); }).find("token id 50") != std::string::npos);
  CHECK(error_of([&] { (void)LanguageModel::load(dir.str(), "cpu", "int4"); }).find("dtype") !=
        std::string::npos);
  CHECK(error_of([&] { (void)LanguageModel::load(dir.str(), "tpu"); }).find("device") !=
        std::string::npos);
  if (!at::hasCUDA()) {
    CHECK(error_of([&] {
            (void)LanguageModel::load(dir.str(), "cuda:0");
          }).find("CUDA is not available") != std::string::npos);
  }

  // Errors from the batched forward name the sequence.
  c10::InferenceMode guard;
  auto m = lm.impl();
  SequenceInput empty;
  CHECK(error_of([&] {
          (void)m->forward({&empty, 1});
        }).find("sequence 0: no new tokens") != std::string::npos);
  SequenceInput a;
  a.tokens = {1, 2};
  auto o = m->forward({&a, 1});
  KVSegment broken = o[0].kv;
  broken.k.pop_back();
  SequenceInput b;
  b.tokens = {3};
  b.past = {&o[0].kv, &broken};
  CHECK(error_of([&] {
          (void)m->forward({&b, 1});
        }).find("sequence 0 segment 1") != std::string::npos);
  CHECK(m->kv_bytes_per_token() == 2u * 2u * 2u * 12u * 4u);
}

TEST_CASE("lm: malformed models name the file and the tensor or field") {
  auto load_error = [](const Spec& s) {
    TempDir dir;
    write_model(dir.str(), s, 9);
    return error_of([&] { (void)load_decoder(dir.str()); });
  };
  {
    Spec s = llama_spec();
    s.drop = {"model.layers.1.mlp.up_proj.weight"};
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("model.layers.1.mlp.up_proj.weight") != std::string::npos);
    CHECK(e.find("model.safetensors") != std::string::npos);
    CHECK(e.find("missing") != std::string::npos);
  }
  {
    Spec s = llama_spec();
    s.shape["model.layers.0.self_attn.k_proj.weight"] = {48, 48};  // GQA wants [24, 48]
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("model.layers.0.self_attn.k_proj.weight") != std::string::npos);
    CHECK(e.find("model.safetensors") != std::string::npos);
    CHECK(e.find("[48, 48]") != std::string::npos);
    CHECK(e.find("[24, 48]") != std::string::npos);
  }
  {
    Spec s = llama_spec();  // untied without lm_head.weight
    s.write_head = false;
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("lm_head.weight") != std::string::npos);
  }
  {
    Spec s = qwen2_spec();  // qwen2 needs q/k/v biases
    s.drop = {"model.layers.0.self_attn.v_proj.bias"};
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("model.layers.0.self_attn.v_proj.bias") != std::string::npos);
  }
  {
    Spec s;
    s.arch = "LlamaForTokenClassification";
    s.num_labels = 2;
    s.shape["score.weight"] = {3, 48};
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("score.weight") != std::string::npos);
  }
  {
    Spec s = llama_spec();
    s.arch = "GPT2LMHeadModel";
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("config.json") != std::string::npos);
    CHECK(e.find("GPT2LMHeadModel") != std::string::npos);
  }
  {
    Spec s = llama_spec();
    s.extra_json = "\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 4.0}";
    const auto e = load_error(s);
    CAPTURE(e);
    CHECK(e.find("config.json") != std::string::npos);
    CHECK(e.find("longrope") != std::string::npos);
  }
  {
    TempDir dir;  // no weights at all
    write_model(dir.str(), llama_spec(), 1);
    fs::remove(dir.file("model.safetensors"));
    const auto e = error_of([&] { (void)load_decoder(dir.str()); });
    CAPTURE(e);
    CHECK(e.find(dir.str()) != std::string::npos);
  }
}

TEST_CASE("lm: decoder families are looked up by model_type and architecture") {
  c10::InferenceMode guard;
  const auto names = decoder_families();
  CHECK(std::find(names.begin(), names.end(), "llama") != names.end());
  CHECK(std::find(names.begin(), names.end(), "qwen2") != names.end());
  TempDir a, b;
  write_model(a.str(), llama_spec(), 3);
  write_model(b.str(), qwen2_spec(), 3);
  const auto llama = load_decoder(a.str());
  const auto qwen2 = load_decoder(b.str());
  CHECK(llama->family() == "llama");
  CHECK(qwen2->family() == "qwen2");
  ModelConfig cfg = llama->config();
  REQUIRE(find_decoder_family(cfg) != nullptr);
  CHECK(find_decoder_family(cfg)->name == "llama");
  cfg.model_type = "qwen2";  // a Llama architecture under another model_type: no family
  CHECK(find_decoder_family(cfg) == nullptr);
  // A registered family replaces the built-in one of the same name: here a llama family
  // that counts its loads and delegates to the built-in loader.
  DecoderFamily orig = *find_decoder_family(llama->config());
  int loads = 0;
  DecoderFamily wrapped = orig;
  wrapped.load = [&loads, orig](const ModelConfig& c, const std::string& dir, const LoadOptions& o) {
    ++loads;
    return orig.load(c, dir, o);
  };
  register_decoder_family(wrapped);
  const auto again = load_decoder(a.str());
  CHECK(loads == 1);
  const std::vector<std::int64_t> toks{1, 2, 3, 4, 5};
  CHECK(at::equal(again->forward_tokens(toks), llama->forward_tokens(toks)));
  register_decoder_family(orig);  // restore
  (void)load_decoder(a.str());
  CHECK(loads == 1);
  DecoderFamily bad;
  bad.name = "x";
  CHECK(error_of([&] { register_decoder_family(bad); }).find("DecoderFamily.model_types") !=
        std::string::npos);
}

TEST_CASE("lm: CUDA matches CPU" * doctest::skip(!at::hasCUDA())) {
  c10::InferenceMode guard;
  TempDir dir;
  write_model(dir.str(), qwen2_spec(), 31);
  auto cpu = load_decoder(dir.str());
  const auto toks = random_tokens(17, 50, 2);
  const at::Tensor ref = cpu->forward_tokens(toks);
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    auto gpu = load_decoder(dir.str(), LoadOptions{"cuda", dt});
    CHECK(gpu->device().is_cuda());
    const at::Tensor full = gpu->forward_tokens(toks);
    // Cached decode on the GPU against its own full forward.
    SequenceInput a;
    a.tokens = sub(toks, 0, 12);
    auto o = gpu->forward({&a, 1}, {LogitsMode::None, false});
    SequenceInput b;
    b.past = {&o[0].kv};
    b.tokens = sub(toks, 12, 17);
    auto o2 = gpu->forward({&b, 1}, {LogitsMode::All, false});
    const double vs_cpu = rel_err(full, ref);
    const double cached = rel_err(o2[0].logits, full.narrow(0, 12, 5));
    MESSAGE("cuda " << dtype_name(dt) << ": vs CPU " << vs_cpu << ", cached vs full " << cached);
    const double tol = dt == DType::F32 ? 1e-4 : 5e-2;
    CHECK(vs_cpu <= tol);
    CHECK(cached <= tol);
  }
}
