// One entry point over every algorithm: qstar::search(problems, task, gen, ver, params, seed)
// where params is any algorithm's params struct (held in SearchParams, the registry of
// search/registry.hpp).
#pragma once

#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "qstar/search/registry.hpp"

namespace qstar {

template <Task T, Generator G, class V>
std::vector<SearchResult> search(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                 const SearchParams& params, std::uint64_t seed) {
  return std::visit(
      [&](const auto& p) -> std::vector<SearchResult> {
        using Tr = AlgorithmTraits<std::decay_t<decltype(p)>>;
        if constexpr (!Tr::needs_step_verifier || StepVerifier<V>) {
          return Tr::run(problems, task, gen, ver, p, seed);
        } else {
          throw InvalidArgument(std::string("algo '") + Tr::name.data() +
                                "' needs a step verifier (PRM); only best-of-n runs with an outcome verifier or none");
        }
      },
      params);
}

}  // namespace qstar
