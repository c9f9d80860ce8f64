// Search params from the command line: the common params' flags, the chosen algorithm's
// own flags (AlgorithmTraits::flags, from the registry) and the budget knob --n.
#include <cstdint>
#include <type_traits>
#include <variant>

#include "app/app.hpp"

namespace qstar::cli {

namespace {

template <class E, class F>
E parse_enum(const Args& a, std::string_view flag, E def, F from_string, std::string_view choices) {
  auto v = a.get(flag);
  if (!v) return def;
  auto e = from_string(*v);
  if (!e) throw UsageError(fmt::format("--{}: '{}' is not one of {}", flag, *v, choices));
  return *e;
}

}  // namespace

std::string canonical_algo(const std::string& a) {
  if (!find_algorithm(a))
    throw UsageError(fmt::format("--algo: '{}' is not one of {}", a, fmt::join(algorithm_names(), ", ")));
  return canonical_algorithm(a);
}

namespace {

/// Sets the fields of `p` that its algorithm's flags (AlgorithmTraits::flags) give.
template <class P>
void apply_algo_flags(P& p, const Args& a) {
  for (const FieldFlag& f : AlgorithmTraits<P>::flags) {
    const std::string flag(f.flag);
    for_each_field(p, [&](std::string_view name, auto& field) {
      if (name != f.field) return;
      using T = std::decay_t<decltype(field)>;
      if constexpr (std::is_same_v<T, bool>) {
        if (a.has(flag)) field = !f.invert;
      } else if (auto v = a.get(flag)) {
        ParamValue value;
        if constexpr (std::is_integral_v<T>) value = parse_int<std::int64_t>(flag, *v, INT64_MIN, INT64_MAX);
        else if constexpr (std::is_floating_point_v<T>) value = parse_double(flag, *v);
        else value = *v;
        try {
          params_detail::assign("--" + flag, field, value);
        } catch (const InvalidArgument& e) {
          throw UsageError(e.what());
        }
      }
    });
  }
}

}  // namespace

/// The params of `algo` from the flags, with `n` as the algorithm's budget knob.
SearchParams make_params(const std::string& algo, int n, const Args& a) {
  SearchParams sp = default_params(algo);
  CommonParams& c = common(sp);
  if (auto v = a.get("max-depth")) c.max_depth = parse_int<int>("max-depth", *v, 1, 1000);
  if (auto v = a.get("max-step-tokens")) c.max_step_tokens = parse_int<int>("max-step-tokens", *v, 0, 1 << 24);
  c.aggregation = parse_enum(a, "aggregation", c.aggregation, aggregation_from_string, "min, prod, last, mean");
  if (c.aggregation == Aggregation::Custom) throw UsageError("--aggregation: 'custom' is only available from code");
  c.voting = parse_enum(a, "voting", c.voting, voting_from_string, "naive, majority, weighted, topk");
  if (auto v = a.get("top-k")) c.top_k = parse_int<int>("top-k", *v, 0, 1 << 20);
  constexpr std::int64_t big = std::int64_t{1} << 50;
  if (auto v = a.get("max-tokens")) c.budget.max_generated_tokens = parse_int<std::int64_t>("max-tokens", *v, 0, big);
  if (auto v = a.get("max-verifier-tokens"))
    c.budget.max_verifier_tokens = parse_int<std::int64_t>("max-verifier-tokens", *v, 0, big);
  if (auto v = a.get("max-calls")) c.budget.max_generator_calls = parse_int<std::int64_t>("max-calls", *v, 0, big);
  if (auto v = a.get("max-nodes")) c.budget.max_nodes = parse_int<std::int64_t>("max-nodes", *v, 0, big);
  if (auto v = a.get("max-seconds")) c.budget.max_wall_seconds = parse_double("max-seconds", *v);

  std::visit([&](auto& p) { apply_algo_flags(p, a); }, sp);
  set_budget(sp, n);  // a budget below a beam/dvts width shrinks the width
  if (auto* p = std::get_if<BestOfNParams>(&sp)) {
    if (a.has("orm")) {
      // --orm chooses the outcome verifier that ranks the samples: it means --scoring orm.
      if (a.has("scoring") && p->scoring != Scoring::Orm)
        throw UsageError(fmt::format("--orm ranks samples by outcome scores: it needs --scoring orm (or no --scoring), "
                                     "not --scoring {}", *a.get("scoring")));
      p->scoring = Scoring::Orm;
    }
  }
  // Validate now so that bad values are reported as bad input, naming the flag's field.
  try {
    std::visit([](const auto& p) { p.validate(); }, sp);
  } catch (const InvalidArgument& e) {
    throw UsageError(fmt::format("invalid parameter for {}: {}", algo, e.what()));
  }
  return sp;
}

}  // namespace qstar::cli
