// _search: qstar.search's C++ half. Converts the arguments, runs qstar::search with the GIL
// released (Python plug-ins take it back for their calls; every iteration takes it briefly to
// notice Ctrl-C) and returns the results.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/search/named_params.hpp"
#include "qstar/search/registry.hpp"
#include "qstar/search/run.hpp"
#include "qstar/search/search.hpp"
#include "qstar/tasks/builtin.hpp"
#include "qstar/tasks/math/task.hpp"

namespace qstar::python {

namespace {

using namespace pybind11::literals;

/// A Task written in Python: format(problem) and extract_answer(steps) required;
/// is_terminal(step), canonicalize(answer) and check(problem, answer) optional. Task calls are
/// per node (the core's Task concept is not batched): each takes the GIL.
class PyTask {
 public:
  explicit PyTask(py::handle obj) : name_(plugin_label(obj)), obj_(py::reinterpret_borrow<py::object>(obj)) {
    for (const char* m : {"format", "extract_answer"})
      if (!py::hasattr(obj, m))
        throw py::type_error(fmt::format("task '{}': a task needs format(problem) and extract_answer(steps); it has "
                                         "no {}",
                                         name_, m));
    format_ = PyRef(obj.attr("format"));
    extract_ = PyRef(obj.attr("extract_answer"));
    if (py::hasattr(obj, "is_terminal")) terminal_ = PyRef(obj.attr("is_terminal"));
    if (py::hasattr(obj, "canonicalize")) canonical_ = PyRef(obj.attr("canonicalize"));
    if (py::hasattr(obj, "check")) check_ = PyRef(obj.attr("check"));
  }
  bool has_check() const { return static_cast<bool>(check_); }

  std::string format(const Problem& p) const {
    py::gil_scoped_acquire gil;
    return as_string(format_.get()(p), "format");
  }
  bool is_terminal(const Step& s) const {
    if (!terminal_) return ends_solution(s.finish);
    py::gil_scoped_acquire gil;
    return terminal_.get()(s).cast<bool>();
  }
  std::optional<std::string> extract_answer(const TrajectoryView& t) const {
    py::gil_scoped_acquire gil;
    py::list steps(t.size());
    for (std::size_t i = 0; i < t.size(); ++i)
      steps[i] = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(t.text(i).data(),
                                                                        static_cast<Py_ssize_t>(t.text(i).size()),
                                                                        "replace"));
    py::object a = extract_.get()(steps);
    if (a.is_none()) return std::nullopt;
    return as_string(a, "extract_answer");
  }
  std::string canonicalize(std::string_view a) const {
    if (!canonical_) return std::string(a);
    py::gil_scoped_acquire gil;
    return as_string(canonical_.get()(py::str(a.data(), a.size())), "canonicalize");
  }
  bool check(const Problem& p, std::string_view a) const {
    if (!check_) return false;  // reported as unknown (None) by the caller
    py::gil_scoped_acquire gil;
    return check_.get()(p, py::str(a.data(), a.size())).cast<bool>();
  }

 private:
  std::string as_string(const py::object& o, const char* method) const {
    if (!PyUnicode_Check(o.ptr()))
      throw PluginError(fmt::format("task '{}': {}() returned a {}, expected a str", name_, method,
                                    Py_TYPE(o.ptr())->tp_name));
    return o.cast<std::string>();
  }
  std::string name_;
  PyRef obj_, format_, extract_, terminal_, canonical_, check_;
};
static_assert(CheckedTask<PyTask>);

ParamValue param_value(py::handle v, const std::string& name) {
  if (PyBool_Check(v.ptr())) return v.ptr() == Py_True;
  if (PyLong_Check(v.ptr()) || (PyIndex_Check(v.ptr()) && !PyFloat_Check(v.ptr()))) {
    py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
    if (!i) throw py::error_already_set();
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
    if (overflow != 0) throw InvalidArgument(fmt::format("{}: {} is out of the 64-bit range", name, py::str(v).cast<std::string>()));
    return static_cast<std::int64_t>(x);
  }
  if (PyFloat_Check(v.ptr())) return PyFloat_AS_DOUBLE(v.ptr());
  if (PyUnicode_Check(v.ptr())) return v.cast<std::string>();
  throw InvalidArgument(fmt::format("{}: expected a bool, int, float or str, got a {}", name, Py_TYPE(v.ptr())->tp_name));
}

/// The params of `algo` from keyword values, the custom aggregation (a Python callable) set
/// when given, validated by the params struct.
SearchParams params_from(const std::string& algo, const py::dict& values, const py::object& custom) {
  SearchParams sp = default_params(algo);
  for (auto [k, v] : values) {
    const auto name = k.cast<std::string>();
    set_param(sp, name, param_value(v, name));
  }
  if (!custom.is_none()) {
    if (!PyCallable_Check(custom.ptr())) throw InvalidArgument("custom_aggregation: expected a callable(list[float]) -> float");
    PyRef fn(custom);
    common(sp).custom_aggregation = [fn](std::span<const double> scores) -> double {
      py::gil_scoped_acquire gil;
      py::list l(scores.size());
      for (std::size_t i = 0; i < scores.size(); ++i) l[i] = py::float_(scores[i]);
      return fn.get()(l).cast<double>();
    };
  }
  std::visit([](const auto& p) { p.validate(); }, sp);
  return sp;
}

// ---- built-in tasks by name -----------------------------------------------------------------

/// The built-in task named `name` (qstar/tasks/builtin.hpp); InvalidArgument listing them.
const TaskEntry& builtin_task(const std::string& name) {
  const auto& r = builtin_tasks();
  if (const auto* e = r.find(name)) return *e;
  std::string names;
  for (const auto& n : r.names()) names += fmt::format("{}'{}'", names.empty() ? "" : ", ", n);
  throw InvalidArgument(fmt::format("task: '{}' is not a built-in task (built-in: {}); pass a task object", name, names));
}

/// Throws ParseError naming problems[i] when a problem is not one of the task's.
void check_problems(const TaskEntry& task, std::span<const Problem> problems) {
  if (!task.parse_problem) return;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    try {
      task.parse_problem(problems[i].text);
    } catch (const ParseError& e) {
      throw ParseError(fmt::format("problems[{}]: {}", i, e.what()));
    }
  }
}

}  // namespace

void bind_search(py::module_& m) {
  m.def(
      "_search",
      [](py::handle problems_obj, const std::string& algo, py::handle generator, py::handle verifier,
         std::uint64_t seed, const py::dict& params, const py::object& custom_aggregation, py::handle task_obj) {
        const std::vector<Problem> problems = problems_from_python(problems_obj);
        // A str names a built-in task; anything else is a Python task object.
        // A C++ task object (qstar.math.MathTask) runs natively, like a built-in.
        const TaskEntry* builtin = nullptr;
        std::optional<AnyTask> native;
        if (PyUnicode_Check(task_obj.ptr())) {
          builtin = &builtin_task(task_obj.cast<std::string>());
          check_problems(*builtin, problems);
          native.emplace(builtin->make_task());
        } else if (py::isinstance<math::MathTask>(task_obj)) {
          native.emplace(task_obj.cast<math::MathTask>());
        } else if (task_obj.is_none()) {
          throw InvalidArgument("task: expected a built-in task's name or a task object (qstar.search passes "
                                "its default name for None)");
        }
        SearchParams sp = params_from(algo, params, custom_aggregation);
        // Ctrl-C: each iteration takes the GIL for a moment and runs Python's pending signal
        // handlers; a KeyboardInterrupt (or any exception a handler raises) ends the search.
        common(sp).interrupt = [] {
          py::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        };
        // Plug-ins hold Python references: built (and destroyed) with the GIL held.
        AnyGenerator gen = make_generator(generator);
        std::optional<VerifierSet> ver;  // none: best-of-n without a verifier (run_search checks)
        if (!verifier.is_none()) {
          VerifierHandle h = make_verifier(verifier);
          ver.emplace(VerifierSet{std::move(h.step), std::move(h.outcome), std::move(h.label)});
        }
        check_verifier(sp, ver ? &*ver : nullptr);  // before any plug-in runs
        std::optional<PyTask> py_task;
        if (!native) py_task.emplace(task_obj);
        std::vector<SearchResult> results;
        {
          py::gil_scoped_release release;
          VerifierSet* v = ver ? &*ver : nullptr;
          results = native ? run_search(problems, *native, gen, v, sp, seed)
                           : run_search(problems, *py_task, gen, v, sp, seed);
        }
        if (py_task && !py_task->has_check()) {
          for (auto& r : results) {  // no checker: correctness unknown
            r.correct.reset();
            for (auto& c : r.curve) {
              c.naive_correct.reset();
              c.majority_correct.reset();
              c.weighted_correct.reset();
              c.top_k_correct.reset();
            }
          }
        }
        std::vector<std::shared_ptr<SearchResult>> out;
        out.reserve(results.size());
        for (auto& r : results) out.push_back(std::make_shared<SearchResult>(std::move(r)));
        return out;
      },
      "problems"_a, "algo"_a, "generator"_a, "verifier"_a, "seed"_a, "params"_a, "custom_aggregation"_a, "task"_a);
  m.attr("_DEFAULT_TASK") = builtin_tasks().names().front();
  m.attr("_ALGORITHMS") = py::cast(algorithm_names());
  m.def(
      "_tasks",
      [] {
        py::dict d;
        for (const auto& n : builtin_tasks().names()) d[n.c_str()] = builtin_tasks().at(n).summary;
        return d;
      },
      "The built-in tasks qstar.search runs by name: {name: description}.");

  m.def(
      "_default_params",
      [](const std::string& algo) { return to_python(params_to_json(default_params(algo))); }, "algo"_a,
      "Every parameter of an algorithm with its C++ default ('budget.<field>' for the budget).");
  m.def(
      "_check_params",
      [](const std::string& algo, const py::dict& params) {
        return to_python(params_to_json(params_from(algo, params, py::none())));
      },
      "algo"_a, "params"_a, "The validated params as a dict (raises InvalidArgument like a search would).");
}

}  // namespace qstar::python
