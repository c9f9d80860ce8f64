// The language-model Generator (src/torch/lm_generator.cpp): determinism, batch invariance,
// the prefix cache (reuse, eviction, on/off parity), greedy and logprob parity with a
// full-context recomputation, stop handling (delimiter inside a token, EOS, length, final
// answer), sampling filters, and a full beam search. The tests write their own tiny
// random-weight models with a character vocabulary.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/concepts.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "qstar/search/beam.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/hf/safetensors.hpp"
#include "support/tiny_model.hpp"

// doctest goes AFTER the torch headers (glog's CHECK; see test_model.cpp).
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

namespace fs = std::filesystem;
using namespace qstar;
using namespace qstar::lm;
using namespace qstar::hf;

namespace {

static_assert(Generator<LMGenerator>);

using GenDir = tiny::TempDir;


// The character vocabulary: <unk>, </s> (EOS), every character below, and one
// two-character token ".\n" (never produced by encode, but the model can sample it).
std::vector<std::string> vocab() {
  std::vector<std::string> v = {"<unk>", "</s>"};
  const std::string chars = "\n .:=+0123456789abcdefghijklmnopqrstuvwxyzA";
  for (char c : chars) v.emplace_back(1, c);
  v.emplace_back(".\n");
  return v;
}

int id_of(const std::string& tok) {
  const auto v = vocab();
  return static_cast<int>(std::find(v.begin(), v.end(), tok) - v.begin());
}

struct ModelSpec {
  int hidden = 32, inter = 64, layers = 2, heads = 4, kv = 2;
  unsigned seed = 1;
  // Logit biases (roughly, in nats) per token: the embeddings share a large component on
  // hidden dim 0, and lm_head's dim-0 column reads it.
  std::map<std::string, float> bias;
};

void write_gen_model(const std::string& dir, const ModelSpec& s) {
  const auto voc = vocab();
  tiny::Layout l;
  l.hidden = s.hidden;
  l.inter = s.inter;
  l.layers = s.layers;
  l.heads = s.heads;
  l.kv = s.kv;
  l.vocab = static_cast<int>(voc.size());
  std::vector<std::pair<std::size_t, float>> biases;
  for (const auto& [tok, b] : s.bias) biases.emplace_back(static_cast<std::size_t>(id_of(tok)), b);
  tiny::write_biased_model(dir, l, s.seed, biases, voc, 1024);
}

// A default model: "\n" fairly likely (steps of a few tokens), EOS sometimes.
const std::string& default_model() {
  static GenDir dir;
  static bool done = false;
  if (!done) {
    ModelSpec s;
    s.bias = {{"\n", 1.4f}, {"</s>", 0.7f}};
    write_gen_model(dir.str(), s);
    done = true;
  }
  static const std::string path = dir.str();
  return path;
}

LMGeneratorParams base_params() {
  LMGeneratorParams p;
  p.max_step_tokens = 12;
  return p;
}

ExpandRequest request(std::string_view prompt, std::uint64_t seed, int k = 4,
                      TrajectoryView prefix = {}) {
  ExpandRequest r;
  r.prompt = prompt;
  r.seed = seed;
  r.num_candidates = k;
  r.prefix = prefix;
  return r;
}

// One request's steps (by value: a range-for over expand(...)[0] would dangle).
std::vector<Step> expand_one(LMGenerator& g, const ExpandRequest& r) {
  return g.expand(std::span(&r, 1))[0];
}

bool same_steps(const std::vector<Step>& a, const std::vector<Step>& b, double tol = 1e-5) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].tokens != b[i].tokens || a[i].text != b[i].text || a[i].finish != b[i].finish ||
        a[i].num_tokens != b[i].num_tokens)
      return false;
    if (std::abs(a[i].logprob - b[i].logprob) > tol) return false;
  }
  return true;
}

bool same_results(const std::vector<std::vector<Step>>& a,
                  const std::vector<std::vector<Step>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same_steps(a[i], b[i])) return false;
  return true;
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

std::vector<double> log_softmax(const std::vector<float>& row) {
  const float mx = *std::max_element(row.begin(), row.end());
  double z = 0;
  for (float x : row) z += std::exp(static_cast<double>(x) - mx);
  std::vector<double> out(row.size());
  for (std::size_t i = 0; i < row.size(); ++i) out[i] = row[i] - mx - std::log(z);
  return out;
}

// Sum of the log-softmax values of `step` given `ctx`, recomputed from full-context logits.
double recomputed_logprob(const LanguageModel& lm, const std::vector<std::int32_t>& ctx,
                          const std::vector<std::int32_t>& step) {
  std::vector<std::int32_t> all = ctx;
  all.insert(all.end(), step.begin(), step.end());
  const auto rows = lm.logits(all);
  double lp = 0;
  for (std::size_t i = 0; i < step.size(); ++i)
    lp += log_softmax(rows[ctx.size() - 1 + i])[static_cast<std::size_t>(step[i])];
  return lp;
}

struct LmTask {
  std::string format(const Problem& p) const { return p.text; }
  bool is_terminal(const Step& s) const { return s.finish != FinishReason::StepEnd; }
  std::optional<std::string> extract_answer(TrajectoryView t) const {
    return t.empty() ? std::string() : std::string(t.text(t.size() - 1));
  }
  std::string canonicalize(std::string_view a) const { return std::string(a); }
};

struct HalfVerifier {
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    std::vector<std::vector<double>> out;
    for (const auto& r : batch)
      out.emplace_back(r.trajectory.size() - static_cast<std::size_t>(r.first_new), 0.5);
    return out;
  }
};

}  // namespace

TEST_CASE("LMGeneratorParams::validate names the field") {
  const auto bad = [](auto mutate) {
    LMGeneratorParams p;
    mutate(p);
    return error_of([&] { p.validate(); });
  };
  CHECK(error_of([] { LMGeneratorParams{}.validate(); }) == "NO ERROR");
  CHECK(bad([](auto& p) { p.step_delimiter = ""; }).find("step_delimiter") == 0);
  CHECK(bad([](auto& p) { p.max_step_tokens = 0; }).find("max_step_tokens") == 0);
  CHECK(bad([](auto& p) { p.temperature = -1; }).find("temperature") == 0);
  CHECK(bad([](auto& p) { p.top_p = 0; }).find("top_p") == 0);
  CHECK(bad([](auto& p) { p.top_p = 1.5; }).find("top_p") == 0);
  CHECK(bad([](auto& p) { p.top_k = -1; }).find("top_k") == 0);
  CHECK(bad([](auto& p) { p.kv_cache_bytes = -1; }).find("kv_cache_bytes") == 0);
  CHECK(bad([](auto& p) { p.dtype = "int4"; }).find("dtype") == 0);  // int8 is accepted
  CHECK(bad([](auto& p) { p.prompt_template = "no placeholder"; }).find("prompt_template") == 0);
  // Loading: bad params are rejected before any file is read; a missing folder is an error
  // naming it.
  LMGeneratorParams p;
  p.top_k = -3;
  CHECK(error_of([&] { LMGenerator::load("/nonexistent/qstar_model", p); }).find("top_k") == 0);
  const std::string missing = error_of([] { LMGenerator::load("/nonexistent/qstar_model"); });
  CHECK(missing.find("/nonexistent/qstar_model") != std::string::npos);
  CHECK(missing.find("NOT A") == std::string::npos);
  CHECK(missing != "NO ERROR");
}

TEST_CASE("find_delimiter cuts inside a token and resumes where the last search ended") {
  CHECK(!find_delimiter("abc", "\n").found);
  auto c = find_delimiter("ab.\n", "\n", 2);  // the token ".\n" appended at byte 2
  CHECK(c.found);
  CHECK(c.pos == 3);
  c = find_delimiter("x\n\n", "\n\n", 2);  // the second "\n" completes the delimiter
  CHECK(c.found);
  CHECK(c.pos == 1);
  CHECK(!find_delimiter("x\n", "\n\n", 1).found);
  CHECK(!find_delimiter("ab", "", 0).found);
}

TEST_CASE("LMGenerator: name, EOS, context tokens (prompt template, step tokens, text steps)") {
  LMGeneratorParams p = base_params();
  p.prompt_template = "q: {prompt}\n";
  auto gen = LMGenerator::load(default_model(), p);
  CHECK(gen.name() == "lm:" + fs::path(default_model()).filename().string());
  CHECK(gen.max_batch_size() == 0);
  CHECK(gen.eos_ids() == std::vector<std::int32_t>{1});
  const Tokenizer& tok = gen.tokenizer();

  Tree tree;
  Step s1;
  s1.text = "ab";
  s1.tokens = {id_of("a"), id_of("b"), id_of(".\n")};  // generated: tokens win over text
  s1.num_tokens = 3;
  const NodeId n1 = tree.add_child(Tree::root(), s1);
  Step s2;
  s2.text = "cd";  // no tokens: text + delimiter is encoded
  const NodeId n2 = tree.add_child(n1, s2);
  const auto ctx = gen.context_tokens(request("12", 0, 1, tree.trajectory(n2)));
  std::vector<std::int32_t> want = tok.encode("q: 12\n");
  want.insert(want.end(), s1.tokens.begin(), s1.tokens.end());
  for (const char* c : {"c", "d", "\n"}) want.push_back(id_of(c));
  CHECK(ctx == want);
  CHECK(tok.decode(ctx) == "q: 12\nab.\ncd\n");
}

TEST_CASE("LMGenerator: steps are well formed; the same seeds give the same steps") {
  auto gen = LMGenerator::load(default_model(), base_params());
  const std::vector<ExpandRequest> reqs = {request("1 2 3", 11, 6), request("4 5", 12, 6)};
  const auto a = gen.expand(reqs);
  REQUIRE(a.size() == 2);
  std::map<FinishReason, int> seen;
  for (std::size_t r = 0; r < a.size(); ++r) {
    REQUIRE(a[r].size() == 6);
    for (const Step& s : a[r]) {
      ++seen[s.finish];
      CHECK(s.num_tokens == static_cast<int>(s.tokens.size()));
      CHECK(s.num_tokens <= 12);
      CHECK(std::isfinite(s.logprob));
      CHECK(s.logprob <= 0.0);
      const std::string decoded = gen.tokenizer().decode(s.tokens);
      CHECK(decoded.substr(0, s.text.size()) == s.text);
      CHECK(s.text.find('\n') == std::string::npos);
      for (auto id : s.tokens) CHECK(id != 1);  // EOS never in tokens
      if (s.finish == FinishReason::StepEnd) CHECK(decoded.size() > s.text.size());
      if (s.finish == FinishReason::Length) CHECK(s.num_tokens == 12);
      if (s.finish == FinishReason::Eos || s.finish == FinishReason::Length)
        CHECK(decoded == s.text);
    }
  }
  CHECK(seen[FinishReason::StepEnd] > 0);  // the biased model stops at "\n" often

  // A fresh generator (no cache) and the same generator (warm cache) reproduce it.
  auto gen2 = LMGenerator::load(default_model(), base_params());
  CHECK(same_results(gen2.expand(reqs), a));
  CHECK(same_results(gen.expand(reqs), a));
  // Other seeds give other samples.
  const std::vector<ExpandRequest> other = {request("1 2 3", 99, 6), request("4 5", 98, 6)};
  CHECK(!same_results(gen.expand(other), a));
  // Candidates of one request differ (independent streams).
  bool differ = false;
  for (std::size_t j = 1; j < a[0].size(); ++j) differ = differ || a[0][j].tokens != a[0][0].tokens;
  CHECK(differ);
}

TEST_CASE("LMGenerator: batch invariance (alone vs in a batch of 5) and cache on/off parity") {
  LMGeneratorParams p = base_params();
  auto batched = LMGenerator::load(default_model(), p);
  auto alone = LMGenerator::load(default_model(), p);
  p.use_cache = false;
  auto nocache = LMGenerator::load(default_model(), p);

  // Depth 2: expand the roots, then children, so contexts carry generated steps.
  const std::vector<std::string> prompts = {"1 2", "3 4 5 6 7 8 9", "a", "bb cc dd", "9 9 9"};
  std::vector<Tree> trees(prompts.size());
  std::vector<ExpandRequest> reqs;
  for (std::size_t i = 0; i < prompts.size(); ++i) reqs.push_back(request(prompts[i], 100 + i, 3));
  const auto roots = batched.expand(reqs);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    CHECK(same_steps(alone.expand(std::span(&reqs[i], 1))[0], roots[i]));
  }
  CHECK(same_results(nocache.expand(reqs), roots));

  std::vector<ExpandRequest> deeper;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    NodeId id = Tree::root();
    for (const Step& s : roots[i])
      if (s.finish == FinishReason::StepEnd || s.finish == FinishReason::Length) {
        id = trees[i].add_child(Tree::root(), s);
        break;
      }
    deeper.push_back(request(prompts[i], 200 + i, 3, trees[i].trajectory(id)));
  }
  const auto kids = batched.expand(deeper);
  for (std::size_t i = 0; i < prompts.size(); ++i)
    CHECK(same_steps(alone.expand(std::span(&deeper[i], 1))[0], kids[i]));
  CHECK(same_results(nocache.expand(deeper), kids));
  // The batch in reverse order gives the same per-request results.
  std::vector<ExpandRequest> rev(deeper.rbegin(), deeper.rend());
  auto r = batched.expand(rev);
  std::reverse(r.begin(), r.end());
  CHECK(same_results(r, kids));
  CHECK(nocache.stats().cached_tokens_reused == 0);
  CHECK(nocache.stats().cache_tokens == 0);
}

TEST_CASE("LMGenerator: greedy is the argmax chain of full-context logits; logprobs match") {
  // "\n" as the delimiter (short steps), and one never emitted (20-token steps: the decode
  // loop's own-KV buffer is exercised over many tokens).
  for (const char* delim : {"\n", "<never>"}) {
    LMGeneratorParams p = base_params();
    p.step_delimiter = delim;
    p.max_step_tokens = 20;
    auto gen = LMGenerator::load(default_model(), p);
    const LanguageModel& lm = gen.model();
    for (const char* prompt : {"1 2 3 4", "abc", "7", "q: 9 + 8 = "}) {
      ExpandRequest r = request(prompt, 5, 3);
      r.greedy = true;
      const auto got = expand_one(gen, r);
      REQUIRE(got.size() == 3);
      CHECK(same_steps({got[0]}, {got[1]}));
      const auto ctx = gen.context_tokens(r);
      // Independent chain.
      std::vector<std::int32_t> seq = ctx, step;
      std::string text;
      FinishReason why = FinishReason::Length;
      for (int i = 0; i < 20; ++i) {
        const auto rows = lm.logits(seq);
        const auto& last = rows.back();
        const auto id =
            static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        if (id == 1) {
          why = FinishReason::Eos;
          break;
        }
        step.push_back(id);
        seq.push_back(id);
        text += gen.tokenizer().decode(std::vector<std::int32_t>{id});
        if (text.find(delim) != std::string::npos) {
          why = FinishReason::StepEnd;
          break;
        }
      }
      CAPTURE(prompt);
      CAPTURE(delim);
      CHECK(got[0].tokens == step);
      CHECK(got[0].finish == why);
      CHECK(std::abs(got[0].logprob - recomputed_logprob(lm, ctx, step)) <= 1e-4);
    }
  }
  auto gen = LMGenerator::load(default_model(), base_params());
  const LanguageModel& lm = gen.model();
  // Sampled steps: logprob = summed log-softmax (temperature 1) of the tokens.
  LMGeneratorParams p = base_params();
  p.temperature = 0.7;
  p.top_k = 10;
  auto hot = LMGenerator::load(default_model(), p);
  const ExpandRequest r = request("5 6 7", 77, 5);
  const auto got = hot.expand(std::span(&r, 1))[0];
  const auto ctx = hot.context_tokens(r);
  for (const Step& s : got)
    CHECK(std::abs(s.logprob - recomputed_logprob(lm, ctx, s.tokens)) <= 1e-4);
}

TEST_CASE("LMGenerator: top_k = 1, tiny top_p and temperature 0 equal greedy") {
  auto gen = LMGenerator::load(default_model(), base_params());
  ExpandRequest g = request("3 1 4 1 5", 9, 2);
  g.greedy = true;
  const auto greedy = gen.expand(std::span(&g, 1))[0];
  for (int mode = 0; mode < 3; ++mode) {
    LMGeneratorParams p = base_params();
    if (mode == 0) p.top_k = 1;
    if (mode == 1) p.top_p = 1e-9;
    if (mode == 2) p.temperature = 0.0;
    auto other = LMGenerator::load(default_model(), p);
    const ExpandRequest r = request("3 1 4 1 5", 1234, 2);
    CAPTURE(mode);
    CHECK(same_steps(other.expand(std::span(&r, 1))[0], greedy));
  }
}

TEST_CASE("LMGenerator: first-token frequencies follow softmax(logits / T) under top-k") {
  LMGeneratorParams p = base_params();
  p.max_step_tokens = 1;
  p.temperature = 1.5;
  p.top_k = 8;
  auto gen = LMGenerator::load(default_model(), p);
  const ExpandRequest r = request("2 7", 3, 4000);
  const auto got = gen.expand(std::span(&r, 1))[0];
  REQUIRE(got.size() == 4000);
  std::map<int, int> freq;
  for (const Step& s : got) ++freq[s.tokens.empty() ? 1 : s.tokens[0]];
  const auto row = gen.model().logits(gen.context_tokens(r)).back();
  std::vector<int> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return row[a] > row[b]; });
  double z = 0;
  for (int i = 0; i < 8; ++i) z += std::exp((row[ids[i]] - row[ids[0]]) / 1.5);
  int in_top = 0;
  for (int i = 0; i < 8; ++i) {
    const double want = std::exp((row[ids[i]] - row[ids[0]]) / 1.5) / z;
    CAPTURE(i);
    CHECK(std::abs(freq[ids[i]] / 4000.0 - want) < 0.03);
    in_top += freq[ids[i]];
  }
  CHECK(in_top == 4000);  // nothing outside the top 8
}

TEST_CASE("LMGenerator: a delimiter inside a token is cut from the text, kept in the tokens") {
  GenDir dir;
  ModelSpec s;
  s.seed = 5;
  s.bias = {{".\n", 2.0f}};
  write_gen_model(dir.str(), s);
  auto gen = LMGenerator::load(dir.str(), base_params());
  const int dot_nl = id_of(".\n");
  const ExpandRequest r = request("1", 8, 16);
  int cut = 0;
  for (const Step& st : expand_one(gen, r)) {
    if (st.finish != FinishReason::StepEnd) continue;
    CHECK(!st.tokens.empty());
    if (st.tokens.back() != dot_nl) continue;
    ++cut;
    CHECK(st.text ==
          gen.tokenizer().decode(std::span(st.tokens.data(), st.tokens.size() - 1)) + ".");
    CHECK(st.text.back() == '.');
  }
  CHECK(cut > 0);
}

TEST_CASE("LMGenerator: EOS, Length and FinalAnswer finishes") {
  // EOS: a model biased toward </s>.
  {
    GenDir dir;
    ModelSpec s;
    s.seed = 9;
    s.bias = {{"</s>", 2.5f}};
    write_gen_model(dir.str(), s);
    auto gen = LMGenerator::load(dir.str(), base_params());
    const ExpandRequest r = request("1 2", 4, 16);
    int eos = 0;
    for (const Step& st : expand_one(gen, r)) {
      if (st.finish != FinishReason::Eos) continue;
      ++eos;
      CHECK(gen.tokenizer().decode(st.tokens) == st.text);
      for (auto id : st.tokens) CHECK(id != 1);
    }
    CHECK(eos > 0);
  }
  // Length: a delimiter the model never emits; ExpandRequest::max_new_tokens caps further.
  {
    LMGeneratorParams p = base_params();
    p.step_delimiter = "<never>";
    p.max_step_tokens = 7;
    p.answer_marker = "";
    auto gen = LMGenerator::load(default_model(), p);
    ExpandRequest r = request("1 2", 4, 8);
    for (const Step& st : expand_one(gen, r))
      if (st.finish != FinishReason::Eos) {
        CHECK(st.finish == FinishReason::Length);
        CHECK(st.num_tokens == 7);
        CHECK(st.text == gen.tokenizer().decode(st.tokens));
      }
    r.max_new_tokens = 3;
    for (const Step& st : expand_one(gen, r)) {
      CHECK(st.num_tokens <= 3);
      if (st.finish != FinishReason::Eos) CHECK(st.num_tokens == 3);
    }
  }
  // FinalAnswer: a step whose text contains the marker, at its delimiter or EOS.
  {
    LMGeneratorParams p = base_params();
    p.answer_marker = "a";
    auto gen = LMGenerator::load(default_model(), p);
    const ExpandRequest r = request("9 8 7", 21, 64);
    int answers = 0, steps = 0;
    for (const Step& st : expand_one(gen, r)) {
      const bool marked = st.text.find('a') != std::string::npos;
      if (st.finish == FinishReason::FinalAnswer) {
        ++answers;
        CHECK(marked);
      } else if (st.finish == FinishReason::StepEnd || st.finish == FinishReason::Eos) {
        ++steps;
        CHECK(!marked);
      }
    }
    CHECK(answers > 0);
    CHECK(steps > 0);
  }
}

TEST_CASE("LMGenerator: expanding a child reuses the cached prefix (only new tokens computed)") {
  LMGeneratorParams p = base_params();
  p.prompt_template = "Problem: {prompt}\nSolution:\n";
  auto gen = LMGenerator::load(default_model(), p);
  const ExpandRequest root = request("3 5 7 9", 1, 4);
  const auto ctx0 = gen.context_tokens(root);
  const auto first = gen.expand(std::span(&root, 1))[0];
  auto s = gen.stats();
  CHECK(s.prefill_tokens_computed == static_cast<std::int64_t>(ctx0.size()));
  CHECK(s.cached_tokens_reused == 0);
  CHECK(s.forward_calls >= 1);
  CHECK(s.sequences == 4);
  CHECK(s.cache_tokens >= static_cast<std::int64_t>(ctx0.size()));

  // Re-expanding the root: the context minus its last token is cached.
  gen.reset_stats();
  const ExpandRequest again = request("3 5 7 9", 2, 4);
  gen.expand(std::span(&again, 1));
  s = gen.stats();
  CHECK(s.prefill_tokens_computed == 1);
  CHECK(s.cached_tokens_reused == static_cast<std::int64_t>(ctx0.size()) - 1);

  // A child: its step's tokens were inserted when it finished, except the last one.
  Tree tree;
  NodeId child = kNoNode;
  for (const Step& st : first)
    if (st.finish == FinishReason::StepEnd && st.num_tokens >= 2) {
      child = tree.add_child(Tree::root(), st);
      break;
    }
  REQUIRE(child != kNoNode);
  gen.reset_stats();
  const ExpandRequest kid = request("3 5 7 9", 3, 4, tree.trajectory(child));
  const auto ctx1 = gen.context_tokens(kid);
  const auto kids = gen.expand(std::span(&kid, 1))[0];
  s = gen.stats();
  CHECK(s.prefill_tokens_computed == 1);
  CHECK(s.cached_tokens_reused == static_cast<std::int64_t>(ctx1.size()) - 1);
  // And the same result as an uncached generator.
  p.use_cache = false;
  auto cold = LMGenerator::load(default_model(), p);
  CHECK(same_steps(cold.expand(std::span(&kid, 1))[0], kids));
  CHECK(cold.stats().prefill_tokens_computed == static_cast<std::int64_t>(ctx1.size()));
}

TEST_CASE("LMGenerator: one prefill per distinct context and per shared preamble in a call") {
  LMGeneratorParams p = base_params();
  auto gen = LMGenerator::load(default_model(), p);
  p.use_cache = false;
  auto cold = LMGenerator::load(default_model(), p);
  // Best-of-N style: the same root requested 5 times (one candidate each, other seeds).
  std::vector<ExpandRequest> same;
  for (int i = 0; i < 5; ++i) same.push_back(request("1 2 3 4 5 6", 50 + i, 1));
  const auto got = gen.expand(same);
  const auto n = static_cast<std::int64_t>(gen.context_tokens(same[0]).size());
  CHECK(gen.stats().prefill_tokens_computed == n);
  CHECK(gen.stats().cached_tokens_reused == 4 * n);
  CHECK(same_results(got, cold.expand(same)));
  CHECK(cold.stats().prefill_tokens_computed == 5 * n);
  for (int i = 1; i < 5; ++i) CHECK(!same_steps(got[0], got[static_cast<std::size_t>(i)]));

  // Three problems behind one few-shot preamble: the preamble is computed once.
  gen.clear_cache();
  gen.reset_stats();
  const std::string pre = "q: 1 2 3 4\na: 10\nq: 5 6 7 8\na: 26\nq: ";
  const std::vector<std::string> prompts = {pre + "9 9", pre + "1 1 1", pre + "7"};
  std::vector<ExpandRequest> reqs;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    reqs.push_back(request(prompts[i], 70 + i, 2));
    total += static_cast<std::int64_t>(gen.context_tokens(reqs.back()).size());
  }
  const auto pre_len = static_cast<std::int64_t>(gen.tokenizer().encode(pre).size());
  const auto a = gen.expand(reqs);
  CHECK(gen.stats().prefill_tokens_computed == total - 2 * pre_len);
  CHECK(same_results(a, cold.expand(reqs)));
}

TEST_CASE("LMGenerator: a tiny KV cap evicts, recomputes correctly and stays under the cap") {
  LMGeneratorParams p = base_params();
  auto big = LMGenerator::load(default_model(), p);
  // KV bytes per token: 2 (K,V) * layers 2 * kv heads 2 * head_dim 8 * 4 bytes = 256.
  p.kv_cache_bytes = 256 * 24;
  auto tiny = LMGenerator::load(default_model(), p);
  std::vector<Tree> trees(3);
  const std::vector<std::string> prompts = {"1 2 3 4 5 6 7 8", "9 8 7 6 5 4 3", "abcdefghijk"};
  std::vector<NodeId> leaf(3, Tree::root());
  for (int depth = 0; depth < 3; ++depth) {
    std::vector<ExpandRequest> reqs;
    for (std::size_t i = 0; i < prompts.size(); ++i)
      reqs.push_back(request(prompts[i], 1000 * depth + i, 3, trees[i].trajectory(leaf[i])));
    const auto a = big.expand(reqs);
    const auto b = tiny.expand(reqs);
    CAPTURE(depth);
    CHECK(same_results(a, b));
    const auto ts = tiny.stats();
    CHECK(ts.cache_bytes <= ts.cache_max_bytes);
    CHECK(ts.cache_max_bytes == 256 * 24);
    for (std::size_t i = 0; i < prompts.size(); ++i)
      for (const Step& s : a[i])
        if (s.finish == FinishReason::StepEnd) {
          leaf[i] = trees[i].add_child(leaf[i], s);
          break;
        }
  }
  CHECK(tiny.stats().cache_evictions > 0);
  CHECK(tiny.stats().prefill_tokens_computed > big.stats().prefill_tokens_computed);
}

TEST_CASE("LMGenerator: errors are qstar exceptions naming the request") {
  auto gen = LMGenerator::load(default_model(), base_params());
  const ExpandRequest empty = request("", 1, 1);
  const std::string e = error_of([&] { gen.expand(std::span(&empty, 1)); });
  CHECK(e.find("request 0") != std::string::npos);
  CHECK(e.find("empty") != std::string::npos);
  ExpandRequest zero = request("1", 1, 1);
  zero.num_candidates = 0;
  CHECK(error_of([&] { gen.expand(std::span(&zero, 1)); }).find("num_candidates") !=
        std::string::npos);
  CHECK(gen.expand(std::span<const ExpandRequest>()).empty());
}

TEST_CASE("LMGenerator: a beam search runs end to end, the same with max_batch 1") {
  const std::vector<Problem> problems = {{"p0", "1 2 3", std::nullopt},
                                         {"p1", "4 5 6", std::nullopt}};
  LmTask task;
  HalfVerifier ver;
  BeamParams bp;
  bp.num_beams = 4;
  bp.width = 2;
  bp.max_depth = 4;
  bp.keep_tree = true;
  const auto run = [&](std::size_t max_batch) {
    LMGeneratorParams p = base_params();
    p.max_batch = max_batch;
    auto gen = LMGenerator::load(default_model(), p);
    CHECK(gen.max_batch_size() == max_batch);
    auto rs = beam_search(std::span<const Problem>(problems), task, gen, ver, bp, 42);
    return std::make_pair(std::move(rs), gen.stats());
  };
  const auto [a, sa] = run(0);
  const auto [b, sb] = run(1);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    const Tree& ta = *a[i].tree;
    const Tree& tb = *b[i].tree;
    REQUIRE(ta.size() == tb.size());
    CHECK(ta.size() > 5);
    for (NodeId id = 1; id < static_cast<NodeId>(ta.size()); ++id) {
      CHECK(std::vector<TokenId>(ta.tokens(id).begin(), ta.tokens(id).end()) ==
            std::vector<TokenId>(tb.tokens(id).begin(), tb.tokens(id).end()));
      CHECK(ta.text(id) == tb.text(id));
    }
    CHECK(a[i].answer == b[i].answer);
    CHECK(a[i].stats.generated_tokens > 0);
  }
  CHECK(sa.forward_calls < sb.forward_calls);  // batched across beams and problems
  CHECK(sa.cached_tokens_reused > 0);
}
