// Parameters shared by every search. Each algorithm's params struct derives from
// CommonParams and adds its own fields; every field has a default and a comment, and
// validate() throws qstar::InvalidArgument naming the field.
#pragma once

#include <cstdint>
#include <string>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/budget.hpp"
#include "qstar/core/voting.hpp"
#include "qstar/error.hpp"

namespace qstar {

struct CommonParams {
  /// Steps per trajectory at most; a node at this depth ends its trajectory (no answer
  /// unless its step is a final answer).
  int max_depth = 16;
  /// Per-step token cap passed to the generator as max_new_tokens (0: the generator's own).
  int max_step_tokens = 0;
  /// How step scores combine into a trajectory score (ranking and voting).
  Aggregation aggregation = Aggregation::Last;
  /// Used when aggregation == Custom.
  CustomAggregation custom_aggregation;
  /// How the final answer is chosen among complete trajectories.
  Voting voting = Voting::Weighted;
  /// k of top-k majority voting (0: all samples).
  int top_k = 0;
  /// Compute caps per problem.
  Budget budget;
  /// Return the whole tree in SearchResult::tree (for traces and inspection).
  bool keep_tree = false;

  void validate() const {
    if (max_depth < 1) throw InvalidArgument("max_depth must be >= 1");
    if (max_step_tokens < 0) throw InvalidArgument("max_step_tokens must be >= 0");
    if (aggregation == Aggregation::Custom && !custom_aggregation)
      throw InvalidArgument("custom_aggregation must be set when aggregation is 'custom'");
    if (top_k < 0) throw InvalidArgument("top_k must be >= 0");
    budget.validate();
  }
};

}  // namespace qstar
