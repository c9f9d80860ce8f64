// Decorator (lc0 style) that caps the batch a plug-in receives: the search still makes one
// logical call per iteration, split into chunks of at most `max_batch` requests (by the
// engine, which reads max_batch_size(), and by the decorator itself when it is called
// directly), both through core/concepts.hpp's call_in_chunks.
// Results are identical to the unsplit call for any plug-in that honours the concepts'
// rule that results depend on each request alone.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <fmt/format.h>

#include "qstar/core/concepts.hpp"
#include "qstar/error.hpp"

namespace qstar {

template <class P>
struct BatchSplit {
  P& inner;                 ///< the wrapped plug-in (outlives the decorator)
  std::size_t max_batch;    ///< >= 1
  std::string name() const { return plugin_name(inner, "plug-in"); }
  std::size_t max_batch_size() const { return max_batch; }
  auto expand(std::span<const ExpandRequest> b)
    requires Generator<P>
  { return call_in_chunks(b, max_batch, [&](auto part) { return inner.expand(part); }, mismatch()); }
  auto score_steps(std::span<const StepScoreRequest> b)
    requires StepVerifier<P>
  { return call_in_chunks(b, max_batch, [&](auto part) { return inner.score_steps(part); }, mismatch()); }
  auto score_outcomes(std::span<const OutcomeRequest> b)
    requires OutcomeVerifier<P>
  { return call_in_chunks(b, max_batch, [&](auto part) { return inner.score_outcomes(part); }, mismatch()); }

 private:
  auto mismatch() const {
    return [this](std::size_t got, std::size_t want) {
      throw PluginError(fmt::format("plug-in '{}' returned {} results for a batch of {}", name(), got, want));
    };
  }
};

}  // namespace qstar
