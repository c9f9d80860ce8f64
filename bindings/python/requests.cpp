// The request objects a Python plug-in receives: ExpandRequest, StepScoreRequest and
// OutcomeRequest. They are small native (CPython C-API) objects rather than pybind11 classes
// because a batch of 64 must cost a few microseconds: each holds a pointer to its C++
// request and a reference to the call's token, and every field is computed when read.
// After the plug-in call returns the token is invalidated and reading a field raises
// qstar.Error (the trajectories may change afterwards).
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"

namespace qstar::python {

namespace {

struct TokenObject {
  PyObject_HEAD
  bool valid;
};

struct RequestObject {
  PyObject_HEAD
  TokenObject* token;
  const void* request;
};

PyTypeObject* g_token_type = nullptr;
PyTypeObject* g_expand_type = nullptr;
PyTypeObject* g_step_type = nullptr;
PyTypeObject* g_outcome_type = nullptr;

void request_dealloc(PyObject* self) {
  auto* o = reinterpret_cast<RequestObject*>(self);
  Py_XDECREF(reinterpret_cast<PyObject*>(o->token));
  PyTypeObject* tp = Py_TYPE(self);
  PyObject_Free(self);
  Py_DECREF(tp);
}

PyObject* to_str(std::string_view s) {
  return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
}

PyObject* texts(const TrajectoryView& t, std::size_t from = 0) {
  PyObject* l = PyList_New(static_cast<Py_ssize_t>(t.size() - from));
  if (l == nullptr) return nullptr;
  for (std::size_t i = from; i < t.size(); ++i) {
    PyObject* s = to_str(t.text(i));
    if (s == nullptr) {
      Py_DECREF(l);
      return nullptr;
    }
    PyList_SET_ITEM(l, static_cast<Py_ssize_t>(i - from), s);
  }
  return l;
}

PyObject* tokens(const TrajectoryView& t) {
  PyObject* l = PyList_New(static_cast<Py_ssize_t>(t.size()));
  if (l == nullptr) return nullptr;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto ids = t.tokens(i);
    PyObject* inner = PyList_New(static_cast<Py_ssize_t>(ids.size()));
    if (inner == nullptr) {
      Py_DECREF(l);
      return nullptr;
    }
    for (std::size_t k = 0; k < ids.size(); ++k) PyList_SET_ITEM(inner, static_cast<Py_ssize_t>(k), PyLong_FromLong(ids[k]));
    PyList_SET_ITEM(l, static_cast<Py_ssize_t>(i), inner);
  }
  return l;
}

PyObject* context(std::string_view prompt, const TrajectoryView& t, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"delimiter", nullptr};
  const char* delim = "\n";
  Py_ssize_t delim_size = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|s#:context", const_cast<char**>(names), &delim, &delim_size))
    return nullptr;
  std::string s(prompt);
  for (std::size_t i = 0; i < t.size(); ++i) {
    s.append(t.text(i));
    s.append(delim, static_cast<std::size_t>(delim_size));
  }
  return to_str(s);
}

/// The request behind `self`, or nullptr with qstar.Error set when its call has returned.
template <class R>
const R* get(PyObject* self) {
  auto* o = reinterpret_cast<RequestObject*>(self);
  if (!o->token->valid) {
    PyErr_SetString(error_type(),
                    "request: used after the plug-in call that received it returned; copy the fields you need "
                    "during the call");
    return nullptr;
  }
  return static_cast<const R*>(o->request);
}

PyObject* problem_object(const Problem* p) {
  try {
    return py::cast(*p).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  }
}

// One getter: `expr` computes a new reference from `r` (the request).
#define QSTAR_GETTER(R, expr)                                 \
  [](PyObject* self, void*) -> PyObject* {                    \
    const R* rp = get<R>(self);                               \
    if (rp == nullptr) return nullptr;                        \
    const R& r = *rp;                                         \
    return expr;                                              \
  }

#define QSTAR_COMMON_GETTERS(R)                                                                              \
  {"problem_index", QSTAR_GETTER(R, PyLong_FromSize_t(r.problem_index)), nullptr,                           \
   "Index of the problem in the searched list.", nullptr},                                                   \
      {"problem", QSTAR_GETTER(R, problem_object(r.problem)), nullptr, "The problem (a qstar.Problem).",     \
       nullptr},                                                                                             \
      {"prompt", QSTAR_GETTER(R, to_str(r.prompt)), nullptr,                                                 \
       "The task's prompt for the problem (Game of 24: the ToT-style instruction and the input).", nullptr}

PyGetSetDef expand_getset[] = {
    QSTAR_COMMON_GETTERS(ExpandRequest),
    {"prefix", QSTAR_GETTER(ExpandRequest, texts(r.prefix)), nullptr, "The step texts so far, root first.", nullptr},
    {"prefix_tokens", QSTAR_GETTER(ExpandRequest, tokens(r.prefix)), nullptr,
     "The token ids of each prefix step (empty lists for text-only steps).", nullptr},
    {"depth", QSTAR_GETTER(ExpandRequest, PyLong_FromSize_t(r.prefix.size())), nullptr, "len(prefix).", nullptr},
    {"num_candidates", QSTAR_GETTER(ExpandRequest, PyLong_FromLong(r.num_candidates)), nullptr,
     "How many next steps to propose (return 1..num_candidates).", nullptr},
    {"seed", QSTAR_GETTER(ExpandRequest, PyLong_FromUnsignedLongLong(r.seed)), nullptr,
     "Per-request seed: the same seed must give the same proposals.", nullptr},
    {"max_new_tokens", QSTAR_GETTER(ExpandRequest, PyLong_FromLong(r.max_new_tokens)), nullptr,
     "Hard cap on each step's num_tokens (0: no cap).", nullptr},
    {"greedy", QSTAR_GETTER(ExpandRequest, PyBool_FromLong(r.greedy ? 1 : 0)), nullptr,
     "Propose at temperature 0 (lookahead and greedy rollouts).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef step_getset[] = {
    QSTAR_COMMON_GETTERS(StepScoreRequest),
    {"steps", QSTAR_GETTER(StepScoreRequest, texts(r.trajectory)), nullptr,
     "Every step text of the trajectory, root first.", nullptr},
    {"step_tokens", QSTAR_GETTER(StepScoreRequest, tokens(r.trajectory)), nullptr, "Token ids of each step.",
     nullptr},
    {"first_new", QSTAR_GETTER(StepScoreRequest, PyLong_FromLong(r.first_new)), nullptr,
     "Index of the first step to score.", nullptr},
    {"new_steps", QSTAR_GETTER(StepScoreRequest, texts(r.trajectory, static_cast<std::size_t>(r.first_new))), nullptr,
     "The steps to score (steps[first_new:]): return one score in [0, 1] for each.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyGetSetDef outcome_getset[] = {
    QSTAR_COMMON_GETTERS(OutcomeRequest),
    {"steps", QSTAR_GETTER(OutcomeRequest, texts(r.trajectory)), nullptr,
     "Every step text of the complete trajectory, root first.", nullptr},
    {"step_tokens", QSTAR_GETTER(OutcomeRequest, tokens(r.trajectory)), nullptr, "Token ids of each step.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

#undef QSTAR_COMMON_GETTERS
#undef QSTAR_GETTER

template <class R, const TrajectoryView R::*Field>
PyObject* context_method(PyObject* self, PyObject* args, PyObject* kwargs) {
  const R* r = get<R>(self);
  if (r == nullptr) return nullptr;
  return context(r->prompt, r->*Field, args, kwargs);
}

constexpr const char* kContextDoc =
    "context(delimiter='\\n') -> str: the prompt followed by every step, each followed by the delimiter.";

PyMethodDef expand_methods[] = {
    {"context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
                    &context_method<ExpandRequest, &ExpandRequest::prefix>)),
     METH_VARARGS | METH_KEYWORDS, kContextDoc},
    {nullptr, nullptr, 0, nullptr}};
PyMethodDef step_methods[] = {
    {"context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
                    &context_method<StepScoreRequest, &StepScoreRequest::trajectory>)),
     METH_VARARGS | METH_KEYWORDS, kContextDoc},
    {nullptr, nullptr, 0, nullptr}};
PyMethodDef outcome_methods[] = {
    {"context", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(
                    &context_method<OutcomeRequest, &OutcomeRequest::trajectory>)),
     METH_VARARGS | METH_KEYWORDS, kContextDoc},
    {nullptr, nullptr, 0, nullptr}};

PyObject* expand_repr(PyObject* self) {
  auto* o = reinterpret_cast<RequestObject*>(self);
  if (!o->token->valid) return PyUnicode_FromString("ExpandRequest(<expired>)");
  const auto& r = *static_cast<const ExpandRequest*>(o->request);
  return PyUnicode_FromString(fmt::format("ExpandRequest(problem_index={}, depth={}, num_candidates={}, seed={})",
                                          r.problem_index, r.prefix.size(), r.num_candidates, r.seed)
                                  .c_str());
}
PyObject* step_repr(PyObject* self) {
  auto* o = reinterpret_cast<RequestObject*>(self);
  if (!o->token->valid) return PyUnicode_FromString("StepScoreRequest(<expired>)");
  const auto& r = *static_cast<const StepScoreRequest*>(o->request);
  return PyUnicode_FromString(fmt::format("StepScoreRequest(problem_index={}, steps={}, first_new={})",
                                          r.problem_index, r.trajectory.size(), r.first_new)
                                  .c_str());
}
PyObject* outcome_repr(PyObject* self) {
  auto* o = reinterpret_cast<RequestObject*>(self);
  if (!o->token->valid) return PyUnicode_FromString("OutcomeRequest(<expired>)");
  const auto& r = *static_cast<const OutcomeRequest*>(o->request);
  return PyUnicode_FromString(
      fmt::format("OutcomeRequest(problem_index={}, steps={})", r.problem_index, r.trajectory.size()).c_str());
}

PyObject* no_new(PyTypeObject*, PyObject*, PyObject*) {
  PyErr_SetString(PyExc_TypeError, "request objects are created by qstar.search, not by hand");
  return nullptr;
}

PyTypeObject* make_type(const char* name, const char* doc, PyGetSetDef* getset, PyMethodDef* methods,
                        reprfunc repr) {
  PyType_Slot slots[] = {{Py_tp_dealloc, reinterpret_cast<void*>(&request_dealloc)},
                         {Py_tp_getset, getset},
                         {Py_tp_methods, methods},
                         {Py_tp_repr, reinterpret_cast<void*>(repr)},
                         {Py_tp_new, reinterpret_cast<void*>(&no_new)},
                         {Py_tp_doc, const_cast<char*>(doc)},
                         {0, nullptr}};
  PyType_Spec spec{name, static_cast<int>(sizeof(RequestObject)), 0, Py_TPFLAGS_DEFAULT, slots};
  PyObject* t = PyType_FromSpec(&spec);
  if (t == nullptr) throw py::error_already_set();
  return reinterpret_cast<PyTypeObject*>(t);
}

template <class R>
py::list make_list(PyTypeObject* type, std::span<const R> batch, BatchToken& token) {
  PyObject* l = PyList_New(static_cast<Py_ssize_t>(batch.size()));
  if (l == nullptr) throw py::error_already_set();
  py::list list = py::reinterpret_steal<py::list>(l);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    RequestObject* o = PyObject_New(RequestObject, type);
    if (o == nullptr) throw py::error_already_set();
    o->token = reinterpret_cast<TokenObject*>(token.get());
    Py_INCREF(token.get());
    o->request = &batch[i];
    PyList_SET_ITEM(l, static_cast<Py_ssize_t>(i), reinterpret_cast<PyObject*>(o));
  }
  return list;
}

/// The C++ requests behind `batch` (a list or tuple of request objects of `type`, all still
/// valid), copied: a built-in plug-in's method called by a Python plug-in with its batch.
/// "ExpandRequest" for "qstar.ExpandRequest".
const char* short_name(PyTypeObject* type) {
  const char* dot = std::strrchr(type->tp_name, '.');
  return dot != nullptr ? dot + 1 : type->tp_name;
}

template <class R>
std::vector<R> requests_of(PyTypeObject* type, py::handle batch, const char* method) {
  if (!PyList_Check(batch.ptr()) && !PyTuple_Check(batch.ptr()))
    throw py::type_error(fmt::format("{}: batch is a {}, expected a list of qstar.{} (the batch a plug-in receives)",
                                     method, Py_TYPE(batch.ptr())->tp_name, short_name(type)));
  py::object seq = py::reinterpret_borrow<py::object>(batch);
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  std::vector<R> out;
  out.reserve(static_cast<std::size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!PyObject_TypeCheck(items[i], type))
      throw py::type_error(fmt::format("{}: batch[{}] is a {}, expected a qstar.{} (the batch a plug-in receives)",
                                       method, i, Py_TYPE(items[i])->tp_name, short_name(type)));
    const R* r = get<R>(items[i]);
    if (r == nullptr) throw py::error_already_set();
    out.push_back(*r);
  }
  return out;
}

}  // namespace

std::vector<ExpandRequest> expand_requests(py::handle batch, const char* method) {
  return requests_of<ExpandRequest>(g_expand_type, batch, method);
}
std::vector<StepScoreRequest> step_score_requests(py::handle batch, const char* method) {
  return requests_of<StepScoreRequest>(g_step_type, batch, method);
}
std::vector<OutcomeRequest> outcome_requests(py::handle batch, const char* method) {
  return requests_of<OutcomeRequest>(g_outcome_type, batch, method);
}

BatchToken::BatchToken() {
  auto* t = PyObject_New(TokenObject, g_token_type);
  if (t == nullptr) throw py::error_already_set();
  t->valid = true;
  token_ = reinterpret_cast<PyObject*>(t);
}
BatchToken::~BatchToken() {
  reinterpret_cast<TokenObject*>(token_)->valid = false;
  Py_DECREF(token_);
}

py::list request_list(std::span<const ExpandRequest> batch, BatchToken& token) {
  return make_list(g_expand_type, batch, token);
}
py::list request_list(std::span<const StepScoreRequest> batch, BatchToken& token) {
  return make_list(g_step_type, batch, token);
}
py::list request_list(std::span<const OutcomeRequest> batch, BatchToken& token) {
  return make_list(g_outcome_type, batch, token);
}

void bind_requests(py::module_& m) {
  {
    static PyType_Slot slots[] = {{Py_tp_new, reinterpret_cast<void*>(&no_new)}, {0, nullptr}};
    static PyType_Spec spec{"qstar._BatchToken", static_cast<int>(sizeof(TokenObject)), 0, Py_TPFLAGS_DEFAULT, slots};
    PyObject* t = PyType_FromSpec(&spec);
    if (t == nullptr) throw py::error_already_set();
    g_token_type = reinterpret_cast<PyTypeObject*>(t);
  }
  g_expand_type = make_type("qstar.ExpandRequest",
                            "A request to propose next steps after a trajectory prefix (valid during the expand call).",
                            expand_getset, expand_methods, &expand_repr);
  g_step_type = make_type("qstar.StepScoreRequest",
                          "A request to score the steps [first_new:] of a trajectory (valid during the score call).",
                          step_getset, step_methods, &step_repr);
  g_outcome_type = make_type("qstar.OutcomeRequest",
                             "A request to score a complete trajectory (valid during the score_outcomes call).",
                             outcome_getset, outcome_methods, &outcome_repr);
  m.add_object("_BatchToken", reinterpret_cast<PyObject*>(g_token_type));
  m.add_object("ExpandRequest", reinterpret_cast<PyObject*>(g_expand_type));
  m.add_object("StepScoreRequest", reinterpret_cast<PyObject*>(g_step_type));
  m.add_object("OutcomeRequest", reinterpret_cast<PyObject*>(g_outcome_type));
}

}  // namespace qstar::python
