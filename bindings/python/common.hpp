// Shared declarations of the _qstar extension's translation units. The bindings only
// translate between Python and the C++ core: every algorithm, check and format lives in
// include/qstar (and src/torch for the LibTorch backends).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qstar/core/any.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/types.hpp"
#include "qstar/error.hpp"

namespace qstar::python {

namespace py = pybind11;

// ---- translation units' entry points -------------------------------------------------
void bind_errors(py::module_& m);
void bind_types(py::module_& m);     // Problem, Step, Stats, Candidate, Result, Tree, traces
void bind_requests(py::module_& m);  // ExpandRequest, StepScoreRequest, OutcomeRequest
void bind_plugins(py::module_& m);   // Python plug-in adapters, game24 and testing plug-ins
void bind_search(py::module_& m);    // _search
void bind_tokenizer(py::module_& m); // Tokenizer (when built with qstar::hf)
void bind_torch(py::module_& m);     // LMGenerator, PRM (when built with qstar::torch)
void bind_http(py::module_& m);      // HttpGenerator, HttpVerifier (when built with qstar::http)
void bind_math(py::module_& m);      // the math task: load, check, extract, MathTask

/// The qstar.Error exception class (set by bind_errors).
PyObject* error_type();

// ---- request objects ------------------------------------------------------------------------
/// The validity token of one plug-in call's request objects (GIL held): created valid,
/// invalidated on destruction, so that requests kept after the call raise qstar.Error.
class BatchToken {
 public:
  BatchToken();
  ~BatchToken();
  BatchToken(const BatchToken&) = delete;
  BatchToken& operator=(const BatchToken&) = delete;
  PyObject* get() const noexcept { return token_; }

 private:
  PyObject* token_ = nullptr;
};
/// The Python list of request objects of a batch (GIL held).
py::list request_list(std::span<const ExpandRequest> batch, BatchToken& token);
py::list request_list(std::span<const StepScoreRequest> batch, BatchToken& token);
py::list request_list(std::span<const OutcomeRequest> batch, BatchToken& token);
/// The inverse, for a built-in plug-in called from Python (a Python plug-in delegating to
/// it): copies of the C++ requests behind a list of request objects that are still valid.
/// TypeError (naming `method` and the item) for anything else; qstar.Error for requests
/// whose plug-in call has returned.
std::vector<ExpandRequest> expand_requests(py::handle batch, const char* method);
std::vector<StepScoreRequest> step_score_requests(py::handle batch, const char* method);
std::vector<OutcomeRequest> outcome_requests(py::handle batch, const char* method);

// ---- JSON values <-> Python objects ---------------------------------------------------
/// None, bool, int, float, str, list, dict (key order kept).
py::object to_python(const json::Value& v);
/// The inverse for None/bool/int/float/str/list/tuple/dict with str keys; InvalidArgument
/// naming `what` for anything else.
json::Value from_python(py::handle h, const std::string& what);

// ---- Python objects held by C++ plug-ins -----------------------------------------------
/// A strong reference to a Python object that may be copied and destroyed without the GIL:
/// copies share one reference count (std::shared_ptr), and the last owner takes the GIL to
/// release the Python reference.
class PyRef {
 public:
  PyRef() = default;
  explicit PyRef(py::object o)
      : p_(new py::object(std::move(o)), [](py::object* x) {
          py::gil_scoped_acquire gil;
          delete x;
        }) {}
  const py::object& get() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  std::shared_ptr<py::object> p_;
};

// ---- built-in (C++) plug-ins as Python objects ------------------------------------------
/// Base of every built-in generator class (qstar.game24.ProgrammaticGenerator,
/// qstar.LMGenerator, qstar.testing.ConstantGenerator).
struct GeneratorHandle {
  std::optional<AnyGenerator> gen;
  std::string label;
  virtual ~GeneratorHandle() = default;
};
/// Base of every built-in verifier class: a step verifier (PRM) and/or an outcome
/// verifier (ORM).
struct VerifierHandle {
  std::optional<AnyStepVerifier> step;
  std::optional<AnyOutcomeVerifier> outcome;
  std::string label;
  virtual ~VerifierHandle() = default;
};

/// The generator qstar.search uses: a built-in one, or an adapter around a Python object
/// with expand(batch). TypeError when `obj` is neither.
AnyGenerator make_generator(py::handle obj);
/// The verifier parts of a built-in verifier or of a Python object with score(batch)
/// and/or score_outcomes(batch). TypeError when `obj` has neither.
VerifierHandle make_verifier(py::handle obj);

/// The name a Python plug-in is reported under: its `name` (attribute or method) or its
/// class name.
std::string plugin_label(py::handle obj);

/// Problems from a str, a Problem, or an iterable of them (a str item gets the id of its
/// position).
std::vector<Problem> problems_from_python(py::handle obj);

/// Ranks "A-B", (A, B) or None; InvalidArgument naming ranks otherwise.
std::optional<std::pair<int, int>> ranks_from(py::handle h);
/// A problem from a str or a qstar.Problem; InvalidArgument otherwise.
Problem problem_from(py::handle h);

/// Counts the code points of UTF-8 text.
inline std::int32_t utf8_code_points(std::string_view s) noexcept {
  std::int32_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

}  // namespace qstar::python
