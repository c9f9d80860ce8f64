// PRM verifiers (include/qstar/torch/prm.hpp): token-logit and token-class scores against
// independent computations from LanguageModel, incremental scoring over the prefix cache,
// batch invariance, a tiny cache cap, ORM aggregation, the TorchScript calling convention
// and the errors. The tests write their own tiny random models and tokenizer.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/any.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/torch/prm.hpp"
#include "qstar/hf/safetensors.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "support/tiny_model.hpp"

// doctest AFTER the torch headers (Debian's glog redefines CHECK); re-assert it anyway.
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

#ifndef QSTAR_PYTHON
#define QSTAR_PYTHON "/usr/bin/python3"
#endif
#ifndef QSTAR_TEST_SCRIPTS
#define QSTAR_TEST_SCRIPTS "tests/torch"
#endif

namespace fs = std::filesystem;
using namespace qstar::lm;
using namespace qstar::hf;
using qstar::Aggregation;
using qstar::NodeId;
using qstar::OutcomeRequest;
using qstar::StepScoreRequest;
using qstar::Tree;

static_assert(qstar::StepVerifier<PrmVerifier>);
static_assert(qstar::OutcomeVerifier<PrmVerifier>);

namespace {

using namespace tiny;
constexpr double kTol = 1e-5;

qstar::Step step(const std::string& text) {
  qstar::Step s;
  s.text = text;
  return s;
}

// A small search tree:
//   root ─ a "3+4=7" ─ a1 "7*2=14" ─ a1x "ans 14"
//        │          └ a2 "7-1=6"
//        │          └ a3 "7*2=15"          (shares "7*2=1" with a1)
//        ├ b "3*4=12" ─ b1 "12+2=14"
//        └ c "3+4=7"                        (same text as a)
struct Fixture {
  Tree tree;
  NodeId a, a1, a1x, a2, a3, b, b1, c;
  qstar::Problem problem{"p0", "3 4 2", std::nullopt};
  std::string prompt = "make 14 from 3 4 2";
  Fixture() {
    a = tree.add_child(Tree::root(), step("3+4=7"));
    b = tree.add_child(Tree::root(), step("3*4=12"));
    c = tree.add_child(Tree::root(), step("3+4=7"));
    a1 = tree.add_child(a, step("7*2=14"));
    a2 = tree.add_child(a, step("7-1=6"));
    a3 = tree.add_child(a, step("7*2=15"));
    b1 = tree.add_child(b, step("12+2=14"));
    a1x = tree.add_child(a1, step("ans 14"));
  }
  StepScoreRequest req(NodeId leaf, std::int32_t first_new) const {
    StepScoreRequest r;
    r.problem = &problem;
    r.prompt = prompt;
    r.trajectory = tree.trajectory(leaf);
    r.first_new = first_new;
    return r;
  }
  OutcomeRequest outcome(NodeId leaf) const {
    OutcomeRequest r;
    r.problem = &problem;
    r.prompt = prompt;
    r.trajectory = tree.trajectory(leaf);
    return r;
  }
  std::vector<NodeId> leaves() const { return {a1x, a2, a3, b1, c}; }
};

// The scored sequence, built independently of the verifier.
PrmSequence layout(const Tokenizer& tok, const std::string& prompt_text,
                   const std::vector<std::string>& steps, std::int32_t tag,
                   const std::string& sep) {
  PrmSequence s;
  s.tokens = tok.encode(prompt_text, true);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i > 0)
      for (auto t : tok.encode(sep)) s.tokens.push_back(t);
    for (auto t : tok.encode(steps[i])) s.tokens.push_back(t);
    s.tokens.push_back(tag);
    s.step_ends.push_back(static_cast<std::int64_t>(s.tokens.size()) - 1);
  }
  return s;
}

std::vector<std::string> texts(const Tree& tree, NodeId leaf) {
  std::vector<std::string> out;
  const auto tv = tree.trajectory(leaf);
  for (std::size_t i = 0; i < tv.size(); ++i) out.emplace_back(tv.text(i));
  return out;
}

double max_diff(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y) {
  REQUIRE(x.size() == y.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE(x[i].size() == y[i].size());
    for (std::size_t j = 0; j < x[i].size(); ++j) worst = std::max(worst, std::abs(x[i][j] - y[i][j]));
  }
  return worst;
}

bool all_in_unit(const std::vector<std::vector<double>>& x) {
  for (const auto& r : x)
    for (double v : r)
      if (!(v >= 0.0 && v <= 1.0)) return false;
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

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Every request scored alone by a fresh verifier (no cache sharing with anything).
std::vector<std::vector<double>> one_by_one(const std::string& dir, const PrmParams& p,
                                            const std::vector<StepScoreRequest>& reqs) {
  std::vector<std::vector<double>> out;
  for (const auto& r : reqs) {
    auto v = PrmVerifier::load(dir, p);
    out.push_back(v.score_steps({&r, 1}).at(0));
  }
  return out;
}

// Distinct tokens of a set of sequences (the nodes of their trie).
std::int64_t distinct_tokens(const std::vector<PrmSequence>& seqs) {
  std::set<std::vector<std::int32_t>> prefixes;
  for (const auto& s : seqs)
    for (std::size_t n = 1; n <= s.tokens.size(); ++n)
      prefixes.emplace(s.tokens.begin(), s.tokens.begin() + static_cast<std::ptrdiff_t>(n));
  return static_cast<std::int64_t>(prefixes.size());
}

}  // namespace

TEST_CASE("prm: token-logit score = softmax over {good, bad} of the full-sequence logits") {
  for (const Spec& spec : {causal_llama(), causal_qwen2()}) {
    CAPTURE(spec.arch);
    TempDir dir;
    write_model(dir.str(), spec, 7);
    PrmParams p;
    p.prompt_template = "q: {prompt}\n";
    p.step_separator = "\n";
    auto v = PrmVerifier::load(dir.str(), p);
    CHECK(v.kind() == "token-logit");
    CHECK(v.name() == "prm:" + fs::path(dir.str()).filename().string());
    CHECK(v.max_batch_size() == 0);
    const Tokenizer tok = Tokenizer::from_file(dir.file("tokenizer.json"));
    CHECK(v.step_tag_id() == *tok.token_to_id(" ки"));
    CHECK(v.good_token_id() == *tok.token_to_id("+"));
    CHECK(v.bad_token_id() == *tok.token_to_id("-"));
    const auto lm = LanguageModel::load(dir.str());

    Fixture f;
    std::vector<StepScoreRequest> reqs;
    for (NodeId leaf : f.leaves()) reqs.push_back(f.req(leaf, 0));
    const auto got = v.score_steps(reqs);
    REQUIRE(got.size() == reqs.size());
    CHECK(all_in_unit(got));
    double worst = 0.0;
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const auto leaf = f.leaves()[r];
      const PrmSequence s = layout(tok, "q: " + f.prompt + "\n", texts(f.tree, leaf),
                                   v.step_tag_id(), "\n");
      const PrmSequence mine = v.sequence(f.prompt, f.tree.trajectory(leaf));
      CHECK(mine.tokens == s.tokens);
      CHECK(mine.step_ends == s.step_ends);
      const auto logits = lm.logits(s.tokens);
      REQUIRE(got[r].size() == s.step_ends.size());
      for (std::size_t i = 0; i < s.step_ends.size(); ++i) {
        const auto& row = logits[static_cast<std::size_t>(s.step_ends[i])];
        const double g = row[static_cast<std::size_t>(v.good_token_id())];
        const double b = row[static_cast<std::size_t>(v.bad_token_id())];
        const double mx = std::max(g, b);
        const double want = std::exp(g - mx) / (std::exp(g - mx) + std::exp(b - mx));
        worst = std::max(worst, std::abs(got[r][i] - want));
      }
    }
    MESSAGE(spec.arch << ": token-logit vs softmax of LanguageModel::logits, max error " << worst);
    CHECK(worst <= kTol);
    // The scores differ between steps (the check above is not vacuous).
    double lo = 1.0, hi = 0.0;
    for (const auto& r : got)
      for (double x : r) lo = std::min(lo, x), hi = std::max(hi, x);
    MESSAGE(spec.arch << ": scores in [" << lo << ", " << hi << "]");
    CHECK(hi - lo > 1e-2);
  }
}

TEST_CASE("prm: token-class scores = sigmoid / softmax of LanguageModel::token_scores") {
  for (const auto& [family, labels] : std::vector<std::pair<std::string, int>>{
           {"qwen2", 1}, {"llama", 2}, {"qwen2", 2}, {"llama", 1}}) {
    CAPTURE(family);
    CAPTURE(labels);
    TempDir dir;
    write_model(dir.str(), token_class(family, labels), 13);
    auto v = PrmVerifier::load(dir.str());  // auto: token-class, tag "\n"
    CHECK(v.kind() == "token-class");
    const Tokenizer tok = Tokenizer::from_file(dir.file("tokenizer.json"));
    CHECK(v.step_tag_id() == *tok.token_to_id("\n"));
    CHECK(v.good_token_id() == -1);
    const auto lm = LanguageModel::load(dir.str());
    Fixture f;
    std::vector<StepScoreRequest> reqs;
    for (NodeId leaf : f.leaves()) reqs.push_back(f.req(leaf, 0));
    const auto got = v.score_steps(reqs);
    CHECK(all_in_unit(got));
    double worst = 0.0;
    for (std::size_t r = 0; r < reqs.size(); ++r) {
      const PrmSequence s =
          layout(tok, f.prompt, texts(f.tree, f.leaves()[r]), v.step_tag_id(), "");
      const auto sc = lm.token_scores(s.tokens);
      REQUIRE(got[r].size() == s.step_ends.size());
      for (std::size_t i = 0; i < s.step_ends.size(); ++i) {
        const auto& row = sc[static_cast<std::size_t>(s.step_ends[i])];
        REQUIRE(static_cast<int>(row.size()) == labels);
        const double want = labels == 1 ? 1.0 / (1.0 + std::exp(-static_cast<double>(row[0])))
                                        : std::exp(static_cast<double>(row[1])) /
                                              (std::exp(static_cast<double>(row[0])) +
                                               std::exp(static_cast<double>(row[1])));
        worst = std::max(worst, std::abs(got[r][i] - want));
      }
    }
    MESSAGE(family << " " << labels << " label(s): token-class vs LanguageModel::token_scores, max error "
                   << worst);
    CHECK(worst <= kTol);
  }
}

TEST_CASE("prm: incremental scoring reuses the cached prefix and equals scoring from scratch") {
  TempDir dir;
  write_model(dir.str(), causal_llama(), 21);
  PrmParams p;
  p.step_separator = "\n";
  auto v = PrmVerifier::load(dir.str(), p);
  const Tokenizer tok = Tokenizer::from_file(dir.file("tokenizer.json"));
  Fixture f;
  auto seq = [&](NodeId leaf) { return v.sequence(f.prompt, f.tree.trajectory(leaf)); };

  // The parent path root -> a -> a1, scored step by step as a search would.
  auto s_a = f.req(f.a, 0);
  const auto r_a = v.score_steps({&s_a, 1});
  auto st = v.stats();
  CHECK(st.tokens_computed == static_cast<std::int64_t>(seq(f.a).tokens.size()));
  CHECK(st.tokens_reused == 0);
  v.reset_stats();

  auto s_a1 = f.req(f.a1, 1);
  const auto r_a1 = v.score_steps({&s_a1, 1});
  REQUIRE(r_a1.size() == 1);
  REQUIRE(r_a1[0].size() == 1);
  st = v.stats();
  const auto new_tokens = static_cast<std::int64_t>(seq(f.a1).tokens.size() - seq(f.a).tokens.size());
  CHECK(new_tokens == static_cast<std::int64_t>(tok.encode("\n").size() + tok.encode("7*2=14").size() + 1));
  CHECK(st.tokens_computed == new_tokens);  // only the new step's tokens
  CHECK(st.tokens_reused == static_cast<std::int64_t>(seq(f.a).tokens.size()));
  CHECK(st.forwards == 1);

  // Its siblings (one sharing "7*2=1" with a1) and a grandchild, in one batch. (a2 and a3
  // also share "\n7", too short to be worth a prefill forward at share_min_tokens = 32.)
  v.reset_stats();
  std::vector<StepScoreRequest> batch = {f.req(f.a2, 1), f.req(f.a3, 1), f.req(f.a1x, 2)};
  const auto r_batch = v.score_steps(batch);
  st = v.stats();
  // Each request computes what the cache (a's and a1's sequences) does not hold: a2 and a3
  // find "\n7" (a3: "\n7*2=1") of a1 cached; the grandchild extends a1.
  auto common = [](const std::vector<std::int32_t>& x, const std::vector<std::int32_t>& y) {
    std::size_t i = 0;
    while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
    return static_cast<std::int64_t>(i);
  };
  std::int64_t want_computed = 0;
  for (NodeId leaf : {f.a2, f.a3, f.a1x}) {
    const auto s = seq(leaf).tokens;
    want_computed += static_cast<std::int64_t>(s.size()) -
                     std::max(common(s, seq(f.a).tokens), common(s, seq(f.a1).tokens));
  }
  CHECK(common(seq(f.a3).tokens, seq(f.a1).tokens) ==
        static_cast<std::int64_t>(seq(f.a).tokens.size() + tok.encode("\n7*2=1").size()));
  CHECK(st.tokens_computed == want_computed);
  CHECK(st.probe_tokens == 0);
  CHECK(st.forwards == 1);

  // From scratch, each alone, without a cache.
  PrmParams nocache = p;
  nocache.kv_cache_bytes = 0;
  std::vector<StepScoreRequest> all = {s_a, s_a1, batch[0], batch[1], batch[2]};
  const auto ref = one_by_one(dir.str(), nocache, all);
  std::vector<std::vector<double>> inc = {r_a[0], r_a1[0], r_batch[0], r_batch[1], r_batch[2]};
  const double d = max_diff(inc, ref);
  MESSAGE("incremental vs from scratch: max difference " << d);
  CHECK(d <= kTol);
  // And from scratch with first_new = 0 gives the same trailing scores.
  auto full = f.req(f.a1x, 0);
  auto fresh = PrmVerifier::load(dir.str(), nocache);
  const auto r_full = fresh.score_steps({&full, 1});
  REQUIRE(r_full[0].size() == 3);
  CHECK(std::abs(r_full[0][0] - r_a[0][0]) <= kTol);
  CHECK(std::abs(r_full[0][1] - r_a1[0][0]) <= kTol);
  CHECK(std::abs(r_full[0][2] - r_batch[2][0]) <= kTol);

  // Re-scoring a cached path costs one probe token per step, not the whole sequence.
  v.reset_stats();
  const auto again = v.score_steps({&full, 1});
  st = v.stats();
  CHECK(st.tokens_computed == 3);
  CHECK(st.probe_tokens == 3);
  CHECK(max_diff(again, r_full) <= kTol);
  // first_new == size: nothing to score, nothing computed.
  v.reset_stats();
  auto none = f.req(f.a1x, 3);
  const auto r_none = v.score_steps({&none, 1});
  REQUIRE(r_none.size() == 1);
  CHECK(r_none[0].empty());
  CHECK(v.stats().tokens_computed == 0);
}

TEST_CASE("prm: a batch sharing an uncached prefix computes it once; batch == one by one") {
  for (const Spec& spec : {causal_qwen2(), token_class("llama", 2)}) {
    CAPTURE(spec.arch);
    TempDir dir;
    write_model(dir.str(), spec, 5);
    Fixture f;
    std::vector<StepScoreRequest> reqs = {f.req(f.a, 0),   f.req(f.b, 0),  f.req(f.c, 0),
                                          f.req(f.a1, 0),  f.req(f.a2, 1), f.req(f.a1x, 2),
                                          f.req(f.b1, 0),  f.req(f.a3, 0)};
    PrmParams p;
    p.share_min_tokens = 0;  // share every uncached prefix, however short
    for (std::size_t max_batch : {std::size_t{0}, std::size_t{3}}) {
      CAPTURE(max_batch);
      p.max_batch = max_batch;
      auto v = PrmVerifier::load(dir.str(), p);
      CHECK(v.max_batch_size() == max_batch);
      const auto batched = v.score_steps(reqs);
      const auto st = v.stats();
      std::vector<PrmSequence> seqs;
      for (const auto& r : reqs) seqs.push_back(v.sequence(r.prompt, r.trajectory));
      // Every distinct token once (a's and c's identical sequence too), plus probes for the
      // steps whose tag is inside another request's sequence (a, a1, c).
      CHECK(st.tokens_computed - st.probe_tokens == distinct_tokens(seqs));
      CHECK(st.prefill_tokens > 0);
      MESSAGE("distinct tokens " << distinct_tokens(seqs) << ", computed " << st.tokens_computed
                                 << " (probes " << st.probe_tokens << ", prefill "
                                 << st.prefill_tokens << "), forwards " << st.forwards);
      const auto alone = one_by_one(dir.str(), p, reqs);
      const double d = max_diff(batched, alone);
      MESSAGE("batch vs one by one: max difference " << d);
      CHECK(d <= kTol);
      CHECK(batched[0] == batched[2]);  // identical sequences, identical scores
    }
    // share_min_tokens < 0: no sharing inside the call, one forward, every token computed by
    // each request that holds it; the default (32) shares the long common prompt only.
    std::int64_t total = 0;
    {
      auto v0 = PrmVerifier::load(dir.str());
      for (const auto& r : reqs) total += static_cast<std::int64_t>(v0.sequence(r.prompt, r.trajectory).tokens.size());
    }
    PrmParams never;
    never.share_min_tokens = -1;
    auto vn = PrmVerifier::load(dir.str(), never);
    const auto rn = vn.score_steps(reqs);
    CHECK(vn.stats().forwards == 1);
    CHECK(vn.stats().tokens_computed == total);
    auto vd = PrmVerifier::load(dir.str());
    const auto rd = vd.score_steps(reqs);
    MESSAGE("no sharing: " << vn.stats().tokens_computed << " tokens in 1 forward; default: "
                           << vd.stats().tokens_computed << " tokens in " << vd.stats().forwards
                           << " forwards");
    CHECK(vd.stats().tokens_computed < total);
    CHECK(vd.stats().forwards >= 2);
    CHECK(max_diff(rn, rd) <= kTol);
  }
}

TEST_CASE("prm: a tiny cache cap still gives identical scores") {
  TempDir dir;
  write_model(dir.str(), causal_llama(), 9);
  Fixture f;
  PrmParams big, tiny;
  tiny.kv_cache_bytes = 2048;  // a few tokens' KV (2 layers x 2 heads x 8 dims x 4 B x 2 = 256 B/token)
  auto vb = PrmVerifier::load(dir.str(), big);
  auto vt = PrmVerifier::load(dir.str(), tiny);
  std::vector<std::vector<double>> rb, rt;
  // A search-like sequence of calls: depth 1, then 2, then 3, then everything again.
  const std::vector<std::vector<StepScoreRequest>> calls = {
      {f.req(f.a, 0), f.req(f.b, 0), f.req(f.c, 0)},
      {f.req(f.a1, 1), f.req(f.a2, 1), f.req(f.a3, 1), f.req(f.b1, 1)},
      {f.req(f.a1x, 2)},
      {f.req(f.a1x, 0), f.req(f.b1, 0), f.req(f.a3, 0)}};
  for (const auto& c : calls) {
    for (auto& r : vb.score_steps(c)) rb.push_back(r);
    for (auto& r : vt.score_steps(c)) rt.push_back(r);
    CHECK(vt.stats().cache_bytes <= tiny.kv_cache_bytes);
  }
  const double d = max_diff(rb, rt);
  MESSAGE("tiny cache vs large cache: max difference " << d);
  CHECK(d <= kTol);
  const auto st = vt.stats();
  CHECK(st.cache_evicted_tokens > 0);
  CHECK(st.tokens_computed > vb.stats().tokens_computed);
  MESSAGE("tokens computed: tiny cache " << st.tokens_computed << ", large cache "
                                         << vb.stats().tokens_computed);
}

TEST_CASE("prm: score_outcomes aggregates the step scores and reuses the cache") {
  TempDir dir;
  write_model(dir.str(), causal_qwen2(), 17);
  Fixture f;
  std::vector<StepScoreRequest> steps;
  std::vector<OutcomeRequest> outs;
  for (NodeId leaf : f.leaves()) {
    steps.push_back(f.req(leaf, 0));
    outs.push_back(f.outcome(leaf));
  }
  PrmParams ref_p;
  ref_p.kv_cache_bytes = 0;
  auto ref = PrmVerifier::load(dir.str(), ref_p);
  const auto per_step = ref.score_steps(steps);
  for (Aggregation agg : {Aggregation::Last, Aggregation::Min, Aggregation::Prod, Aggregation::Mean,
                          Aggregation::Custom}) {
    CAPTURE(qstar::to_string(agg));
    PrmParams p;
    p.outcome_aggregation = agg;
    if (agg == Aggregation::Custom)
      p.custom_aggregation = [](std::span<const double> s) { return s.empty() ? 0.0 : s.front(); };
    auto v = PrmVerifier::load(dir.str(), p);
    const auto got = v.score_outcomes(outs);
    REQUIRE(got.size() == outs.size());
    for (std::size_t r = 0; r < outs.size(); ++r) {
      const double want = qstar::aggregate(per_step[r], agg, p.custom_aggregation);
      CHECK(std::abs(got[r] - want) <= kTol);
      CHECK(got[r] >= 0.0);
      CHECK(got[r] <= 1.0);
    }
  }
  // After the steps were scored, an outcome costs one probe token per step.
  auto v = PrmVerifier::load(dir.str());
  (void)v.score_steps(steps);
  v.reset_stats();
  const auto o = v.score_outcomes(outs);
  std::int64_t n_steps = 0;
  for (const auto& r : outs) n_steps += static_cast<std::int64_t>(r.trajectory.size());
  CHECK(v.stats().tokens_computed == n_steps);
  CHECK(v.stats().steps_scored == n_steps);
  for (std::size_t r = 0; r < outs.size(); ++r) CHECK(std::abs(o[r] - per_step[r].back()) <= kTol);
  // An empty trajectory: last -> 0.
  OutcomeRequest empty;
  empty.prompt = f.prompt;
  empty.trajectory = f.tree.trajectory(Tree::root());
  CHECK(v.score_outcomes({&empty, 1}).at(0) == 0.0);
  // Type erasure works for both roles.
  qstar::AnyStepVerifier any_steps = qstar::AnyStepVerifier::ref(v);
  CHECK(any_steps.name() == v.name());
}

TEST_CASE("prm: TorchScript verifier follows the documented calling convention") {
  TempDir dir;
  write_tokenizer(dir.file("tokenizer.json"));
  const std::string script = std::string(QSTAR_TEST_SCRIPTS) + "/make_torchscript_prm.py";
  // One interpreter run writes the three modules (importing torch takes seconds). CMake's
  // Python3 may be an interpreter without torch: then fall back to Debian's, else skip.
  std::string python;
  for (const std::string& candidate : {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
    if (candidate.empty() || !fs::exists(candidate)) continue;
    const std::string cmd = "\"" + candidate + "\" \"" + script + "\" \"" + dir.file("prm.pt") +
                            "\" \"bad_shape=" + dir.file("bad_shape.pt") + "\" \"out_of_range=" +
                            dir.file("out_of_range.pt") + "\" 2> \"" + dir.file("stderr.txt") + "\"";
    if (std::system(cmd.c_str()) == 0) {
      python = candidate;
      break;
    }
    const std::string probe = "\"" + candidate + "\" -c \"import torch\" > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) {
      std::ifstream err(dir.file("stderr.txt"));
      std::stringstream ss;
      ss << err.rdbuf();
      FAIL("make_torchscript_prm.py failed with " << candidate << ":\n" << ss.str());
    }
  }
  if (python.empty()) {
    MESSAGE("skipping the TorchScript test: no python3 with torch (tried " QSTAR_PYTHON
            " and /usr/bin/python3)");
    return;
  }

  PrmParams p;
  p.step_separator = "\n";
  p.max_batch = 2;
  auto v = PrmVerifier::load(dir.file("prm.pt"), p);  // auto: a file is a TorchScript module
  CHECK(v.kind() == "torchscript");
  CHECK(v.name() == "prm:prm.pt");
  const Tokenizer tok = Tokenizer::from_file(dir.file("tokenizer.json"));
  CHECK(v.step_tag_id() == *tok.token_to_id("\n"));

  Fixture f;
  std::vector<StepScoreRequest> reqs;
  for (NodeId leaf : f.leaves()) reqs.push_back(f.req(leaf, 0));
  reqs.push_back(f.req(f.a1x, 2));
  reqs.push_back(f.req(f.a1x, 3));
  const auto got = v.score_steps(reqs);
  REQUIRE(got.size() == reqs.size());
  for (std::size_t r = 0; r < reqs.size(); ++r) {
    CAPTURE(r);
    const PrmSequence s = layout(tok, f.prompt, texts(f.tree, reqs[r].trajectory.leaf()),
                                 v.step_tag_id(), "\n");
    const std::size_t first = static_cast<std::size_t>(reqs[r].first_new);
    REQUIRE(got[r].size() == s.step_ends.size() - first);
    for (std::size_t i = first; i < s.step_ends.size(); ++i) {
      const std::int64_t e = s.step_ends[i];
      std::int64_t sum = 3 * e;
      for (std::int64_t t = 0; t <= e; ++t) sum += s.tokens[static_cast<std::size_t>(t)];
      const double want = static_cast<double>(sum % 11) / 10.0;
      CHECK(std::abs(got[r][i - first] - want) <= 1e-6);
    }
  }
  CHECK(v.stats().forwards == 4);  // 7 requests in chunks of max_batch 2
  // As an ORM (last step by default).
  const auto o = v.score_outcomes(std::vector<OutcomeRequest>{f.outcome(f.a1x)});
  CHECK(std::abs(o.at(0) - got[0].back()) <= 1e-12);

  // A directory holding model.pt (and tokenizer.json) is a TorchScript PRM too.
  {
    TempDir sub;
    fs::copy_file(dir.file("prm.pt"), sub.file("model.pt"));
    write_tokenizer(sub.file("tokenizer.json"));
    auto vd = PrmVerifier::load(sub.str(), p);
    CHECK(vd.kind() == "torchscript");
    CHECK(vd.name() == "prm:" + fs::path(sub.str()).filename().string());
    CHECK(max_diff(vd.score_steps(reqs), got) == 0.0);
  }
  // A module returning the wrong shape / out-of-range scores: PluginError naming the file.
  auto bad = PrmVerifier::load(dir.file("bad_shape.pt"), p);
  std::string e = error_of([&] { (void)bad.score_steps(reqs); });
  CHECK(contains(e, "bad_shape.pt"));
  CHECK(contains(e, "shape"));
  CHECK_THROWS_AS((void)bad.score_steps(reqs), qstar::PluginError);
  auto oor = PrmVerifier::load(dir.file("out_of_range.pt"), p);
  e = error_of([&] { (void)oor.score_steps(reqs); });
  CHECK(contains(e, "out_of_range.pt"));
  CHECK(contains(e, "[0, 1]"));
  // Not a TorchScript file.
  std::ofstream(dir.file("junk.pt")) << "not a zip";
  e = error_of([&] { (void)PrmVerifier::load(dir.file("junk.pt")); });
  CHECK(contains(e, "junk.pt"));
  CHECK_FALSE(contains(e, "NOT A qstar::Error"));
  // The token-level kinds refuse a file.
  PrmParams tl;
  tl.kind = "token-logit";
  e = error_of([&] { (void)PrmVerifier::load(dir.file("prm.pt"), tl); });
  CHECK(contains(e, "PrmParams.kind"));
}

TEST_CASE("prm: errors") {
  TempDir dir;
  write_model(dir.str(), causal_llama(), 3);
  Fixture f;
  auto expect = [](const std::function<void()>& fn, std::initializer_list<std::string> parts) {
    const std::string e = error_of(fn);
    CAPTURE(e);
    CHECK_FALSE(contains(e, "NO ERROR"));
    CHECK_FALSE(contains(e, "NOT A qstar::Error"));
    for (const auto& part : parts) CHECK(contains(e, part));
  };
  // Tag / good / bad that are not single tokens.
  PrmParams p;
  p.step_tag = "ab";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.step_tag", "2 tokens"});
  p = {};
  p.good_token = "++";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.good_token", "exactly one"});
  p = {};
  p.bad_token = "no";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.bad_token"});
  p = {};
  p.bad_token = "+";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.bad_token"});
  // The default Math-Shepherd tag " ки" is three tokens of a plain character vocabulary.
  {
    TempDir d2;
    write_model(d2.str(), causal_llama(), 3, /*tokenizer=*/false);
    write_tokenizer(d2.file("tokenizer.json"), /*with_ki=*/false);
    expect([&] { (void)PrmVerifier::load(d2.str()); }, {"PrmParams.step_tag", "3 tokens"});
    PrmParams ok;
    ok.step_tag = "#";
    CHECK(PrmVerifier::load(d2.str(), ok).step_tag_id() > 0);
    // A tokenizer given by path (a file, or a directory holding tokenizer.json).
    fs::remove(d2.file("tokenizer.json"));
    expect([&] { (void)PrmVerifier::load(d2.str(), ok); }, {"tokenizer.json", "PrmParams.tokenizer"});
    ok.tokenizer = dir.str();
    CHECK(PrmVerifier::load(d2.str(), ok).kind() == "token-logit");
    ok.tokenizer = dir.file("tokenizer.json");
    CHECK(PrmVerifier::load(d2.str(), ok).kind() == "token-logit");
  }
  // A missing model directory; a directory without a model.
  expect([&] { (void)PrmVerifier::load(dir.file("nope")); }, {"nope", "does not exist"});
  {
    TempDir empty;
    expect([&] { (void)PrmVerifier::load(empty.str()); }, {empty.str(), "config.json"});
    CHECK_THROWS_AS((void)PrmVerifier::load(empty.str()), qstar::IoError);
  }
  CHECK_THROWS_AS((void)PrmVerifier::load(dir.file("nope")), qstar::IoError);
  // A kind that does not match the model.
  p = {};
  p.kind = "token-class";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.kind", "LlamaForCausalLM"});
  p.kind = "torchscript";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"model.pt"});
  // A token-class head with 3 labels.
  {
    TempDir d3;
    write_model(d3.str(), token_class("llama", 3), 3);
    expect([&] { (void)PrmVerifier::load(d3.str()); }, {"num_labels", "3"});
    p = {};
    p.kind = "token-logit";
    expect([&] { (void)PrmVerifier::load(d3.str(), p); }, {"PrmParams.kind", "ForTokenClassification"});
  }
  // Parameter validation.
  p = {};
  p.kind = "value";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"PrmParams.kind", "value"});
  p = {};
  p.prompt_template = "no placeholder";
  expect([&] { p.validate(); }, {"PrmParams.prompt_template"});
  p = {};
  p.kv_cache_bytes = -1;
  expect([&] { p.validate(); }, {"PrmParams.kv_cache_bytes"});
  p = {};
  p.dtype = "int4";  // int8 is accepted (weight-only int8 storage)
  expect([&] { p.validate(); }, {"PrmParams.dtype", "int8"});
  p = {};
  p.outcome_aggregation = Aggregation::Custom;
  expect([&] { p.validate(); }, {"PrmParams.outcome_aggregation"});
  p = {};
  p.device = "tpu";
  expect([&] { (void)PrmVerifier::load(dir.str(), p); }, {"tpu"});
  // A first_new out of range names the verifier and the request.
  auto v = PrmVerifier::load(dir.str());
  auto bad = f.req(f.a1, 3);
  expect([&] { (void)v.score_steps({&bad, 1}); }, {v.name(), "request 0", "first_new 3"});
  bad.first_new = -1;
  CHECK_THROWS_AS((void)v.score_steps({&bad, 1}), qstar::InvalidArgument);
  // Malformed config.json.
  {
    TempDir d4;
    write_model(d4.str(), causal_llama(), 3);
    std::ofstream(d4.file("config.json")) << "{\"architectures\": [";
    expect([&] { (void)PrmVerifier::load(d4.str()); }, {"config.json"});
  }
}

TEST_CASE("prm: a chat template lays out the problem as the PRM's own chat, like a prompt_template") {
  TempDir dir;
  write_model(dir.str(), causal_llama(), 7);
  const std::string tmpl =
      "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant]\n{% endif %}";
  std::ofstream(dir.file("prm.jinja")) << tmpl;
  {
    qstar::json::Value cfg = qstar::json::Value::object();
    cfg.as_object().emplace_back("chat_template", tmpl);
    std::ofstream(dir.file("tokenizer_config.json")) << qstar::json::dump(cfg);
  }
  Fixture f;
  std::vector<StepScoreRequest> reqs;
  for (NodeId leaf : f.leaves()) reqs.push_back(f.req(leaf, 0));
  // The same layout written as a prompt_template over the problem's text.
  PrmParams plain;
  plain.prompt_template = "[system] be exact\n[user] {prompt}\n[assistant]\n";
  std::vector<StepScoreRequest> plain_reqs = reqs;
  for (auto& r : plain_reqs) r.prompt = f.problem.text;
  const auto want = PrmVerifier::load(dir.str(), plain).score_steps(plain_reqs);

  for (const std::string& where : {dir.file("prm.jinja"), std::string("auto"), dir.str()}) {
    CAPTURE(where);
    PrmParams p;
    p.chat_template = where;
    p.chat_system = "be exact";
    auto v = PrmVerifier::load(dir.str(), p);
    CHECK(v.score_steps(reqs) == want);  // the request's prompt is not used
  }
  // Not vacuous: the request's own prompt gives other scores.
  CHECK(PrmVerifier::load(dir.str(), PrmParams{}).score_steps(reqs) != want);

  PrmParams bad;
  bad.chat_system = "be exact";
  CHECK(contains(error_of([&] { bad.validate(); }), "PrmParams.chat_system"));
  PrmParams missing;
  missing.chat_template = dir.file("none.jinja");
  CHECK(contains(error_of([&] { (void)PrmVerifier::load(dir.str(), missing); }), "none.jinja: cannot open"));
  PrmParams chat;
  chat.chat_template = "auto";
  auto v = PrmVerifier::load(dir.str(), chat);
  StepScoreRequest no_problem = reqs[0];
  no_problem.problem = nullptr;
  CHECK(contains(error_of([&] { (void)v.score_steps({&no_problem, 1}); }), "needs the request's problem"));
}
