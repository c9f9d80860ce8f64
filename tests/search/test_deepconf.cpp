// DeepConf: the confidence filter and quantile against hand-computed values; the search on
// the toy task against an independent re-computation of the filter and the weighted vote from
// the returned tree, against best-of-N when nothing is filtered, online early stopping
// (tokens saved), the missing-logprobs error, determinism, batch invariance and budgets.
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include <qstar/core/trace.hpp>
#include <qstar/search/search.hpp>

#include "../support/toy.hpp"

using namespace qstar;

namespace {

NoVerifier nv;  // the searches take plug-ins by reference

/// The toy generator with per-token log-probabilities: every token of a step "s<k>" has
/// log-probability -(k % 5) / 2 (so some paths are sure, some are not), an answer step's
/// tokens -0.125 for "ans:0" and -1.5 for the others (all dyadic: sums and window means
/// are exact, so equal confidences tie exactly in the library and in the reference).
struct ConfidentToy {
  toy::ToyGenerator inner;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    auto out = inner.expand(batch);
    for (auto& steps : out)
      for (auto& s : steps) {
        float lp = -1.5f;
        if (s.text == "ans:0") lp = -0.125f;
        else if (s.text.size() > 1 && s.text[0] == 's') lp = -static_cast<float>(std::stoi(s.text.substr(1)) % 5) / 2.0f;
        s.token_logprobs.assign(static_cast<std::size_t>(s.num_tokens), lp);
        s.logprob = lp * static_cast<float>(s.num_tokens);
      }
    return out;
  }
  std::string name() const { return "confident-toy"; }
  std::size_t max_batch_size() const { return inner.max_batch; }
};

/// Independent reference of offline DeepConf from a result's tree. Chain j is the path under
/// the root's j-th child (best-of-N chains share no node). Each answered chain's confidence
/// comes from plain loops over the stored token log-probabilities; the most confident
/// ceil(f * m) are kept (ties: lower chain first); the answer with the largest sum of
/// exp(confidence) wins (ties: the larger best weight, then the lower chain).
std::optional<std::string> reference_answer(const SearchResult& r, const DeepConfParams& p) {
  const Tree& t = *r.tree;
  struct Trace {
    double conf;
    std::string answer;
  };
  std::vector<Trace> traces;
  for (NodeId first : t.children(Tree::root())) {
    std::vector<float> xs;
    NodeId leaf = first;
    for (;;) {
      for (float x : t.token_logprobs(leaf)) xs.push_back(x);
      if (t[leaf].num_children == 0) break;
      leaf = *t.children(leaf).begin();
    }
    if (!t[leaf].terminal || !t.answer(leaf)) continue;
    double c = 0.0;
    if (p.confidence == ConfidenceMeasure::Mean) {
      for (float x : xs) c += x;
      c /= static_cast<double>(xs.size());
    } else {  // lowest window
      const std::size_t w = std::min<std::size_t>(static_cast<std::size_t>(p.window), xs.size());
      c = INFINITY;
      for (std::size_t s = 0; s + w <= xs.size(); ++s) {
        double m = 0.0;
        for (std::size_t k = s; k < s + w; ++k) m += xs[k];
        c = std::min(c, m / static_cast<double>(w));
      }
    }
    traces.push_back({c, std::string(*t.answer(leaf))});
  }
  std::vector<std::size_t> order(traces.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return traces[a].conf > traces[b].conf; });
  const auto keep = static_cast<std::size_t>(std::ceil(p.keep_fraction * static_cast<double>(traces.size()) - 1e-9));
  std::vector<char> kept(traces.size(), 0);
  for (std::size_t k = 0; k < keep; ++k) kept[order[k]] = 1;
  struct Tally {
    double sum = 0.0, best = -1.0;
    std::size_t best_at = 0;
  };
  std::map<std::string, Tally> tally;
  for (std::size_t k = 0; k < traces.size(); ++k) {
    if (!kept[k]) continue;
    auto& x = tally[traces[k].answer];
    const double w = std::exp(traces[k].conf);
    x.sum += w;
    if (w > x.best) {
      x.best = w;
      x.best_at = k;
    }
  }
  std::optional<std::string> best;
  const Tally* bt = nullptr;
  for (const auto& [a, x] : tally)
    if (!bt || x.sum > bt->sum || (x.sum == bt->sum && (x.best > bt->best || (x.best == bt->best && x.best_at < bt->best_at)))) {
      bt = &x;
      best = a;
    }
  return best;
}

}  // namespace

TEST_CASE("deepconf_keep: the most confident ceil(f * m) answered traces, ties to the earlier") {
  const double nan = std::nan("");
  const std::vector<double> c = {-1.0, nan, -0.5, -2.0, -0.5};
  CHECK(deepconf_keep(c, 0.5) == std::vector<char>{0, 0, 1, 0, 1});
  CHECK(deepconf_keep(c, 0.6) == std::vector<char>{1, 0, 1, 0, 1});  // ceil(2.4) = 3
  CHECK(deepconf_keep(c, 1.0) == std::vector<char>{1, 0, 1, 1, 1});
  CHECK(deepconf_keep(c, 0.1) == std::vector<char>{0, 0, 1, 0, 0});  // the tie: index 2 first
  const std::vector<double> ten(10, -1.0);
  int kept = 0;
  for (char k : deepconf_keep(ten, 0.3)) kept += k;
  CHECK(kept == 3);  // 0.3 * 10 rounds to 3, not 4
}

TEST_CASE("quantile: linear interpolation between order statistics (numpy.percentile)") {
  CHECK(quantile({4, 1, 3, 2}, 0.1) == doctest::Approx(1.3));
  CHECK(quantile({4, 1, 3, 2}, 0.9) == doctest::Approx(3.7));
  CHECK(quantile({4, 1, 3, 2}, 0.0) == 1.0);
  CHECK(quantile({4, 1, 3, 2}, 1.0) == 4.0);
  CHECK(quantile({-2.5}, 0.3) == -2.5);
  CHECK(std::isnan(quantile({}, 0.5)));
}

TEST_CASE("offline deepconf matches an independent filter-and-weighted-vote over the tree") {
  toy::ToyTask task;
  const auto ps = toy::problems(6);
  int differs_from_majority = 0;
  for (auto measure : {ConfidenceMeasure::Mean, ConfidenceMeasure::Lowest})
    for (double keep : {1.0, 0.5, 0.1}) {
      CAPTURE(to_string(measure));
      CAPTURE(keep);
      DeepConfParams p;
      p.n = 12;
      p.confidence = measure;
      p.window = 4;
      p.keep_fraction = keep;
      p.keep_tree = true;
      ConfidentToy g;
      const auto rs = deepconf_search(std::span<const Problem>(ps), task, g, nv, p, 7);
      for (const auto& r : rs) {
        CHECK(r.stats.samples == 12);
        CHECK(r.stats.verifier_calls == 0);
        CHECK(r.answer == reference_answer(r, p));
        const auto kept = static_cast<std::size_t>(std::ceil(keep * 12 - 1e-9));
        CHECK(r.candidates.size() == kept);
        for (const auto& c : r.candidates) CHECK((c.score > 0.0 && c.score <= 1.0));
        BestOfNParams b;
        b.n = 12;
        b.voting = Voting::Majority;
        const auto rb = best_of_n(std::span<const Problem>(&r.problem, 1), task, g, nv, b, 7);
        differs_from_majority += rb[0].answer != r.answer;
      }
    }
  // Confidence changes some answers (the sure "ans:0" traces win with a strict filter).
  CHECK(differs_from_majority > 0);
}

TEST_CASE("deepconf keeping everything with a majority vote is best-of-N's majority vote") {
  // The same traces; the winner has the largest count (ties may break differently: the
  // tie-break is the best score, 1 for every best-of-N sample, exp(C) for deepconf's).
  toy::ToyTask task;
  const auto ps = toy::problems(4);
  DeepConfParams p;
  p.n = 10;
  p.keep_fraction = 1.0;
  p.voting = Voting::Majority;
  p.keep_tree = true;
  BestOfNParams b;
  b.n = 10;
  b.voting = Voting::Majority;
  b.keep_tree = true;
  ConfidentToy g;
  toy::ToyPrm prm;  // given, and never called by deepconf
  const auto rd = deepconf_search(std::span<const Problem>(ps), task, g, prm, p, 3);
  const auto rb = best_of_n(std::span<const Problem>(ps), task, g, nv, b, 3);
  for (std::size_t i = 0; i < ps.size(); ++i) {
    CHECK(toy::trace_of(rd[i], false) == toy::trace_of(rb[i], false));
    std::map<std::string, int> count;
    int top = 0;
    for (const auto& c : rb[i].candidates) top = std::max(top, ++count[c.canonical]);
    REQUIRE(rd[i].answer);
    CHECK(count[*rd[i].answer] == top);
    CHECK(rd[i].candidates.size() == rb[i].candidates.size());
    CHECK(rd[i].stats.verifier_calls == 0);
    CHECK(rd[i].stats.verifier_tokens == 0);
  }
}

TEST_CASE("online deepconf stops unsure traces below the warmup threshold and saves tokens") {
  toy::ToyTask task;
  const auto ps = toy::problems(6);
  DeepConfParams p;
  p.n = 16;
  p.window = 2;
  p.keep_fraction = 0.5;
  p.keep_tree = true;
  ConfidentToy g;
  g.inner.depth = 4;
  const auto off = deepconf_search(std::span<const Problem>(ps), task, g, nv, p, 11);
  p.online = true;
  p.warmup = 4;
  const auto on = deepconf_search(std::span<const Problem>(ps), task, g, nv, p, 11);
  std::int64_t tok_off = 0, tok_on = 0;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    tok_off += off[i].stats.generated_tokens;
    tok_on += on[i].stats.generated_tokens;
    CHECK(on[i].stats.samples == 16);
    // Every voting trace has confidence at or above the threshold set by its warmup traces:
    // recompute it from the first 4 root children (the warmup chains open first).
    const Tree& t = *on[i].tree;
    std::vector<double> warm;
    std::vector<NodeId> kids;
    for (NodeId c : t.children(Tree::root())) kids.push_back(c);
    for (std::size_t k = 0; k < 4; ++k) {
      NodeId leaf = kids[k];
      while (t[leaf].num_children > 0) leaf = *t.children(leaf).begin();
      if (t[leaf].terminal && t.answer(leaf))
        warm.push_back(confidence::lowest_window_mean(confidence::trajectory_token_logprobs(t, leaf), 2));
    }
    const double s = quantile(warm, 0.5);
    for (const auto& c : on[i].candidates)
      CHECK(std::log(c.score) >= doctest::Approx(s).epsilon(1e-6));
  }
  CHECK(tok_on < tok_off);
}

TEST_CASE("deepconf names the generator whose steps carry no token log-probabilities") {
  toy::ToyTask task;
  const auto ps = toy::problems(1);
  toy::ToyGenerator g;
  DeepConfParams p;
  try {
    deepconf_search(std::span<const Problem>(ps), task, g, nv, p, 1);
    FAIL("expected InvalidArgument");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("'toy-generator'") != std::string::npos);
    CHECK(std::string(e.what()).find("token_logprobs") != std::string::npos);
  }
  DeepConfParams bad;
  bad.online = true;
  bad.confidence = ConfidenceMeasure::Mean;
  CHECK_THROWS_AS(bad.validate(), InvalidArgument);
  bad = DeepConfParams{};
  bad.keep_fraction = 0.0;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("keep_fraction"), InvalidArgument);
}

TEST_CASE("deepconf is deterministic for a seed and batch-invariant, offline and online") {
  toy::ToyTask task;
  const auto ps = toy::problems(5);
  for (bool online : {false, true}) {
    CAPTURE(online);
    DeepConfParams p;
    p.n = 12;
    p.window = 2;
    p.online = online;
    p.keep_tree = true;
    ConfidentToy g1, g64;
    g1.inner.max_batch = 1;
    g64.inner.max_batch = 64;
    const auto x = deepconf_search(std::span<const Problem>(ps), task, g1, nv, p, 42);
    const auto y = deepconf_search(std::span<const Problem>(ps), task, g64, nv, p, 42);
    const auto z = deepconf_search(std::span<const Problem>(ps), task, g64, nv, p, 43);
    std::string tx, ty, tz;
    for (std::size_t i = 0; i < ps.size(); ++i) {
      tx += toy::trace_of(x[i], false);
      ty += toy::trace_of(y[i], false);
      tz += toy::trace_of(z[i], false);
      CHECK(x[i].answer == y[i].answer);
    }
    CHECK(tx == ty);
    CHECK(tx != tz);
    const auto alone = deepconf_search(std::span<const Problem>(ps).subspan(3, 1), task, g64, nv, p, 42);
    CHECK(toy::trace_of(alone[0], false) == toy::trace_of(x[3], false));
    CHECK(alone[0].answer == x[3].answer);
  }
}

TEST_CASE("deepconf: budgets are never exceeded and name the cap") {
  toy::ToyTask task;
  const auto ps = toy::problems(2);
  Budget tok, calls, nodes;
  tok.max_generated_tokens = 20;
  calls.max_generator_calls = 2;
  nodes.max_nodes = 6;
  for (const auto& [b, reason] : std::vector<std::pair<Budget, StopReason>>{
           {tok, StopReason::GeneratedTokens}, {calls, StopReason::GeneratorCalls}, {nodes, StopReason::Nodes}}) {
    CAPTURE(to_string(reason));
    DeepConfParams p;
    p.n = 8;
    p.budget = b;
    p.keep_tree = true;
    ConfidentToy g;
    const auto rs = deepconf_search(std::span<const Problem>(ps), task, g, nv, p, 9);
    for (const auto& r : rs) {
      if (b.max_generated_tokens) CHECK(r.stats.generated_tokens <= b.max_generated_tokens);
      if (b.max_generator_calls) CHECK(r.stats.generator_calls <= b.max_generator_calls);
      if (b.max_nodes) CHECK(r.stats.nodes <= b.max_nodes);
      CHECK(static_cast<std::int64_t>(r.tree->size()) == r.stats.nodes);
      CHECK(r.stop == reason);
    }
  }
}
