// The _qstar extension module: the exception hierarchy and JSON <-> Python conversion;
// the rest is bound by the other translation units (see common.hpp).
#include <cmath>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/version.hpp"

namespace qstar::python {

namespace {
// The exception classes (owned by the module; kept alive for the interpreter's lifetime).
PyObject* g_error = nullptr;
PyObject* g_invalid_argument = nullptr;
PyObject* g_parse_error = nullptr;
PyObject* g_io_error = nullptr;
PyObject* g_plugin_error = nullptr;

PyObject* new_exception(py::module_& m, const char* name, py::tuple bases, const char* doc) {
  const std::string full = fmt::format("qstar.{}", name);
  PyObject* t = PyErr_NewExceptionWithDoc(full.c_str(), doc, bases.ptr(), nullptr);
  if (t == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(t));
  return t;
}

/// A PluginError whose cause is a Python exception raised inside a Python plug-in: restore
/// that exception (same type, value and traceback) with a note naming the plug-in.
bool restore_python_cause(const PluginError& e) {
  try {
    std::rethrow_if_nested(e);
  } catch (py::error_already_set& inner) {
    std::string note = e.what();
    // "generator 'X' threw in expand: <what>" -> "generator 'X' threw in expand"
    if (const auto cut = note.find(": "); cut != std::string::npos) note.resize(cut);
    const py::object& value = inner.value();
    if (value && py::hasattr(value, "add_note")) {
      try {
        value.attr("add_note")(fmt::format("(raised by a Python plug-in inside qstar.search: {})", note));
      } catch (py::error_already_set&) {
        // Leave the exception as it was.
      }
    }
    inner.restore();
    return true;
  } catch (...) {
    return false;
  }
  return false;
}
}  // namespace

PyObject* error_type() { return g_error; }

void bind_errors(py::module_& m) {
  g_error = new_exception(m, "Error", py::make_tuple(py::handle(PyExc_Exception)),
                          "Base class of every error qstar raises.");
  g_invalid_argument =
      new_exception(m, "InvalidArgument", py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)),
                    "A parameter failed validation; the message starts with the field name.");
  g_parse_error = new_exception(m, "ParseError", py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)),
                                "Malformed input text or file (puzzle, step, JSON, trace).");
  g_io_error = new_exception(m, "IoError", py::make_tuple(py::handle(g_error), py::handle(PyExc_OSError)),
                             "A file could not be opened, read or written; the message names it.");
  g_plugin_error =
      new_exception(m, "PluginError", py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError)),
                    "A plug-in broke its contract (wrong number or shape of results, NaN or out-of-range "
                    "scores, too long steps); the message names the plug-in.");
  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const PluginError& e) {
      if (!restore_python_cause(e)) PyErr_SetString(g_plugin_error, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(g_invalid_argument, e.what());
    } catch (const ParseError& e) {
      PyErr_SetString(g_parse_error, e.what());
    } catch (const IoError& e) {
      PyErr_SetString(g_io_error, e.what());
    } catch (const Error& e) {
      PyErr_SetString(g_error, e.what());
    }
    // Anything else falls through to pybind11's own translators.
  });
}

py::object to_python(const json::Value& v) {
  switch (v.type()) {
    case json::Type::Null: return py::none();
    case json::Type::Bool: return py::bool_(v.as_bool());
    case json::Type::Int: return py::int_(v.as_int());
    case json::Type::Double: return py::float_(v.as_double());
    case json::Type::String: return py::str(v.as_string());
    case json::Type::Array: {
      const auto& a = v.as_array();
      py::list l(a.size());
      for (std::size_t i = 0; i < a.size(); ++i) l[i] = to_python(a[i]);
      return l;
    }
    case json::Type::Object: {
      py::dict d;
      for (const auto& [k, x] : v.as_object()) d[py::str(k)] = to_python(x);
      return d;
    }
  }
  return py::none();
}

json::Value from_python(py::handle h, const std::string& what) {
  if (h.is_none()) return json::Value();
  if (PyBool_Check(h.ptr())) return json::Value(h.ptr() == Py_True);
  if (PyLong_Check(h.ptr())) {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(h.ptr(), &overflow);
    if (overflow != 0) throw InvalidArgument(fmt::format("{}: integer out of the 64-bit range", what));
    return json::Value(static_cast<std::int64_t>(x));
  }
  if (PyFloat_Check(h.ptr())) return json::Value(PyFloat_AS_DOUBLE(h.ptr()));
  if (PyUnicode_Check(h.ptr())) return json::Value(h.cast<std::string>());
  if (PyList_Check(h.ptr()) || PyTuple_Check(h.ptr())) {
    json::Value a = json::Value::array();
    std::size_t i = 0;
    for (auto item : h) a.push_back(from_python(item, fmt::format("{}[{}]", what, i++)));
    return a;
  }
  if (PyDict_Check(h.ptr())) {
    json::Value o = json::Value::object();
    for (auto [k, x] : h.cast<py::dict>()) {
      if (!PyUnicode_Check(k.ptr())) throw InvalidArgument(fmt::format("{}: dict keys must be str", what));
      const auto key = k.cast<std::string>();
      o.set(key, from_python(x, fmt::format("{}.{}", what, key)));
    }
    return o;
  }
  throw InvalidArgument(fmt::format("{}: cannot convert a {} to JSON", what, py::str(py::type::of(h).attr("__name__"))
                                                                                .cast<std::string>()));
}

}  // namespace qstar::python

PYBIND11_MODULE(_qstar, m) {
  namespace qp = qstar::python;
  m.doc() = "qstar's C++ core (process-supervised search); import the `qstar` package, not this module.";
  m.attr("__version__") = QSTAR_VERSION_STRING;
#ifdef QSTAR_HAS_TORCH
  m.attr("has_torch") = true;
#else
  m.attr("has_torch") = false;
#endif
#ifdef QSTAR_HAS_HF
  m.attr("has_hf") = true;
#else
  m.attr("has_hf") = false;
#endif
#ifdef QSTAR_HAS_HTTP
  m.attr("has_http") = true;
#else
  m.attr("has_http") = false;
#endif
  qp::bind_errors(m);
  qp::bind_types(m);
  qp::bind_requests(m);
  qp::bind_plugins(m);
  qp::bind_search(m);
  qp::bind_tokenizer(m);
  qp::bind_torch(m);
  qp::bind_http(m);
  qp::bind_math(m);
}
