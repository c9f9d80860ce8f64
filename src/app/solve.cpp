// `qstar solve PROBLEM`: one search on one problem of the task, printed or as JSON.
#include "app/app.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/search/result_json.hpp"

namespace qstar::cli {

/// One trace line with per-node correctness for every node that carries an answer, the
/// chosen trajectory's leaf and the token totals.
std::string trace_line(const SearchResult& r, const AnyTask& task) {
  const Tree& t = *r.tree;
  std::vector<std::optional<bool>> node_correct(t.size());
  for (NodeId id = 0; id < static_cast<NodeId>(t.size()); ++id)
    if (auto ans = t.answer(id)) node_correct[static_cast<std::size_t>(id)] = task.check(r.problem, *ans);
  return write_trace_line(r.problem, t, r.answer, r.correct, to_string(r.stop), node_correct, trace_extras_of(r));
}

int cmd_solve(const Args& a, std::ostream& out, std::ostream& err) {
  const std::string algo = canonical_algo(a.get("algo").value_or("beam"));
  a.check_algorithms({algo});
  const TaskEntry& entry = task_of(a);
  if (a.positional().size() != 1)
    throw UsageError(a.positional().empty()
                         ? fmt::format("solve: give the problem, e.g. qstar solve \"{}\"", entry.example)
                         : fmt::format("solve: give exactly one problem (quote it: \"{}\")", entry.example));
  const std::string puzzle = a.positional()[0];
  const Problem problem = entry.parse_problem(puzzle);  // ParseError names the puzzle
  const AnyTask task = make_task(a, entry, &err);
  int n = 16;
  if (auto v = a.get("n")) n = parse_int<int>("n", *v, 1, 1 << 20);
  const SearchParams sp0 = make_params(algo, n, a);
  SearchParams sp = sp0;
  common(sp).keep_tree = a.has("tree");
  Plugins pl = make_plugins(a, entry, &err);
  const std::uint64_t seed = get_seed(a);
  std::vector<Problem> problems{problem};
  auto results = run_search(problems, task, pl, sp, seed);
  const SearchResult& r = results.at(0);
  if (auto path = a.get("tree"))
    write_file(*path, trace_line(r, task) + "\n", "tree");
  if (a.has("json")) {
    json::Value o = json::Value::object();
    o.set("problem", puzzle);
    o.set("answer", r.answer ? json::Value(*r.answer) : json::Value());
    o.set("correct", r.correct ? json::Value(*r.correct) : json::Value());
    json::Value steps = json::Value::array();
    for (const auto& s : r.steps()) steps.push_back(s);
    o.set("steps", std::move(steps));
    o.set("stats", stats_to_json(r.stats));
    o.set("algo", algo);
    o.set("seed", static_cast<std::int64_t>(seed));
    o.set("stop_reason", to_string(r.stop));
    o.set("score", r.chosen >= 0 ? json::Value(r.candidates[static_cast<std::size_t>(r.chosen)].score) : json::Value());
    out << json::dump(o) << "\n";
    return 0;
  }
  out << fmt::format("problem:  {}\n", puzzle);
  out << fmt::format("search:   {} (seed {}), generator {}, verifier {}\n", algo, seed, pl.gen_label, pl.ver_label);
  if (r.steps().empty()) {
    out << "steps:    (none: no complete trajectory was found)\n";
  } else {
    out << "steps:\n";
    for (std::size_t i = 0; i < r.steps().size(); ++i) out << fmt::format("  {}. {}\n", i + 1, r.steps()[i]);
  }
  out << fmt::format("answer:   {}\n", r.answer ? *r.answer : "(none)");
  out << fmt::format("correct:  {}\n", r.correct ? (*r.correct ? "yes" : "no") : "unknown");
  out << fmt::format("stopped:  {}\n", to_string(r.stop));
  const Stats& s = r.stats;
  out << fmt::format(
      "stats:    {} generated tokens, {} verifier tokens, {} generator calls, {} verifier calls, "
      "{} nodes, {} candidates\n",
      s.generated_tokens, s.verifier_tokens, s.generator_calls, s.verifier_calls, s.nodes, r.candidates.size());
  out << fmt::format("time:     {:.3f} ms (generator {:.3f}, verifier {:.3f}, search {:.3f})\n",
                     1e3 * s.wall_seconds(), 1e3 * s.generator_seconds, 1e3 * s.verifier_seconds,
                     1e3 * s.overhead_seconds);
  return 0;
}

}  // namespace qstar::cli
