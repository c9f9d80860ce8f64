// Which types satisfy the plug-in concepts, and which do not (stdexec/taskflow style).
#include <doctest/doctest.h>

#include <qstar/adapters/batch_split.hpp>
#include <qstar/adapters/callable.hpp>
#include <qstar/core/any.hpp>
#include <qstar/core/concepts.hpp>

namespace {
using namespace qstar;

struct GoodGen {
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); }
};
struct WrongReturnGen {  // returns steps for one request only
  std::vector<Step> expand(std::span<const ExpandRequest>) { return {}; }
};
struct SingleRequestGen {  // not batched: takes one request
  std::vector<std::vector<Step>> expand(const ExpandRequest&) { return {}; }
};
struct GoodPrm {
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) {
    return std::vector<std::vector<double>>(b.size());
  }
};
struct FloatPrm {  // float scores are not accepted
  std::vector<std::vector<float>> score_steps(std::span<const StepScoreRequest>) { return {}; }
};
struct GoodOrm {
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) { return std::vector<double>(b.size()); }
};
struct Both : GoodPrm, GoodOrm {};
struct GoodTask {
  std::string format(const Problem& p) const { return p.text; }
  bool is_terminal(const Step&) const { return false; }
  std::optional<std::string> extract_answer(const TrajectoryView&) const { return std::nullopt; }
  std::string canonicalize(std::string_view a) const { return std::string(a); }
};
struct CheckedGoodTask : GoodTask {
  bool check(const Problem&, std::string_view) const { return true; }
};
struct TaskWithoutCanon {
  std::string format(const Problem& p) const { return p.text; }
  bool is_terminal(const Step&) const { return false; }
  std::optional<std::string> extract_answer(const TrajectoryView&) const { return std::nullopt; }
};

static_assert(Generator<GoodGen>);
static_assert(!Generator<WrongReturnGen>);
static_assert(!Generator<SingleRequestGen>);
static_assert(!Generator<GoodPrm>);
static_assert(StepVerifier<GoodPrm>);
static_assert(!StepVerifier<FloatPrm>);
static_assert(!StepVerifier<GoodOrm>);
static_assert(OutcomeVerifier<GoodOrm>);
static_assert(!OutcomeVerifier<GoodPrm>);
static_assert(StepVerifier<Both> && OutcomeVerifier<Both>);
static_assert(!StepVerifier<NoVerifier> && !OutcomeVerifier<NoVerifier>);
static_assert(Task<GoodTask> && !CheckedTask<GoodTask>);
static_assert(CheckedTask<CheckedGoodTask>);
static_assert(!Task<TaskWithoutCanon>);
static_assert(Generator<AnyGenerator> && StepVerifier<AnyStepVerifier> && OutcomeVerifier<AnyOutcomeVerifier>);
static_assert(!Generator<AnyStepVerifier> && !StepVerifier<AnyGenerator>);
static_assert(Generator<BatchSplit<GoodGen>> && !StepVerifier<BatchSplit<GoodGen>>);
static_assert(StepVerifier<BatchSplit<Both>> && OutcomeVerifier<BatchSplit<Both>>);

auto lambda_gen = make_generator([](std::span<const ExpandRequest> b) { return std::vector<std::vector<Step>>(b.size()); });
static_assert(Generator<decltype(lambda_gen)>);
}  // namespace

TEST_CASE("type-erased plug-ins forward calls, names and batch limits") {
  auto g = make_generator(
      [](std::span<const ExpandRequest> b) {
        std::vector<std::vector<Step>> out(b.size());
        for (std::size_t i = 0; i < b.size(); ++i) out[i].push_back(Step{"s" + std::to_string(b[i].num_candidates), {}, -1.0, 2, FinishReason::StepEnd});
        return out;
      },
      "lam", 7);
  AnyGenerator any(g);
  CHECK(any.name() == "lam");
  CHECK(any.max_batch_size() == 7);
  std::vector<ExpandRequest> reqs(2);
  reqs[1].num_candidates = 3;
  auto out = any.expand(reqs);
  REQUIRE(out.size() == 2);
  CHECK(out[1][0].text == "s3");

  GoodOrm orm;
  auto r = AnyOutcomeVerifier::ref(orm);
  CHECK(r.name() == "verifier");
  CHECK(r.max_batch_size() == 0);
  std::vector<OutcomeRequest> oreqs(3);
  CHECK(r.score_outcomes(oreqs).size() == 3);
}

namespace {
// Records the size of every batch it receives; answers one step per request, whose text is
// the request's seed, so the joined results show the order.
struct RecordingGen {
  std::vector<std::size_t> sizes;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) {
    sizes.push_back(b.size());
    std::vector<std::vector<Step>> out;
    for (const auto& r : b) {
      Step s;
      s.text = std::to_string(r.seed);
      out.push_back({s});
    }
    return out;
  }
};
struct ShortGen {  // drops the last request's result
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> b) {
    return std::vector<std::vector<Step>>(b.empty() ? 0 : b.size() - 1);
  }
};
}  // namespace

TEST_CASE("call_in_chunks and BatchSplit split a direct call into capped chunks, in order") {
  std::vector<ExpandRequest> reqs(7);
  for (std::size_t i = 0; i < reqs.size(); ++i) reqs[i].seed = 100 + i;
  RecordingGen inner;
  BatchSplit<RecordingGen> split{inner, 3};
  const auto out = split.expand(reqs);
  CHECK(inner.sizes == std::vector<std::size_t>{3, 3, 1});
  REQUIRE(out.size() == 7);
  for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i].at(0).text == std::to_string(100 + i));

  // 0 = unlimited: one call; a batch at the cap: one call.
  RecordingGen whole;
  const auto all = call_in_chunks(std::span<const ExpandRequest>(reqs), 0,
                                  [&](std::span<const ExpandRequest> p) { return whole.expand(p); },
                                  [](std::size_t, std::size_t) { FAIL("no mismatch expected"); });
  CHECK(whole.sizes == std::vector<std::size_t>{7});
  CHECK(all.size() == 7);
  RecordingGen capped;
  BatchSplit<RecordingGen> at_cap{capped, 7};
  (void)at_cap.expand(reqs);
  CHECK(capped.sizes == std::vector<std::size_t>{7});

  // A plug-in that answers a chunk with the wrong number of results is named.
  ShortGen bad;
  BatchSplit<ShortGen> bad_split{bad, 3};
  CHECK_THROWS_WITH_AS(bad_split.expand(reqs), "plug-in 'plug-in' returned 2 results for a batch of 3", PluginError);
}
