// Answer selection over scored samples (algorithms.md, "Best-of-N and voting"):
//   naive     the answer of the highest-scoring sample;
//   majority  the most frequent canonical answer (self-consistency);
//   weighted  argmax_a sum_i [ans_i = a] * s_i;
//   top-k majority (Cobbe et al. 2021): majority among the k best-scored samples.
// Ties break deterministically: the highest score first, then the lowest index.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qstar {

enum class Voting { Naive, Majority, Weighted, TopKMajority };

inline constexpr const char* to_string(Voting v) noexcept {
  switch (v) {
    case Voting::Naive: return "naive";
    case Voting::Majority: return "majority";
    case Voting::Weighted: return "weighted";
    case Voting::TopKMajority: return "topk";
  }
  return "weighted";
}

inline std::optional<Voting> voting_from_string(std::string_view s) noexcept {
  if (s == "naive") return Voting::Naive;
  if (s == "majority") return Voting::Majority;
  if (s == "weighted") return Voting::Weighted;
  if (s == "topk" || s == "top-k" || s == "topk-majority") return Voting::TopKMajority;
  return std::nullopt;
}

/// One sample: its canonical answer (nullopt: no answer, it never wins) and its score.
struct VoteSample {
  std::optional<std::string> answer;
  double score = 0.0;
};

/// The tally of one distinct answer.
struct AnswerTally {
  std::string answer;
  int count = 0;           ///< samples with this answer (among those voting)
  double weight = 0.0;     ///< summed scores
  double best_score = 0.0; ///< highest score of a sample with this answer
  std::size_t best_index = 0;  ///< index of that sample (lowest on ties)
  std::size_t first_index = 0; ///< first sample with this answer
};

struct VoteResult {
  std::optional<std::string> answer;  ///< nullopt when no sample has an answer
  std::vector<AnswerTally> tallies;   ///< ranked: winner first
};

/// Runs one voting rule over samples. `top_k` is used by TopKMajority only (0 means all).
inline VoteResult vote(std::span<const VoteSample> samples, Voting rule, std::size_t top_k = 0) {
  // Order of the samples by score (desc), then index (asc).
  std::vector<std::size_t> order;
  order.reserve(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (samples[i].answer) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return samples[a].score > samples[b].score;
  });
  if (rule == Voting::TopKMajority && top_k > 0 && order.size() > top_k) order.resize(top_k);

  std::vector<AnswerTally> tallies;
  std::unordered_map<std::string_view, std::size_t> where;
  // Visit in index order so first_index is the lowest index; order holds the voters.
  std::vector<std::size_t> voters(order);
  std::sort(voters.begin(), voters.end());
  for (std::size_t i : voters) {
    const std::string& a = *samples[i].answer;
    auto it = where.find(a);
    if (it == where.end()) {
      it = where.emplace(std::string_view(a), tallies.size()).first;
      AnswerTally t;
      t.answer = a;
      t.best_score = samples[i].score;
      t.best_index = i;
      t.first_index = i;
      tallies.push_back(std::move(t));
    }
    AnswerTally& t = tallies[it->second];
    ++t.count;
    t.weight += samples[i].score;
    if (samples[i].score > t.best_score) {
      t.best_score = samples[i].score;
      t.best_index = i;
    }
  }
  // Primary key per rule, then the highest best score, then the lowest best index.
  auto primary = [rule](const AnswerTally& t) -> double {
    switch (rule) {
      case Voting::Naive: return t.best_score;
      case Voting::Majority:
      case Voting::TopKMajority: return static_cast<double>(t.count);
      case Voting::Weighted: return t.weight;
    }
    return 0.0;
  };
  std::sort(tallies.begin(), tallies.end(), [&](const AnswerTally& a, const AnswerTally& b) {
    const double pa = primary(a), pb = primary(b);
    if (pa != pb) return pa > pb;
    if (a.best_score != b.best_score) return a.best_score > b.best_score;
    return a.best_index < b.best_index;
  });
  VoteResult r;
  if (!tallies.empty()) r.answer = tallies.front().answer;
  r.tallies = std::move(tallies);
  return r;
}

}  // namespace qstar
