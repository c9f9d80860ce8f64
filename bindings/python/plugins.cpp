// Plug-ins across the boundary: Python objects with expand(batch) / score(batch) /
// score_outcomes(batch) as C++ plug-ins (one Python call per core call, with the whole batch
// as a list of request objects), and the built-in C++ plug-ins as Python objects
// (qstar.game24.*, qstar.testing.*).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/adapters/constant.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/tasks/game24.hpp"

namespace qstar::python {

namespace {

using namespace pybind11::literals;

// ---- result conversion ---------------------------------------------------------------------

std::string type_name(py::handle h) { return Py_TYPE(h.ptr())->tp_name; }

/// A list/tuple/other sequence (not str/bytes) as a fast sequence; PluginError otherwise.
/// `what` is a callable giving the item's description: only called for the error message.
template <class What>
py::object as_sequence(py::handle h, const std::string& who, What&& what) {
  if (PyList_CheckExact(h.ptr()) || PyTuple_CheckExact(h.ptr())) return py::reinterpret_borrow<py::object>(h);
  if (PyUnicode_Check(h.ptr()) || PyBytes_Check(h.ptr()) || !PySequence_Check(h.ptr()))
    throw PluginError(fmt::format("{}: {} is a {}, expected a list", who, what(), type_name(h)));
  PyObject* f = PySequence_Fast(h.ptr(), "expected a sequence");
  if (f == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(f);
}

Step to_step(py::handle h, const std::string& who, std::size_t i, std::size_t j) {
  if (PyUnicode_Check(h.ptr())) {
    Py_ssize_t size = 0;
    const char* s = PyUnicode_AsUTF8AndSize(h.ptr(), &size);
    if (s == nullptr) throw py::error_already_set();
    Step st;
    st.text.assign(s, static_cast<std::size_t>(size));
    st.num_tokens = static_cast<std::int32_t>(PyUnicode_GET_LENGTH(h.ptr()));
    return st;
  }
  static PyTypeObject* const step_type = reinterpret_cast<PyTypeObject*>(py::type::of<Step>().ptr());
  if (PyObject_TypeCheck(h.ptr(), step_type)) return h.cast<const Step&>();
  throw PluginError(fmt::format("{}: expand() result [{}][{}] is a {}, expected a str or a qstar.Step", who, i, j,
                                type_name(h)));
}

template <class What>
double to_score(py::handle h, const std::string& who, What&& what) {
  if (PyFloat_Check(h.ptr())) return PyFloat_AS_DOUBLE(h.ptr());
  if (!PyBool_Check(h.ptr()) && PyNumber_Check(h.ptr()) && !PySequence_Check(h.ptr())) {
    const double d = PyFloat_AsDouble(h.ptr());
    if (d == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    return d;
  }
  throw PluginError(fmt::format("{}: {} is a {}, expected a float", who, what(), type_name(h)));
}

std::size_t read_max_batch(py::handle obj, const std::string& who) {
  if (!py::hasattr(obj, "max_batch_size")) return 0;
  py::object v = obj.attr("max_batch_size");
  if (PyCallable_Check(v.ptr())) v = v();
  if (v.is_none()) return 0;
  if (!PyLong_Check(v.ptr()) || PyBool_Check(v.ptr()))
    throw InvalidArgument(fmt::format("max_batch_size: plug-in '{}' declares a {}, expected an int", who, type_name(v)));
  const long long n = v.cast<long long>();
  if (n < 0) throw InvalidArgument(fmt::format("max_batch_size: plug-in '{}' declares {} (must be >= 0)", who, n));
  return static_cast<std::size_t>(n);
}

py::object method(py::handle obj, const char* name, const std::string& who) {
  py::object f = obj.attr(name);
  if (!PyCallable_Check(f.ptr()))
    throw py::type_error(fmt::format("plug-in '{}': its attribute {} is not callable", who, name));
  return f;
}

// ---- Python plug-ins as C++ plug-ins --------------------------------------------------------

class PyGenerator {
 public:
  explicit PyGenerator(py::handle obj)
      : name_(plugin_label(obj)),
        obj_(py::reinterpret_borrow<py::object>(obj)),
        fn_(method(obj, "expand", name_)),
        max_batch_(read_max_batch(obj, name_)) {}
  std::string name() const { return name_; }
  std::size_t max_batch_size() const { return max_batch_; }

  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    py::gil_scoped_acquire gil;
    BatchToken token;  // the request objects expire when the call returns
    py::list requests = request_list(batch, token);
    py::object got = fn_.get()(requests);
    const std::string who = fmt::format("generator '{}'", name_);
    py::object seq = as_sequence(got, who, [] { return std::string("expand() result"); });
    const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
    if (n != batch.size())
      throw PluginError(fmt::format("{}: expand() returned {} lists for a batch of {} requests", who, n, batch.size()));
    std::vector<std::vector<Step>> out(n);
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (std::size_t i = 0; i < n; ++i) {
      py::object inner = as_sequence(items[i], who, [i] { return fmt::format("expand() result [{}]", i); });
      const auto m = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(inner.ptr()));
      PyObject** steps = PySequence_Fast_ITEMS(inner.ptr());
      out[i].reserve(m);
      for (std::size_t j = 0; j < m; ++j) out[i].push_back(to_step(steps[j], who, i, j));
    }
    return out;
  }

 private:
  std::string name_;
  PyRef obj_, fn_;
  std::size_t max_batch_ = 0;
};

class PyStepVerifier {
 public:
  explicit PyStepVerifier(py::handle obj)
      : name_(plugin_label(obj)),
        obj_(py::reinterpret_borrow<py::object>(obj)),
        fn_(method(obj, "score", name_)),
        max_batch_(read_max_batch(obj, name_)) {}
  std::string name() const { return name_; }
  std::size_t max_batch_size() const { return max_batch_; }

  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch) {
    py::gil_scoped_acquire gil;
    BatchToken token;  // the request objects expire when the call returns
    py::list requests = request_list(batch, token);
    py::object got = fn_.get()(requests);
    const std::string who = fmt::format("verifier '{}'", name_);
    py::object seq = as_sequence(got, who, [] { return std::string("score() result"); });
    const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
    if (n != batch.size())
      throw PluginError(fmt::format("{}: score() returned {} entries for a batch of {} requests", who, n, batch.size()));
    std::vector<std::vector<double>> out(n);
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t want = batch[i].trajectory.size() - static_cast<std::size_t>(batch[i].first_new);
      if (want == 1 && !PySequence_Check(items[i])) {  // a bare number for the one new step
        out[i].push_back(to_score(items[i], who, [i] { return fmt::format("score() result [{}]", i); }));
        continue;
      }
      py::object inner = as_sequence(items[i], who, [i] { return fmt::format("score() result [{}]", i); });
      const auto m = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(inner.ptr()));
      if (m != want)
        throw PluginError(fmt::format("{}: score() result [{}] has {} scores, expected {} (one per new step: "
                                      "len(request.new_steps))",
                                      who, i, m, want));
      PyObject** xs = PySequence_Fast_ITEMS(inner.ptr());
      out[i].reserve(m);
      for (std::size_t j = 0; j < m; ++j) out[i].push_back(to_score(xs[j], who, [i, j] { return fmt::format("score() result [{}][{}]", i, j); }));
    }
    return out;
  }

 private:
  std::string name_;
  PyRef obj_, fn_;
  std::size_t max_batch_ = 0;
};

class PyOutcomeVerifier {
 public:
  explicit PyOutcomeVerifier(py::handle obj)
      : name_(plugin_label(obj)),
        obj_(py::reinterpret_borrow<py::object>(obj)),
        fn_(method(obj, "score_outcomes", name_)),
        max_batch_(read_max_batch(obj, name_)) {}
  std::string name() const { return name_; }
  std::size_t max_batch_size() const { return max_batch_; }

  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch) {
    py::gil_scoped_acquire gil;
    BatchToken token;  // the request objects expire when the call returns
    py::list requests = request_list(batch, token);
    py::object got = fn_.get()(requests);
    const std::string who = fmt::format("verifier '{}'", name_);
    py::object seq = as_sequence(got, who, [] { return std::string("score_outcomes() result"); });
    const auto n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(seq.ptr()));
    if (n != batch.size())
      throw PluginError(
          fmt::format("{}: score_outcomes() returned {} scores for a batch of {} requests", who, n, batch.size()));
    std::vector<double> out(n);
    PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
    for (std::size_t i = 0; i < n; ++i) out[i] = to_score(items[i], who, [i] { return fmt::format("score_outcomes() result [{}]", i); });
    return out;
  }

 private:
  std::string name_;
  PyRef obj_, fn_;
  std::size_t max_batch_ = 0;
};

// ---- zero-cost C++ plug-ins (benchmarks and tests) -------------------------------------------

using qstar::ConstantGenerator;  // qstar/adapters/constant.hpp
using qstar::ConstantVerifier;

struct ProgrammaticGeneratorPy : GeneratorHandle {
  game24::GeneratorParams params;
};
struct OracleVerifierPy : VerifierHandle {};
struct OracleOutcomeVerifierPy : VerifierHandle {};
struct ConstantGeneratorPy : GeneratorHandle {
  int depth = 4;
};
struct ConstantVerifierPy : VerifierHandle {};

/// Seconds per generator/verifier call through the boundary for a synthetic batch:
/// `batch_size` requests on prefixes of `depth` steps, `repeats` calls, GIL released as
/// during a search (each Python call takes it back). For the overhead benchmark.
double plugin_call_seconds(py::handle plugin, const std::string& kind, int batch_size, int depth, int repeats) {
  if (batch_size < 1) throw InvalidArgument("batch_size must be >= 1");
  if (depth < 1) throw InvalidArgument("depth must be >= 1");
  if (repeats < 1) throw InvalidArgument("repeats must be >= 1");
  const Problem problem{"bench", "4 5 6 10", std::nullopt};
  const std::string prompt = "prompt";
  Tree tree;
  std::vector<NodeId> leaves;
  for (int r = 0; r < batch_size; ++r) {
    NodeId cur = Tree::root();
    for (int d = 0; d < depth; ++d) {
      Step s;
      s.text = fmt::format("step {} of {}", d, r);
      s.num_tokens = static_cast<std::int32_t>(s.text.size());
      cur = tree.add_child(cur, s);
    }
    leaves.push_back(cur);
  }
  using Clock = std::chrono::steady_clock;
  double seconds = 0.0;
  if (kind == "generator") {
    AnyGenerator gen = make_generator(plugin);
    std::vector<ExpandRequest> reqs(leaves.size());
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      reqs[i].problem = &problem;
      reqs[i].prompt = prompt;
      reqs[i].prefix = tree.trajectory(leaves[i]);
      reqs[i].num_candidates = 1;
      reqs[i].seed = i;
    }
    py::gil_scoped_release release;
    const auto t0 = Clock::now();
    for (int k = 0; k < repeats; ++k) (void)gen.expand(reqs);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  } else if (kind == "verifier") {
    VerifierHandle v = make_verifier(plugin);
    if (!v.step) throw InvalidArgument("kind: 'verifier' needs a step verifier (score(batch))");
    std::vector<StepScoreRequest> reqs(leaves.size());
    for (std::size_t i = 0; i < leaves.size(); ++i) {
      reqs[i].problem = &problem;
      reqs[i].prompt = prompt;
      reqs[i].trajectory = tree.trajectory(leaves[i]);
      reqs[i].first_new = depth - 1;
    }
    py::gil_scoped_release release;
    const auto t0 = Clock::now();
    for (int k = 0; k < repeats; ++k) (void)v.step->score_steps(reqs);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  } else {
    throw InvalidArgument(fmt::format("kind: '{}' is not one of generator, verifier", kind));
  }
  return seconds / repeats;
}

// ---- built-in plug-ins called from Python ------------------------------------------------------

/// `call` on chunks of at most `max_batch` requests (0: the whole batch), results joined in
/// order, through the search engine's splitter (core/concepts.hpp), so that a Python plug-in
/// that passes a whole batch on gets the calls the built-in would get inside a search.
template <class R, class F>
auto split_like_a_search(const std::vector<R>& reqs, std::size_t max_batch, const std::string& who, F&& call) {
  return call_in_chunks(std::span<const R>(reqs), max_batch, call, [&](std::size_t got, std::size_t want) {
    throw PluginError(fmt::format("plug-in '{}' returned {} results for a batch of {}", who, got, want));
  });
}

AnyGenerator& built_generator(GeneratorHandle& g) {
  if (!g.gen) throw InvalidArgument("generator: this built-in generator was not constructed");
  return *g.gen;
}

std::vector<std::vector<Step>> builtin_expand(GeneratorHandle& g, py::handle batch) {
  AnyGenerator& gen = built_generator(g);
  const std::vector<ExpandRequest> reqs = expand_requests(batch, "expand");
  py::gil_scoped_release release;  // an LM generator runs for a while; Python plug-ins take it back
  return split_like_a_search(reqs, gen.max_batch_size(), gen.name(),
                             [&](std::span<const ExpandRequest> b) { return gen.expand(b); });
}

std::vector<std::vector<double>> builtin_score_steps(VerifierHandle& v, py::handle batch) {
  if (!v.step)
    throw InvalidArgument(fmt::format("verifier '{}' has no step scores (an outcome verifier only: use "
                                      "score_outcomes)",
                                      v.label));
  const std::vector<StepScoreRequest> reqs = step_score_requests(batch, "score_steps");
  AnyStepVerifier& step = *v.step;
  py::gil_scoped_release release;
  return split_like_a_search(reqs, step.max_batch_size(), v.label,
                             [&](std::span<const StepScoreRequest> b) { return step.score_steps(b); });
}

std::vector<double> builtin_score_outcomes(VerifierHandle& v, py::handle batch) {
  if (!v.outcome)
    throw InvalidArgument(
        fmt::format("verifier '{}' has no outcome scores (a step verifier only: use score_steps)", v.label));
  const std::vector<OutcomeRequest> reqs = outcome_requests(batch, "score_outcomes");
  AnyOutcomeVerifier& outcome = *v.outcome;
  py::gil_scoped_release release;
  return split_like_a_search(reqs, outcome.max_batch_size(), v.label,
                             [&](std::span<const OutcomeRequest> b) { return outcome.score_outcomes(b); });
}

/// The verifier's batch cap as a search sees it: the smaller nonzero one of its parts.
std::size_t verifier_max_batch(const VerifierHandle& v) {
  const std::size_t a = v.step ? v.step->max_batch_size() : 0, b = v.outcome ? v.outcome->max_batch_size() : 0;
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

std::optional<std::pair<int, int>> ranks_from(py::handle h) {
  if (h.is_none()) return std::nullopt;
  if (PyUnicode_Check(h.ptr())) return game24::parse_ranks(h.cast<std::string>());
  if (py::isinstance<py::tuple>(h) || py::isinstance<py::list>(h)) {
    auto t = h.cast<std::vector<int>>();
    if (t.size() != 2 || t[0] < 1 || t[0] > t[1])
      throw InvalidArgument("ranks: expected \"A-B\", (A, B) with 1 <= A <= B, or None");
    return std::pair<int, int>{t[0], t[1]};
  }
  throw InvalidArgument(fmt::format("ranks: expected \"A-B\", (A, B) or None, got a {}", type_name(h)));
}

Problem problem_from(py::handle h) {
  if (PyUnicode_Check(h.ptr())) return Problem{"", h.cast<std::string>(), std::nullopt};
  if (py::isinstance<Problem>(h)) return h.cast<Problem>();
  throw InvalidArgument(fmt::format("problem: expected a str or a qstar.Problem, got a {}", type_name(h)));
}

std::string plugin_label(py::handle obj) {
  if (py::hasattr(obj, "name")) {
    py::object n = obj.attr("name");
    if (PyCallable_Check(n.ptr())) n = n();
    if (PyUnicode_Check(n.ptr())) return n.cast<std::string>();
  }
  return py::str(py::type::of(obj).attr("__name__")).cast<std::string>();
}

AnyGenerator make_generator(py::handle obj) {
  if (py::isinstance<GeneratorHandle>(obj)) {
    const auto& h = obj.cast<const GeneratorHandle&>();
    if (!h.gen) throw InvalidArgument("generator: this built-in generator was not constructed");
    return *h.gen;
  }
  if (!obj.is_none() && py::hasattr(obj, "expand")) return AnyGenerator(PyGenerator(obj));
  throw py::type_error(fmt::format(
      "generator: expected an object with an expand(batch) method or a built-in generator such as "
      "qstar.game24.ProgrammaticGenerator, got a {}",
      type_name(obj)));
}

VerifierHandle make_verifier(py::handle obj) {
  if (py::isinstance<VerifierHandle>(obj)) return obj.cast<const VerifierHandle&>();
  const bool step = py::hasattr(obj, "score"), outcome = py::hasattr(obj, "score_outcomes");
  if (obj.is_none() || (!step && !outcome))
    throw py::type_error(fmt::format(
        "verifier: expected an object with a score(batch) (process rewards) and/or score_outcomes(batch) "
        "(outcome rewards) method, or a built-in verifier such as qstar.game24.OracleVerifier, got a {}",
        type_name(obj)));
  VerifierHandle v;
  v.label = plugin_label(obj);
  if (step) v.step.emplace(PyStepVerifier(obj));
  if (outcome) v.outcome.emplace(PyOutcomeVerifier(obj));
  return v;
}

std::vector<Problem> problems_from_python(py::handle obj) {
  std::vector<Problem> out;
  if (PyUnicode_Check(obj.ptr()) || py::isinstance<Problem>(obj)) {
    out.push_back(problem_from(obj));
  } else {
    if (!py::isinstance<py::iterable>(obj))
      throw InvalidArgument(fmt::format("problems: expected a str, a qstar.Problem or a list of them, got a {}",
                                        type_name(obj)));
    for (auto item : obj) {
      try {
        out.push_back(problem_from(item));
      } catch (const InvalidArgument&) {
        throw InvalidArgument(fmt::format("problems[{}]: expected a str or a qstar.Problem, got a {}", out.size(),
                                          type_name(item)));
      }
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i].id.empty()) out[i].id = std::to_string(i);
  return out;
}

void bind_plugins(py::module_& m) {
  // ---- built-in plug-in bases ------------------------------------------------------------
  // Their expand / score_steps / score_outcomes take the batch a Python plug-in receives, so
  // that a Python plug-in can wrap a built-in one (log, filter, re-rank its proposals).
  py::class_<GeneratorHandle>(m, "BuiltinGenerator", "Base class of the generators implemented in C++.")
      .def_property_readonly("name", [](const GeneratorHandle& g) { return g.gen ? g.gen->name() : g.label; })
      .def_property_readonly(
          "max_batch_size", [](const GeneratorHandle& g) -> std::size_t { return g.gen ? g.gen->max_batch_size() : 0; },
          "The most requests per call a search gives it (0: no cap); expand() splits larger batches.")
      .def("expand", &builtin_expand, "batch"_a,
           "expand(batch: list[ExpandRequest]) -> list[list[Step]]: the proposals for each request of the batch a "
           "Python generator received (the GIL is released meanwhile).")
      .def("__repr__", [](const GeneratorHandle& g) { return g.label; });
  py::class_<VerifierHandle>(m, "BuiltinVerifier", "Base class of the verifiers implemented in C++.")
      .def_property_readonly("name", [](const VerifierHandle& v) { return v.label; })
      .def_property_readonly("has_step_scores", [](const VerifierHandle& v) { return v.step.has_value(); })
      .def_property_readonly("has_outcome_scores", [](const VerifierHandle& v) { return v.outcome.has_value(); })
      .def_property_readonly("max_batch_size", &verifier_max_batch,
                             "The most requests per call a search gives it (0: no cap).")
      .def("score_steps", &builtin_score_steps, "batch"_a,
           "score_steps(batch: list[StepScoreRequest]) -> list[list[float]]: the scores of each request's new "
           "steps (qstar.InvalidArgument when the verifier has no step scores).")
      .def("score", &builtin_score_steps, "batch"_a,
           "score(batch) -> list[list[float]]: score_steps under the name a Python step verifier's method has.")
      .def("score_outcomes", &builtin_score_outcomes, "batch"_a,
           "score_outcomes(batch: list[OutcomeRequest]) -> list[float]: one score per complete trajectory "
           "(qstar.InvalidArgument when the verifier has no outcome scores).")
      .def("__repr__", [](const VerifierHandle& v) { return v.label; });

  // ---- game24 ----------------------------------------------------------------------------
  py::module_ g = m.def_submodule("game24", "The Game of 24 task: data, exact checker and solver, plug-ins.");
  g.def(
      "load",
      [](const std::string& path, py::handle ranks) { return game24::load_csv(path, ranks_from(ranks)); },
      "path"_a, "ranks"_a = "901-1000",
      "Loads a ToT 24.csv; ranks \"A-B\", (A, B) or None (every row). Problem.id is the rank.");
  g.def(
      "check", [](py::handle problem, const std::string& answer) {
        const Problem p = problem_from(problem);
        return game24::Game24Task{}.check(p, answer);
      },
      "problem"_a, "answer"_a,
      "True when the answer expression uses each number of the puzzle once and equals 24 (exact rationals).");
  g.def(
      "solve", [](py::handle problem) { return game24::solve(game24::parse_puzzle(problem_from(problem).text)); },
      "problem"_a, "An expression that makes 24, or None when the puzzle has no solution (exact solver).");
  g.def(
      "parse_puzzle", [](const std::string& text) { return game24::parse_puzzle(text); }, "text"_a);
  g.def(
      "format_prompt", [](py::handle problem) { return game24::Game24Task{}.format(problem_from(problem)); },
      "problem"_a, "The prompt a generator receives for the problem.");
  g.def(
      "extract_answer",
      [](const std::vector<std::string>& steps) -> std::optional<std::string> {
        Tree t;
        NodeId cur = Tree::root();
        for (const auto& s : steps) cur = t.add_child(cur, Step{s, {}, 0.0, 0, FinishReason::StepEnd});
        return game24::Game24Task{}.extract_answer(t.trajectory(cur));
      },
      "steps"_a, "The answer expression of a trajectory whose last step is \"Answer: ... = 24\", else None.");

  py::class_<ProgrammaticGeneratorPy, GeneratorHandle>(
      g, "ProgrammaticGenerator",
      "Proposes legal Game of 24 moves uniformly at random; with error_rate > 0 some steps are wrong the way a "
      "weak model's are.")
      .def(py::init([](double error_rate, bool propose_distinct, std::size_t max_batch_size) {
             auto p = std::make_unique<ProgrammaticGeneratorPy>();
             p->params.error_rate = error_rate;
             p->params.propose_distinct = propose_distinct;
             p->params.max_batch_size = max_batch_size;
             p->params.validate();
             p->gen.emplace(game24::ProgrammaticGenerator(p->params));
             p->label = fmt::format("ProgrammaticGenerator(error_rate={}, propose_distinct={}, max_batch_size={})",
                                    error_rate, propose_distinct ? "True" : "False", max_batch_size);
             return p;
           }),
           "error_rate"_a = game24::GeneratorParams{}.error_rate,
           "propose_distinct"_a = game24::GeneratorParams{}.propose_distinct,
           "max_batch_size"_a = game24::GeneratorParams{}.max_batch_size)
      .def_property_readonly("error_rate", [](const ProgrammaticGeneratorPy& p) { return p.params.error_rate; })
      .def_property_readonly("propose_distinct",
                             [](const ProgrammaticGeneratorPy& p) { return p.params.propose_distinct; })
      .def_property_readonly("max_batch_size", [](const ProgrammaticGeneratorPy& p) { return p.params.max_batch_size; });

  py::class_<OracleVerifierPy, VerifierHandle>(
      g, "OracleVerifier",
      "The exact process reward (a step scores 1 iff it is legal and 24 is still reachable) and the exact outcome "
      "reward (1 iff the answer is correct).")
      .def(py::init([](std::size_t max_batch_size) {
             auto v = std::make_unique<OracleVerifierPy>();
             v->step.emplace(game24::OracleStepVerifier(max_batch_size));
             v->outcome.emplace(game24::OracleOutcomeVerifier(max_batch_size));
             v->label = "game24-oracle";
             return v;
           }),
           "max_batch_size"_a = 0);
  py::class_<OracleOutcomeVerifierPy, VerifierHandle>(g, "OracleOutcomeVerifier",
                                                      "Only the exact outcome reward (an ORM).")
      .def(py::init([](std::size_t max_batch_size) {
             auto v = std::make_unique<OracleOutcomeVerifierPy>();
             v->outcome.emplace(game24::OracleOutcomeVerifier(max_batch_size));
             v->label = "game24-oracle-outcome";
             return v;
           }),
           "max_batch_size"_a = 0);

  // ---- testing: zero-cost C++ plug-ins and the boundary micro-benchmark ---------------------
  py::module_ t = m.def_submodule("testing", "Zero-cost C++ plug-ins and helpers for benchmarks and tests.");
  py::class_<ConstantGeneratorPy, GeneratorHandle>(
      t, "ConstantGenerator",
      "Proposes one-character steps 'a'..'h' (from the request seed); the step at `depth` is a final answer.")
      .def(py::init([](int depth) {
             if (depth < 1) throw InvalidArgument("depth must be >= 1");
             auto p = std::make_unique<ConstantGeneratorPy>();
             p->depth = depth;
             p->gen.emplace(ConstantGenerator{depth});
             p->label = fmt::format("ConstantGenerator(depth={})", depth);
             return p;
           }),
           "depth"_a = 4)
      .def_property_readonly("depth", [](const ConstantGeneratorPy& p) { return p.depth; });
  py::class_<ConstantVerifierPy, VerifierHandle>(
      t, "ConstantVerifier", "Scores a step (ord(first char) % 7) / 7 and every outcome 0.5.")
      .def(py::init([]() {
        auto v = std::make_unique<ConstantVerifierPy>();
        v->step.emplace(ConstantVerifier{});
        v->outcome.emplace(ConstantVerifier{});
        v->label = "ConstantVerifier()";
        return v;
      }));
  t.def("plugin_call_seconds", &plugin_call_seconds, "plugin"_a, "kind"_a = "generator", "batch_size"_a = 64,
        "depth"_a = 3, "repeats"_a = 1000,
        "Seconds per call of a plug-in through the boundary for a synthetic batch (GIL released as in a search).");
}

}  // namespace qstar::python
