// Value types: Problem, Step, Stats, Candidate, Result, Tree, TraceRecord, and trace files.
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/search/result_json.hpp"
#include "qstar/tasks/game24.hpp"

namespace qstar::python {

namespace {

using namespace pybind11::literals;

std::string repr_str(const std::string& s) { return py::repr(py::str(s)).cast<std::string>(); }
std::string repr_opt(const std::optional<std::string>& s) { return s ? repr_str(*s) : "None"; }

FinishReason finish_from(const std::string& s) {
  const auto f = finish_reason_from_string(s);
  if (!f) throw InvalidArgument(fmt::format("finish: '{}' is not one of none, step, answer, eos, length", s));
  return *f;
}

/// Per-node correctness of a Game of 24 tree (the CLI's trace lines carry it too).
std::vector<std::optional<bool>> node_correct(const Problem& problem, const Tree& t) {
  const game24::Game24Task task;
  std::vector<std::optional<bool>> out(t.size());
  try {
    game24::parse_puzzle(problem.text);
  } catch (const ParseError&) {
    return {};  // not a Game of 24 problem: correctness unknown
  }
  for (NodeId id = 0; id < static_cast<NodeId>(t.size()); ++id)
    if (auto a = t.answer(id)) out[static_cast<std::size_t>(id)] = task.check(problem, *a);
  return out;
}

std::string trace_line_of(const SearchResult& r) {
  if (!r.tree)
    throw InvalidArgument(fmt::format("keep_tree: the result of problem '{}' has no tree; search with keep_tree=True "
                                      "to export traces",
                                      r.problem.id));
  return write_trace_line(r.problem, *r.tree, r.answer, r.correct, to_string(r.stop),
                          node_correct(r.problem, *r.tree), trace_extras_of(r));
}

void check_node(const Tree& t, NodeId id) {
  if (!t.valid(id)) throw InvalidArgument(fmt::format("node: id {} is not in [0, {})", id, t.size()));
}

}  // namespace

void bind_types(py::module_& m) {
  // ---- Problem --------------------------------------------------------------------------
  py::class_<Problem>(m, "Problem", "One problem to solve: a stable id, the text and an optional reference answer.")
      .def(py::init([](std::string text, std::optional<std::string> id, std::optional<std::string> gold) {
             return Problem{id.value_or(""), std::move(text), std::move(gold)};
           }),
           "text"_a, "id"_a = py::none(), "gold"_a = py::none())
      .def_readwrite("id", &Problem::id)
      .def_readwrite("text", &Problem::text)
      .def_readwrite("gold", &Problem::gold)
      .def("__eq__", [](const Problem& a, const Problem& b) { return a.id == b.id && a.text == b.text && a.gold == b.gold; })
      .def("__repr__", [](const Problem& p) {
        return fmt::format("Problem(text={}, id={}, gold={})", repr_str(p.text), repr_str(p.id), repr_opt(p.gold));
      });

  // ---- Step ------------------------------------------------------------------------------
  py::class_<Step>(m, "Step",
                   "A proposed reasoning step. A Python generator may return plain str steps instead "
                   "(one token per character, finish 'step').")
      .def(py::init([](std::string text, std::vector<TokenId> tokens, double logprob, std::optional<std::int32_t> num_tokens,
                       const std::string& finish, std::vector<float> token_logprobs, std::vector<float> token_entropies) {
             Step s;
             s.num_tokens = num_tokens ? *num_tokens
                                       : (tokens.empty() ? utf8_code_points(text) : static_cast<std::int32_t>(tokens.size()));
             s.text = std::move(text);
             s.tokens = std::move(tokens);
             s.logprob = logprob;
             s.finish = finish_from(finish);
             s.token_logprobs = std::move(token_logprobs);
             s.token_entropies = std::move(token_entropies);
             return s;
           }),
           "text"_a, "tokens"_a = std::vector<TokenId>{}, "logprob"_a = 0.0, "num_tokens"_a = py::none(),
           "finish"_a = "step", "token_logprobs"_a = std::vector<float>{}, "token_entropies"_a = std::vector<float>{})
      .def_readwrite("text", &Step::text)
      .def_readwrite("tokens", &Step::tokens)
      .def_readwrite("logprob", &Step::logprob)
      .def_readwrite("num_tokens", &Step::num_tokens)
      .def_readwrite("token_logprobs", &Step::token_logprobs,
                     "Each token's log-probability under the model's temperature-1 distribution (empty when the "
                     "generator gives none; their sum is logprob).")
      .def_readwrite("token_entropies", &Step::token_entropies,
                     "The entropy (nats) of the model's temperature-1 next-token distribution at each token (empty "
                     "when the generator gives none; over HTTP a truncated estimate from top_logprobs).")
      .def_property(
          "finish", [](const Step& s) { return std::string(to_string(s.finish)); },
          [](Step& s, const std::string& f) { s.finish = finish_from(f); })
      .def("__repr__", [](const Step& s) {
        return fmt::format("Step(text={}, num_tokens={}, logprob={}, finish='{}')", repr_str(s.text), s.num_tokens,
                           s.logprob, to_string(s.finish));
      });

  // ---- Stats -----------------------------------------------------------------------------
  py::class_<Stats>(m, "Stats", "Compute accounting for one problem's search.")
      .def_readonly("generated_tokens", &Stats::generated_tokens)
      .def_readonly("verifier_tokens", &Stats::verifier_tokens)
      .def_readonly("generator_calls", &Stats::generator_calls)
      .def_readonly("verifier_calls", &Stats::verifier_calls)
      .def_readonly("generator_requests", &Stats::generator_requests)
      .def_readonly("generated_steps", &Stats::generated_steps)
      .def_readonly("verified_steps", &Stats::verified_steps)
      .def_readonly("empty_proposals", &Stats::empty_proposals)
      .def_readonly("pruned_nodes", &Stats::pruned_nodes)
      .def_readonly("nodes", &Stats::nodes)
      .def_readonly("iterations", &Stats::iterations)
      .def_readonly("samples", &Stats::samples)
      .def_readonly("generator_seconds", &Stats::generator_seconds)
      .def_readonly("verifier_seconds", &Stats::verifier_seconds)
      .def_readonly("overhead_seconds", &Stats::overhead_seconds)
      .def_property_readonly("wall_seconds", &Stats::wall_seconds)
      .def_property_readonly("generator_batches",
                             [](const Stats& s) { return to_python(histogram_to_json(s.generator_batches)); })
      .def_property_readonly("verifier_batches",
                             [](const Stats& s) { return to_python(histogram_to_json(s.verifier_batches)); })
      .def("to_dict", [](const Stats& s) { return to_python(stats_to_json(s)); })
      .def("__repr__", [](const Stats& s) {
        return fmt::format("Stats(generated_tokens={}, verifier_tokens={}, generator_calls={}, verifier_calls={}, "
                           "nodes={}, wall_seconds={:.6g})",
                           s.generated_tokens, s.verifier_tokens, s.generator_calls, s.verifier_calls, s.nodes,
                           s.wall_seconds());
      });

  // ---- Candidate -------------------------------------------------------------------------
  py::class_<Candidate>(m, "Candidate", "A complete trajectory the search found.")
      .def_readonly("node", &Candidate::node)
      .def_readonly("answer", &Candidate::answer)
      .def_readonly("canonical", &Candidate::canonical)
      .def_readonly("score", &Candidate::score)
      .def_readonly("steps", &Candidate::steps)
      .def("to_dict", [](const Candidate& c) { return to_python(candidate_to_json(c)); })
      .def("__repr__", [](const Candidate& c) {
        return fmt::format("Candidate(answer={}, score={:.6g}, steps={})", repr_opt(c.answer), c.score, c.steps.size());
      });

  // ---- Tree ------------------------------------------------------------------------------
  py::class_<Tree, std::shared_ptr<Tree>>(m, "Tree",
                                          "A search tree (read-only): node 0 is the root; ids are dense.")
      .def("__len__", &Tree::size)
      .def(
          "node",
          [](const Tree& t, NodeId id) {
            check_node(t, id);
            return to_python(node_to_json(t, id));
          },
          "id"_a, "The node's fields as a dict (the trace's node fields).")
      .def(
          "children",
          [](const Tree& t, NodeId id) {
            check_node(t, id);
            std::vector<NodeId> c;
            for (NodeId k : t.children(id)) c.push_back(k);
            return c;
          },
          "id"_a)
      .def(
          "text",
          [](const Tree& t, NodeId id) {
            check_node(t, id);
            return std::string(t.text(id));
          },
          "id"_a)
      .def(
          "trajectory",
          [](const Tree& t, NodeId id) {
            check_node(t, id);
            const auto tv = t.trajectory(id);
            std::vector<std::string> s;
            for (std::size_t i = 0; i < tv.size(); ++i) s.emplace_back(tv.text(i));
            return s;
          },
          "id"_a, "The step texts from the root to the node.")
      .def(
          "nodes",
          [](const Tree& t) {
            py::list l(t.size());
            for (std::size_t i = 0; i < t.size(); ++i) l[i] = to_python(node_to_json(t, static_cast<NodeId>(i)));
            return l;
          },
          "Every node as a dict, in id order.")
      .def(
          "to_dict", [](const Tree& t) { return to_python(tree_to_nested_json(t)); },
          "The tree as nested dicts: each node's fields plus 'children' and 'rollouts'.")
      .def("to_json", [](const Tree& t) { return json::dump(tree_to_nested_json(t)); })
      .def("__repr__", [](const Tree& t) { return fmt::format("Tree({} nodes)", t.size()); });

  // ---- Result ----------------------------------------------------------------------------
  py::class_<SearchResult, std::shared_ptr<SearchResult>>(m, "Result", "What a search returns for one problem.")
      .def_readonly("problem", &SearchResult::problem)
      .def_readonly("answer", &SearchResult::answer)
      .def_readonly("correct", &SearchResult::correct)
      .def_readonly("chosen", &SearchResult::chosen)
      .def_readonly("candidates", &SearchResult::candidates)
      .def_readonly("stats", &SearchResult::stats)
      .def_property_readonly("stop_reason", [](const SearchResult& r) { return std::string(to_string(r.stop)); })
      .def_property_readonly("steps", [](const SearchResult& r) { return r.steps(); })
      .def_property_readonly("score",
                             [](const SearchResult& r) -> std::optional<double> {
                               if (r.chosen < 0) return std::nullopt;
                               return r.candidates[static_cast<std::size_t>(r.chosen)].score;
                             })
      .def_property_readonly("curve",
                             [](const SearchResult& r) {
                               py::list l;
                               for (const auto& c : r.curve) l.append(to_python(curve_point_to_json(c)));
                               return l;
                             })
      .def_property_readonly("tree",
                             [](const SearchResult& r) -> std::shared_ptr<Tree> {
                               return std::const_pointer_cast<Tree>(r.tree);
                             })
      .def("to_dict", [](const SearchResult& r) { return to_python(result_to_json(r)); })
      .def("to_json", [](const SearchResult& r) { return json::dump(result_to_json(r)); },
           "The result as one line of JSON (the tree excluded: see trace_line()).")
      .def("trace_line", &trace_line_of, "The search tree as one trace line (needs keep_tree=True).")
      .def("__repr__", [](const SearchResult& r) {
        return fmt::format("Result(problem={}, answer={}, correct={}, candidates={}, stop_reason='{}')",
                           repr_str(r.problem.text), repr_opt(r.answer),
                           r.correct ? (*r.correct ? "True" : "False") : "None", r.candidates.size(), to_string(r.stop));
      });

  // ---- traces ----------------------------------------------------------------------------
  py::class_<TraceRecord, std::shared_ptr<TraceRecord>>(m, "TraceRecord",
                                                        "One trace line: a problem, its search tree and the outcome.")
      .def_readonly("problem", &TraceRecord::problem)
      .def_readonly("answer", &TraceRecord::answer)
      .def_readonly("correct", &TraceRecord::correct)
      .def_readonly("stop_reason", &TraceRecord::stop_reason)
      .def_readonly("node_correct", &TraceRecord::node_correct)
      .def_property_readonly("tree",
                             [](py::object self) {
                               auto rec = self.cast<std::shared_ptr<TraceRecord>>();
                               return std::shared_ptr<Tree>(rec, &rec->tree);  // shares the record's lifetime
                             })
      .def("to_json", [](const TraceRecord& r) { return write_trace_line(r); }, "The trace line (no newline).")
      .def("to_dict", [](const TraceRecord& r) { return to_python(trace_to_json(r)); })
      .def("__repr__", [](const TraceRecord& r) {
        return fmt::format("TraceRecord(problem={}, answer={}, nodes={})", repr_str(r.problem.text),
                           repr_opt(r.answer), r.tree.size());
      });

  m.def(
      "write_trace",
      [](const std::string& path, const std::vector<std::shared_ptr<SearchResult>>& results, bool append) {
        std::string text;
        for (const auto& r : results) {
          if (!r) throw InvalidArgument("results: None is not a Result");
          text += trace_line_of(*r);
          text.push_back('\n');
        }
        std::ofstream f(path, append ? std::ios::binary | std::ios::app : std::ios::binary | std::ios::trunc);
        if (!f) throw IoError(fmt::format("write_trace: cannot open '{}' for writing", path));
        f << text;
        if (!f) throw IoError(fmt::format("write_trace: writing '{}' failed", path));
      },
      "path"_a, "results"_a, "append"_a = false,
      "Writes one JSONL trace line per result (each needs keep_tree=True).");
  m.def(
      "read_trace",
      [](const std::string& path) {
        auto recs = read_trace_file(path);
        std::vector<std::shared_ptr<TraceRecord>> out;
        out.reserve(recs.size());
        for (auto& r : recs) out.push_back(std::make_shared<TraceRecord>(std::move(r)));
        return out;
      },
      "path"_a, "Reads a JSONL trace file back (ParseError names the line and field at fault).");
  m.def(
      "parse_trace_line",
      [](const std::string& line) { return std::make_shared<TraceRecord>(read_trace_line(line, "trace line")); },
      "line"_a);
}

}  // namespace qstar::python
