// Search parameters by field name, for boundaries that speak in names rather than structs
// (the Python bindings' keyword arguments, config files): set a field of any algorithm's
// params struct from a name and a dynamically typed value, list the fields with their
// current values, and build validated params from (name, value) pairs.
//
// Names are the C++ field names; the Budget's fields are "budget.<field>". Enumerations are
// spelled as strings: aggregation/g_aggregation "min|prod|last|mean" ("custom" only through
// CommonParams::custom_aggregation, which is set from code), voting
// "naive|majority|weighted|topk", scoring "auto|prm|orm|none", selection "puct|uct",
// eval "value|rollout|mixed", backup "mean|max", final_choice "visits|value|vote".
// Every error is a qstar::InvalidArgument whose message starts with the field name.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/search/search.hpp"

namespace qstar {

/// A parameter value as a boundary sees it.
using ParamValue = std::variant<bool, std::int64_t, double, std::string>;

// ---- enumeration names ----------------------------------------------------------------

inline constexpr const char* to_string(Scoring s) noexcept {
  switch (s) {
    case Scoring::Auto: return "auto";
    case Scoring::Prm: return "prm";
    case Scoring::Orm: return "orm";
    case Scoring::None: return "none";
  }
  return "auto";
}
inline std::optional<Scoring> scoring_from_string(std::string_view s) noexcept {
  if (s == "auto") return Scoring::Auto;
  if (s == "prm") return Scoring::Prm;
  if (s == "orm") return Scoring::Orm;
  if (s == "none") return Scoring::None;
  return std::nullopt;
}
inline constexpr const char* to_string(SelectionRule s) noexcept {
  return s == SelectionRule::Puct ? "puct" : "uct";
}
inline std::optional<SelectionRule> selection_from_string(std::string_view s) noexcept {
  if (s == "puct") return SelectionRule::Puct;
  if (s == "uct") return SelectionRule::Uct;
  return std::nullopt;
}
inline constexpr const char* to_string(LeafEval e) noexcept {
  switch (e) {
    case LeafEval::Value: return "value";
    case LeafEval::Rollout: return "rollout";
    case LeafEval::Mixed: return "mixed";
  }
  return "value";
}
inline std::optional<LeafEval> leaf_eval_from_string(std::string_view s) noexcept {
  if (s == "value") return LeafEval::Value;
  if (s == "rollout") return LeafEval::Rollout;
  if (s == "mixed") return LeafEval::Mixed;
  return std::nullopt;
}
inline constexpr const char* to_string(BackupRule b) noexcept { return b == BackupRule::Mean ? "mean" : "max"; }
inline std::optional<BackupRule> backup_from_string(std::string_view s) noexcept {
  if (s == "mean") return BackupRule::Mean;
  if (s == "max") return BackupRule::Max;
  return std::nullopt;
}
inline constexpr const char* to_string(FinalChoice f) noexcept {
  switch (f) {
    case FinalChoice::Visits: return "visits";
    case FinalChoice::Value: return "value";
    case FinalChoice::Vote: return "vote";
  }
  return "visits";
}
inline std::optional<FinalChoice> final_choice_from_string(std::string_view s) noexcept {
  if (s == "visits") return FinalChoice::Visits;
  if (s == "value") return FinalChoice::Value;
  if (s == "vote") return FinalChoice::Vote;
  return std::nullopt;
}

namespace params_detail {

// The string <-> enum table of each enumeration a params struct holds.
template <class E>
struct EnumNames;
template <>
struct EnumNames<Aggregation> {
  static constexpr const char* choices = "min, prod, last, mean, custom";
  static std::optional<Aggregation> parse(std::string_view s) { return aggregation_from_string(s); }
};
template <>
struct EnumNames<Voting> {
  static constexpr const char* choices = "naive, majority, weighted, topk";
  static std::optional<Voting> parse(std::string_view s) { return voting_from_string(s); }
};
template <>
struct EnumNames<Scoring> {
  static constexpr const char* choices = "auto, prm, orm, none";
  static std::optional<Scoring> parse(std::string_view s) { return scoring_from_string(s); }
};
template <>
struct EnumNames<SelectionRule> {
  static constexpr const char* choices = "puct, uct";
  static std::optional<SelectionRule> parse(std::string_view s) { return selection_from_string(s); }
};
template <>
struct EnumNames<LeafEval> {
  static constexpr const char* choices = "value, rollout, mixed";
  static std::optional<LeafEval> parse(std::string_view s) { return leaf_eval_from_string(s); }
};
template <>
struct EnumNames<BackupRule> {
  static constexpr const char* choices = "mean, max";
  static std::optional<BackupRule> parse(std::string_view s) { return backup_from_string(s); }
};
template <>
struct EnumNames<FinalChoice> {
  static constexpr const char* choices = "visits, value, vote";
  static std::optional<FinalChoice> parse(std::string_view s) { return final_choice_from_string(s); }
};

inline const char* value_type_name(const ParamValue& v) noexcept {
  constexpr const char* names[] = {"a bool", "an integer", "a float", "a string"};
  return names[v.index()];
}

/// Assigns `v` to `field`, converting where lossless; InvalidArgument naming `name` otherwise.
template <class T>
void assign(std::string_view name, T& field, const ParamValue& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (const auto* b = std::get_if<bool>(&v)) {
      field = *b;
      return;
    }
    throw InvalidArgument(fmt::format("{}: expected a bool, got {}", name, value_type_name(v)));
  } else if constexpr (std::is_integral_v<T>) {
    const auto* i = std::get_if<std::int64_t>(&v);
    if (!i) throw InvalidArgument(fmt::format("{}: expected an integer, got {}", name, value_type_name(v)));
    using L = std::numeric_limits<T>;
    if constexpr (std::is_unsigned_v<T>) {
      if (*i < 0) throw InvalidArgument(fmt::format("{}: {} is out of range [0, {}]", name, *i, L::max()));
    } else {
      if (*i < static_cast<std::int64_t>(L::min()) || *i > static_cast<std::int64_t>(L::max()))
        throw InvalidArgument(fmt::format("{}: {} is out of range [{}, {}]", name, *i, L::min(), L::max()));
    }
    field = static_cast<T>(*i);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (const auto* d = std::get_if<double>(&v)) field = static_cast<T>(*d);
    else if (const auto* i = std::get_if<std::int64_t>(&v)) field = static_cast<T>(*i);
    else throw InvalidArgument(fmt::format("{}: expected a number, got {}", name, value_type_name(v)));
  } else if constexpr (std::is_enum_v<T>) {
    const auto* s = std::get_if<std::string>(&v);
    if (!s) throw InvalidArgument(fmt::format("{}: expected a string ({}), got {}", name, EnumNames<T>::choices,
                                              value_type_name(v)));
    const auto e = EnumNames<T>::parse(*s);
    if (!e) throw InvalidArgument(fmt::format("{}: '{}' is not one of {}", name, *s, EnumNames<T>::choices));
    field = *e;
  } else {
    static_assert(sizeof(T) == 0, "unsupported parameter type");
  }
}

template <class T>
json::Value to_json_value(const T& field) {
  if constexpr (std::is_same_v<T, bool>) return json::Value(field);
  else if constexpr (std::is_integral_v<T>) return json::Value(static_cast<std::int64_t>(field));
  else if constexpr (std::is_floating_point_v<T>) return json::Value(static_cast<double>(field));
  else return json::Value(to_string(field));
}

}  // namespace params_detail

// ---- the fields of each params struct ---------------------------------------------------

/// Calls f(name, field) for every named field of the common params (custom_aggregation is
/// not named: it is a function, set from code).
template <class P, class F>
  requires std::derived_from<std::remove_const_t<P>, CommonParams>
void for_each_common_field(P& p, F&& f) {
  f("max_depth", p.max_depth);
  f("max_step_tokens", p.max_step_tokens);
  f("aggregation", p.aggregation);
  f("voting", p.voting);
  f("top_k", p.top_k);
  f("budget.max_generated_tokens", p.budget.max_generated_tokens);
  f("budget.max_verifier_tokens", p.budget.max_verifier_tokens);
  f("budget.max_generator_calls", p.budget.max_generator_calls);
  f("budget.max_nodes", p.budget.max_nodes);
  f("budget.max_wall_seconds", p.budget.max_wall_seconds);
  f("keep_tree", p.keep_tree);
}

/// Calls f(name, field) for every named field of an algorithm's params: its own fields
/// first (AlgorithmTraits<P>::own_fields), then the common ones.
template <class P, class F>
void for_each_field(P& p, F&& f) {
  AlgorithmTraits<std::remove_const_t<P>>::own_fields(p, f);
  for_each_common_field(p, f);
}

/// The field names of the params held in `p`, in for_each_field order.
inline std::vector<std::string> param_names(const SearchParams& p) {
  std::vector<std::string> out;
  std::visit([&](const auto& x) { for_each_field(x, [&](const char* name, const auto&) { out.emplace_back(name); }); },
             p);
  return out;
}

/// Sets the field `name` of the params held in `p` from `value`. Throws InvalidArgument
/// naming the field when the value has the wrong type or range, and naming the algorithm
/// and its fields when it has no field of that name.
inline void set_param(SearchParams& p, std::string_view name, const ParamValue& value) {
  bool found = false;
  std::visit(
      [&](auto& x) {
        for_each_field(x, [&](const char* field, auto& ref) {
          if (found || name != field) return;
          found = true;
          params_detail::assign(name, ref, value);
        });
      },
      p);
  if (!found) {
    if (name == "custom_aggregation")
      throw InvalidArgument("custom_aggregation: a function; set CommonParams::custom_aggregation from code");
    throw InvalidArgument(fmt::format("{}: '{}' has no parameter of that name (its parameters: {})", name,
                                      algorithm_name(p), fmt::join(param_names(p), ", ")));
  }
}

/// The params of `algo` (a name or alias of search/registry.hpp) with
/// `values` assigned in order, validated (the struct's validate()).
inline SearchParams make_params(std::string_view algo,
                                const std::vector<std::pair<std::string, ParamValue>>& values) {
  SearchParams p = default_params(algo);
  for (const auto& [name, value] : values) set_param(p, name, value);
  std::visit([](const auto& x) { x.validate(); }, p);
  return p;
}

/// Every named field of `p` and its value, as a JSON object ({"num_beams": 16, ...,
/// "aggregation": "last", "budget.max_nodes": 0, ...}).
inline json::Value params_to_json(const SearchParams& p) {
  json::Value o = json::Value::object();
  std::visit(
      [&](const auto& x) {
        for_each_field(x, [&](const char* name, const auto& ref) { o.append(name, params_detail::to_json_value(ref)); });
      },
      p);
  return o;
}

}  // namespace qstar
