// Compute caps for one problem's search, and why a search stopped.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "qstar/error.hpp"

namespace qstar {

/// Why a search of one problem ended.
enum class StopReason {
  Running = 0,      ///< not stopped (internal)
  Completed,        ///< the algorithm finished its own schedule
  Solved,           ///< an early-exit condition held (best-first threshold)
  Exhausted,        ///< nothing left to expand (every frontier node terminal or dropped)
  GeneratedTokens,  ///< Budget::max_generated_tokens reached
  VerifierTokens,   ///< Budget::max_verifier_tokens reached
  GeneratorCalls,   ///< Budget::max_generator_calls reached
  Nodes,            ///< Budget::max_nodes reached
  WallTime,         ///< Budget::max_wall_seconds reached
};

inline constexpr const char* to_string(StopReason r) noexcept {
  switch (r) {
    case StopReason::Running: return "running";
    case StopReason::Completed: return "completed";
    case StopReason::Solved: return "solved";
    case StopReason::Exhausted: return "exhausted";
    case StopReason::GeneratedTokens: return "generated_tokens";
    case StopReason::VerifierTokens: return "verifier_tokens";
    case StopReason::GeneratorCalls: return "generator_calls";
    case StopReason::Nodes: return "nodes";
    case StopReason::WallTime: return "wall_time";
  }
  return "running";
}

/// Caps on one problem's search. 0 means "no cap". Counts are per problem; wall time is
/// measured from the start of the search call. The search checks the wall clock between
/// iterations (it never interrupts a plug-in call), so wall time can overrun by at most one
/// iteration; every other cap is never exceeded:
///  - generated tokens: each request's max_new_tokens is cut so the call cannot exceed it;
///  - verifier tokens: requests that would exceed it are not sent, their nodes are pruned;
///  - nodes: requests ask for no more candidates than nodes are left;
///  - generator calls: no call is made once the cap is reached.
struct Budget {
  std::int64_t max_generated_tokens = 0;  ///< tokens the generator may produce
  std::int64_t max_verifier_tokens = 0;   ///< tokens the verifiers may score
  std::int64_t max_generator_calls = 0;   ///< generator calls this problem may take part in
  std::int64_t max_nodes = 0;             ///< tree nodes, root and rollout nodes included
  double max_wall_seconds = 0.0;          ///< wall-clock seconds

  void validate() const {
    if (max_generated_tokens < 0) throw InvalidArgument("budget.max_generated_tokens must be >= 0");
    if (max_verifier_tokens < 0) throw InvalidArgument("budget.max_verifier_tokens must be >= 0");
    if (max_generator_calls < 0) throw InvalidArgument("budget.max_generator_calls must be >= 0");
    if (max_nodes < 0) throw InvalidArgument("budget.max_nodes must be >= 0");
    if (max_nodes == 1) throw InvalidArgument("budget.max_nodes must be 0 (no cap) or >= 2");
    if (!(max_wall_seconds >= 0.0)) throw InvalidArgument("budget.max_wall_seconds must be >= 0");
  }
};

}  // namespace qstar
