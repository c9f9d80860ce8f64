// Keyword parameters of the built-in backends (LMGenerator, PRM, HttpGenerator, HttpVerifier):
// each backend lists its params struct's fields with a for_each(params, f) function, f(name,
// field); these helpers set them from **kwargs (validated by type, naming the field) and
// report them as a dict.
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "common.hpp"
#include "qstar/search/named_params.hpp"

namespace qstar::python {

/// Assigns a field (strings and lists of strings included) from a Python value; InvalidArgument naming it.
template <class T>
void assign_py(const std::string& owner, const char* name, T& field, py::handle v) {
  const std::string full = fmt::format("{}.{}", owner, name);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!PyUnicode_Check(v.ptr()))
      throw InvalidArgument(fmt::format("{}: expected a str, got a {}", full, Py_TYPE(v.ptr())->tp_name));
    field = v.cast<std::string>();
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    if (PyUnicode_Check(v.ptr())) {
      field = {v.cast<std::string>()};
      return;
    }
    if (!PyList_Check(v.ptr()) && !PyTuple_Check(v.ptr()))
      throw InvalidArgument(fmt::format("{}: expected a str or a list of str, got a {}", full, Py_TYPE(v.ptr())->tp_name));
    field.clear();
    for (auto item : v) {
      if (!PyUnicode_Check(item.ptr()))
        throw InvalidArgument(fmt::format("{}[{}]: expected a str, got a {}", full, field.size(), Py_TYPE(item.ptr())->tp_name));
      field.push_back(item.cast<std::string>());
    }
  } else {
    ParamValue pv;
    if (PyBool_Check(v.ptr())) pv = v.ptr() == Py_True;
    else if (PyLong_Check(v.ptr())) pv = static_cast<std::int64_t>(v.cast<long long>());
    else if (PyFloat_Check(v.ptr())) pv = PyFloat_AS_DOUBLE(v.ptr());
    else if (PyUnicode_Check(v.ptr())) pv = v.cast<std::string>();
    else throw InvalidArgument(fmt::format("{}: unsupported value of type {}", full, Py_TYPE(v.ptr())->tp_name));
    params_detail::assign(full, field, pv);
  }
}

template <class P, class Each>
P params_from_kwargs(const std::string& owner, const py::kwargs& kw, Each each) {
  P p;
  for (auto [k, v] : kw) {
    const auto key = py::cast<std::string>(k);
    bool found = false;
    each(p, [&](const char* name, auto& field) {
      if (found || key != name) return;
      found = true;
      assign_py(owner, name, field, v);
    });
    if (!found) {
      std::string names;
      each(p, [&](const char* name, const auto&) { names += (names.empty() ? "" : ", ") + std::string(name); });
      throw InvalidArgument(fmt::format("{}: no parameter '{}' (its parameters: {})", owner, key, names));
    }
  }
  return p;
}

template <class P, class Each>
py::dict params_dict(const P& p, Each each) {
  py::dict d;
  each(p, [&](const char* name, const auto& field) {
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::string>>) d[name] = field;
    else d[name] = to_python(params_detail::to_json_value(field));
  });
  return d;
}

}  // namespace qstar::python
