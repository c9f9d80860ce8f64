// Decorator (lc0 style) that caps the batch a plug-in receives: the search still makes one
// logical call per iteration, split here into chunks of at most `max_batch` requests.
// Results are identical to the unsplit call for any plug-in that honours the concepts'
// rule that results depend on each request alone.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "qstar/core/concepts.hpp"

namespace qstar {

template <class P>
struct BatchSplit {
  P& inner;                 ///< the wrapped plug-in (outlives the decorator)
  std::size_t max_batch;    ///< >= 1
  std::string name() const { return plugin_name(inner, "plug-in"); }
  std::size_t max_batch_size() const { return max_batch; }
  auto expand(std::span<const ExpandRequest> b)
    requires Generator<P>
  { return inner.expand(b); }
  auto score_steps(std::span<const StepScoreRequest> b)
    requires StepVerifier<P>
  { return inner.score_steps(b); }
  auto score_outcomes(std::span<const OutcomeRequest> b)
    requires OutcomeVerifier<P>
  { return inner.score_outcomes(b); }
};

}  // namespace qstar
