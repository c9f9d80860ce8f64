// What every search returns, per problem.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qstar/core/budget.hpp"
#include "qstar/core/stats.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"

namespace qstar {

/// A complete trajectory the search found.
struct Candidate {
  NodeId node = kNoNode;              ///< its leaf in the tree
  std::optional<std::string> answer;  ///< the extracted answer (raw), if any
  std::string canonical;              ///< the canonical answer (voting key); "" if none
  double score = 0.0;                 ///< the score used to rank it (aggregated PRM or ORM)
  std::vector<std::string> steps;     ///< the step texts, root first
};

/// One point of the best-of-N curve: the answers each voting rule picks from the first n
/// samples of the run, and whether they are correct (when the task has a checker).
struct CurvePoint {
  int n = 0;
  std::optional<std::string> naive, majority, weighted, top_k;
  std::optional<bool> naive_correct, majority_correct, weighted_correct, top_k_correct;
};

struct SearchResult {
  Problem problem;                    ///< the problem searched
  std::optional<std::string> answer;  ///< the chosen answer (raw form), if any
  std::optional<bool> correct;        ///< the task's exact check, when it has one
  int chosen = -1;                    ///< index in candidates of the trajectory behind answer
  std::vector<Candidate> candidates;  ///< complete trajectories, best score first
  Stats stats;                        ///< compute accounting
  StopReason stop = StopReason::Completed;  ///< why the search ended
  std::vector<CurvePoint> curve;      ///< best-of-N only: n = 1, 2, 4, ..., N
  std::shared_ptr<const Tree> tree;   ///< the whole tree when params.keep_tree

  /// Steps of the chosen trajectory (empty when there is none).
  const std::vector<std::string>& steps() const {
    static const std::vector<std::string> none;
    return chosen >= 0 ? candidates[static_cast<std::size_t>(chosen)].steps : none;
  }
};

}  // namespace qstar
