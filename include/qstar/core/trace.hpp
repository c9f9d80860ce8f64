// JSONL search traces: one line (one JSON object) per problem holding the problem, the
// outcome and every node of its search tree, in id order.
//
//   {"problem":{"id":"..","text":"..","gold":".."|null},"answer":".."|null,
//    "correct":true|false|null,"stop_reason":"..",["chosen_node":N,]["stats":STATS,]
//    "nodes":[NODE,...]}
//   "chosen_node" (the leaf of the chosen trajectory; its ancestors are the chosen path) and
//   "stats" = {"generated_tokens":N,"verifier_tokens":N,"generator_calls":N,
//   "verifier_calls":N} (the search's totals) are optional (TraceExtras): written only when
//   set, so traces without them are unchanged, and readers of older traces get "unset".
//   NODE = {"id":0,"parent":-1,"depth":0,"text":"","tokens":[],"num_tokens":0,"logprob":0,
//           "score":null,"prior":0,"visits":0,"value_sum":0,"q":0,"value":null,
//           "value_max":null,"terminal":false,"finish":"none","answer":null,"correct":null,
//           "detached":false,"pruned":false}
//   A node whose step has per-token statistics (Step::token_logprobs, token_entropies) has
//   "token_logprobs":[...] and/or "token_entropies":[...] right after "logprob"; the keys are
//   absent when the lists are empty, so traces of generators without them are unchanged.
//   Their values are floats, written in the float's shortest round-trip form.
//
// Doubles are written in their shortest round-trip form; NaN and infinities as null. On
// reading, null gives NaN, except for "value_max" where it gives -inf (its "no value"
// default). "q" (= value_sum / visits, 0 when unvisited) is written for readers and ignored
// on read; "value", "value_max" and "correct" may be absent. Unknown keys are ignored.
// read_trace_line() rebuilds the Tree exactly (Tree::add_child in id order, then the
// statistics), so writing, reading and writing again gives byte-identical lines.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"

namespace qstar {

/// The search's totals a trace line may carry ("stats"; a subset of Stats).
struct TraceStats {
  std::int64_t generated_tokens = 0;  ///< tokens of every generated step
  std::int64_t verifier_tokens = 0;   ///< tokens the verifiers scored
  std::int64_t generator_calls = 0;   ///< logical generator calls
  std::int64_t verifier_calls = 0;    ///< logical verifier calls
  bool operator==(const TraceStats&) const = default;
};

/// The optional record-level fields of a trace line (absent keys: the defaults).
struct TraceExtras {
  NodeId chosen_node = kNoNode;     ///< "chosen_node": the chosen trajectory's leaf; kNoNode: none
  std::optional<TraceStats> stats;  ///< "stats": the search's totals, when known
};

/// One trace line: a problem, its search tree and the outcome.
struct TraceRecord {
  Problem problem;
  Tree tree;
  std::optional<std::string> answer;  ///< the chosen answer, if any
  std::optional<bool> correct;        ///< whether it is right, when known
  std::string stop_reason;            ///< why the search stopped
  /// Per-node correctness (caller-supplied): empty, or one entry per tree node. Reading
  /// gives an empty vector when every node's "correct" is null.
  std::vector<std::optional<bool>> node_correct;
  TraceExtras extras;  ///< "chosen_node" and "stats", when the line has them
};

namespace trace_detail {

inline void check_node_correct(const Tree& tree, std::span<const std::optional<bool>> nc) {
  if (!nc.empty() && nc.size() != tree.size())
    throw InvalidArgument(fmt::format("node_correct: expected 0 or {} entries (one per node), got {}",
                                      tree.size(), nc.size()));
}

inline void check_extras(const Tree& tree, const TraceExtras& x) {
  if (x.chosen_node != kNoNode && !tree.valid(x.chosen_node))
    throw InvalidArgument(fmt::format("chosen_node: {} is not a node id in [0, {})", x.chosen_node, tree.size()));
}

/// The "stats" fields in order (reader, writers).
inline constexpr std::string_view kStatsKeys[] = {"generated_tokens", "verifier_tokens", "generator_calls",
                                                  "verifier_calls"};
inline std::int64_t TraceStats::* const kStatsFields[] = {&TraceStats::generated_tokens, &TraceStats::verifier_tokens,
                                                          &TraceStats::generator_calls, &TraceStats::verifier_calls};

/// `,"chosen_node":N,"stats":{...}` for the fields that are set.
inline void put_extras(std::string& out, const TraceExtras& x) {
  if (x.chosen_node != kNoNode) {
    out.append(",\"chosen_node\":");
    json::dump_int(out, x.chosen_node);
  }
  if (x.stats) {
    out.append(",\"stats\":{");
    for (std::size_t k = 0; k < std::size(kStatsKeys); ++k) {
      if (k) out.push_back(',');
      json::dump_string(out, kStatsKeys[k]);
      out.push_back(':');
      json::dump_int(out, (*x.stats).*kStatsFields[k]);
    }
    out.push_back('}');
  }
}

inline void put_opt_string(std::string& out, const std::optional<std::string_view>& s) {
  if (s) json::dump_string(out, *s);
  else out.append("null");
}
inline void put_opt_bool(std::string& out, std::optional<bool> b) {
  out.append(!b ? "null" : (*b ? "true" : "false"));
}
inline void put_bool(std::string& out, bool b) { out.append(b ? "true" : "false"); }

inline json::Value opt_double(double d) { return std::isfinite(d) ? json::Value(d) : json::Value(); }

inline void put_floats(std::string& out, std::string_view key, std::span<const float> xs) {
  if (xs.empty()) return;
  out.append(",\"");
  out.append(key);
  out.append("\":[");
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i) out.push_back(',');
    json::dump_float(out, xs[i]);
  }
  out.push_back(']');
}


// ---- reading helpers ------------------------------------------------------------------
struct Ctx {
  std::string_view source;
  long long node = -1;  // -1: a record-level field

  [[noreturn]] void fail(std::string_view field, std::string_view what) const {
    if (node >= 0)
      throw ParseError(fmt::format("{}: node {}: field \"{}\": {}", source, node, field, what));
    throw ParseError(fmt::format("{}: field \"{}\": {}", source, field, what));
  }
  const json::Value& req(const json::Value& o, std::string_view key) const {
    const json::Value* v = o.find(key);
    if (!v) fail(key, "missing");
    return *v;
  }
  [[noreturn]] void wrong(std::string_view key, std::string_view want, const json::Value& v) const {
    fail(key, fmt::format("expected {}, got {}", want, json::type_name(v.type())));
  }
  std::int32_t i32(const json::Value& o, std::string_view key) const {
    const json::Value& v = req(o, key);
    std::int64_t i = 0;
    if (v.is_integer()) i = v.as_int();
    else if (!(v.is_double() && json::detail::double_to_int(v.as_double(), i))) wrong(key, "an integer", v);
    if (i < std::numeric_limits<std::int32_t>::min() || i > std::numeric_limits<std::int32_t>::max())
      fail(key, fmt::format("{} is out of int32 range", i));
    return static_cast<std::int32_t>(i);
  }
  double num(const json::Value& o, std::string_view key, double if_null) const {
    const json::Value& v = req(o, key);
    if (v.is_null()) return if_null;
    if (!v.is_number()) wrong(key, "a number or null", v);
    return v.as_double();
  }
  double opt_num(const json::Value& o, std::string_view key, double if_null) const {
    return o.find(key) ? num(o, key, if_null) : if_null;
  }
  bool boolean(const json::Value& o, std::string_view key) const {
    const json::Value& v = req(o, key);
    if (!v.is_bool()) wrong(key, "a bool", v);
    return v.as_bool();
  }
  std::optional<bool> opt_bool(const json::Value& o, std::string_view key, bool may_be_absent) const {
    const json::Value* v = o.find(key);
    if (!v) {
      if (may_be_absent) return std::nullopt;
      fail(key, "missing");
    }
    if (v->is_null()) return std::nullopt;
    if (!v->is_bool()) wrong(key, "a bool or null", *v);
    return v->as_bool();
  }
  const std::string& str(const json::Value& o, std::string_view key) const {
    const json::Value& v = req(o, key);
    if (!v.is_string()) wrong(key, "a string", v);
    return v.as_string();
  }
  /// An optional array of numbers (null: NaN) read as floats; empty when the key is absent.
  void floats(const json::Value& o, std::string_view key, std::vector<float>& out) const {
    out.clear();
    const json::Value* v = o.find(key);
    if (!v) return;
    if (!v->is_array()) wrong(key, "an array", *v);
    out.reserve(v->as_array().size());
    for (std::size_t k = 0; k < v->as_array().size(); ++k) {
      const json::Value& x = v->as_array()[k];
      if (x.is_null()) out.push_back(std::numeric_limits<float>::quiet_NaN());
      else if (x.is_number()) out.push_back(static_cast<float>(x.as_double()));
      else fail(key, fmt::format("element {} is not a number or null", k));
    }
  }
  std::optional<std::string> opt_str(const json::Value& o, std::string_view key) const {
    const json::Value& v = req(o, key);
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) wrong(key, "a string or null", v);
    return v.as_string();
  }
};

}  // namespace trace_detail

/// Appends the JSON object of one trace record to `out` (no newline). `node_correct` is
/// empty or holds one entry per node (else InvalidArgument).
inline void write_trace_to(std::string& out, const Problem& problem, const Tree& tree,
                           const std::optional<std::string>& answer, std::optional<bool> correct,
                           std::string_view stop_reason,
                           std::span<const std::optional<bool>> node_correct = {},
                           const TraceExtras& extras = {}) {
  using namespace trace_detail;
  check_node_correct(tree, node_correct);
  check_extras(tree, extras);
  if (const std::size_t need = out.size() + 256 + tree.size() * 320; need > out.capacity())
    out.reserve(std::max(need, 2 * out.capacity()));
  out.append("{\"problem\":{\"id\":");
  json::dump_string(out, problem.id);
  out.append(",\"text\":");
  json::dump_string(out, problem.text);
  out.append(",\"gold\":");
  put_opt_string(out, problem.gold ? std::optional<std::string_view>(*problem.gold) : std::nullopt);
  out.append("},\"answer\":");
  put_opt_string(out, answer ? std::optional<std::string_view>(*answer) : std::nullopt);
  out.append(",\"correct\":");
  put_opt_bool(out, correct);
  out.append(",\"stop_reason\":");
  json::dump_string(out, stop_reason);
  put_extras(out, extras);
  out.append(",\"nodes\":[");
  const auto nodes = tree.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    const auto id = static_cast<NodeId>(i);
    if (i) out.push_back(',');
    out.append("{\"id\":");
    json::dump_int(out, id);
    out.append(",\"parent\":");
    json::dump_int(out, n.parent);
    out.append(",\"depth\":");
    json::dump_int(out, n.depth);
    out.append(",\"text\":");
    json::dump_string(out, tree.text(id));
    out.append(",\"tokens\":[");
    bool first = true;
    for (TokenId t : tree.tokens(id)) {
      if (!first) out.push_back(',');
      first = false;
      json::dump_int(out, t);
    }
    out.append("],\"num_tokens\":");
    json::dump_int(out, n.num_tokens);
    out.append(",\"logprob\":");
    json::dump_double(out, n.logprob);
    put_floats(out, "token_logprobs", tree.token_logprobs(id));
    put_floats(out, "token_entropies", tree.token_entropies(id));
    out.append(",\"score\":");
    json::dump_double(out, n.score);
    out.append(",\"prior\":");
    json::dump_double(out, n.prior);
    out.append(",\"visits\":");
    json::dump_int(out, n.visits);
    out.append(",\"value_sum\":");
    json::dump_double(out, n.value_sum);
    out.append(",\"q\":");
    json::dump_double(out, n.q());
    out.append(",\"value\":");
    json::dump_double(out, n.value);
    out.append(",\"value_max\":");
    json::dump_double(out, n.value_max);
    out.append(",\"terminal\":");
    put_bool(out, n.terminal);
    out.append(",\"finish\":\"");
    out.append(to_string(n.finish));
    out.append("\",\"answer\":");
    put_opt_string(out, tree.answer(id));
    out.append(",\"correct\":");
    put_opt_bool(out, node_correct.empty() ? std::nullopt : node_correct[i]);
    out.append(",\"detached\":");
    put_bool(out, n.detached);
    out.append(",\"pruned\":");
    put_bool(out, n.pruned);
    out.push_back('}');
  }
  out.append("]}");
}

/// One trace line (no trailing newline).
inline std::string write_trace_line(const Problem& problem, const Tree& tree,
                                    const std::optional<std::string>& answer,
                                    std::optional<bool> correct, std::string_view stop_reason,
                                    std::span<const std::optional<bool>> node_correct = {},
                                    const TraceExtras& extras = {}) {
  std::string out;
  write_trace_to(out, problem, tree, answer, correct, stop_reason, node_correct, extras);
  return out;
}
inline std::string write_trace_line(const TraceRecord& r) {
  return write_trace_line(r.problem, r.tree, r.answer, r.correct, r.stop_reason, r.node_correct, r.extras);
}

/// Writes one trace line and '\n' to `os`; IoError when the stream fails.
inline void write_trace(std::ostream& os, const Problem& problem, const Tree& tree,
                        const std::optional<std::string>& answer, std::optional<bool> correct,
                        std::string_view stop_reason,
                        std::span<const std::optional<bool>> node_correct = {},
                        const TraceExtras& extras = {}) {
  std::string line = write_trace_line(problem, tree, answer, correct, stop_reason, node_correct, extras);
  line.push_back('\n');
  os.write(line.data(), static_cast<std::streamsize>(line.size()));
  if (!os) throw IoError("write_trace: writing the trace stream failed");
}
inline void write_trace(std::ostream& os, const TraceRecord& r) {
  write_trace(os, r.problem, r.tree, r.answer, r.correct, r.stop_reason, r.node_correct, r.extras);
}

/// The trace record as a json::Value; json::dump() of it equals write_trace_line().
inline json::Value trace_to_json(const Problem& problem, const Tree& tree,
                                 const std::optional<std::string>& answer,
                                 std::optional<bool> correct, std::string_view stop_reason,
                                 std::span<const std::optional<bool>> node_correct = {},
                                 const TraceExtras& extras = {}) {
  using trace_detail::opt_double;
  trace_detail::check_node_correct(tree, node_correct);
  trace_detail::check_extras(tree, extras);
  auto opt_str = [](const auto& s) { return s ? json::Value(std::string_view(*s)) : json::Value(); };
  auto opt_b = [](std::optional<bool> b) { return b ? json::Value(*b) : json::Value(); };
  json::Value rec = json::Value::object();
  json::Value prob = json::Value::object();
  prob.append("id", problem.id);
  prob.append("text", problem.text);
  prob.append("gold", opt_str(problem.gold));
  rec.append("problem", std::move(prob));
  rec.append("answer", opt_str(answer));
  rec.append("correct", opt_b(correct));
  rec.append("stop_reason", stop_reason);
  if (extras.chosen_node != kNoNode) rec.append("chosen_node", extras.chosen_node);
  if (extras.stats) {
    json::Value st = json::Value::object();
    for (std::size_t k = 0; k < std::size(trace_detail::kStatsKeys); ++k)
      st.append(std::string(trace_detail::kStatsKeys[k]), (*extras.stats).*trace_detail::kStatsFields[k]);
    rec.append("stats", std::move(st));
  }
  json::Array nodes;
  nodes.reserve(tree.size());
  for (std::size_t i = 0; i < tree.size(); ++i) {
    const auto id = static_cast<NodeId>(i);
    const Node& n = tree[id];
    json::Array toks;
    for (TokenId t : tree.tokens(id)) toks.emplace_back(t);
    json::Value o = json::Value::object();
    o.as_object().reserve(20);
    o.append("id", id);
    o.append("parent", n.parent);
    o.append("depth", n.depth);
    o.append("text", tree.text(id));
    o.append("tokens", std::move(toks));
    o.append("num_tokens", n.num_tokens);
    o.append("logprob", opt_double(n.logprob));
    if (n.logprob_size) o.append("token_logprobs", json::float_array(tree.token_logprobs(id).data(), n.logprob_size));
    if (n.entropy_size) o.append("token_entropies", json::float_array(tree.token_entropies(id).data(), n.entropy_size));
    o.append("score", opt_double(n.score));
    o.append("prior", opt_double(n.prior));
    o.append("visits", n.visits);
    o.append("value_sum", opt_double(n.value_sum));
    o.append("q", opt_double(n.q()));
    o.append("value", opt_double(n.value));
    o.append("value_max", opt_double(n.value_max));
    o.append("terminal", n.terminal);
    o.append("finish", to_string(n.finish));
    o.append("answer", opt_str(tree.answer(id)));
    o.append("correct", opt_b(node_correct.empty() ? std::nullopt : node_correct[i]));
    o.append("detached", n.detached);
    o.append("pruned", n.pruned);
    nodes.push_back(std::move(o));
  }
  rec.append("nodes", std::move(nodes));
  return rec;
}
inline json::Value trace_to_json(const TraceRecord& r) {
  return trace_to_json(r.problem, r.tree, r.answer, r.correct, r.stop_reason, r.node_correct, r.extras);
}

/// Rebuilds a trace record from its parsed JSON object. Every violation throws ParseError
/// "<source>: node N: field "F": <reason>" (or "<source>: field "F": ..." for the record).
inline TraceRecord trace_from_json(const json::Value& v, std::string_view source = "trace") {
  using trace_detail::Ctx;
  Ctx ctx{source, -1};
  if (!v.is_object())
    throw ParseError(fmt::format("{}: a trace record must be a JSON object, got {}", source,
                                 json::type_name(v.type())));
  TraceRecord r;
  const json::Value& prob = ctx.req(v, "problem");
  if (!prob.is_object()) ctx.wrong("problem", "an object", prob);
  {
    Ctx pc{source, -1};
    auto field = [&](std::string_view k) { return fmt::format("problem.{}", k); };
    auto sub = [&](std::string_view k) -> const json::Value& {
      const json::Value* x = prob.find(k);
      if (!x) pc.fail(field(k), "missing");
      return *x;
    };
    const json::Value& id = sub("id");
    if (!id.is_string()) pc.wrong(field("id"), "a string", id);
    r.problem.id = id.as_string();
    const json::Value& text = sub("text");
    if (!text.is_string()) pc.wrong(field("text"), "a string", text);
    r.problem.text = text.as_string();
    const json::Value& gold = sub("gold");
    if (!gold.is_null() && !gold.is_string()) pc.wrong(field("gold"), "a string or null", gold);
    if (gold.is_string()) r.problem.gold = gold.as_string();
  }
  r.answer = ctx.opt_str(v, "answer");
  r.correct = ctx.opt_bool(v, "correct", false);
  r.stop_reason = ctx.str(v, "stop_reason");
  const json::Value& nodes_v = ctx.req(v, "nodes");
  if (!nodes_v.is_array()) ctx.wrong("nodes", "an array", nodes_v);
  const json::Array& nodes = nodes_v.as_array();
  if (nodes.empty()) ctx.fail("nodes", "empty (the root node 0 is required)");
  if (nodes.size() > static_cast<std::size_t>(std::numeric_limits<NodeId>::max()))
    ctx.fail("nodes", "too many nodes");

  Tree& tree = r.tree;
  tree.reserve(nodes.size());
  std::vector<std::optional<bool>> node_correct(nodes.size());
  bool any_correct = false;
  Step step;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const json::Value& o = nodes[i];
    const auto id = static_cast<NodeId>(i);
    Ctx nc{source, static_cast<long long>(i)};
    if (!o.is_object())
      throw ParseError(fmt::format("{}: node {}: expected an object, got {}", source, i,
                                   json::type_name(o.type())));
    if (const std::int32_t got = nc.i32(o, "id"); got != id)
      nc.fail("id", fmt::format("expected {} (ids are 0..n-1 in order), got {}", id, got));
    const std::int32_t parent = nc.i32(o, "parent");
    const std::int32_t depth = nc.i32(o, "depth");
    if (i == 0) {
      if (parent != kNoNode) nc.fail("parent", fmt::format("the root's parent must be -1, got {}", parent));
      if (depth != 0) nc.fail("depth", fmt::format("the root's depth must be 0, got {}", depth));
    } else {
      if (parent < 0 || parent >= id)
        nc.fail("parent", fmt::format("must be a node id in [0, {}), got {}", id, parent));
      if (depth != tree[parent].depth + 1)
        nc.fail("depth", fmt::format("expected {} (parent depth + 1), got {}", tree[parent].depth + 1, depth));
    }
    step.text = nc.str(o, "text");
    const json::Value& toks = nc.req(o, "tokens");
    if (!toks.is_array()) nc.wrong("tokens", "an array", toks);
    step.tokens.clear();
    step.tokens.reserve(toks.size());
    for (std::size_t k = 0; k < toks.size(); ++k) {
      const json::Value& t = toks.as_array()[k];
      if (!t.is_integer() || t.as_int() < std::numeric_limits<TokenId>::min() ||
          t.as_int() > std::numeric_limits<TokenId>::max())
        nc.fail("tokens", fmt::format("element {} is not an integer in int32 range", k));
      step.tokens.push_back(static_cast<TokenId>(t.as_int()));
    }
    step.num_tokens = nc.i32(o, "num_tokens");
    if (step.num_tokens < 0) nc.fail("num_tokens", fmt::format("must be >= 0, got {}", step.num_tokens));
    step.logprob = nc.num(o, "logprob", std::numeric_limits<double>::quiet_NaN());
    nc.floats(o, "token_logprobs", step.token_logprobs);
    nc.floats(o, "token_entropies", step.token_entropies);
    const std::string& fin = nc.str(o, "finish");
    const auto finish = finish_reason_from_string(fin);
    if (!finish) {
      std::string q;
      json::dump_string(q, fin);
      nc.fail("finish", fmt::format("unknown finish reason {} (none|step|answer|eos|length)", q));
    }
    step.finish = *finish;
    const bool detached = nc.boolean(o, "detached");
    if (i == 0) {
      if (!step.text.empty()) nc.fail("text", "the root has no text (must be \"\")");
      if (!step.tokens.empty()) nc.fail("tokens", "the root has no tokens (must be [])");
      if (!step.token_logprobs.empty()) nc.fail("token_logprobs", "the root has no tokens (must be absent)");
      if (!step.token_entropies.empty()) nc.fail("token_entropies", "the root has no tokens (must be absent)");
      Node& root = tree[0];
      root.num_tokens = step.num_tokens;
      root.logprob = step.logprob;
      root.finish = step.finish;
      root.detached = detached;
    } else {
      tree.add_child(parent, step, detached);
    }
    Node& n = tree[id];
    n.score = nc.num(o, "score", std::numeric_limits<double>::quiet_NaN());
    n.prior = nc.num(o, "prior", std::numeric_limits<double>::quiet_NaN());
    n.visits = nc.i32(o, "visits");
    if (n.visits < 0) nc.fail("visits", fmt::format("must be >= 0, got {}", n.visits));
    n.value_sum = nc.num(o, "value_sum", std::numeric_limits<double>::quiet_NaN());
    n.value = nc.opt_num(o, "value", std::numeric_limits<double>::quiet_NaN());
    n.value_max = nc.opt_num(o, "value_max", -std::numeric_limits<double>::infinity());
    n.terminal = nc.boolean(o, "terminal");
    n.pruned = nc.boolean(o, "pruned");
    if (auto a = nc.opt_str(o, "answer")) tree.set_answer(id, std::move(*a));
    node_correct[i] = nc.opt_bool(o, "correct", true);
    any_correct = any_correct || node_correct[i].has_value();
  }
  if (any_correct) r.node_correct = std::move(node_correct);
  if (v.find("chosen_node")) {
    const std::int32_t c = ctx.i32(v, "chosen_node");
    if (c < 0 || static_cast<std::size_t>(c) >= nodes.size())
      ctx.fail("chosen_node", fmt::format("must be a node id in [0, {}), got {}", nodes.size(), c));
    r.extras.chosen_node = c;
  }
  if (const json::Value* st = v.find("stats")) {
    if (!st->is_object()) ctx.wrong("stats", "an object", *st);
    TraceStats ts;
    for (std::size_t k = 0; k < std::size(trace_detail::kStatsKeys); ++k) {
      const std::string field = fmt::format("stats.{}", trace_detail::kStatsKeys[k]);
      const json::Value* x = st->find(trace_detail::kStatsKeys[k]);
      if (!x) ctx.fail(field, "missing");
      if (!x->is_integer()) ctx.wrong(field, "an integer", *x);
      if (x->as_int() < 0) ctx.fail(field, fmt::format("must be >= 0, got {}", x->as_int()));
      ts.*trace_detail::kStatsFields[k] = x->as_int();
    }
    r.extras.stats = ts;
  }
  return r;
}

/// Parses one trace line (surrounding whitespace allowed).
inline TraceRecord read_trace_line(std::string_view line, std::string_view source = "trace") {
  return trace_from_json(json::parse(line, source), source);
}

/// Reads every record of a JSONL stream; blank lines are skipped. Errors name
/// "<source>:<line>".
inline std::vector<TraceRecord> read_trace(std::istream& is, std::string_view source = "trace") {
  std::vector<TraceRecord> out;
  std::string line;
  std::size_t lineno = 0;
  while (std::getline(is, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    out.push_back(read_trace_line(line, fmt::format("{}:{}", source, lineno)));
  }
  if (is.bad()) throw IoError(fmt::format("{}: reading failed after line {}", source, lineno));
  return out;
}

/// Reads a JSONL trace file. IoError names the path; ParseError names "<path>:<line>".
inline std::vector<TraceRecord> read_trace_file(const std::string& path) {
  std::ifstream is(path, std::ios::binary);
  if (!is) throw IoError(fmt::format("{}: cannot open trace file", path));
  return read_trace(is, path);
}

}  // namespace qstar
