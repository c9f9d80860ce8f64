// Compute accounting for one problem's search (algorithms.md, "Compute accounting").
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string>

namespace qstar {

/// Histogram of batch sizes by power-of-two bucket: bucket b counts calls whose batch
/// size s satisfies 2^(b-1) < s <= 2^b (bucket 0: s == 1).
struct BatchHistogram {
  static constexpr std::size_t kBuckets = 21;  // up to 2^20 and above
  std::array<std::int64_t, kBuckets> counts{};
  static std::size_t bucket(std::size_t size) noexcept {
    if (size <= 1) return 0;
    const std::size_t b = static_cast<std::size_t>(std::bit_width(size - 1));
    return b < kBuckets ? b : kBuckets - 1;
  }
  void add(std::size_t size) noexcept { ++counts[bucket(size)]; }
  /// Upper bound of bucket b.
  static std::size_t bucket_limit(std::size_t b) noexcept { return std::size_t{1} << b; }
  std::int64_t total() const noexcept {
    std::int64_t t = 0;
    for (auto c : counts) t += c;
    return t;
  }
};

/// Counters for one problem. Calls are shared by the problems searched together: a call
/// counts once for every problem that had a request in it, and its time is split between
/// them in proportion to their requests. Batch sizes are those of the whole call.
struct Stats {
  std::int64_t generated_tokens = 0;   ///< tokens of every generated step, rollouts included
  std::int64_t verifier_tokens = 0;    ///< tokens the verifiers were asked to score
  std::int64_t generator_calls = 0;    ///< logical generator calls (one per iteration)
  std::int64_t verifier_calls = 0;     ///< logical verifier calls (step and outcome)
  std::int64_t generator_requests = 0; ///< expansion requests sent
  std::int64_t generated_steps = 0;    ///< steps returned by the generator
  std::int64_t verified_steps = 0;     ///< steps the step verifier scored
  std::int64_t empty_proposals = 0;    ///< requests that came back with no step
  std::int64_t pruned_nodes = 0;       ///< nodes dropped unscored because of a budget cap
  std::int64_t nodes = 0;              ///< tree nodes at the end, root included
  std::int64_t iterations = 0;         ///< search iterations
  std::int64_t samples = 0;            ///< chains sampled (adaptive-best-of-n, deepconf; else 0)
  BatchHistogram generator_batches;    ///< requests per logical generator call
  BatchHistogram verifier_batches;     ///< requests per logical verifier call
  double generator_seconds = 0.0;      ///< this problem's share of generator time
  double verifier_seconds = 0.0;       ///< this problem's share of verifier time
  double overhead_seconds = 0.0;       ///< its share of everything else (the search itself)
  double wall_seconds() const noexcept {
    return generator_seconds + verifier_seconds + overhead_seconds;
  }
};

}  // namespace qstar
