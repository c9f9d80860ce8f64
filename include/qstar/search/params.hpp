// Parameters shared by every search. Each algorithm's params struct derives from
// CommonParams and adds its own fields; every field has a default and a comment, and
// validate() throws qstar::InvalidArgument naming the field.
//
// Each algorithm's header also specialises AlgorithmTraits for its params struct: its name,
// its budget knob, whether it needs step scores, its own named fields and its command-line
// spellings, and how it runs. search/registry.hpp lists the algorithms; adding one is its
// header plus one entry there.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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
  /// Cancellation: called at the start of every iteration, before its plug-in calls; an
  /// exception it throws ends the search and leaves search() unchanged (no results). Empty:
  /// none. Not a named parameter (the CLI and params_to_json ignore it); the Python bindings
  /// set it to raise KeyboardInterrupt on Ctrl-C.
  std::function<void()> interrupt;

  void validate() const {
    if (max_depth < 1) throw InvalidArgument("max_depth must be >= 1");
    if (max_step_tokens < 0) throw InvalidArgument("max_step_tokens must be >= 0");
    if (aggregation == Aggregation::Custom && !custom_aggregation)
      throw InvalidArgument("custom_aggregation must be set when aggregation is 'custom'");
    if (top_k < 0) throw InvalidArgument("top_k must be >= 0");
    budget.validate();
  }
};

/// The command-line spelling of one of an algorithm's own fields: `--flag VALUE` sets `field`
/// (a bool field: `--flag` alone sets it, or clears it when `invert`).
struct FieldFlag {
  std::string_view flag;   ///< without the leading "--", e.g. "expand-k"
  std::string_view field;  ///< the field's name in AlgorithmTraits::own_fields, e.g. "expand_k"
  bool invert = false;     ///< a bool field cleared by the switch (e.g. --sampled-rollouts)
};

/// Specialised by each algorithm header for its params struct P:
///   static constexpr std::string_view name;          the name the CLI and bindings use
///   static constexpr std::string_view budget_field;  the field the budget knob N sets
///   static constexpr bool needs_step_verifier;       false: runs with an ORM or no verifier
///   static constexpr std::array<FieldFlag, K> flags; command-line spellings of own fields
///   own_fields(p, f)        calls f(name, field) for every own (non-common) field
///   set_budget(p, n)        sets the budget knob to n (and anything that must follow it)
///   run(problems, task, gen, ver, p, seed)  the search
template <class P>
struct AlgorithmTraits;

}  // namespace qstar
