// Search results as JSON values: Stats, candidates, the best-of-N curve, a whole
// SearchResult, and a tree as nested nodes (each node with a "children" array). The field
// names are stable: the Python bindings' Result.to_json() and Tree.to_dict() are these.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/search/result.hpp"

namespace qstar {

namespace result_detail {
inline json::Value opt(const std::optional<std::string>& s) { return s ? json::Value(*s) : json::Value(); }
inline json::Value opt(std::optional<bool> b) { return b ? json::Value(*b) : json::Value(); }
inline json::Value finite(double d) { return std::isfinite(d) ? json::Value(d) : json::Value(); }
}  // namespace result_detail

/// A batch-size histogram as {"<=1": calls, "<=2": calls, ...} (non-empty buckets only).
inline json::Value histogram_to_json(const BatchHistogram& h) {
  json::Value m = json::Value::object();
  for (std::size_t b = 0; b < BatchHistogram::kBuckets; ++b)
    if (h.counts[b]) m.append(fmt::format("<={}", BatchHistogram::bucket_limit(b)), h.counts[b]);
  return m;
}

/// Every Stats counter, wall_seconds() included (the CLI's --json "stats" object).
inline json::Value stats_to_json(const Stats& s) {
  json::Value o = json::Value::object();
  o.append("generated_tokens", s.generated_tokens);
  o.append("verifier_tokens", s.verifier_tokens);
  o.append("generator_calls", s.generator_calls);
  o.append("verifier_calls", s.verifier_calls);
  o.append("generator_requests", s.generator_requests);
  o.append("generated_steps", s.generated_steps);
  o.append("verified_steps", s.verified_steps);
  o.append("empty_proposals", s.empty_proposals);
  o.append("pruned_nodes", s.pruned_nodes);
  o.append("nodes", s.nodes);
  o.append("iterations", s.iterations);
  o.append("samples", s.samples);
  o.append("generator_seconds", s.generator_seconds);
  o.append("verifier_seconds", s.verifier_seconds);
  o.append("overhead_seconds", s.overhead_seconds);
  o.append("wall_seconds", s.wall_seconds());
  o.append("generator_batches", histogram_to_json(s.generator_batches));
  o.append("verifier_batches", histogram_to_json(s.verifier_batches));
  return o;
}

/// {"node", "answer", "canonical", "score", "steps"}.
inline json::Value candidate_to_json(const Candidate& c) {
  json::Value o = json::Value::object();
  o.append("node", c.node);
  o.append("answer", result_detail::opt(c.answer));
  o.append("canonical", c.canonical);
  o.append("score", result_detail::finite(c.score));
  json::Value steps = json::Value::array();
  for (const auto& s : c.steps) steps.push_back(s);
  o.append("steps", std::move(steps));
  return o;
}

/// {"n", "naive", "majority", "weighted", "top_k", "naive_correct", ...}.
inline json::Value curve_point_to_json(const CurvePoint& p) {
  using result_detail::opt;
  json::Value o = json::Value::object();
  o.append("n", p.n);
  o.append("naive", opt(p.naive));
  o.append("majority", opt(p.majority));
  o.append("weighted", opt(p.weighted));
  o.append("top_k", opt(p.top_k));
  o.append("naive_correct", opt(p.naive_correct));
  o.append("majority_correct", opt(p.majority_correct));
  o.append("weighted_correct", opt(p.weighted_correct));
  o.append("top_k_correct", opt(p.top_k_correct));
  return o;
}

/// One node's own fields (no children): the trace's node fields ("token_logprobs" and
/// "token_entropies" only when the step has them).
inline json::Value node_to_json(const Tree& t, NodeId id) {
  using result_detail::finite;
  const Node& n = t[id];
  json::Value o = json::Value::object();
  o.append("id", id);
  o.append("parent", n.parent);
  o.append("depth", n.depth);
  o.append("text", t.text(id));
  json::Value toks = json::Value::array();
  for (TokenId k : t.tokens(id)) toks.push_back(k);
  o.append("tokens", std::move(toks));
  o.append("num_tokens", n.num_tokens);
  o.append("logprob", finite(n.logprob));
  if (n.logprob_size) o.append("token_logprobs", json::float_array(t.token_logprobs(id).data(), n.logprob_size));
  if (n.entropy_size) o.append("token_entropies", json::float_array(t.token_entropies(id).data(), n.entropy_size));
  o.append("score", finite(n.score));
  o.append("prior", finite(n.prior));
  o.append("visits", n.visits);
  o.append("value_sum", finite(n.value_sum));
  o.append("q", finite(n.q()));
  o.append("value", finite(n.value));
  o.append("terminal", n.terminal);
  o.append("finish", to_string(n.finish));
  const auto a = t.answer(id);
  o.append("answer", a ? json::Value(*a) : json::Value());
  o.append("detached", n.detached);
  o.append("pruned", n.pruned);
  return o;
}

/// The tree as nested objects: the root's node_to_json() with "children" (attached
/// children, insertion order) and "rollouts" (its detached rollout/lookahead children, id
/// order), recursively. Built iteratively, so deep trees do not exhaust the stack.
inline json::Value tree_to_nested_json(const Tree& t) {
  std::vector<std::vector<NodeId>> rollouts(t.size());
  for (std::size_t k = 1; k < t.size(); ++k) {
    const Node& n = t[static_cast<NodeId>(k)];
    if (n.detached) rollouts[static_cast<std::size_t>(n.parent)].push_back(static_cast<NodeId>(k));
  }
  std::vector<json::Value> built(t.size());
  // Children always have larger ids than their parents: build from the last node back.
  for (std::size_t k = t.size(); k-- > 0;) {
    const auto id = static_cast<NodeId>(k);
    json::Value o = node_to_json(t, id);
    json::Value children = json::Value::array();
    for (NodeId c : t.children(id)) children.push_back(std::move(built[static_cast<std::size_t>(c)]));
    o.append("children", std::move(children));
    json::Value rolled = json::Value::array();
    for (NodeId c : rollouts[k]) rolled.push_back(std::move(built[static_cast<std::size_t>(c)]));
    o.append("rollouts", std::move(rolled));
    built[k] = std::move(o);
  }
  return std::move(built[0]);
}

/// The trace line's optional fields of a result: the chosen trajectory's leaf and the
/// token/call totals (write_trace_line(..., trace_extras_of(r))).
inline TraceExtras trace_extras_of(const SearchResult& r) {
  TraceExtras x;
  if (r.chosen >= 0 && static_cast<std::size_t>(r.chosen) < r.candidates.size())
    x.chosen_node = r.candidates[static_cast<std::size_t>(r.chosen)].node;
  x.stats = TraceStats{r.stats.generated_tokens, r.stats.verifier_tokens, r.stats.generator_calls,
                       r.stats.verifier_calls};
  return x;
}

/// The whole result: {"problem": {"id", "text", "gold"}, "answer", "correct", "chosen",
/// "steps" (of the chosen trajectory), "stop_reason", "candidates": [...], "stats": {...},
/// "curve": [...] (best-of-N)}. The tree is not included (see tree_to_nested_json and the
/// trace writer).
inline json::Value result_to_json(const SearchResult& r) {
  using result_detail::opt;
  json::Value o = json::Value::object();
  json::Value p = json::Value::object();
  p.append("id", r.problem.id);
  p.append("text", r.problem.text);
  p.append("gold", opt(r.problem.gold));
  o.append("problem", std::move(p));
  o.append("answer", opt(r.answer));
  o.append("correct", opt(r.correct));
  o.append("chosen", r.chosen);
  json::Value steps = json::Value::array();
  for (const auto& s : r.steps()) steps.push_back(s);
  o.append("steps", std::move(steps));
  o.append("stop_reason", to_string(r.stop));
  json::Value cands = json::Value::array();
  for (const auto& c : r.candidates) cands.push_back(candidate_to_json(c));
  o.append("candidates", std::move(cands));
  o.append("stats", stats_to_json(r.stats));
  json::Value curve = json::Value::array();
  for (const auto& c : r.curve) curve.push_back(curve_point_to_json(c));
  o.append("curve", std::move(curve));
  return o;
}

}  // namespace qstar
