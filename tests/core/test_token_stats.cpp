// Per-token statistics of steps (Step::token_logprobs, token_entropies): the confidence
// helpers against brute-force definitions, their storage in the Tree, the JSONL trace and the
// tree JSON (written only when present, float round trip, byte-identical rewrite), the
// float JSON form, and the search engine's size check.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "../support/toy.hpp"
#include "qstar/core/confidence.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/search/result_json.hpp"
#include "qstar/search/search.hpp"

using namespace qstar;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<float> random_series(std::mt19937& rng, std::size_t n) {
  std::uniform_real_distribution<float> d(-8.0f, 0.0f);
  std::vector<float> xs(n);
  for (auto& x : xs) x = d(rng);
  return xs;
}

// Definitions, computed the slow way: every window summed from scratch.
double brute_mean(const std::vector<float>& xs, std::size_t from, std::size_t n) {
  double s = 0;
  for (std::size_t i = from; i < from + n; ++i) s += xs[i];
  return s / static_cast<double>(n);
}
double brute_lowest(const std::vector<float>& xs, std::size_t w) {
  if (w == 0) w = 1;
  if (xs.size() <= w) return brute_mean(xs, 0, xs.size());
  double lo = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i + w <= xs.size(); ++i) lo = std::min(lo, brute_mean(xs, i, w));
  return lo;
}

Step stat_step(std::string text, std::vector<float> lps, std::vector<float> ents) {
  Step s;
  s.text = std::move(text);
  s.num_tokens = static_cast<std::int32_t>(std::max(lps.size(), ents.size()));
  for (std::int32_t i = 0; i < s.num_tokens; ++i) s.tokens.push_back(100 + i);
  double sum = 0;
  for (float x : lps) sum += x;
  s.logprob = sum;
  s.token_logprobs = std::move(lps);
  s.token_entropies = std::move(ents);
  return s;
}

/// Root -> a (3 tokens, both lists) -> c (2 tokens, logprobs only); root -> b (no lists).
Tree stats_tree() {
  Tree t;
  const NodeId a = t.add_child(0, stat_step("a", {-0.1f, -2.5f, -1e-8f}, {0.5f, 1.75f, 3.1415927f}));
  t.add_child(0, stat_step("b", {}, {}));
  t.add_child(a, stat_step("c", {-0.30000001f, -7.125f}, {}));
  return t;
}

/// The toy generator's steps, with one log-probability and entropy per token; `skew` adds
/// one value too many to every list (a contract violation).
struct StatsGenerator {
  bool skew = false;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    auto out = toy::ToyGenerator{}.expand(batch);
    for (auto& steps : out)
      for (Step& s : steps) {
        const auto n = static_cast<std::size_t>(s.num_tokens) + (skew ? 1 : 0);
        for (std::size_t i = 0; i < n; ++i) {
          s.token_logprobs.push_back(static_cast<float>(s.logprob / s.num_tokens));
          s.token_entropies.push_back(0.25f * static_cast<float>(i));
        }
      }
    return out;
  }
  std::string name() const { return "stats-generator"; }
};

}  // namespace

TEST_CASE("confidence: mean, window means, lowest window mean and tail mean match their definitions") {
  std::mt19937 rng(7);
  for (std::size_t n : {1u, 2u, 5u, 17u, 300u}) {
    const auto xs = random_series(rng, n);
    CAPTURE(n);
    CHECK(confidence::mean(xs) == doctest::Approx(brute_mean(xs, 0, n)).epsilon(1e-12));
    for (std::size_t w : {0u, 1u, 3u, 16u, 299u, 300u, 5000u}) {
      CAPTURE(w);
      const auto ms = confidence::window_means(xs, w);
      const std::size_t we = std::clamp<std::size_t>(w, 1, n);
      REQUIRE(ms.size() == n - we + 1);
      for (std::size_t i = 0; i < ms.size(); ++i) CHECK(ms[i] == doctest::Approx(brute_mean(xs, i, we)).epsilon(1e-12));
      CHECK(confidence::lowest_window_mean(xs, w) == doctest::Approx(brute_lowest(xs, w)).epsilon(1e-12));
      if (w > 0)
        CHECK(confidence::tail_mean(xs, w) ==
              doctest::Approx(brute_mean(xs, n - std::min(w, n), std::min(w, n))).epsilon(1e-12));
    }
  }
  // A hand-checked case: windows of 2 over {-1, -3, -1, 0}: -2, -2, -0.5.
  const std::vector<float> xs = {-1, -3, -1, 0};
  CHECK(confidence::window_means(xs, 2) == std::vector<double>{-2.0, -2.0, -0.5});
  CHECK(confidence::lowest_window_mean(xs, 2) == -2.0);
  CHECK(confidence::tail_mean(xs, 3) == doctest::Approx(-4.0 / 3.0));
  // Empty series, n = 0 and NaN values give NaN.
  CHECK(std::isnan(confidence::mean({})));
  CHECK(confidence::window_means({}, 4).empty());
  CHECK(std::isnan(confidence::lowest_window_mean({}, 4)));
  CHECK(std::isnan(confidence::tail_mean(xs, 0)));
  const std::vector<float> with_nan = {-1, std::numeric_limits<float>::quiet_NaN(), -2};
  CHECK(std::isnan(confidence::lowest_window_mean(with_nan, 1)));
  CHECK(std::isnan(confidence::mean(with_nan)));
}

TEST_CASE("Tree keeps each step's token statistics; trajectories concatenate them") {
  const Tree t = stats_tree();
  REQUIRE(t.size() == 4);
  CHECK(t.token_logprobs(0).empty());
  CHECK(t.token_entropies(0).empty());
  const std::vector<float> a_lp(t.token_logprobs(1).begin(), t.token_logprobs(1).end());
  const std::vector<float> a_en(t.token_entropies(1).begin(), t.token_entropies(1).end());
  CHECK(a_lp == std::vector<float>{-0.1f, -2.5f, -1e-8f});
  CHECK(a_en == std::vector<float>{0.5f, 1.75f, 3.1415927f});
  CHECK(t.token_logprobs(2).empty());
  CHECK(t.token_entropies(2).empty());
  CHECK(t.token_logprobs(3).size() == 2);
  CHECK(t.token_entropies(3).empty());
  CHECK(confidence::trajectory_token_logprobs(t, 3) == std::vector<float>{-0.1f, -2.5f, -1e-8f, -0.30000001f, -7.125f});
  CHECK(confidence::trajectory_token_entropies(t, 3) == std::vector<float>{0.5f, 1.75f, 3.1415927f});
  const TrajectoryView tv = t.trajectory(3);
  CHECK(tv.token_logprobs(1).size() == 2);
  CHECK(tv.token_entropies(0).size() == 3);
}

TEST_CASE("trace: token statistics are written only when present and read back bit-exactly") {
  const Tree t = stats_tree();
  const Problem p{"id", "text", std::nullopt};
  const std::string line = write_trace_line(p, t, std::nullopt, std::nullopt, "budget");
  // Floats in their own shortest form (-0.1f is not -0.10000000149011612).
  CHECK(line.find(R"(,"token_logprobs":[-0.1,-2.5,-1e-08],"token_entropies":[0.5,1.75,3.1415927],"score")") !=
        std::string::npos);
  CHECK(line.find(R"("token_logprobs":[-0.3,-7.125],"score")") != std::string::npos);
  // Nodes without statistics (the root, b) have neither key.
  std::size_t count = 0;
  for (std::size_t at = line.find("\"token_logprobs\""); at != std::string::npos; at = line.find("\"token_logprobs\"", at + 1))
    ++count;
  CHECK(count == 2);
  CHECK(line.find(R"("text":"b","tokens":[],"num_tokens":0,"logprob":0,"score")") != std::string::npos);

  // trace_to_json dumps to the same bytes; reading gives the same floats; rewriting is identical.
  CHECK(json::dump(trace_to_json(p, t, std::nullopt, std::nullopt, "budget")) == line);
  const TraceRecord r = read_trace_line(line);
  for (NodeId id = 0; id < 4; ++id) {
    const auto a = t.token_logprobs(id), b = r.tree.token_logprobs(id);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(std::bit_cast<std::uint32_t>(a[i]) == std::bit_cast<std::uint32_t>(b[i]));
    const auto c = t.token_entropies(id), d = r.tree.token_entropies(id);
    REQUIRE(c.size() == d.size());
    for (std::size_t i = 0; i < c.size(); ++i) CHECK(std::bit_cast<std::uint32_t>(c[i]) == std::bit_cast<std::uint32_t>(d[i]));
  }
  CHECK(write_trace_line(r) == line);

  // The tree JSON (Python's Tree.node / to_dict) has the same keys and values.
  const json::Value n1 = node_to_json(t, 1);
  REQUIRE(n1.find("token_logprobs") != nullptr);
  CHECK(json::dump(*n1.find("token_logprobs")) == "[-0.1,-2.5,-1e-08]");
  CHECK(json::dump(*n1.find("token_entropies")) == "[0.5,1.75,3.1415927]");
  CHECK(node_to_json(t, 2).find("token_logprobs") == nullptr);
  CHECK(node_to_json(t, 3).find("token_entropies") == nullptr);

  // Malformed values are ParseErrors naming the node and field.
  std::string bad = line;
  bad.replace(bad.find("[-0.3,-7.125]"), 13, "[-0.3,\"x\"]");
  CHECK_THROWS_WITH_AS(read_trace_line(bad), doctest::Contains("node 3: field \"token_logprobs\": element 1"), ParseError);
  bad = line;
  bad.replace(bad.find("\"logprob\":0,\"score\""), 12, "\"logprob\":0,\"token_entropies\":[1],");
  CHECK_THROWS_WITH_AS(read_trace_line(bad), doctest::Contains("node 0: field \"token_entropies\""), ParseError);
}

TEST_CASE("json: dump_float is the float's shortest form; float_as_short_double dumps the same") {
  std::mt19937 rng(11);
  std::uniform_int_distribution<std::uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(bits(rng));
    if (!std::isfinite(f)) continue;
    std::string a, b;
    json::dump_float(a, f);
    json::dump_double(b, json::float_as_short_double(f));
    REQUIRE(a == b);
    REQUIRE(a.size() <= 15);  // at most 9 significant digits, a sign, a point, e-XX
    const double back = json::parse(a, "float").as_double();
    REQUIRE(std::bit_cast<std::uint32_t>(static_cast<float>(back)) == std::bit_cast<std::uint32_t>(f));
    ++checked;
  }
  CHECK(checked > 190000);
  std::string s;
  json::dump_float(s, std::numeric_limits<float>::infinity());
  CHECK(s == "null");
}

TEST_CASE("search: token statistics reach the tree; a generator with the wrong count is a PluginError") {
  const toy::ToyTask task;
  toy::ToyPrm prm;
  const std::vector<Problem> ps = {{"p", "toy", "1"}};
  BeamParams b;
  b.num_beams = 4;
  b.width = 2;
  b.max_depth = 3;
  b.keep_tree = true;
  StatsGenerator gen;
  const auto res = search(std::span<const Problem>(ps), task, gen, prm, SearchParams(b), 5);
  REQUIRE(res.size() == 1);
  REQUIRE(res[0].tree);
  const Tree& t = *res[0].tree;
  REQUIRE(t.size() > 1);
  for (NodeId id = 1; id < static_cast<NodeId>(t.size()); ++id) {
    CHECK(t.token_logprobs(id).size() == static_cast<std::size_t>(t[id].num_tokens));
    CHECK(t.token_entropies(id).size() == static_cast<std::size_t>(t[id].num_tokens));
    if (!t.token_entropies(id).empty()) CHECK(t.token_entropies(id).back() == 0.25f * static_cast<float>(t[id].num_tokens - 1));
  }
  gen.skew = true;
  CHECK_THROWS_WITH_AS(search(std::span<const Problem>(ps), task, gen, prm, SearchParams(b), 5),
                       doctest::Contains("'stats-generator' returned a step with"), PluginError);
}
