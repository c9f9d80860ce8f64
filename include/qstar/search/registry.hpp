// The algorithm registry: the one list of search algorithms, and the lookups the boundaries
// (CLI, Python bindings, config files) make by name.
//
// An algorithm is its header (params struct deriving from CommonParams, the search function,
// and an AlgorithmTraits specialisation: see search/params.hpp) plus one entry in
// SearchParams below. Everything else (qstar::search, default_params, the named params of
// search/named_params.hpp, the CLI's flags, the Python bindings) follows from that entry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "qstar/error.hpp"
#include "qstar/search/adaptive_best_of_n.hpp"
#include "qstar/search/beam.hpp"
#include "qstar/search/best_first.hpp"
#include "qstar/search/best_of_n.hpp"
#include "qstar/search/deepconf.hpp"
#include "qstar/search/dvts.hpp"
#include "qstar/search/mcts.hpp"
#include "qstar/search/params.hpp"
#include "qstar/search/particle_filter.hpp"
#include "qstar/search/rebase.hpp"

namespace qstar {

/// The registry: one alternative per algorithm, in the order names are listed.
using SearchParams = std::variant<BestOfNParams, BeamParams, DvtsParams, BestFirstParams, MctsParams,
                                  ParticleFilterParams, RebaseParams, AdaptiveBestOfNParams, DeepConfParams>;

/// Other spellings accepted for an algorithm's name: {alias, name}.
inline constexpr std::pair<std::string_view, std::string_view> kAlgorithmAliases[] = {
    {"bon", "best-of-n"}, {"pf", "particle-filter"}, {"asc", "adaptive-best-of-n"}};

namespace registry_detail {
template <class F, std::size_t... I>
void for_each_alternative(F& f, std::index_sequence<I...>) {
  (f(std::type_identity<std::variant_alternative_t<I, SearchParams>>{}), ...);
}
}  // namespace registry_detail

/// Calls f(std::type_identity<P>{}) for every algorithm's params struct P, in registry order.
template <class F>
void for_each_algorithm(F&& f) {
  registry_detail::for_each_alternative(f, std::make_index_sequence<std::variant_size_v<SearchParams>>{});
}

/// The algorithm's name as the CLI and bindings spell it.
inline const char* algorithm_name(const SearchParams& p) noexcept {
  // Every name is a string literal: data() is NUL-terminated.
  return std::visit([](const auto& x) { return AlgorithmTraits<std::decay_t<decltype(x)>>::name.data(); }, p);
}

/// Every algorithm's name, in registry order.
inline std::vector<std::string> algorithm_names() {
  std::vector<std::string> out;
  for_each_algorithm([&](auto t) { out.emplace_back(AlgorithmTraits<typename decltype(t)::type>::name); });
  return out;
}

/// Default params of an algorithm by name or alias; nullopt for an unknown name.
inline std::optional<SearchParams> find_algorithm(std::string_view algo) {
  for (const auto& [alias, name] : kAlgorithmAliases)
    if (algo == alias) algo = name;
  std::optional<SearchParams> out;
  for_each_algorithm([&](auto t) {
    using P = typename decltype(t)::type;
    if (!out && algo == AlgorithmTraits<P>::name) out.emplace(P{});
  });
  return out;
}

/// Default params of an algorithm by name; throws InvalidArgument naming "algo".
inline SearchParams default_params(std::string_view algo) {
  if (auto p = find_algorithm(algo)) return *p;
  throw InvalidArgument(fmt::format("algo must be one of {} (got '{}')", fmt::join(algorithm_names(), ", "), algo));
}

/// The canonical name of an algorithm given by name or alias; InvalidArgument as default_params.
inline std::string canonical_algorithm(std::string_view algo) { return algorithm_name(default_params(algo)); }

/// Whether the algorithm needs step scores (a PRM); false: it runs with an ORM or no verifier.
inline bool needs_step_verifier(const SearchParams& p) noexcept {
  return std::visit([](const auto& x) { return AlgorithmTraits<std::decay_t<decltype(x)>>::needs_step_verifier; }, p);
}

/// The name of the field the algorithm's budget knob N sets ("n", "num_beams", ...).
inline std::string_view budget_field(const SearchParams& p) noexcept {
  return std::visit([](const auto& x) { return AlgorithmTraits<std::decay_t<decltype(x)>>::budget_field; }, p);
}

/// The budget knob N: best-of-n samples, beam beams, dvts completions, best-first
/// expansions, mcts simulations.
inline int budget(const SearchParams& p) {
  int n = 0;
  std::visit(
      [&](const auto& x) {
        using Tr = AlgorithmTraits<std::decay_t<decltype(x)>>;
        Tr::own_fields(x, [&](std::string_view name, const auto& field) {
          if constexpr (std::is_same_v<std::decay_t<decltype(field)>, int>)
            if (name == Tr::budget_field) n = field;
        });
      },
      p);
  return n;
}

/// Sets the budget knob N (and what follows it: a beam or dvts width above N shrinks to N).
inline void set_budget(SearchParams& p, int n) {
  std::visit([&](auto& x) { AlgorithmTraits<std::decay_t<decltype(x)>>::set_budget(x, n); }, p);
}

inline const CommonParams& common(const SearchParams& p) {
  return std::visit([](const auto& x) -> const CommonParams& { return x; }, p);
}
inline CommonParams& common(SearchParams& p) {
  return std::visit([](auto& x) -> CommonParams& { return x; }, p);
}

}  // namespace qstar
