#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/trace.hpp"

using namespace qstar;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Step make_step(std::string text, std::vector<TokenId> tokens, double logprob,
               FinishReason finish = FinishReason::StepEnd) {
  Step s;
  s.text = std::move(text);
  s.num_tokens = static_cast<std::int32_t>(tokens.size());
  s.tokens = std::move(tokens);
  s.logprob = logprob;
  s.finish = finish;
  return s;
}

// A hand-built tree: attached children, a detached rollout chain, a pruned node,
// answers, NaN and non-NaN scores, MCTS statistics.
Tree sample_tree() {
  Tree t;
  t[0].visits = 5;
  t[0].value_sum = 2.75;
  const NodeId a = t.add_child(0, make_step("4 + 5 = 9 (left: 6 9 10)", {19, 489, 20, 2147483647}, -1.25));
  const NodeId b = t.add_child(0, make_step("\"quoted\"\nnew line\ttab \xC3\xA9\xE2\x82\xAC", {-2147483648, 0}, -0.1));
  const NodeId c = t.add_child(a, make_step("10 - 6 = 4", {7, 8, 9}, -0.30000000000000004));
  const NodeId r1 = t.add_child(c, make_step("rollout", {1}, -2.0), /*detached=*/true);
  const NodeId r2 = t.add_child(r1, make_step("Answer: 24", {2, 3}, -0.5, FinishReason::FinalAnswer), true);
  const NodeId p = t.add_child(b, make_step("pruned", {}, 0.0));
  const NodeId d = t.add_child(c, make_step("Answer: (4+5)*...", {}, -0.75, FinishReason::FinalAnswer));
  const NodeId e = t.add_child(b, make_step("cut", {5, 5, 5}, -3.5, FinishReason::Length));
  const NodeId f = t.add_child(a, make_step("eos", {}, 0.0, FinishReason::Eos));
  t[a].score = 0.875;
  t[a].prior = 0.6;
  t[a].visits = 3;
  t[a].value_sum = 2.0;
  t[a].value = 0.5;
  t[a].value_max = 0.9;
  t[b].score = kNaN;  // unscored
  t[b].prior = 0.4;
  t[b].visits = 2;
  t[b].value_sum = 0.75;
  t[c].score = 1.0 / 3.0;
  t[r1].score = 0.1;
  t[r2].score = 0.0;
  t[r2].value = 1.0;
  t[p].pruned = true;
  t[d].score = 1e-300;
  t[e].score = 5e-324;
  t[e].terminal = true;
  t[f].terminal = false;  // overrides what add_child derived from the finish reason
  t.set_answer(r2, "24");
  t.set_answer(d, "(4+5)*\"x\"");
  t.set_answer(e, "");
  return t;
}

Problem sample_problem() { return Problem{"game24/0042", "4 5 6 10", std::string("24")}; }

bool same_double(double x, double y) {
  return (std::isnan(x) && std::isnan(y)) || std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
}

void check_same_tree(const Tree& x, const Tree& y) {
  REQUIRE(x.size() == y.size());
  for (NodeId id = 0; static_cast<std::size_t>(id) < x.size(); ++id) {
    INFO("node ", id);
    const Node& a = x[id];
    const Node& b = y[id];
    CHECK(a.parent == b.parent);
    CHECK(a.first_child == b.first_child);
    CHECK(a.last_child == b.last_child);
    CHECK(a.next_sibling == b.next_sibling);
    CHECK(a.num_children == b.num_children);
    CHECK(a.depth == b.depth);
    CHECK(a.num_tokens == b.num_tokens);
    CHECK(same_double(a.logprob, b.logprob));
    CHECK(same_double(a.score, b.score));
    CHECK(same_double(a.prior, b.prior));
    CHECK(same_double(a.value, b.value));
    CHECK(a.visits == b.visits);
    CHECK(same_double(a.value_sum, b.value_sum));
    CHECK(same_double(a.value_max, b.value_max));
    CHECK(a.finish == b.finish);
    CHECK(a.terminal == b.terminal);
    CHECK(a.detached == b.detached);
    CHECK(a.pruned == b.pruned);
    CHECK(x.text(id) == y.text(id));
    CHECK(std::vector<TokenId>(x.tokens(id).begin(), x.tokens(id).end()) ==
          std::vector<TokenId>(y.tokens(id).begin(), y.tokens(id).end()));
    CHECK(x.answer(id) == y.answer(id));
  }
}

std::string read_error(std::string_view line) {
  try {
    (void)read_trace_line(line, "t.jsonl:3");
  } catch (const ParseError& e) {
    return e.what();
  }
  return "<no error>";
}

// A valid line, mutated by `edit` on its parsed form, then read back: the error message.
std::string mutated_error(const std::function<void(json::Value&)>& edit) {
  const std::string line = write_trace_line(sample_problem(), sample_tree(), std::string("24"), true, "budget");
  json::Value v = json::parse(line);
  edit(v);
  return read_error(json::dump(v));
}

}  // namespace

TEST_CASE("trace: write, read, write is byte-identical and rebuilds the tree exactly") {
  const Problem prob = sample_problem();
  const Tree tree = sample_tree();
  const std::vector<std::optional<bool>> nc = {std::nullopt, true,  false, std::nullopt, std::nullopt,
                                               true,         std::nullopt, true, false,  std::nullopt};
  REQUIRE(nc.size() == tree.size());
  const std::string line = write_trace_line(prob, tree, std::string("24"), true, "budget exhausted", nc);
  CHECK(line.find('\n') == std::string::npos);

  const TraceRecord r = read_trace_line(line);
  CHECK(r.problem.id == prob.id);
  CHECK(r.problem.text == prob.text);
  CHECK(r.problem.gold == prob.gold);
  CHECK(r.answer == std::optional<std::string>("24"));
  CHECK(r.correct == std::optional<bool>(true));
  CHECK(r.stop_reason == "budget exhausted");
  CHECK(r.node_correct == nc);
  check_same_tree(tree, r.tree);
  CHECK(write_trace_line(r) == line);

  // Children lists are rebuilt in order, detached nodes are not listed.
  std::vector<NodeId> kids;
  for (NodeId k : r.tree.children(3)) kids.push_back(k);
  CHECK(kids == std::vector<NodeId>{7});
  CHECK(r.tree[4].detached);
  CHECK(r.tree[4].parent == 3);
  CHECK(r.tree[5].parent == 4);
  CHECK(r.tree[6].pruned);
  CHECK(r.tree.trajectory(5).joined("|") == "4 + 5 = 9 (left: 6 9 10)|10 - 6 = 4|rollout|Answer: 24");

  // trace_to_json gives the same text.
  CHECK(json::dump(trace_to_json(prob, tree, std::string("24"), true, "budget exhausted", nc)) == line);
  CHECK(json::dump(trace_to_json(r)) == line);
}

TEST_CASE("trace: the line format") {
  Tree t;
  const NodeId a = t.add_child(0, make_step("x", {3, 4}, -0.5, FinishReason::FinalAnswer));
  t[a].score = 0.25;
  t[a].visits = 2;
  t[a].value_sum = 1.0;
  t.set_answer(a, "7");
  const std::string line =
      write_trace_line(Problem{"p1", "2 + 5", std::nullopt}, t, std::nullopt, std::nullopt, "solved");
  CHECK(line ==
        R"({"problem":{"id":"p1","text":"2 + 5","gold":null},"answer":null,"correct":null,"stop_reason":"solved","nodes":[)"
        R"({"id":0,"parent":-1,"depth":0,"text":"","tokens":[],"num_tokens":0,"logprob":0,"score":null,"prior":0,"visits":0,"value_sum":0,"q":0,"value":null,"value_max":null,"terminal":false,"finish":"none","answer":null,"correct":null,"detached":false,"pruned":false},)"
        R"({"id":1,"parent":0,"depth":1,"text":"x","tokens":[3,4],"num_tokens":2,"logprob":-0.5,"score":0.25,"prior":0,"visits":2,"value_sum":1,"q":0.5,"value":null,"value_max":null,"terminal":false,"finish":"answer","answer":"7","correct":null,"detached":false,"pruned":false}]})");
  const TraceRecord r = read_trace_line(line);
  CHECK_FALSE(r.problem.gold.has_value());
  CHECK_FALSE(r.answer.has_value());
  CHECK_FALSE(r.correct.has_value());
  CHECK(r.node_correct.empty());
  CHECK(std::isnan(r.tree[0].score));
  CHECK(std::isnan(r.tree[0].value));
  CHECK(r.tree[0].value_max == -std::numeric_limits<double>::infinity());
  CHECK(write_trace_line(r) == line);
}

TEST_CASE("trace: NaN scores are written as null and read back as NaN") {
  Tree t;
  const NodeId a = t.add_child(0, make_step("s", {1}, -std::numeric_limits<double>::infinity()));
  t[a].score = kNaN;
  t[a].prior = kNaN;
  const std::string line = write_trace_line(sample_problem(), t, std::nullopt, false, "x");
  CHECK(line.find(R"("logprob":null,"score":null,"prior":null)") != std::string::npos);
  const TraceRecord r = read_trace_line(line);
  CHECK(std::isnan(r.tree[a].score));
  CHECK(std::isnan(r.tree[a].prior));
  CHECK(std::isnan(r.tree[a].logprob));  // infinities do not survive JSON
  CHECK_FALSE(r.tree[a].scored());
  CHECK(r.correct == std::optional<bool>(false));
  CHECK(write_trace_line(r) == line);
}

TEST_CASE("trace: optional fields, unknown keys, whitespace") {
  const std::string line = write_trace_line(sample_problem(), sample_tree(), std::nullopt, std::nullopt, "s");
  json::Value v = json::parse(line);
  for (json::Value& n : v.at("nodes").as_array()) {
    n.erase("q");
    n.erase("value");
    n.erase("value_max");
    n.erase("correct");
    n.set("extra", "ignored");
  }
  v.set("future_field", json::Value::array());
  const TraceRecord r = read_trace_line("  " + json::dump(v) + " \r\n");
  CHECK(std::isnan(r.tree[1].value));
  CHECK(r.tree[1].value_max == -std::numeric_limits<double>::infinity());
  CHECK(r.tree[1].visits == 3);
  CHECK(r.tree.answer(5) == std::optional<std::string_view>("24"));
}

TEST_CASE("trace: node_correct must match the tree size") {
  const Tree t = sample_tree();
  const std::vector<std::optional<bool>> nc(3, true);
  CHECK_THROWS_AS(write_trace_line(sample_problem(), t, std::nullopt, std::nullopt, "s", nc), InvalidArgument);
  CHECK_THROWS_AS(trace_to_json(sample_problem(), t, std::nullopt, std::nullopt, "s", nc), InvalidArgument);
}

TEST_CASE("trace: streams and files") {
  TraceRecord a{sample_problem(), sample_tree(), std::string("24"), true, "budget", {}};
  TraceRecord b{Problem{"p2", "1 1 1 1", std::nullopt}, Tree{}, std::nullopt, false, "no proposals", {}};
  std::ostringstream os;
  write_trace(os, a);
  write_trace(os, b.problem, b.tree, b.answer, b.correct, b.stop_reason);
  const std::string text = os.str();
  CHECK(text == write_trace_line(a) + "\n" + write_trace_line(b) + "\n");

  std::istringstream is(text + "\n   \n");
  const auto recs = read_trace(is);
  REQUIRE(recs.size() == 2);
  CHECK(write_trace_line(recs[0]) == write_trace_line(a));
  CHECK(write_trace_line(recs[1]) == write_trace_line(b));
  CHECK(recs[1].tree.size() == 1);

  const auto dir = std::filesystem::temp_directory_path();
  const std::string path = (dir / "qstar_test_trace.jsonl").string();
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  const auto from_file = read_trace_file(path);
  REQUIRE(from_file.size() == 2);
  CHECK(write_trace_line(from_file[0]) == write_trace_line(a));

  {
    std::ofstream f(path, std::ios::binary);
    f << write_trace_line(a) << "\n\n" << R"({"problem":{"id":"x","text":"y","gold":null},"answer":null,)" << "\n";
  }
  try {
    (void)read_trace_file(path);
    FAIL("expected a ParseError");
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()).rfind(path + ":3: line 1 col 60: unexpected end of input, expected a string key", 0) == 0);
  }
  std::filesystem::remove(path);

  const std::string missing = (dir / "qstar_no_such_dir" / "t.jsonl").string();
  try {
    (void)read_trace_file(missing);
    FAIL("expected an IoError");
  } catch (const IoError& e) {
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
  }

  std::ostringstream bad;
  bad.setstate(std::ios::badbit);
  CHECK_THROWS_AS(write_trace(bad, a), IoError);
}

TEST_CASE("trace: bad records are rejected naming the node and field") {
  using V = json::Value;
  auto node = [](V& v, std::size_t i) -> V& { return v.at("nodes").at(i); };

  CHECK(mutated_error([&](V& v) { node(v, 2).set("parent", 3); }) ==
        R"(t.jsonl:3: node 2: field "parent": must be a node id in [0, 2), got 3)");
  CHECK(mutated_error([&](V& v) { node(v, 9).set("parent", 9); }) ==
        R"(t.jsonl:3: node 9: field "parent": must be a node id in [0, 9), got 9)");
  CHECK(mutated_error([&](V& v) { node(v, 2).set("parent", -1); }) ==
        R"(t.jsonl:3: node 2: field "parent": must be a node id in [0, 2), got -1)");
  CHECK(mutated_error([&](V& v) { node(v, 0).set("parent", 0); }) ==
        R"(t.jsonl:3: node 0: field "parent": the root's parent must be -1, got 0)");
  CHECK(mutated_error([&](V& v) { node(v, 0).set("depth", 1); }) ==
        R"(t.jsonl:3: node 0: field "depth": the root's depth must be 0, got 1)");
  CHECK(mutated_error([&](V& v) { node(v, 3).set("depth", 1); }) ==
        R"(t.jsonl:3: node 3: field "depth": expected 2 (parent depth + 1), got 1)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("id", 5); }) ==
        R"(t.jsonl:3: node 1: field "id": expected 1 (ids are 0..n-1 in order), got 5)");
  CHECK(mutated_error([&](V& v) {
          auto& a = v.at("nodes").as_array();
          std::swap(a[1], a[2]);
        }) == R"(t.jsonl:3: node 1: field "id": expected 1 (ids are 0..n-1 in order), got 2)");
  CHECK(mutated_error([&](V& v) { node(v, 4).erase("visits"); }) ==
        R"(t.jsonl:3: node 4: field "visits": missing)");
  CHECK(mutated_error([&](V& v) { node(v, 4).erase("id"); }) == R"(t.jsonl:3: node 4: field "id": missing)");
  CHECK(mutated_error([&](V& v) { node(v, 4).erase("detached"); }) ==
        R"(t.jsonl:3: node 4: field "detached": missing)");
  CHECK(mutated_error([&](V& v) { node(v, 1).erase("score"); }) ==
        R"(t.jsonl:3: node 1: field "score": missing)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("finish", "bogus"); }) ==
        R"(t.jsonl:3: node 1: field "finish": unknown finish reason "bogus" (none|step|answer|eos|length))");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("finish", 1); }) ==
        R"(t.jsonl:3: node 1: field "finish": expected a string, got integer)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("tokens", V(json::Array{1, 2147483648LL})); }) ==
        R"(t.jsonl:3: node 1: field "tokens": element 1 is not an integer in int32 range)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("tokens", V(json::Array{1.5})); }) ==
        R"(t.jsonl:3: node 1: field "tokens": element 0 is not an integer in int32 range)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("tokens", "1 2"); }) ==
        R"(t.jsonl:3: node 1: field "tokens": expected an array, got string)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("text", 3); }) ==
        R"(t.jsonl:3: node 1: field "text": expected a string, got integer)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("terminal", "yes"); }) ==
        R"(t.jsonl:3: node 1: field "terminal": expected a bool, got string)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("visits", 2.5); }) ==
        R"(t.jsonl:3: node 1: field "visits": expected an integer, got number)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("visits", -1); }) ==
        R"(t.jsonl:3: node 1: field "visits": must be >= 0, got -1)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("visits", 4294967296LL); }) ==
        R"(t.jsonl:3: node 1: field "visits": 4294967296 is out of int32 range)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("num_tokens", -3); }) ==
        R"(t.jsonl:3: node 1: field "num_tokens": must be >= 0, got -3)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("score", "high"); }) ==
        R"(t.jsonl:3: node 1: field "score": expected a number or null, got string)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("answer", 24); }) ==
        R"(t.jsonl:3: node 1: field "answer": expected a string or null, got integer)");
  CHECK(mutated_error([&](V& v) { node(v, 1).set("correct", "no"); }) ==
        R"(t.jsonl:3: node 1: field "correct": expected a bool or null, got string)");
  CHECK(mutated_error([&](V& v) { node(v, 0).set("text", "prompt"); }) ==
        R"(t.jsonl:3: node 0: field "text": the root has no text (must be ""))");
  CHECK(mutated_error([&](V& v) { node(v, 0).set("tokens", V(json::Array{1})); }) ==
        R"(t.jsonl:3: node 0: field "tokens": the root has no tokens (must be []))");
  CHECK(mutated_error([&](V& v) { node(v, 3) = V(json::Array{}); }) ==
        R"(t.jsonl:3: node 3: expected an object, got array)");

  // Record-level fields.
  CHECK(mutated_error([&](V& v) { v.set("nodes", V::array()); }) ==
        R"(t.jsonl:3: field "nodes": empty (the root node 0 is required))");
  CHECK(mutated_error([&](V& v) { v.set("nodes", V::object()); }) ==
        R"(t.jsonl:3: field "nodes": expected an array, got object)");
  CHECK(mutated_error([&](V& v) { v.erase("stop_reason"); }) == R"(t.jsonl:3: field "stop_reason": missing)");
  CHECK(mutated_error([&](V& v) { v.erase("problem"); }) == R"(t.jsonl:3: field "problem": missing)");
  CHECK(mutated_error([&](V& v) { v.at("problem").set("gold", 24); }) ==
        R"(t.jsonl:3: field "problem.gold": expected a string or null, got integer)");
  CHECK(mutated_error([&](V& v) { v.at("problem").erase("id"); }) ==
        R"(t.jsonl:3: field "problem.id": missing)");
  CHECK(mutated_error([&](V& v) { v.set("correct", 1); }) ==
        R"(t.jsonl:3: field "correct": expected a bool or null, got integer)");
  CHECK(mutated_error([&](V& v) { v.erase("answer"); }) == R"(t.jsonl:3: field "answer": missing)");

  // Not an object / not JSON.
  CHECK(read_error("[1]") == "t.jsonl:3: a trace record must be a JSON object, got array");
  CHECK(read_error("{\"problem\":") == "t.jsonl:3: line 1 col 12: unexpected end of input, expected a JSON value");
  CHECK(read_error("") == "t.jsonl:3: line 1 col 1: unexpected end of input, expected a JSON value");
}

TEST_CASE("trace: chosen_node and stats (TraceExtras) are optional and round-trip") {
  const Tree tree = sample_tree();
  TraceExtras x;
  x.chosen_node = 7;
  x.stats = TraceStats{1302, 1250, 4, 5};
  const std::string line = write_trace_line(sample_problem(), tree, std::string("24"), true, "budget", {}, x);
  // Written between "stop_reason" and "nodes", in this exact form.
  CHECK(line.find(R"("stop_reason":"budget","chosen_node":7,"stats":{"generated_tokens":1302,)"
                  R"("verifier_tokens":1250,"generator_calls":4,"verifier_calls":5},"nodes":[)") != std::string::npos);
  const TraceRecord r = read_trace_line(line);
  CHECK(r.extras.chosen_node == 7);
  REQUIRE(r.extras.stats.has_value());
  CHECK(*r.extras.stats == TraceStats{1302, 1250, 4, 5});
  CHECK(write_trace_line(r) == line);
  CHECK(json::dump(trace_to_json(r)) == line);
  CHECK(json::dump(trace_to_json(sample_problem(), tree, std::string("24"), true, "budget", {}, x)) == line);

  // Absent: the defaults, and a line without them is unchanged (older traces read as before).
  const std::string plain = write_trace_line(sample_problem(), tree, std::string("24"), true, "budget");
  CHECK(plain.find("chosen_node") == std::string::npos);
  CHECK(plain.find("\"stats\"") == std::string::npos);
  const TraceRecord p = read_trace_line(plain);
  CHECK(p.extras.chosen_node == kNoNode);
  CHECK(!p.extras.stats.has_value());

  // Writing a chosen node that is not in the tree is the caller's error.
  x.chosen_node = static_cast<NodeId>(tree.size());
  CHECK_THROWS_AS(write_trace_line(sample_problem(), tree, std::nullopt, std::nullopt, "s", {}, x), InvalidArgument);

  // Reading: the field is named.
  using V = json::Value;
  auto err = [&](const std::function<void(V&)>& edit) {
    V v = json::parse(line);
    edit(v);
    try {
      (void)read_trace_line(json::dump(v), "t.jsonl:1");
    } catch (const ParseError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(err([](V& v) { v.set("chosen_node", static_cast<std::int64_t>(sample_tree().size())); }) ==
        R"(t.jsonl:1: field "chosen_node": must be a node id in [0, 10), got 10)");
  CHECK(err([](V& v) { v.set("chosen_node", -1); }) ==
        R"(t.jsonl:1: field "chosen_node": must be a node id in [0, 10), got -1)");
  CHECK(err([](V& v) { v.set("chosen_node", "3"); }) ==
        R"(t.jsonl:1: field "chosen_node": expected an integer, got string)");
  CHECK(err([](V& v) { v.set("stats", V::array()); }) == R"(t.jsonl:1: field "stats": expected an object, got array)");
  CHECK(err([](V& v) { v.at("stats").erase("verifier_calls"); }) ==
        R"(t.jsonl:1: field "stats.verifier_calls": missing)");
  CHECK(err([](V& v) { v.at("stats").set("generated_tokens", -3); }) ==
        R"(t.jsonl:1: field "stats.generated_tokens": must be >= 0, got -3)");
  CHECK(err([](V& v) { v.at("stats").set("generator_calls", 1.5); }) ==
        R"(t.jsonl:1: field "stats.generator_calls": expected an integer, got number)");
}
