// One entry point over every algorithm: qstar::search(problems, task, gen, ver, params, seed)
// where params is any algorithm's params struct (held in SearchParams).
#pragma once

#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "qstar/search/beam.hpp"
#include "qstar/search/best_first.hpp"
#include "qstar/search/best_of_n.hpp"
#include "qstar/search/dvts.hpp"
#include "qstar/search/mcts.hpp"

namespace qstar {

using SearchParams = std::variant<BestOfNParams, BeamParams, DvtsParams, BestFirstParams, MctsParams>;

/// The algorithm's name as the CLI and bindings spell it.
inline const char* algorithm_name(const SearchParams& p) noexcept {
  constexpr const char* names[] = {"best-of-n", "beam", "dvts", "best-first", "mcts"};
  return names[p.index()];
}

/// Default params of an algorithm by name; throws InvalidArgument naming "algo".
inline SearchParams default_params(std::string_view algo) {
  if (algo == "best-of-n" || algo == "bon") return BestOfNParams{};
  if (algo == "beam") return BeamParams{};
  if (algo == "dvts") return DvtsParams{};
  if (algo == "best-first") return BestFirstParams{};
  if (algo == "mcts") return MctsParams{};
  throw InvalidArgument("algo must be one of best-of-n, beam, dvts, best-first, mcts (got '" +
                        std::string(algo) + "')");
}

inline const CommonParams& common(const SearchParams& p) {
  return std::visit([](const auto& x) -> const CommonParams& { return x; }, p);
}
inline CommonParams& common(SearchParams& p) {
  return std::visit([](auto& x) -> CommonParams& { return x; }, p);
}

template <Task T, Generator G, class V>
std::vector<SearchResult> search(std::span<const Problem> problems, const T& task, G& gen, V& ver,
                                 const SearchParams& params, std::uint64_t seed) {
  if (const auto* p = std::get_if<BestOfNParams>(&params)) return best_of_n(problems, task, gen, ver, *p, seed);
  if constexpr (StepVerifier<V>) {
    if (const auto* p = std::get_if<BeamParams>(&params)) return beam_search(problems, task, gen, ver, *p, seed);
    if (const auto* p = std::get_if<DvtsParams>(&params)) return dvts(problems, task, gen, ver, *p, seed);
    if (const auto* p = std::get_if<BestFirstParams>(&params)) return best_first(problems, task, gen, ver, *p, seed);
    if (const auto* p = std::get_if<MctsParams>(&params)) return mcts_search(problems, task, gen, ver, *p, seed);
  }
  throw InvalidArgument(std::string("algo '") + algorithm_name(params) +
                        "' needs a step verifier (PRM); only best-of-n runs with an outcome verifier or none");
}

}  // namespace qstar
