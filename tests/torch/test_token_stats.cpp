// Per-token statistics of LMGenerator steps (Step::token_logprobs, token_entropies): each
// equals the log-softmax / entropy of the model's temperature-1 distribution recomputed from
// full-context logits (no cache, one forward over context + step), whatever the sampling
// settings; they sum to Step::logprob; deterministic for a seed; batch-invariant; and
// token_stats = false leaves them empty without changing the sampled steps. (The Python
// suite checks the same against the independent reference forward, reference_llama.py.)
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/tree.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "support/tiny_model.hpp"

// doctest goes AFTER the torch headers (glog's CHECK; see test_model.cpp).
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using namespace qstar;
using namespace qstar::lm;

namespace {

// Two float32 forwards (cached decode vs one full-context pass) over logits up to ~24 in
// magnitude (float32 spacing 2e-6 there) differ by a few units in the last place: measured
// at most 9.6e-6 (relative beyond 1) on x86-64; the bound is 2e-5.
constexpr double kTol = 2e-5;

struct Models {
  tiny::TempDir llama, qwen2;
  Models() {
    tiny::write_model(llama.str(), tiny::causal_llama(), 21);
    tiny::write_model(qwen2.str(), tiny::causal_qwen2(), 22);
  }
};
const Models& models() {
  static Models m;
  return m;
}

// ExpandRequest::prompt is a view: `prompt` must outlive the request (literals do).
ExpandRequest request(std::string_view prompt, std::uint64_t seed, int k, TrajectoryView prefix = {}) {
  ExpandRequest r;
  r.prompt = prompt;
  r.seed = seed;
  r.num_candidates = k;
  r.prefix = prefix;
  return r;
}

// The model's temperature-1 log-softmax and entropy of one logits row, in double.
struct RowStats {
  std::vector<double> logp;
  double entropy = 0;
};
RowStats row_stats(const std::vector<float>& row) {
  double mx = -INFINITY;
  for (float x : row) mx = std::max(mx, static_cast<double>(x));
  double z = 0;
  for (float x : row) z += std::exp(x - mx);
  RowStats s;
  for (float x : row) s.logp.push_back(x - mx - std::log(z));
  for (double lp : s.logp) s.entropy -= std::exp(lp) * lp;
  return s;
}

struct Worst {
  double lp = 0, h = 0, abs = 0;  // largest (relative) differences of logprobs, entropies; absolute
  double logit = 0;               // largest |logit| seen
};

// Checks every step of `steps` (generated for `ctx`) against full-context logits, recording
// the largest differences in `worst`.
void check_against_full_context(const LanguageModel& lm, const std::vector<std::int32_t>& ctx,
                                const std::vector<Step>& steps, Worst& worst) {
  for (const Step& s : steps) {
    REQUIRE(s.token_logprobs.size() == s.tokens.size());
    REQUIRE(s.token_entropies.size() == s.tokens.size());
    if (s.tokens.empty()) continue;
    std::vector<std::int32_t> all = ctx;
    all.insert(all.end(), s.tokens.begin(), s.tokens.end());
    const auto rows = lm.logits(all);
    double sum = 0;
    for (std::size_t i = 0; i < s.tokens.size(); ++i) {
      const RowStats ref = row_stats(rows[ctx.size() - 1 + i]);
      for (float x : rows[ctx.size() - 1 + i]) worst.logit = std::max(worst.logit, static_cast<double>(std::abs(x)));
      const double lp = ref.logp[static_cast<std::size_t>(s.tokens[i])];
      // 1e-5, relative for values beyond 1 in magnitude (float32 logits: a log-probability of
      // -12 carries about 1e-6 of rounding in each of the two forwards compared).
      const double d_lp = std::abs(s.token_logprobs[i] - lp) / std::max(1.0, std::abs(lp));
      const double d_h = std::abs(s.token_entropies[i] - ref.entropy) / std::max(1.0, ref.entropy);
      CHECK(d_lp <= kTol);
      CHECK(d_h <= kTol);
      CHECK(s.token_entropies[i] >= 0.0f);
      worst.lp = std::max(worst.lp, d_lp);
      worst.h = std::max(worst.h, d_h);
      worst.abs = std::max({worst.abs, std::abs(s.token_logprobs[i] - lp), std::abs(s.token_entropies[i] - ref.entropy)});
      sum += s.token_logprobs[i];
    }
    CHECK(std::abs(sum - s.logprob) <= kTol * std::max(1.0, std::abs(s.logprob)));
  }
}

bool same_stats(const std::vector<std::vector<Step>>& a, const std::vector<std::vector<Step>>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (std::size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) return false;
    for (std::size_t j = 0; j < a[r].size(); ++j) {
      const Step &x = a[r][j], &y = b[r][j];
      if (x.tokens != y.tokens || x.token_logprobs.size() != y.token_logprobs.size() ||
          x.token_entropies.size() != y.token_entropies.size())
        return false;
      for (std::size_t i = 0; i < x.token_logprobs.size(); ++i)
        if (std::abs(x.token_logprobs[i] - y.token_logprobs[i]) > tol ||
            std::abs(x.token_entropies[i] - y.token_entropies[i]) > tol)
          return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("LMGenerator token stats: log-softmax and entropy of full-context logits, any sampling settings") {
  struct Config {
    const char* label;
    double temperature;
    int top_k;
    double top_p;
  };
  const Config configs[] = {{"greedy", 0.0, 0, 1.0},
                            {"T=1", 1.0, 0, 1.0},
                            {"T=0.7 top_k=10", 0.7, 10, 1.0},
                            {"T=1.3 top_p=0.9", 1.3, 0, 0.9}};
  Worst worst;
  int tokens = 0;
  for (const std::string& dir : {models().llama.str(), models().qwen2.str()}) {
    for (const Config& c : configs) {
      const std::string label = c.label;
      CAPTURE(dir);
      CAPTURE(label);
      LMGeneratorParams p;
      p.max_step_tokens = 10;
      p.temperature = c.temperature;
      p.top_k = c.top_k;
      p.top_p = c.top_p;
      auto gen = LMGenerator::load(dir, p);
      // Depth 1 (the prompt alone) and depth 2 (a generated step in the context).
      const ExpandRequest root = request("4 5 6 10\n", 3, 4);
      const auto first = gen.expand(std::span(&root, 1))[0];
      check_against_full_context(gen.model(), gen.context_tokens(root), first, worst);
      Tree tree;
      const NodeId child = tree.add_child(Tree::root(), first[0]);
      const ExpandRequest deeper = request("4 5 6 10\n", 4, 4, tree.trajectory(child));
      const auto second = gen.expand(std::span(&deeper, 1))[0];
      check_against_full_context(gen.model(), gen.context_tokens(deeper), second, worst);
      for (const auto* v : {&first, &second})
        for (const Step& s : *v) tokens += s.num_tokens;
    }
  }
  MESSAGE("token stats vs full-context logits: " << tokens << " tokens, largest differences (relative beyond 1): "
                                                  << "logprob " << worst.lp << ", entropy " << worst.h
                                                  << "; absolute " << worst.abs << "; largest |logit| "
                                                  << worst.logit);
  CHECK(tokens > 100);
}

TEST_CASE("LMGenerator token stats: deterministic for a seed, batch-invariant, off when token_stats = false") {
  LMGeneratorParams p;
  p.max_step_tokens = 8;
  auto batched = LMGenerator::load(models().llama.str(), p);
  auto alone = LMGenerator::load(models().llama.str(), p);
  auto fresh = LMGenerator::load(models().llama.str(), p);
  const std::vector<std::string> prompts = {"1 2", "3 4 5 6 7 8 9", "a", "bb cc dd", "9 9 9"};
  std::vector<ExpandRequest> reqs;
  for (std::size_t i = 0; i < prompts.size(); ++i) reqs.push_back(request(prompts[i], 100 + i, 3));
  const auto all = batched.expand(reqs);
  // The same seeds on a fresh generator: the same tokens and bit-identical statistics.
  CHECK(same_stats(fresh.expand(reqs), all, 0.0));
  // Each request alone gives what it got in the batch of 5.
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    const std::vector<std::vector<Step>> one = {all[i]};
    CHECK(same_stats(alone.expand(std::span(&reqs[i], 1)), one, kTol));
  }
  // Other seeds: other samples.
  std::vector<ExpandRequest> other = reqs;
  for (auto& r : other) r.seed += 1000;
  CHECK(!same_stats(batched.expand(other), all, kTol));

  p.token_stats = false;
  auto off = LMGenerator::load(models().llama.str(), p);
  const auto plain = off.expand(reqs);
  REQUIRE(plain.size() == all.size());
  for (std::size_t r = 0; r < plain.size(); ++r)
    for (std::size_t j = 0; j < plain[r].size(); ++j) {
      CHECK(plain[r][j].tokens == all[r][j].tokens);
      CHECK(plain[r][j].logprob == all[r][j].logprob);
      CHECK(plain[r][j].token_logprobs.empty());
      CHECK(plain[r][j].token_entropies.empty());
    }
}
