// Small deterministic plug-ins for search tests that do not need Game of 24: a random
// "toy" generator whose steps depend only on each request's seed, a hash-based PRM, a
// scripted generator/verifier over a fixed tree, and a task whose answer is the last step.
#pragma once

#include <cmath>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <qstar/core/concepts.hpp>
#include <qstar/core/rng.hpp>
#include <qstar/core/trace.hpp>
#include <qstar/search/result.hpp>

namespace toy {
using namespace qstar;

/// Answer = the text of the last step after "ans:"; terminal when the step says so.
struct ToyTask {
  std::string format(const Problem& p) const { return "Q: " + p.text; }
  bool is_terminal(const Step& s) const { return s.text.rfind("ans:", 0) == 0; }
  std::optional<std::string> extract_answer(const TrajectoryView& tv) const {
    if (tv.empty()) return std::nullopt;
    const auto t = tv.text(tv.size() - 1);
    if (t.rfind("ans:", 0) != 0) return std::nullopt;
    return std::string(t.substr(4));
  }
  std::string canonicalize(std::string_view a) const { return std::string(a); }
  bool check(const Problem& p, std::string_view a) const { return p.gold && *p.gold == a; }
};

/// Steps "s<k>" for k drawn from the request seed; at depth `depth - 1` it answers
/// "ans:<k mod answers>". Token count = text length. Results depend on each request only.
struct ToyGenerator {
  int depth = 3;
  int answers = 4;
  std::size_t max_batch = 0;
  std::vector<std::size_t>* batch_log = nullptr;  // records each call's batch size
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    if (batch_log) batch_log->push_back(batch.size());
    std::vector<std::vector<Step>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const auto& req = batch[r];
      Rng rng(req.seed);
      for (int c = 0; c < req.num_candidates; ++c) {
        Step s;
        const auto k = req.greedy ? static_cast<std::uint64_t>(c) : rng.below(1000);
        if (static_cast<int>(req.prefix.size()) + 1 >= depth) {
          s.text = "ans:" + std::to_string(k % static_cast<std::uint64_t>(answers));
          s.finish = FinishReason::FinalAnswer;
        } else {
          s.text = "s" + std::to_string(k);
        }
        s.num_tokens = static_cast<std::int32_t>(s.text.size());
        if (req.max_new_tokens > 0 && s.num_tokens > req.max_new_tokens) {
          s.text.resize(static_cast<std::size_t>(req.max_new_tokens));
          s.num_tokens = req.max_new_tokens;
          s.finish = FinishReason::Length;
        }
        s.logprob = -1.0 - 0.001 * static_cast<double>(k % 97);
        out[r].push_back(std::move(s));
      }
    }
    return out;
  }
  std::string name() const { return "toy-generator"; }
  std::size_t max_batch_size() const { return max_batch; }
};

/// Scores each step by a hash of (prefix length, text): deterministic, in [0,1].
struct ToyPrm {
  std::size_t max_batch = 0;
  static double score_of(std::string_view text, std::size_t pos) {
    std::uint64_t h = 1469598103934665603ull ^ pos;
    for (char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return static_cast<double>(splitmix64(h) >> 11) * 0x1.0p-53;
  }
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    std::vector<std::vector<double>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r)
      for (std::size_t i = static_cast<std::size_t>(batch[r].first_new); i < batch[r].trajectory.size(); ++i)
        out[r].push_back(score_of(batch[r].trajectory.text(i), i));
    return out;
  }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch) {
    std::vector<double> out;
    for (const auto& r : batch) out.push_back(score_of(r.trajectory.joined("|"), 99));
    return out;
  }
  std::string name() const { return "toy-prm"; }
  std::size_t max_batch_size() const { return max_batch; }
};

/// A fixed tree: children of each prefix path ("" for the root, "a/b" for deeper) with
/// their values. Proposes the children in order (cycling when more are asked).
struct Scripted {
  struct Child {
    std::string text;
    double value;
    bool final = false;
  };
  std::map<std::string, std::vector<Child>> tree;
  static std::string key(const TrajectoryView& tv, std::size_t upto) {
    std::string k;
    for (std::size_t i = 0; i < upto; ++i) {
      if (i) k += "/";
      k += tv.text(i);
    }
    return k;
  }
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    std::vector<std::vector<Step>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const auto it = tree.find(key(batch[r].prefix, batch[r].prefix.size()));
      if (it == tree.end() || it->second.empty()) continue;
      const auto& kids = it->second;
      const std::size_t offset = static_cast<std::size_t>(batch[r].prefix.tree()[batch[r].prefix.leaf()].num_children);
      for (int c = 0; c < batch[r].num_candidates; ++c) {
        const auto& k = kids[(offset + static_cast<std::size_t>(c)) % kids.size()];
        out[r].push_back(Step{k.text, {}, std::log(1.0 / static_cast<double>(kids.size())), 1,
                              k.final ? FinishReason::FinalAnswer : FinishReason::StepEnd});
      }
    }
    return out;
  }
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    std::vector<std::vector<double>> out(batch.size());
    for (std::size_t r = 0; r < batch.size(); ++r) {
      const auto& tv = batch[r].trajectory;
      for (std::size_t i = static_cast<std::size_t>(batch[r].first_new); i < tv.size(); ++i) {
        const auto& kids = tree.at(key(tv, i));
        double v = 0.0;
        for (const auto& k : kids)
          if (k.text == tv.text(i)) v = k.value;
        out[r].push_back(v);
      }
    }
    return out;
  }
  std::string name() const { return "scripted"; }
};

/// n toy problems "p<i>" ("toy <i>", gold "1").
inline std::vector<Problem> problems(int n) {
  std::vector<Problem> ps;
  for (int i = 0; i < n; ++i) ps.push_back({"p" + std::to_string(i), "toy " + std::to_string(i), "1"});
  return ps;
}

/// A result's tree (keep_tree) as a trace line, with its stop reason unless `with_stop` is
/// false (to compare the trees of algorithms whose stop reasons differ).
inline std::string trace_of(const SearchResult& r, bool with_stop = true) {
  return write_trace_line(r.problem, *r.tree, r.answer, r.correct, with_stop ? to_string(r.stop) : "") + "\n";
}

/// Every result's trace_of, in order.
inline std::string traces(const std::vector<SearchResult>& rs) {
  std::string out;
  for (const auto& r : rs) out += trace_of(r);
  return out;
}

}  // namespace toy
