// Internal, torch-typed: prefix-sharing prefill planning over the shared-prefix KV cache,
// used by both LMGenerator (its contexts) and PrmVerifier (its scored sequences).
//
// When several sequences of one call start with the same tokens that the cache does not
// hold yet (a few-shot preamble or a problem statement common to every request), computing
// that prefix once, first, and letting every sequence start from its cached KV saves
// (n - 1) times its length. plan_shared_prefixes() picks those prefixes; the caller
// prefills them (one batched forward), inserts them into the cache, keeps them pinned,
// and then runs its own sequences. Each caller keeps its own PrefixSharing, so that its
// forwards (and so its float rounding) are exactly those it always made:
//  * LMGenerator: min_tokens 16, keep_last_token, Rule::EachPrefix, planned again after
//    every prefill round (rounds go from the shortest shared prefixes to longer ones).
//  * PrmVerifier: min_tokens = PrmParams::share_min_tokens (32), Rule::TotalSaving,
//    planned again over the chosen prefixes themselves (shorter prefixes they share first).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "torch/kv_cache.hpp"

namespace qstar::lm {

/// How the sequences of a call share uncached prefixes.
struct PrefixSharing {
  enum class Rule {
    /// Every prefix that two neighbouring sequences (in lexicographic order) share with at
    /// least min_tokens tokens not cached yet; only the minimal ones (none of the others is
    /// a proper prefix of them).
    EachPrefix,
    /// Every sequence's longest prefix shared with a neighbour, all of them or none: when
    /// the tokens saved in total (computed by each sharer, minus computed once) reach
    /// min_tokens and are > 0.
    TotalSaving,
  };
  /// Tokens a prefix (EachPrefix) or the plan (TotalSaving) must save; negative: never
  /// share.
  std::int64_t min_tokens = 16;
  /// A sequence's last token never joins a shared prefix (its own forward must give the
  /// next-token logits).
  bool keep_last_token = false;
  Rule rule = Rule::EachPrefix;
};

/// The prefixes of `seqs` worth computing once first, in lexicographic order, each a
/// proper prefix of at least two sequences. `cached[i]` is how many leading tokens of
/// seqs[i] the cache holds (TotalSaving); EachPrefix looks each candidate up in `cache`
/// instead (match(), whose pins are dropped at once), and ignores `cached`. `seqs` must be
/// sorted lexicographically for EachPrefix (neighbours share the longest prefixes); any
/// order for TotalSaving.
std::vector<std::vector<std::int32_t>> plan_shared_prefixes(
    std::span<const std::vector<std::int32_t>* const> seqs, std::span<const std::int64_t> cached,
    PrefixCache& cache, const PrefixSharing& sharing);

/// The length of the longest common prefix of `a` and `b`.
std::int64_t common_prefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b);

}  // namespace qstar::lm
